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
//! Memory is bounded by `max_message_size` per message, `max_pending_bytes` over all
//! partial messages and [`MAX_CHUNK_STREAMS`] chunk stream states. A message is charged
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

fn u24(b: &[u8]) -> u32 {
    u32::from_be_bytes([0, b[0], b[1], b[2]])
}

fn u32_be(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

impl ChunkReader {
    /// A reader with the default incoming chunk size (128).
    pub fn new(max_message_size: usize, max_pending_bytes: usize) -> Self {
        Self {
            stash: BytesMut::new(),
            chunk_size: DEFAULT_CHUNK_SIZE,
            max_message_size,
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
            // Charge the whole message before allocating it. `pending` never exceeds
            // the limit, so the subtraction cannot underflow.
            if len > self.max_pending_bytes - self.pending {
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
mod tests {
    use super::*;
    use crate::chunk::ChunkWriter;
    use crate::fuzzing::pseudo_random_bytes;
    use crate::message::ControlMessage;

    fn reader() -> ChunkReader {
        ChunkReader::new(1 << 20, 4 << 20)
    }

    /// Feeds one input, handing out messages like a session does: a Set Chunk Size is
    /// applied before the next message is read.
    fn feed(r: &mut ChunkReader, mut input: &[u8]) -> Result<Vec<RtmpMessage>, RtmpError> {
        let mut v = Vec::new();
        while let Some(m) = r.next_message_from(&mut input)? {
            if let Ok(Some(ControlMessage::SetChunkSize(n))) =
                ControlMessage::decode(m.type_id, &m.payload)
            {
                r.set_chunk_size(n)?;
            }
            v.push(m);
        }
        assert!(input.is_empty(), "Ok(None) leaves no input behind");
        Ok(v)
    }

    fn feed_ok(r: &mut ChunkReader, input: &[u8]) -> Vec<RtmpMessage> {
        feed(r, input).expect("valid stream")
    }

    fn msg(csid: u32, timestamp: u32, type_id: u8, stream_id: u32, p: &[u8]) -> RtmpMessage {
        RtmpMessage {
            csid,
            timestamp,
            type_id,
            stream_id,
            payload: Bytes::copy_from_slice(p),
        }
    }

    #[test]
    fn fmt0_then_compressed_headers() {
        let mut r = reader();
        // fmt 0, csid 3, ts 1000, len 2, type 20, stream 1 (little endian)
        let mut m = feed_ok(
            &mut r,
            &[0x03, 0, 0x03, 0xe8, 0, 0, 2, 20, 1, 0, 0, 0, b'a', b'b'],
        );
        // fmt 1: delta 10, len 1, type 8
        m.extend(feed_ok(&mut r, &[0x43, 0, 0, 10, 0, 0, 1, 8, b'c']));
        // fmt 2: delta 5
        m.extend(feed_ok(&mut r, &[0x83, 0, 0, 5, b'd']));
        // fmt 3: same delta, new message
        m.extend(feed_ok(&mut r, &[0xc3, b'e']));
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
        let ids: Vec<u32> = feed_ok(&mut r, &out).iter().map(|m| m.csid).collect();
        assert_eq!(ids, [2, 63, 64, 319, 320, 65_599]);
    }

    #[test]
    fn first_chunk_must_be_fmt0() {
        let mut r = reader();
        assert_eq!(
            feed(&mut r, &[0x44, 0, 0, 1, 0, 0, 1, 8, 0]),
            Err(RtmpError::NoPreviousHeader { csid: 4, fmt: 1 })
        );
    }

    /// A 3-byte message on csid 4 with chunk size 1 and the extended timestamp
    /// 0x01000000, its continuation chunks repeating the extended field or not.
    fn extended_streams() -> [Vec<u8>; 2] {
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
        [with, without]
    }

    /// An empty fmt 0 message on csid 4 after [`extended_streams`].
    const EMPTY_FMT0: [u8; 12] = [0x04, 0, 0, 0, 0, 0, 0, 9, 1, 0, 0, 0];

    #[test]
    fn extended_timestamp_repeated_on_continuations_or_not() {
        for data in extended_streams() {
            let mut r = reader();
            r.set_chunk_size(1).expect("valid");
            let mut m = feed_ok(&mut r, &data);
            // "without" needs 4 bytes after the last 0xc4 before it can decide.
            m.extend(feed_ok(&mut r, &EMPTY_FMT0));
            assert_eq!(m[0].timestamp, 0x0100_0000);
            assert_eq!(&m[0].payload[..], b"abc");
            assert_eq!(m.len(), 2);
        }
    }

    #[test]
    fn extended_timestamp_lookahead_split_across_inputs() {
        for data in extended_streams() {
            let mut all = data.clone();
            all.extend_from_slice(&EMPTY_FMT0);
            for i in 0..=all.len() {
                for j in i..=all.len() {
                    let mut r = reader();
                    r.set_chunk_size(1).expect("valid");
                    let mut m = feed_ok(&mut r, &all[..i]);
                    m.extend(feed_ok(&mut r, &all[i..j]));
                    m.extend(feed_ok(&mut r, &all[j..]));
                    assert_eq!(m.len(), 2, "split at {i}, {j}");
                    assert_eq!(m[0].timestamp, 0x0100_0000);
                    assert_eq!(&m[0].payload[..], b"abc", "split at {i}, {j}");
                    assert_eq!(m[1].timestamp, 0);
                    assert!(m[1].payload.is_empty());
                    assert!(r.stash.is_empty());
                    assert_eq!(r.pending_bytes(), 0);
                }
            }
        }
    }

    #[test]
    fn interleaved_messages_and_abort() {
        let mut r = reader();
        r.set_chunk_size(2).expect("valid");
        // csid 4: 4-byte audio, csid 6: 3-byte video, interleaved.
        let mut m = feed_ok(&mut r, &[0x04, 0, 0, 1, 0, 0, 4, 8, 1, 0, 0, 0, b'a', b'b']);
        m.extend(feed_ok(
            &mut r,
            &[0x06, 0, 0, 2, 0, 0, 3, 9, 1, 0, 0, 0, b'v', b'w'],
        ));
        // Both messages are reserved in full as soon as their headers arrive.
        assert_eq!(r.pending_bytes(), 7);
        m.extend(feed_ok(&mut r, &[0xc4, b'c', b'd']));
        assert_eq!(m.len(), 1);
        assert_eq!(&m[0].payload[..], b"abcd");
        assert_eq!(r.pending_bytes(), 3);
        r.abort(6);
        assert_eq!(r.pending_bytes(), 0);
        r.abort(6);
        assert_eq!(r.pending_bytes(), 0);
        // A new message on csid 6 after the abort.
        let m = feed_ok(&mut r, &[0x06, 0, 0, 3, 0, 0, 1, 9, 1, 0, 0, 0, b'z']);
        assert_eq!(&m[0].payload[..], b"z");
        assert_eq!(r.pending_bytes(), 0);
    }

    #[test]
    fn abandoned_message_releases_its_reservation() {
        let mut r = reader();
        r.set_chunk_size(2).expect("valid");
        let m = feed_ok(
            &mut r,
            &[0x04, 0, 0, 1, 0, 0, 100, 8, 1, 0, 0, 0, b'a', b'b'],
        );
        assert!(m.is_empty());
        assert_eq!(r.pending_bytes(), 100);
        // A fmt 1 header on csid 4 abandons the 100-byte message for a 2-byte one.
        let m = feed_ok(&mut r, &[0x44, 0, 0, 1, 0, 0, 2, 8]);
        assert!(m.is_empty());
        assert_eq!(r.pending_bytes(), 2);
        let m = feed_ok(&mut r, b"xy");
        assert_eq!(m, [msg(4, 2, 8, 1, b"xy")]);
        assert_eq!(r.pending_bytes(), 0);
        // An empty message abandons one too, and is handed out at once.
        feed_ok(&mut r, &[0x44, 0, 0, 1, 0, 0, 9, 8, b'q', b'r']);
        assert_eq!(r.pending_bytes(), 9);
        let m = feed_ok(&mut r, &[0x44, 0, 0, 1, 0, 0, 0, 8]);
        assert_eq!(m, [msg(4, 4, 8, 1, b"")]);
        assert_eq!(r.pending_bytes(), 0);
    }

    #[test]
    fn abort_mid_chunk_drops_the_rest_of_the_chunk() {
        let mut r = reader();
        let m = feed_ok(&mut r, &[0x04, 0, 0, 1, 0, 0, 5, 8, 1, 0, 0, 0, b'a', b'b']);
        assert!(m.is_empty());
        r.abort(4);
        assert_eq!(r.pending_bytes(), 0);
        // The rest of the chunk is skipped, the next header parses normally.
        let m = feed_ok(
            &mut r,
            &[
                b'c', b'd', b'e', 0x04, 0, 0, 2, 0, 0, 1, 8, 1, 0, 0, 0, b'z',
            ],
        );
        assert_eq!(m, [msg(4, 2, 8, 1, b"z")]);
    }

    #[test]
    fn payload_is_allocated_once_with_exact_capacity() {
        let mut w = ChunkWriter::new();
        w.set_chunk_size(4096);
        let mut out = BytesMut::new();
        let body = pseudo_random_bytes(&mut 7, 100_000);
        w.write(&mut out, 6, 40, 9, 1, &body).expect("fits");
        let mut r = ChunkReader::new(1 << 20, 1 << 20);
        r.set_chunk_size(4096).expect("valid");
        // The full length is reserved when the header arrives.
        assert!(feed_ok(&mut r, &out[..20]).is_empty());
        assert_eq!(r.pending_bytes(), 100_000);
        let mut m = feed_ok(&mut r, &out[20..]);
        assert_eq!(r.pending_bytes(), 0);
        assert_eq!(m.len(), 1);
        let payload = m.pop().expect("one message").payload;
        assert_eq!(payload[..], body[..]);
        // Never grown: the buffer is exactly the message.
        let buf = payload.try_into_mut().expect("the only handle");
        assert_eq!(buf.capacity(), 100_000);
    }

    #[test]
    fn announced_but_unsent_messages_are_charged() {
        // The server's limits: 8 MiB per message, 16 MiB pending. With a chunk size of
        // 1, each announcement of an 8 MB message costs the peer 13 bytes.
        let mut r = ChunkReader::new(8 << 20, 16 << 20);
        r.set_chunk_size(1).expect("valid");
        let len = 8_000_000u32.to_be_bytes();
        let announce = |csid: u8| [csid, 0, 0, 0, len[1], len[2], len[3], 9, 1, 0, 0, 0, 0];
        assert!(feed_ok(&mut r, &announce(4)).is_empty());
        assert!(feed_ok(&mut r, &announce(5)).is_empty());
        assert_eq!(r.pending_bytes(), 16_000_000);
        assert_eq!(
            feed(&mut r, &announce(6)),
            Err(RtmpError::PendingBytesExceeded { max: 16 << 20 })
        );
        // Re-announcing on the same chunk stream replaces the reservation.
        let mut r = ChunkReader::new(8 << 20, 16 << 20);
        r.set_chunk_size(1).expect("valid");
        for _ in 0..10 {
            assert!(feed_ok(&mut r, &announce(4)).is_empty());
        }
        assert_eq!(r.pending_bytes(), 8_000_000);
        r.abort(4);
        assert_eq!(r.pending_bytes(), 0);
    }

    #[test]
    fn limits() {
        let mut r = ChunkReader::new(100, 150);
        assert_eq!(
            feed(&mut r, &[0x04, 0, 0, 0, 0, 0, 101, 8, 1, 0, 0, 0]),
            Err(RtmpError::MessageTooLarge { len: 101, max: 100 })
        );
        let mut r = ChunkReader::new(100, 150);
        r.set_chunk_size(50).expect("valid");
        let mut data = Vec::new();
        for csid in 4..8u8 {
            data.extend_from_slice(&[csid, 0, 0, 0, 0, 0, 100, 8, 1, 0, 0, 0]);
            data.extend_from_slice(&[0u8; 50]);
        }
        assert_eq!(
            feed(&mut r, &data),
            Err(RtmpError::PendingBytesExceeded { max: 150 })
        );
        let mut r = reader();
        assert_eq!(r.set_chunk_size(0), Err(RtmpError::InvalidChunkSize(0)));
        assert_eq!(
            r.set_chunk_size(0x8000_0000),
            Err(RtmpError::InvalidChunkSize(0x8000_0000))
        );
        assert!(r.set_chunk_size(0x7fff_ffff).is_ok());
        let mut r = reader();
        let mut data = Vec::new();
        for csid in 0..=MAX_CHUNK_STREAMS as u32 {
            data.extend_from_slice(&[0, csid as u8, 0, 0, 0, 0, 0, 0, 8, 1, 0, 0, 0]);
        }
        assert_eq!(
            feed(&mut r, &data),
            Err(RtmpError::TooManyChunkStreams(MAX_CHUNK_STREAMS))
        );
    }

    /// Chunk stream bytes and the messages they carry, built side by side.
    #[derive(Default)]
    struct Script {
        w: ChunkWriter,
        out: BytesMut,
        expected: Vec<RtmpMessage>,
    }

    impl Script {
        fn write(&mut self, m: RtmpMessage) {
            let (w, out) = (&mut self.w, &mut self.out);
            w.write(out, m.csid, m.timestamp, m.type_id, m.stream_id, &m.payload)
                .expect("fits");
            self.expected.push(m);
        }

        fn set_chunk_size(&mut self, n: u32) {
            let (ty, body) = ControlMessage::SetChunkSize(n).encode();
            self.write(msg(2, 0, ty, 0, &body));
            self.w.set_chunk_size(n);
        }

        fn raw(&mut self, bytes: &[u8], msgs: impl IntoIterator<Item = RtmpMessage>) {
            self.out.extend_from_slice(bytes);
            self.expected.extend(msgs);
        }
    }

    /// A stream exercising every path: chunk size changes, 1/2/3-byte basic headers,
    /// extended timestamps (repeated on continuations or not), interleaving, empty and
    /// multi-chunk messages. Returns the bytes and the messages they carry.
    fn rich_stream() -> (Vec<u8>, Vec<RtmpMessage>) {
        let mut s = Script::default();
        let mut seed = 0x1234_5678_9abc_def0u64;
        s.write(msg(3, 0, 20, 0, &pseudo_random_bytes(&mut seed, 300)));
        s.set_chunk_size(1);
        for data in extended_streams() {
            s.raw(&data, [msg(4, 0x0100_0000, 9, 1, b"abc")]);
        }
        s.set_chunk_size(2);
        // Interleaved chunks on csids 6 and 7.
        s.raw(
            &[
                0x06, 0, 0, 1, 0, 0, 4, 8, 1, 0, 0, 0, b'a', b'b', //
                0x07, 0, 0, 2, 0, 0, 3, 9, 1, 0, 0, 0, b'v', b'w', //
                0xc6, b'c', b'd', 0xc7, b'x',
            ],
            [msg(6, 1, 8, 1, b"abcd"), msg(7, 2, 9, 1, b"vwx")],
        );
        for (i, size) in [7u32, 4096, 100, 128].into_iter().enumerate() {
            s.set_chunk_size(size);
            for (j, csid) in [8u32, 63, 64, 319, 320, 65_599].into_iter().enumerate() {
                let k = (i * 6 + j) as u32;
                let len = [0, 1, 5, 99, 128, 4097, 10_000][(k % 7) as usize];
                let body = pseudo_random_bytes(&mut seed, len);
                let timestamp = match k % 3 {
                    0 => k * 40,
                    1 => 0x00ff_fff0 + k * 1000,
                    _ => (u32::MAX - 500).wrapping_add(k * 33),
                };
                let ty = [8, 9][(k % 2) as usize];
                s.write(msg(csid, timestamp, ty, 1, &body));
            }
        }
        (s.out.to_vec(), s.expected)
    }

    #[test]
    fn any_split_of_the_input_gives_the_same_messages() {
        let (data, expected) = rich_stream();
        let mut r = reader();
        assert_eq!(feed_ok(&mut r, &data), expected);
        assert_eq!(r.pending_bytes(), 0);
        assert!(r.stash.is_empty());

        // Byte by byte: only an incomplete header is ever kept back.
        let mut r = reader();
        let mut got = Vec::new();
        for b in &data {
            got.extend(feed_ok(&mut r, std::slice::from_ref(b)));
            assert!(r.stash.len() <= 18, "stash holds {} bytes", r.stash.len());
        }
        assert_eq!(got, expected);

        // Pseudo-random splits, mostly short enough to cut headers.
        for mut seed in 1..=20u64 {
            let mut r = reader();
            let mut got = Vec::new();
            let mut rest = &data[..];
            while !rest.is_empty() {
                let b = pseudo_random_bytes(&mut seed, 2);
                let n = if b[0] < 200 {
                    1 + usize::from(b[1] % 24)
                } else {
                    1 + 20 * usize::from(b[1])
                };
                let (part, tail) = rest.split_at(n.min(rest.len()));
                got.extend(feed_ok(&mut r, part));
                assert!(r.stash.len() <= 18);
                rest = tail;
            }
            assert_eq!(got, expected, "seed {seed}");
            assert_eq!(r.pending_bytes(), 0);
        }

        // The buffered convenience API gives the same messages.
        let mut r = reader();
        let mut got = Vec::new();
        for part in data.chunks(1000) {
            r.push(part);
            while let Some(m) = r.next_message().expect("valid stream") {
                if let Ok(Some(ControlMessage::SetChunkSize(n))) =
                    ControlMessage::decode(m.type_id, &m.payload)
                {
                    r.set_chunk_size(n).expect("valid");
                }
                got.push(m);
            }
        }
        assert_eq!(got, expected);
    }
}
