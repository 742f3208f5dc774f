//! Message bodies sent to many connections (relay fan-out), chunked once.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;

use super::writer::chunk_body;

/// A media message body that several connections send (one relay per destination):
/// the body and, made on first use and then shared, its chunk stream form for one
/// chunk size and chunk stream. Each connection only adds its own first chunk header.
/// Cloning is cheap (a reference count).
#[derive(Debug, Clone)]
pub struct SharedBody(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    payload: Bytes,
    /// (chunk size, chunk stream id, chunked body) of the first connection that asked.
    chunked: OnceLock<(u32, u32, Bytes)>,
}

impl SharedBody {
    /// A body not yet chunked.
    pub fn new(payload: Bytes) -> Self {
        Self(Arc::new(Inner {
            payload,
            chunked: OnceLock::new(),
        }))
    }

    /// The message body (an FLV tag body or an AMF0 body).
    pub fn payload(&self) -> &Bytes {
        &self.0.payload
    }

    /// The body's chunk stream form (see [`chunk_body`]): the shared one when it was
    /// made for this chunk size and chunk stream, else one made now for the caller.
    pub fn chunked(&self, chunk_size: u32, csid: u32) -> Bytes {
        let (size, id, bytes) = self.0.chunked.get_or_init(|| {
            (
                chunk_size,
                csid,
                chunk_body(chunk_size, csid, &self.0.payload),
            )
        });
        if (*size, *id) == (chunk_size, csid) {
            bytes.clone()
        } else {
            chunk_body(chunk_size, csid, &self.0.payload)
        }
    }
}

impl From<Bytes> for SharedBody {
    fn from(payload: Bytes) -> Self {
        Self::new(payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_once_per_chunk_size() {
        let body = SharedBody::new(Bytes::from(vec![7u8; 300]));
        let a = body.chunked(128, 6);
        let b = body.chunked(128, 6);
        assert_eq!(a.as_ptr(), b.as_ptr(), "shared");
        assert_eq!(a.len(), 302);
        let c = body.chunked(256, 6);
        assert_eq!(c.len(), 301);
        assert_eq!(body.chunked(128, 6).as_ptr(), a.as_ptr());
    }
}
