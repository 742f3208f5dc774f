//! The dechunker: chunk stream bytes in, whole messages out.
//!
//! Input is consumed incrementally (a chunk's payload is copied into its message as it
//! arrives), so the reader never holds more than one partial chunk header of unparsed
//! input. Memory is bounded by `max_message_size` per message, `max_pending_bytes` over
//! all partial messages and [`MAX_CHUNK_STREAMS`] chunk stream states.

use std::collections::HashMap;

use bytes::{Buf, BytesMut};

use super::{DEFAULT_CHUNK_SIZE, EXTENDED_TIMESTAMP, MAX_CHUNK_SIZE, RtmpMessage};
use crate::RtmpError;

/// Most distinct chunk stream ids a peer may use on one connection.
pub const MAX_CHUNK_STREAMS: usize = 64;

/// What the reader remembers per chunk stream id.
#[derive(Debug, Default)]
struct ChunkStream {
    /// Timestamp of the current (or last) message.
    timestamp: u32,
    /// Last timestamp field: a delta for fmt 1/2, the absolute time for fmt 0.
    delta: u32,
    length: u32,
    type_id: u8,
    stream_id: u32,
    /// The last fmt 0/1/2 header carried an extended timestamp (with this value).
    extended: Option<u32>,
    /// The message being assembled.
    partial: Option<BytesMut>,
}

/// Reassembles RTMP messages from a chunk stream.
#[derive(Debug)]
pub struct ChunkReader {
    buf: BytesMut,
    chunk_size: u32,
    max_message_size: usize,
    max_pending_bytes: usize,
    pending: usize,
    streams: HashMap<u32, ChunkStream>,
    /// The chunk whose payload is being read: (csid, payload bytes left in this chunk).
    in_chunk: Option<(u32, usize)>,
}

/// A parsed chunk header, before it is applied to the chunk stream state.
struct Header {
    fmt: u8,
    csid: u32,
    len: usize,
    ts_field: u32,
    /// The header carried an extended timestamp field.
    ext: bool,
    length: u32,
    type_id: u8,
    stream_id: u32,
}

fn u24(b: &[u8]) -> u32 {
    u32::from_be_bytes([0, b[0], b[1], b[2]])
}

impl ChunkReader {
    /// A reader with the default incoming chunk size (128).
    pub fn new(max_message_size: usize, max_pending_bytes: usize) -> Self {
        Self {
            buf: BytesMut::new(),
            chunk_size: DEFAULT_CHUNK_SIZE,
            max_message_size,
            max_pending_bytes,
            pending: 0,
            streams: HashMap::new(),
            in_chunk: None,
        }
    }

    /// Applies a peer's Set Chunk Size (1..=0x7FFF_FFFF).
    pub fn set_chunk_size(&mut self, size: u32) -> Result<(), RtmpError> {
        if size == 0 || size > MAX_CHUNK_SIZE {
            return Err(RtmpError::InvalidChunkSize(size));
        }
        self.chunk_size = size;
        Ok(())
    }

    /// The current incoming chunk size.
    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// Discards the partial message on `csid` (an Abort message).
    pub fn abort(&mut self, csid: u32) {
        if let Some(p) = self.streams.get_mut(&csid).and_then(|s| s.partial.take()) {
            self.pending -= p.len();
        }
    }

    /// Bytes held in partially assembled messages.
    pub fn pending_bytes(&self) -> usize {
        self.pending
    }

