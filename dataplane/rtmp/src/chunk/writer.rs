//! The chunker: messages in, chunk stream bytes out, with header compression.

use std::collections::HashMap;

use bytes::{BufMut, BytesMut};

use super::{DEFAULT_CHUNK_SIZE, EXTENDED_TIMESTAMP, MAX_MESSAGE_LENGTH};
use crate::RtmpError;

#[derive(Debug, Clone, Copy)]
struct OutStream {
    timestamp: u32,
    /// The timestamp field last written (absolute after fmt 0, else a delta).
    delta: u32,
    length: u32,
    type_id: u8,
    stream_id: u32,
    last_fmt0: bool,
}

/// Splits messages into chunks of the outgoing chunk size.
///
/// Header choice per chunk stream: fmt 0 for the first message, a new message stream id
/// or a timestamp going backwards; fmt 1 when length or type change; fmt 2 when only
/// the delta changes; fmt 3 when everything repeats (never right after a fmt 0, whose
/// "delta" readers interpret differently). Timestamps or deltas of 0xFFFFFF and more
/// use the extended field, repeated on every continuation chunk.
#[derive(Debug)]
pub struct ChunkWriter {
    chunk_size: u32,
    streams: HashMap<u32, OutStream>,
}

impl Default for ChunkWriter {
    fn default() -> Self {
        Self::new()
    }
}

fn put_u24(out: &mut BytesMut, v: u32) {
    out.put_slice(&v.to_be_bytes()[1..]);
}

fn put_basic_header(out: &mut BytesMut, fmt: u8, csid: u32) {
    match csid {
        0..=63 => out.put_u8(fmt << 6 | csid as u8),
        64..=319 => {
            out.put_u8(fmt << 6);
            out.put_u8((csid - 64) as u8);
        }
        _ => {
            let id = csid.saturating_sub(64).min(0xFFFF);
            out.put_u8(fmt << 6 | 1);
            out.put_u8((id & 0xff) as u8);
            out.put_u8((id >> 8) as u8);
        }
    }
}

impl ChunkWriter {
    /// A writer with the default chunk size (128).
    pub fn new() -> Self {
        Self {
            chunk_size: DEFAULT_CHUNK_SIZE,
            streams: HashMap::new(),
        }
    }

    /// Changes the outgoing chunk size (after sending Set Chunk Size to the peer).
    /// Sizes are clamped to 1..=0x7FFF_FFFF.
    pub fn set_chunk_size(&mut self, size: u32) {
        self.chunk_size = size.clamp(1, super::MAX_CHUNK_SIZE);
    }

    /// The outgoing chunk size.
    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// Appends the chunks of one message to `out`. `csid` must be in 2..=65599.
    pub fn write(
        &mut self,
        out: &mut BytesMut,
        csid: u32,
        timestamp: u32,
        type_id: u8,
        stream_id: u32,
        payload: &[u8],
    ) -> Result<(), RtmpError> {
        if payload.len() > MAX_MESSAGE_LENGTH {
            return Err(RtmpError::MessageTooLarge {
                len: payload.len(),
                max: MAX_MESSAGE_LENGTH,
            });
        }
        let length = payload.len() as u32;
        let prev = self.streams.get(&csid).copied();
        let (fmt, ts_field) = match prev {
            Some(p)
                if p.stream_id == stream_id
                    && timestamp.wrapping_sub(p.timestamp) < 0x8000_0000 =>
            {
                let delta = timestamp.wrapping_sub(p.timestamp);
                if p.length != length || p.type_id != type_id {
                    (1, delta)
                } else if p.delta != delta || p.last_fmt0 {
                    (2, delta)
                } else {
                    (3, delta)
                }
            }
            _ => (0, timestamp),
        };
        let ext = ts_field >= EXTENDED_TIMESTAMP;
        let field = ts_field.min(EXTENDED_TIMESTAMP);
        let chunk = self.chunk_size as usize;
        out.reserve(payload.len() + 18 + (payload.len() / chunk) * 8);
        put_basic_header(out, fmt, csid);
        if fmt <= 2 {
            put_u24(out, field);
        }
        if fmt <= 1 {
            put_u24(out, length);
            out.put_u8(type_id);
        }
        if fmt == 0 {
            out.put_u32_le(stream_id);
        }
        if ext {
            out.put_u32(ts_field);
        }
        let mut chunks = payload.chunks(chunk);
        if let Some(first) = chunks.next() {
            out.put_slice(first);
        }
        for c in chunks {
            put_basic_header(out, 3, csid);
            if ext {
                out.put_u32(ts_field);
            }
            out.put_slice(c);
        }
        self.streams.insert(
            csid,
            OutStream {
                timestamp,
                delta: ts_field,
                length,
                type_id,
                stream_id,
                last_fmt0: fmt == 0,
            },
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunk::{ChunkReader, RtmpMessage};
    use bytes::Bytes;

    fn roundtrip(chunk_size: u32, msgs: &[(u32, u32, u8, Vec<u8>)]) {
        let mut w = ChunkWriter::new();
        w.set_chunk_size(chunk_size);
        let mut out = BytesMut::new();
        for (csid, ts, ty, p) in msgs {
            w.write(&mut out, *csid, *ts, *ty, 1, p).expect("fits");
        }
        let mut r = ChunkReader::new(1 << 24, 1 << 26);
        r.set_chunk_size(chunk_size).expect("valid");
        r.push(&out);
        let mut got = Vec::new();
        while let Some(m) = r.next_message().expect("valid") {
            got.push(m);
        }
        let want: Vec<RtmpMessage> = msgs
            .iter()
            .map(|(csid, ts, ty, p)| RtmpMessage {
                csid: *csid,
                timestamp: *ts,
                type_id: *ty,
                stream_id: 1,
                payload: Bytes::from(p.clone()),
            })
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn header_compression_roundtrips() {
        let msgs: Vec<_> = (0..10u32)
            .map(|i| (4, i * 23, 8, vec![i as u8; 5]))
            .chain([(4, 300, 9, vec![1; 300]), (4, 250, 9, vec![2; 300])])
            .collect();
        for cs in [1, 2, 128, 4096] {
            roundtrip(cs, &msgs);
        }
    }

    #[test]
    fn extended_timestamps_and_wrap() {
        let msgs = vec![
            (6, 0xFF_FFF0, 9, vec![1; 10]),
            (6, 0xFF_FFFF, 9, vec![2; 10]),
            (6, 0x0100_0010, 9, vec![3; 10]),
            (6, 0xFFFF_FFF0, 9, vec![4; 10]),
            (6, 0x10, 9, vec![5; 10]),
            (6, 0x20, 9, vec![6; 10]),
        ];
        roundtrip(3, &msgs);
        roundtrip(128, &msgs);
    }

    #[test]
    fn fmt3_repeats_delta() {
        let mut w = ChunkWriter::new();
        let mut out = BytesMut::new();
        w.write(&mut out, 4, 0, 8, 1, b"a").expect("fits");
        w.write(&mut out, 4, 20, 8, 1, b"b").expect("fits");
        let before = out.len();
        w.write(&mut out, 4, 40, 8, 1, b"c").expect("fits");
        assert_eq!(&out[before..], &[0xc4, b'c']);
        assert!(w.write(&mut out, 4, 0, 8, 1, &vec![0; 1 << 24]).is_err());
    }
}
