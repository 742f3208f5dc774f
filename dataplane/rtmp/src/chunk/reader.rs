//! The dechunker: chunk stream bytes in, whole messages out.
//!
//! Sans-IO and copy-once. [`ChunkReader::next_message_from`] parses chunk headers in
//! place from the caller's input and copies each payload byte exactly once, from the
//! input into its message's buffer. That buffer is allocated once, with the announced
//! message length as capacity, so it never grows and the frozen payload is exactly the
//! message. The only input the reader keeps back is a chunk header cut off by the end of
//! an input (at most 18 bytes), stashed until the next input completes it. (The
//! buffered [`ChunkReader::push`] / [`ChunkReader::next_message`] pair, for tools and
//! tests, queues whole inputs in that stash instead.)
//!
//! Messages come out one at a time, in order, so the caller can apply a Set Chunk Size
//! ([`ChunkReader::set_chunk_size`]) before the next chunk header is parsed.
//!
//! Memory is bounded by `max_message_size` per message (and the smaller
//! `max_command_size` for commands, data and control messages, checked on the declared
//! length in the chunk header, before anything is allocated), `max_pending_bytes` over
//! all partial messages and [`MAX_CHUNK_STREAMS`] chunk stream states. The limits can be
//! changed while the connection runs ([`ChunkReader::set_limits`]): a session keeps them
//! small until a publish is accepted. A message is charged
//! its full announced length when its first header arrives (that is when its buffer is
//! allocated), so messages announced but never sent count against the limit too.

use bytes::{Buf, Bytes, BytesMut};

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
    /// Length of the current (or last) message; what `partial` is charged in `pending`.
    length: u32,
    type_id: u8,
    stream_id: u32,
    /// The last fmt 0/1/2 header carried an extended timestamp (with this value).
    extended: Option<u32>,
    /// The message being assembled, allocated with capacity `length`.
    partial: Option<BytesMut>,
}

/// Chunk stream states by id. Peers use a handful of ids (at most
/// [`MAX_CHUNK_STREAMS`]), so a linear scan beats hashing on every chunk.
#[derive(Debug, Default)]
struct ChunkStreams(Vec<(u32, ChunkStream)>);

impl ChunkStreams {
    fn get(&self, csid: &u32) -> Option<&ChunkStream> {
        self.0.iter().find(|(id, _)| id == csid).map(|(_, s)| s)
    }

    fn get_mut(&mut self, csid: &u32) -> Option<&mut ChunkStream> {
        self.0.iter_mut().find(|(id, _)| id == csid).map(|(_, s)| s)
    }

    fn get_or_default(&mut self, csid: u32) -> &mut ChunkStream {
        let i = match self.0.iter().position(|(id, _)| *id == csid) {
            Some(i) => i,
            None => {
                self.0.push((csid, ChunkStream::default()));
                self.0.len() - 1
            }
        };
        &mut self.0[i].1
    }

    fn len(&self) -> usize {
        self.0.len()
    }
}

/// Reassembles RTMP messages from a chunk stream.
#[derive(Debug)]
pub struct ChunkReader {
    /// Input already handed over but not parsed yet, read before the next input: an
    /// incomplete chunk header, up to 4 bytes after a type-3 extended timestamp
    /// lookahead, or whatever [`ChunkReader::push`] queued.
    stash: BytesMut,
    chunk_size: u32,
    max_message_size: usize,
    max_command_size: usize,
    max_pending_bytes: usize,
    /// Sum of the announced lengths of the partially assembled messages.
    pending: usize,
    streams: ChunkStreams,
    /// The chunk whose payload is being read: (csid, payload bytes left in this chunk).
    in_chunk: Option<(u32, usize)>,
}

/// A parsed chunk header, before it is applied to the chunk stream state.
struct Header {
    fmt: u8,
    csid: u32,
    /// Header bytes to consume.
    len: usize,
    ts_field: u32,
    /// The header carried an extended timestamp field.
    ext: bool,
    length: u32,
    type_id: u8,
    stream_id: u32,
}

/// What [`ChunkReader::parse_header`] made of the bytes at hand.
enum Parsed {
    Header(Header),
    /// At least this many bytes are needed to go on (always more than were given).
    Need(usize),
}

/// Whether messages of `type_id` are commands, data or protocol control (AMF0/AMF3
/// commands and data, shared objects, types 1–6): the ones [`ChunkReader`] bounds by
/// `max_command_size`.
pub fn is_command_type(type_id: u8) -> bool {
    use crate::message::{COMMAND_AMF0, COMMAND_AMF3, DATA_AMF0, DATA_AMF3};
    matches!(type_id, 1..=6 | 16 | 19)
        || [COMMAND_AMF0, COMMAND_AMF3, DATA_AMF0, DATA_AMF3].contains(&type_id)
}

fn u24(b: &[u8]) -> u32 {
    u32::from_be_bytes([0, b[0], b[1], b[2]])
}