    /// Appends input. Parsing happens in [`ChunkReader::next_message`].
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete message, `Ok(None)` when more input is needed.
    pub fn next_message(&mut self) -> Result<Option<RtmpMessage>, RtmpError> {
        loop {
            if let Some((csid, left)) = self.in_chunk {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                let n = left.min(self.buf.len());
                let Some(st) = self.streams.get_mut(&csid) else {
                    self.in_chunk = None;
                    continue;
                };
                let partial = st.partial.get_or_insert_with(BytesMut::new);
                self.pending += n;
                if self.pending > self.max_pending_bytes {
                    return Err(RtmpError::PendingBytesExceeded {
                        max: self.max_pending_bytes,
                    });
                }
                partial.extend_from_slice(&self.buf[..n]);
                self.buf.advance(n);
                if left > n {
                    self.in_chunk = Some((csid, left - n));
                    return Ok(None);
                }
                self.in_chunk = None;
                if partial.len() >= st.length as usize {
                    return Ok(self.complete(csid));
                }
                continue;
            }
            let Some(h) = self.parse_header()? else {
                return Ok(None);
            };
            if let Some(msg) = self.apply_header(h)? {
                return Ok(Some(msg));
            }
        }
    }

    fn complete(&mut self, csid: u32) -> Option<RtmpMessage> {
        let st = self.streams.get_mut(&csid)?;
        let payload = st.partial.take()?;
        self.pending -= payload.len();
        Some(RtmpMessage {
            csid,
            timestamp: st.timestamp,
            type_id: st.type_id,
            stream_id: st.stream_id,
            payload: payload.freeze(),
        })
    }

    /// Parses (without consuming) the chunk header at the front of the buffer.
    fn parse_header(&self) -> Result<Option<Header>, RtmpError> {
        let b = &self.buf[..];
        let Some(&b0) = b.first() else {
            return Ok(None);
        };
        let fmt = b0 >> 6;
        let (csid, mut pos) = match b0 & 0x3f {
            0 => match b.get(1) {
                Some(&x) => (64 + u32::from(x), 2),
                None => return Ok(None),
            },
            1 => match (b.get(1), b.get(2)) {
                (Some(&x), Some(&y)) => (64 + u32::from(x) + 256 * u32::from(y), 3),
                _ => return Ok(None),
            },
            n => (u32::from(n), 1),
        };
        let mh = [11, 7, 3, 0][usize::from(fmt)];
        if b.len() < pos + mh {
            return Ok(None);
        }
        let prev = self.streams.get(&csid);
        if fmt != 0 && prev.is_none() {
            return Err(RtmpError::NoPreviousHeader { csid, fmt });
        }
        let f = &b[pos..pos + mh];
        let (mut ts_field, mut length, mut type_id, mut stream_id) = match prev {
            Some(p) => (p.delta, p.length, p.type_id, p.stream_id),
            None => (0, 0, 0, 0),
        };
        if fmt <= 2 {
            ts_field = u24(&f[0..3]);
        }
        if fmt <= 1 {
            length = u24(&f[3..6]);
            type_id = f[6];
        }
        if fmt == 0 {
            stream_id = u32::from_le_bytes([f[7], f[8], f[9], f[10]]);
        }
        pos += mh;
        let ext = fmt <= 2 && ts_field == EXTENDED_TIMESTAMP;
        if ext {
            let Some(ext) = b.get(pos..pos + 4) else {
                return Ok(None);
            };
            ts_field = u32::from_be_bytes([ext[0], ext[1], ext[2], ext[3]]);
            pos += 4;
        } else if fmt == 3
            && let Some(ext_value) = prev.and_then(|p| p.extended)
        {
            // The spec repeats the extended timestamp on type-3 chunks; a few
            // encoders do not. Skip the 4 bytes only when they repeat the value.
            let Some(ext) = b.get(pos..pos + 4) else {
                return Ok(None);
            };
            if u32::from_be_bytes([ext[0], ext[1], ext[2], ext[3]]) == ext_value {
                pos += 4;
            }
        }
        Ok(Some(Header {
            fmt,
            csid,
            len: pos,
            ts_field,
            ext,
            length,
            type_id,
            stream_id,
        }))
    }

