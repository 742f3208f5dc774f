//! Tests of the dechunker.
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