fn u32_be(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

impl ChunkReader {
    /// A reader with the default incoming chunk size (128), bounding every message by
    /// `max_message_size` (commands included: see [`ChunkReader::set_limits`]).
    pub fn new(max_message_size: usize, max_pending_bytes: usize) -> Self {
        Self {
            stash: BytesMut::new(),
            chunk_size: DEFAULT_CHUNK_SIZE,
            max_message_size,
            max_command_size: max_message_size,
            max_pending_bytes,
            pending: 0,
            streams: ChunkStreams::default(),
            in_chunk: None,
        }
    }

    /// Applies a peer's Set Chunk Size (1..=0x7FFF_FFFF). It takes effect from the next
    /// chunk header on.
    pub fn set_chunk_size(&mut self, size: u32) -> Result<(), RtmpError> {
        if size == 0 || size > MAX_CHUNK_SIZE {
            return Err(RtmpError::InvalidChunkSize(size));
        }
        self.chunk_size = size;
        Ok(())
    }

    /// Changes the limits from the next message on: any message is at most
    /// `max_message_size` bytes, a command, data or control message (see
    /// [`is_command_type`]) at most `max_command_size`, and partial messages hold at most
    /// `max_pending_bytes` together. Messages already being assembled keep their buffers.
    pub fn set_limits(
        &mut self,
        max_message_size: usize,
        max_command_size: usize,
        max_pending_bytes: usize,
    ) {
        self.max_message_size = max_message_size;
        self.max_command_size = max_command_size;
        self.max_pending_bytes = max_pending_bytes;
    }

    /// The current incoming chunk size.
    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// Discards the partial message on `csid` (an Abort message).
    pub fn abort(&mut self, csid: u32) {
        if let Some(st) = self.streams.get_mut(&csid)
            && st.partial.take().is_some()
        {
            self.pending -= st.length as usize;
        }
    }

    /// Bytes reserved by partially assembled messages: their full announced lengths,
    /// whether or not the bytes have arrived yet.
    pub fn pending_bytes(&self) -> usize {
        self.pending
    }

    /// Bytes this reader holds: the buffers of the partially assembled messages (each
    /// allocated with its announced length, [`ChunkReader::pending_bytes`]) and the
    /// stash of input kept for the next call (a cut-off chunk header).
    pub fn buffered_bytes(&self) -> usize {
        self.pending + self.stash.capacity()
    }

    /// Queues a copy of `data` for [`ChunkReader::next_message`], for tools and tests
    /// that own no buffer. Connections should use [`ChunkReader::next_message_from`],
    /// which reads the caller's input without this extra copy.
    pub fn push(&mut self, data: &[u8]) {
        self.stash.extend_from_slice(data);
    }

    /// The next complete message from the bytes queued by [`ChunkReader::push`],
    /// `Ok(None)` when more input is needed.
    pub fn next_message(&mut self) -> Result<Option<RtmpMessage>, RtmpError> {
        self.next_message_from(&mut &[][..])
    }

    /// The next complete message, reading from the front of `input` and advancing it
    /// past what was consumed. `Ok(None)` means more input is needed, and then `input`
    /// is empty: everything was consumed, an incomplete chunk header at its end being
    /// kept inside the reader until the next call. Call in a loop until `Ok(None)`,
    /// handling each message (e.g. applying a Set Chunk Size) before the next call.
    /// Bytes queued by [`ChunkReader::push`] are read before `input`. Errors are fatal:
    /// the reader must not be used afterwards.
    pub fn next_message_from(
        &mut self,
        input: &mut &[u8],
    ) -> Result<Option<RtmpMessage>, RtmpError> {
        loop {
            if let Some((csid, left)) = self.in_chunk {
                // Stashed bytes come before the input.
                let from_stash = !self.stash.is_empty();
                let src: &[u8] = if from_stash { &self.stash } else { input };
                let n = left.min(src.len());
                if n == 0 && left != 0 {
                    return Ok(None);
                }
                // No buffer when the message was aborted mid-chunk: the bytes are dropped.
                let st = self.streams.get_mut(&csid);
                let partial = st.and_then(|s| s.partial.as_mut());
                if let Some(p) = partial {
                    // Never grows: capacity is the message length, and chunks never
                    // carry more than what is left of the message.
                    p.extend_from_slice(&src[..n]);
                }
                if from_stash {
                    self.stash.advance(n);
                } else {
                    *input = &input[n..];
                }
                if left > n {
                    self.in_chunk = Some((csid, left - n));
                    continue;
                }
                self.in_chunk = None;
                if let Some(msg) = self.complete(csid) {
                    return Ok(Some(msg));
                }
                continue;
            }
            let header = if self.stash.is_empty() {
                match self.parse_header(input)? {
                    Parsed::Header(h) => {
                        *input = &input[h.len..];
                        h
                    }
                    Parsed::Need(_) => {
                        // Shorter than a header (at most 18 bytes): keep it for later.
                        self.stash.extend_from_slice(input);
                        *input = &[];
                        return Ok(None);
                    }
                }
            } else {
                match self.parse_header(&self.stash)? {
                    Parsed::Header(h) => {
                        self.stash.advance(h.len);
                        h
                    }
                    Parsed::Need(need) => {
                        if input.is_empty() {
                            return Ok(None);
                        }
                        // Move over just what the header needs so far, then parse again.
                        let k = (need - self.stash.len()).min(input.len());
                        self.stash.extend_from_slice(&input[..k]);
                        *input = &input[k..];
                        continue;
                    }
                }
            };
            if let Some(msg) = self.apply_header(header)? {
                return Ok(Some(msg));
            }
        }
    }

    /// Hands out the message on `csid` if all of it has arrived.
    fn complete(&mut self, csid: u32) -> Option<RtmpMessage> {
        let st = self.streams.get_mut(&csid)?;
        if st.partial.as_ref()?.len() < st.length as usize {
            return None;
        }
        let payload = st.partial.take()?.freeze();
        self.pending -= st.length as usize;
        Some(message(csid, st, payload))
    }

    /// Parses (without consuming) the chunk header at the front of `b`.
    fn parse_header(&self, b: &[u8]) -> Result<Parsed, RtmpError> {
        let Some(&b0) = b.first() else {
            return Ok(Parsed::Need(1));
        };
        let fmt = b0 >> 6;
        let (csid, mut pos) = match b0 & 0x3f {
            0 => match b.get(1) {
                Some(&x) => (64 + u32::from(x), 2),
                None => return Ok(Parsed::Need(2)),
            },
            1 => match (b.get(1), b.get(2)) {
                (Some(&x), Some(&y)) => (64 + u32::from(x) + 256 * u32::from(y), 3),
                _ => return Ok(Parsed::Need(3)),
            },
            n => (u32::from(n), 1),
        };
        let mh = [11, 7, 3, 0][usize::from(fmt)];
        let Some(f) = b.get(pos..pos + mh) else {
            return Ok(Parsed::Need(pos + mh));
        };
        let prev = self.streams.get(&csid);
        if fmt != 0 && prev.is_none() {
            return Err(RtmpError::NoPreviousHeader { csid, fmt });
        }
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
            let Some(e) = b.get(pos..pos + 4) else {
                return Ok(Parsed::Need(pos + 4));
            };
            ts_field = u32_be(e);
            pos += 4;
        } else if fmt == 3
            && let Some(ext_value) = prev.and_then(|p| p.extended)
        {
            // The spec repeats the extended timestamp on type-3 chunks; a few
            // encoders do not. Skip the 4 bytes only when they repeat the value.
            let Some(e) = b.get(pos..pos + 4) else {
                return Ok(Parsed::Need(pos + 4));
            };
            if u32_be(e) == ext_value {
                pos += 4;
            }
        }
        Ok(Parsed::Header(Header {
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

    /// Applies a consumed header to its chunk stream: starts the chunk's payload, and
    /// for a new message reserves its buffer. Returns a message when it is empty.
    fn apply_header(&mut self, h: Header) -> Result<Option<RtmpMessage>, RtmpError> {
        if self.streams.get(&h.csid).is_none() && self.streams.len() >= MAX_CHUNK_STREAMS {
            return Err(RtmpError::TooManyChunkStreams(MAX_CHUNK_STREAMS));
        }
        let st = self.streams.get_or_default(h.csid);
        let continuation = h.fmt == 3 && st.partial.is_some();
        if !continuation {
            let len = h.length as usize;
            if is_command_type(h.type_id) && len > self.max_command_size {
                return Err(RtmpError::CommandTooLarge {
                    type_id: h.type_id,
                    len,
                    max: self.max_command_size,
                });
            }
            if len > self.max_message_size {
                return Err(RtmpError::MessageTooLarge {
                    len,
                    max: self.max_message_size,
                });
            }
            // A new header while a message is incomplete: the old one is abandoned.
            if st.partial.take().is_some() {
                self.pending -= st.length as usize;
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
            if len == 0 {
                return Ok(Some(message(h.csid, st, Bytes::new())));
            }
            // Charge the whole message before allocating it (the limit may have been
            // lowered below what is pending: saturate).
            if len > self.max_pending_bytes.saturating_sub(self.pending) {
                return Err(RtmpError::PendingBytesExceeded {
                    max: self.max_pending_bytes,
                });
            }
            self.pending += len;
            st.partial = Some(BytesMut::with_capacity(len));
        }
        let have = st.partial.as_ref().map_or(0, BytesMut::len);
        let left = (st.length as usize).saturating_sub(have);
        self.in_chunk = Some((h.csid, left.min(self.chunk_size as usize)));
        Ok(None)
    }
}

fn message(csid: u32, st: &ChunkStream, payload: Bytes) -> RtmpMessage {
    RtmpMessage {
        csid,
        timestamp: st.timestamp,
        type_id: st.type_id,
        stream_id: st.stream_id,
        payload,
    }
}

#[cfg(test)]
mod tests;
