//! A growable ISO BMFF box writer that backpatches box sizes when a box ends.

use bytes::Bytes;

/// Writes nested boxes into one buffer; sizes are filled in by [`BoxWriter::end`].
///
/// ```
/// # use weir_cmaf::BoxWriter;
/// let mut w = BoxWriter::new();
/// w.begin(*b"free");
/// w.u32(7);
/// w.end();
/// assert_eq!(&w.finish()[..], &[0, 0, 0, 12, b'f', b'r', b'e', b'e', 0, 0, 0, 7]);
/// ```
#[derive(Debug, Default)]
pub struct BoxWriter {
    buf: Vec<u8>,
    open: Vec<usize>,
}

impl BoxWriter {
    /// An empty writer.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty writer with room for `n` bytes.
    pub fn with_capacity(n: usize) -> Self {
        Self {
            buf: Vec::with_capacity(n),
            open: Vec::new(),
        }
    }

    /// Opens a box of type `kind`; its size is written when the matching [`Self::end`] runs.
    pub fn begin(&mut self, kind: [u8; 4]) {
        self.open.push(self.buf.len());
        self.buf.extend_from_slice(&[0; 4]);
        self.buf.extend_from_slice(&kind);
    }

    /// Opens a full box (a box with a version byte and 24 bits of flags).
    pub fn begin_full(&mut self, kind: [u8; 4], version: u8, flags: u32) {
        self.begin(kind);
        self.u32((u32::from(version) << 24) | (flags & 0x00ff_ffff));
    }

    /// Closes the innermost open box and writes its size.
    ///
    /// # Panics
    /// When no box is open (a programming error, not an input error).
    pub fn end(&mut self) {
        let start = self.open.pop().expect("BoxWriter::end without begin");
        let size = u32::try_from(self.buf.len() - start).unwrap_or(u32::MAX);
        self.patch_u32(start, size);
    }

    /// The number of bytes written so far.
    pub fn position(&self) -> usize {
        self.buf.len()
    }

    /// Overwrites four bytes at `pos` (which must already have been written).
    pub fn patch_u32(&mut self, pos: usize, v: u32) {
        self.buf[pos..pos + 4].copy_from_slice(&v.to_be_bytes());
    }

    /// One byte.
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    /// A big-endian u16.
    pub fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// A big-endian u24 (the low 24 bits of `v`).
    pub fn u24(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_be_bytes()[1..]);
    }

    /// A big-endian u32.
    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// A big-endian i32.
    pub fn i32(&mut self, v: i32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// A big-endian u64.
    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// Raw bytes.
    pub fn bytes(&mut self, v: &[u8]) {
        self.buf.extend_from_slice(v);
    }

    /// `n` zero bytes.
    pub fn zeros(&mut self, n: usize) {
        self.buf.resize(self.buf.len() + n, 0);
    }

    /// The written bytes.
    ///
    /// # Panics
    /// When a box is still open (a programming error).
    pub fn finish(self) -> Bytes {
        assert!(self.open.is_empty(), "BoxWriter::finish with open boxes");
        Bytes::from(self.buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_sizes_are_backpatched() {
        let mut w = BoxWriter::new();
        w.begin(*b"moov");
        w.begin_full(*b"mvhd", 1, 0x000102);
        w.u64(5);
        w.end();
        w.begin(*b"trak");
        w.end();
        w.end();
        let b = w.finish();
        assert_eq!(b.len(), 8 + 20 + 8);
        assert_eq!(&b[0..4], &36u32.to_be_bytes());
        assert_eq!(&b[8..12], &20u32.to_be_bytes());
        assert_eq!(&b[16..20], &[1, 0, 1, 2]);
        assert_eq!(&b[28..32], &8u32.to_be_bytes());
    }
}
