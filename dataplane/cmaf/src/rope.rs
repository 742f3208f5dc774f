//! [`Rope`]: an immutable byte string made of shared [`Bytes`] pieces.
//!
//! A CMAF part is its `moof` followed by the sample bytes as they arrived from ingest;
//! a segment is its parts one after another. Holding both as ropes means packaging
//! never copies sample data, and a segment shares its memory with its parts. Writers
//! send the pieces with vectored I/O; [`Rope::to_bytes`] flattens when a caller needs
//! one contiguous buffer (tests, small bodies).

use std::sync::Arc;

use bytes::{Bytes, BytesMut};

/// An immutable, cheaply clonable sequence of bytes stored as shared pieces.
#[derive(Clone, Default)]
pub struct Rope {
    pieces: Arc<[Bytes]>,
    len: usize,
}

impl Rope {
    /// A rope of these pieces, in order (empty pieces are left out).
    pub fn from_pieces(pieces: impl IntoIterator<Item = Bytes>) -> Self {
        let pieces: Arc<[Bytes]> = pieces.into_iter().filter(|p| !p.is_empty()).collect();
        let len = pieces.iter().map(Bytes::len).sum();
        Self { pieces, len }
    }

    /// The ropes one after another (pieces are shared, not copied).
    pub fn concat<'a>(ropes: impl IntoIterator<Item = &'a Rope>) -> Self {
        Self::from_pieces(ropes.into_iter().flat_map(|r| r.pieces.iter().cloned()))
    }

    /// Total length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when it holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The pieces, in order; none is empty.
    pub fn pieces(&self) -> &[Bytes] {
        &self.pieces
    }

    /// The bytes in one buffer: shared when the rope is a single piece, else copied.
    pub fn to_bytes(&self) -> Bytes {
        match &*self.pieces {
            [] => Bytes::new(),
            [one] => one.clone(),
            many => {
                let mut b = BytesMut::with_capacity(self.len);
                for p in many {
                    b.extend_from_slice(p);
                }
                b.freeze()
            }
        }
    }
}

impl From<Bytes> for Rope {
    fn from(b: Bytes) -> Self {
        Self::from_pieces([b])
    }
}

impl From<Vec<u8>> for Rope {
    fn from(v: Vec<u8>) -> Self {
        Self::from(Bytes::from(v))
    }
}

impl From<String> for Rope {
    fn from(s: String) -> Self {
        Self::from(Bytes::from(s))
    }
}

/// Equal when the bytes are equal, however they are split into pieces.
impl PartialEq for Rope {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len
            && self
                .pieces
                .iter()
                .flat_map(|p| p.iter())
                .eq(other.pieces.iter().flat_map(|p| p.iter()))
    }
}

impl Eq for Rope {}

impl std::fmt::Debug for Rope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Rope({} bytes in {} pieces)",
            self.len,
            self.pieces.len()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_concatenate_and_compare_by_content() {
        let a = Rope::from_pieces([
            Bytes::from_static(b"ab"),
            Bytes::new(),
            Bytes::from_static(b"c"),
        ]);
        assert_eq!(a.len(), 3);
        assert_eq!(a.pieces().len(), 2, "empty pieces are dropped");
        let b = Rope::from(Bytes::from_static(b"de"));
        let ab = Rope::concat([&a, &b]);
        assert_eq!(&ab.to_bytes()[..], b"abcde");
        assert_eq!(ab, Rope::from(b"abcde".to_vec()));
        assert_ne!(ab, Rope::from(b"abcdf".to_vec()));
        assert!(Rope::default().is_empty());
        assert_eq!(Rope::default().to_bytes(), Bytes::new());
    }

    #[test]
    fn a_single_piece_is_shared_not_copied() {
        let b = Bytes::from(vec![7u8; 100]);
        let r = Rope::from(b.clone());
        assert_eq!(r.to_bytes().as_ptr(), b.as_ptr());
    }
}