    /// Consumes a parsed header and updates the chunk stream. Returns a message when
    /// the header starts an empty one.
    fn apply_header(&mut self, h: Header) -> Result<Option<RtmpMessage>, RtmpError> {
        if !self.streams.contains_key(&h.csid) && self.streams.len() >= MAX_CHUNK_STREAMS {
            return Err(RtmpError::TooManyChunkStreams(MAX_CHUNK_STREAMS));
        }
        self.buf.advance(h.len);
        let st = self.streams.entry(h.csid).or_default();
        let continuation = h.fmt == 3 && st.partial.is_some();
        if !continuation {
            if h.length as usize > self.max_message_size {
                return Err(RtmpError::MessageTooLarge {
                    len: h.length as usize,
                    max: self.max_message_size,
                });
            }
            // A new header while a message is incomplete: the old one is abandoned.
            if let Some(old) = st.partial.take() {
                self.pending -= old.len();
            }
            if h.fmt <= 2 {
                st.extended = h.ext.then_some(h.ts_field);
            }
            st.timestamp = if h.fmt == 0 {
                h.ts_field
            } else {
                st.timestamp.wrapping_add(h.ts_field)
            };
            st.delta = h.ts_field;
            st.length = h.length;
            st.type_id = h.type_id;
            st.stream_id = h.stream_id;
            st.partial = Some(BytesMut::with_capacity(
                (h.length as usize)
                    .min(self.chunk_size as usize)
                    .min(65_536),
            ));
            if h.length == 0 {
                return Ok(self.complete(h.csid));
            }
        }
        let have = st.partial.as_ref().map_or(0, BytesMut::len);
        let left = (st.length as usize).saturating_sub(have);
        let n = left.min(self.chunk_size as usize);
        self.in_chunk = Some((h.csid, n));
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunk::ChunkWriter;

    fn reader() -> ChunkReader {
        ChunkReader::new(1 << 20, 4 << 20)
    }

    fn drain(r: &mut ChunkReader) -> Vec<RtmpMessage> {
        let mut v = Vec::new();
        while let Some(m) = r.next_message().expect("valid stream") {
            v.push(m);
        }
        v
    }

    #[test]
    fn fmt0_then_compressed_headers() {
        let mut r = reader();
        // fmt 0, csid 3, ts 1000, len 2, type 20, stream 1 (little endian)
        r.push(&[0x03, 0, 0x03, 0xe8, 0, 0, 2, 20, 1, 0, 0, 0, b'a', b'b']);
        // fmt 1: delta 10, len 1, type 8
        r.push(&[0x43, 0, 0, 10, 0, 0, 1, 8, b'c']);
        // fmt 2: delta 5
        r.push(&[0x83, 0, 0, 5, b'd']);
        // fmt 3: same delta, new message
        r.push(&[0xc3, b'e']);
        let m = drain(&mut r);
        let ts: Vec<u32> = m.iter().map(|m| m.timestamp).collect();
        assert_eq!(ts, [1000, 1010, 1015, 1020]);
        assert_eq!(m[1].type_id, 8);
        assert!(m.iter().all(|m| m.stream_id == 1 && m.csid == 3));
        assert_eq!(&m[3].payload[..], b"e");
    }

    #[test]
    fn two_and_three_byte_basic_headers() {
        let mut w = ChunkWriter::new();
        let mut out = BytesMut::new();
        for csid in [2, 63, 64, 319, 320, 65_599] {
            w.write(&mut out, csid, 5, 9, 1, b"xyz").expect("fits");
        }
        let mut r = reader();
        r.push(&out);
        let ids: Vec<u32> = drain(&mut r).iter().map(|m| m.csid).collect();
        assert_eq!(ids, [2, 63, 64, 319, 320, 65_599]);
    }

    #[test]
    fn first_chunk_must_be_fmt0() {
        let mut r = reader();
        r.push(&[0x44, 0, 0, 1, 0, 0, 1, 8, 0]);
        assert_eq!(
            r.next_message(),
            Err(RtmpError::NoPreviousHeader { csid: 4, fmt: 1 })
        );
    }

    #[test]
    fn extended_timestamp_repeated_on_continuations_or_not() {
        // Message of 3 bytes with chunk size 1, ts 0x01000000 (extended).
        let ext = [1, 0, 0, 0];
        let mut with = vec![0x04, 0xff, 0xff, 0xff, 0, 0, 3, 9, 1, 0, 0, 0];
        with.extend_from_slice(&ext);
        with.push(b'a');
        for b in [b'b', b'c'] {
            with.push(0xc4);
            with.extend_from_slice(&ext);
            with.push(b);
        }
        let mut without = vec![0x04, 0xff, 0xff, 0xff, 0, 0, 3, 9, 1, 0, 0, 0];
        without.extend_from_slice(&ext);
        without.extend_from_slice(&[b'a', 0xc4, b'b', 0xc4, b'c']);
        for data in [with, without] {
            let mut r = reader();
            r.set_chunk_size(1).expect("valid");
            r.push(&data);
            // "without" needs 4 bytes after the last 0xc4 before it can decide.
            r.push(&[0x04, 0, 0, 0, 0, 0, 0, 9, 1, 0, 0, 0]);
            let m = drain(&mut r);
            assert_eq!(m[0].timestamp, 0x0100_0000);
            assert_eq!(&m[0].payload[..], b"abc");
        }
    }

    #[test]
    fn interleaved_messages_and_abort() {
        let mut r = reader();
        r.set_chunk_size(2).expect("valid");
        // csid 4: 4-byte audio, csid 6: 3-byte video, interleaved.
        r.push(&[0x04, 0, 0, 1, 0, 0, 4, 8, 1, 0, 0, 0, b'a', b'b']);
        r.push(&[0x06, 0, 0, 2, 0, 0, 3, 9, 1, 0, 0, 0, b'v', b'w']);
        r.push(&[0xc4, b'c', b'd']);
        assert_eq!(drain(&mut r).len(), 1);
        assert_eq!(r.pending_bytes(), 2);
        r.abort(6);
        assert_eq!(r.pending_bytes(), 0);
        // A new message on csid 6 after the abort.
        r.push(&[0x06, 0, 0, 3, 0, 0, 1, 9, 1, 0, 0, 0, b'z']);
        let m = drain(&mut r);
        assert_eq!(&m[0].payload[..], b"z");
    }

    #[test]
    fn limits() {
        let mut r = ChunkReader::new(100, 150);
        r.push(&[0x04, 0, 0, 0, 0, 0, 101, 8, 1, 0, 0, 0]);
        assert_eq!(
            r.next_message(),
            Err(RtmpError::MessageTooLarge { len: 101, max: 100 })
        );
        let mut r = ChunkReader::new(100, 150);
        r.set_chunk_size(50).expect("valid");
        for csid in 4..8u8 {
            r.push(&[csid, 0, 0, 0, 0, 0, 100, 8, 1, 0, 0, 0]);
            r.push(&[0u8; 50]);
        }
        assert_eq!(
            drain_err(&mut r),
            RtmpError::PendingBytesExceeded { max: 150 }
        );
        let mut r = reader();
        assert_eq!(r.set_chunk_size(0), Err(RtmpError::InvalidChunkSize(0)));
        assert_eq!(
            r.set_chunk_size(0x8000_0000),
            Err(RtmpError::InvalidChunkSize(0x8000_0000))
        );
        assert!(r.set_chunk_size(0x7fff_ffff).is_ok());
        let mut r = reader();
        for csid in 0..=MAX_CHUNK_STREAMS as u32 {
            r.push(&[0, csid as u8, 0, 0, 0, 0, 0, 0, 8, 1, 0, 0, 0]);
        }
        assert_eq!(
            drain_err(&mut r),
            RtmpError::TooManyChunkStreams(MAX_CHUNK_STREAMS)
        );
    }

    fn drain_err(r: &mut ChunkReader) -> RtmpError {
        loop {
            match r.next_message() {
                Ok(Some(_)) => {}
                Ok(None) => panic!("expected an error"),
                Err(e) => return e,
            }
        }
    }
}
