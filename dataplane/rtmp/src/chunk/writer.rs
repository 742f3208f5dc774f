//! The chunker: messages in, chunk stream bytes out, with header compression.

use std::collections::HashMap;

use bytes::{BufMut, Bytes, BytesMut};

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
        let head = self.plan(csid, timestamp, type_id, stream_id, payload.len())?;
        let chunk = self.chunk_size as usize;
        out.reserve(payload.len() + 18 + (payload.len() / chunk) * 8);
        head.put(out);
        let mut chunks = payload.chunks(chunk);
        if let Some(first) = chunks.next() {
            out.put_slice(first);
        }
        for c in chunks {
            put_basic_header(out, 3, csid);
            if head.ext {
                out.put_u32(head.ts_field);
            }
            out.put_slice(c);
        }
        self.record(&head, timestamp);
        Ok(())
    }

    /// Writes only the first chunk header of a message whose chunks after it are
    /// `body`, made once by [`chunk_body`] with this writer's chunk size for the same
    /// `csid` and shared between connections (relay fan-out). Returns false, writing
    /// nothing and changing nothing, when this connection needs an extended timestamp
    /// for the message (its continuation headers then differ): use [`Self::write`].
    pub fn write_header(
        &mut self,
        out: &mut BytesMut,
        csid: u32,
        timestamp: u32,
        type_id: u8,
        stream_id: u32,
        length: usize,
    ) -> Result<bool, RtmpError> {
        let head = self.plan(csid, timestamp, type_id, stream_id, length)?;
        if head.ext {
            return Ok(false);
        }
        head.put(out);
        self.record(&head, timestamp);
        Ok(true)
    }

    /// Chooses the first chunk's header (see the type's documentation).
    fn plan(
        &self,
        csid: u32,
        timestamp: u32,
        type_id: u8,
        stream_id: u32,
        length: usize,
    ) -> Result<Head, RtmpError> {
        if length > MAX_MESSAGE_LENGTH {
            return Err(RtmpError::MessageTooLarge {
                len: length,
                max: MAX_MESSAGE_LENGTH,
            });
        }
        let length = length as u32;
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
        Ok(Head {
            fmt,
            csid,
            ts_field,
            ext: ts_field >= EXTENDED_TIMESTAMP,
            length,
            type_id,
            stream_id,
        })
    }

    fn record(&mut self, head: &Head, timestamp: u32) {
        self.streams.insert(
            head.csid,
            OutStream {
                timestamp,
                delta: head.ts_field,
                length: head.length,
                type_id: head.type_id,
                stream_id: head.stream_id,
                last_fmt0: head.fmt == 0,
            },
        );
    }
}

/// The first chunk header of a message, as [`ChunkWriter::plan`] chose it.
struct Head {
    fmt: u8,
    csid: u32,
    ts_field: u32,
    ext: bool,
    length: u32,
    type_id: u8,
    stream_id: u32,
}

impl Head {
    fn put(&self, out: &mut BytesMut) {
        put_basic_header(out, self.fmt, self.csid);
        if self.fmt <= 2 {
            put_u24(out, self.ts_field.min(EXTENDED_TIMESTAMP));
        }
        if self.fmt <= 1 {
            put_u24(out, self.length);
            out.put_u8(self.type_id);
        }
        if self.fmt == 0 {
            out.put_u32_le(self.stream_id);
        }
        if self.ext {
            out.put_u32(self.ts_field);
        }
    }
}

/// The chunk stream bytes of `payload` after its first chunk header, for chunk size
/// `chunk_size` on chunk stream `csid` without extended timestamps: the first chunk,
/// then every further chunk behind its one-byte-or-more fmt 3 header. The same for
/// every connection with that chunk size, so a relay makes it once per message and
/// sends it behind each connection's own header ([`ChunkWriter::write_header`]).
pub fn chunk_body(chunk_size: u32, csid: u32, payload: &[u8]) -> Bytes {
    let chunk = chunk_size.clamp(1, super::MAX_CHUNK_SIZE) as usize;
    let mut out = BytesMut::with_capacity(payload.len() + (payload.len() / chunk) * 3);
    let mut chunks = payload.chunks(chunk);
    if let Some(first) = chunks.next() {
        out.put_slice(first);
    }
    for c in chunks {
        put_basic_header(&mut out, 3, csid);
        out.put_slice(c);
    }
    out.freeze()
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

    /// A header plus a shared body is byte for byte what `write` makes, for every
    /// header format; an extended timestamp falls back to `write`.
    #[test]
    fn shared_bodies_match_write() {
        let payloads: Vec<Vec<u8>> = [1usize, 100, 128, 129, 300, 5000]
            .iter()
            .map(|&n| (0..n).map(|i| i as u8).collect())
            .collect();
        for cs in [1, 128, 4096] {
            for csid in [6, 70, 400] {
                let (mut a, mut b) = (ChunkWriter::new(), ChunkWriter::new());
                a.set_chunk_size(cs);
                b.set_chunk_size(cs);
                let (mut oa, mut ob) = (BytesMut::new(), BytesMut::new());
                for (i, p) in payloads.iter().chain(payloads.iter()).enumerate() {
                    let ts = [0, 33, 66, 99, 99, 132, 120, 150, 183, 216, 249, 282][i];
                    a.write(&mut oa, csid, ts, 9, 1, p).expect("fits");
                    assert!(
                        b.write_header(&mut ob, csid, ts, 9, 1, p.len())
                            .expect("fits")
                    );
                    ob.put_slice(&chunk_body(cs, csid, p));
                }
                assert_eq!(oa, ob, "chunk size {cs}, csid {csid}");
                let len = ob.len();
                assert!(
                    !b.write_header(&mut ob, csid, 0x0100_0000, 9, 2, 10)
                        .expect("fits")
                );
                assert_eq!(ob.len(), len, "nothing written");
            }
        }
    }
}
