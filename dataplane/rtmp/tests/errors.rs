//! Error cases and hostile input against a ServerSession.

mod common;

use std::time::Instant;

use bytes::Bytes;
use common::{Pair, commands, feed, recorded, server_messages};
use weir_rtmp::amf0::Amf0Value;
use weir_rtmp::chunk::ChunkWriter;
use weir_rtmp::command::Command;
use weir_rtmp::message::{self, ControlMessage};
use weir_rtmp::{MediaKind, RtmpError, ServerConfig, ServerEvent, ServerSession};

#[test]
fn four_gib_and_top_bit_chunk_sizes_are_refused() {
    for bad in [u32::MAX, 0x8000_0000, 0] {
        let mut p = Pair::publish(128);
        p.client.send_raw_chunk_size(bad);
        assert_eq!(p.pump(), Err(RtmpError::InvalidChunkSize(bad)));
    }
    let msg = RtmpError::InvalidChunkSize(u32::MAX).to_string();
    assert!(
        msg.contains("4294967295") && msg.contains("2147483647"),
        "{msg}"
    );
    // The largest legal size is accepted.
    let mut p = Pair::publish(128);
    p.client.set_chunk_size(0x7FFF_FFFF);
    p.client
        .send_media(MediaKind::Audio, 1, Bytes::from_static(b"abc"));
    p.pump().expect("valid");
    assert_eq!(p.media().len(), 1);
}

#[test]
fn garbage_c0_is_refused() {
    let mut s = ServerSession::new(ServerConfig::default());
    let err = s
        .handle_input(Instant::now(), b"GET / HTTP/1.1\r\n")
        .expect_err("not RTMP");
    assert_eq!(err, RtmpError::UnsupportedVersion(b'G'));
    assert!(err.to_string().contains("unsupported RTMP version"));
}

#[test]
fn truncated_input_waits_for_more() {
    let (prefix, media, _) = recorded();
    let mut s = ServerSession::new(ServerConfig::default());
    let mut got = Vec::new();
    feed(
        &mut s,
        Instant::now(),
        &prefix[..prefix.len() - 3],
        &mut got,
    );
    assert!(matches!(got[..], [ServerEvent::Connected { .. }]));
    let mut s = ServerSession::new(ServerConfig::default());
    feed(&mut s, Instant::now(), &prefix, &mut got);
    feed(&mut s, Instant::now(), &media[..5], &mut got);
}

#[test]
fn oversized_message_is_an_error() {
    let config = ServerConfig {
        max_message_size: 1000,
        ..ServerConfig::default()
    };
    let mut p = Pair::new(128, config);
    p.pump().expect("flow");
    p.client
        .send_media(MediaKind::Video, 0, Bytes::from(vec![0; 1000]));
    p.pump().expect("at the limit");
    p.client
        .send_media(MediaKind::Video, 0, Bytes::from(vec![0; 1001]));
    assert_eq!(
        p.pump(),
        Err(RtmpError::MessageTooLarge {
            len: 1001,
            max: 1000
        })
    );
}

#[test]
fn unknown_command_gets_error_and_session_continues() {
    let mut p = Pair::publish(128);
    p.client.send_command(&Command::new(
        "getStreamLength",
        9.0,
        Amf0Value::Null,
        vec![],
    ));
    p.client
        .send_command(&Command::new("noAnswer", 0.0, Amf0Value::Null, vec![]));
    p.client
        .send_media(MediaKind::Audio, 5, Bytes::from_static(b"a"));
    p.pump().expect("not fatal");
    let errors: Vec<_> = commands(&server_messages(&p.s2c))
        .into_iter()
        .filter(|c| c.name == "_error")
        .collect();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].transaction_id, 9.0);
    assert_eq!(p.media().len(), 1);
}

#[test]
fn abort_message_discards_partial() {
    let mut p = Pair::publish(128);
    let mut w = ChunkWriter::new();
    w.set_chunk_size(128);
    let mut part = bytes::BytesMut::new();
    w.write(&mut part, 12, 0, message::VIDEO, 1, &[7; 300])
        .expect("fits");
    let (ty, body) = ControlMessage::Abort(12).encode();
    let mut abort = bytes::BytesMut::new();
    ChunkWriter::new()
        .write(&mut abort, 2, 0, ty, 0, &body)
        .expect("fits");
    let mut wire = part[..12 + 128].to_vec();
    wire.extend_from_slice(&abort);
    p.server.handle_input(p.now, &wire).expect("valid");
    let mut next = bytes::BytesMut::new();
    ChunkWriter::new()
        .write(&mut next, 12, 9, message::VIDEO, 1, b"ok")
        .expect("fits");
    p.server.handle_input(p.now, &next).expect("valid");
    p.pump().expect("ok");
    assert_eq!(
        p.media(),
        vec![(MediaKind::Video, 9, Bytes::from_static(b"ok"))]
    );
}

#[test]
fn fuzz_target_logic_on_random_and_mutated_sessions() {
    let (prefix, media, _) = recorded();
    let mut valid = prefix;
    valid.extend_from_slice(&media);
    let mut seed = 0xdead_beef_cafe_f00du64;
    for i in 0..3_000 {
        let r = weir_rtmp::fuzzing::pseudo_random_bytes(&mut seed, 8);
        let mut d = valid[3073..].to_vec();
        // Flip a few bytes, truncate somewhere.
        for j in 0..(1 + i % 4) {
            let pos = (usize::from(r[j]) << 8 | usize::from(r[j + 1])) % d.len();
            d[pos] ^= r[j + 4] | 1;
        }
        let cut = (usize::from(r[6]) << 8 | usize::from(r[7])) % (d.len() + 1);
        weir_rtmp::fuzzing::rtmp_chunk(&d[..cut]);
        let noise = weir_rtmp::fuzzing::pseudo_random_bytes(&mut seed, i % 300);
        weir_rtmp::fuzzing::rtmp_chunk(&noise);
    }
}

/// The client's handshake bytes (C0, C1, C2) of a recorded session.
fn handshaken() -> ServerSession {
    let (prefix, _, _) = recorded();
    let mut s = ServerSession::new(ServerConfig::default());
    s.handle_input(Instant::now(), &prefix[..3073])
        .expect("handshake");
    while s.poll_output().is_some() {}
    s
}

/// Only the fmt 0 chunk header (12 bytes) of a message of `len` bytes of `type_id`.
fn header_only(csid: u32, type_id: u8, len: usize) -> Vec<u8> {
    header_only_full(csid, type_id, len)[..12].to_vec()
}

/// All the chunks of a message of `len` zero bytes.
fn header_only_full(csid: u32, type_id: u8, len: usize) -> Vec<u8> {
    let mut out = bytes::BytesMut::new();
    ChunkWriter::new()
        .write(&mut out, csid, 0, type_id, 0, &vec![0u8; len])
        .expect("fits");
    out.to_vec()
}

#[test]
fn oversized_command_is_refused_from_its_header() {
    let mut p = Pair::publish(128);
    // Exactly the limit: accepted (it waits for its bytes).
    let at_limit = header_only(3, message::COMMAND_AMF0, 64 << 10);
    p.server
        .handle_input(p.now, &at_limit)
        .expect("at the limit");
    let mut p = Pair::publish(128);
    // One byte more: refused on the header alone, nothing of the body sent.
    for ty in [
        message::COMMAND_AMF0,
        message::DATA_AMF0,
        message::COMMAND_AMF3,
    ] {
        let mut p2 = Pair::publish(128);
        let err = p2
            .server
            .handle_input(p2.now, &header_only(3, ty, (64 << 10) + 1))
            .expect_err("too large");
        assert_eq!(
            err,
            RtmpError::CommandTooLarge {
                type_id: ty,
                len: (64 << 10) + 1,
                max: 64 << 10
            }
        );
        assert!(err.to_string().contains("65536"), "{err}");
    }
    // Media may be larger once publishing.
    p.server
        .handle_input(p.now, &header_only(4, message::VIDEO, 1 << 20))
        .expect("media up to max_message_size");
}

#[test]
fn before_publishing_every_message_is_small() {
    let mut s = handshaken();
    let err = s
        .handle_input(Instant::now(), &header_only(4, message::VIDEO, 100_000))
        .expect_err("not publishing");
    assert_eq!(
        err,
        RtmpError::MessageTooLarge {
            len: 100_000,
            max: 64 << 10
        }
    );
    // Partial messages of an unadmitted connection hold at most 4 × 64 KiB.
    let mut s = handshaken();
    let now = Instant::now();
    for csid in 4..8 {
        // The header and the first chunk (128 bytes), so the next header is read.
        let first = &header_only_full(csid, message::COMMAND_AMF0, 64 << 10)[..12 + 128];
        s.handle_input(now, first)
            .expect("within the pending bound");
    }
    assert_eq!(s.pending_bytes(), 4 * (64 << 10));
    let err = s
        .handle_input(now, &header_only(9, message::COMMAND_AMF0, 10))
        .expect_err("pending bound");
    assert!(
        matches!(err, RtmpError::PendingBytesExceeded { .. }),
        "{err}"
    );
}

#[test]
fn buffered_bytes_count_partial_messages_and_fall_back_when_they_complete() {
    let mut s = ServerSession::new(ServerConfig::default());
    let (prefix, _, _) = recorded();
    // Half a C1: the handshake holds its block buffer.
    s.handle_input(Instant::now(), &prefix[..700])
        .expect("partial handshake");
    assert!(s.buffered_bytes() >= 699, "{}", s.buffered_bytes());
    let mut s = handshaken();
    let idle = s.buffered_bytes();
    assert!(idle <= 8 << 10, "a handshaken session holds little: {idle}");
    let now = Instant::now();
    let whole = header_only_full(4, message::COMMAND_AMF0, 10_000);
    s.handle_input(now, &whole[..12 + 128])
        .expect("first chunk");
    // The message's buffer is allocated with its announced length.
    assert!(
        s.buffered_bytes() >= idle + 10_000,
        "{}",
        s.buffered_bytes()
    );
    assert!(s.buffered_bytes() >= s.pending_bytes());
    s.handle_input(now, &whole[12 + 128..]).expect("the rest");
    while s.poll_output().is_some() {}
    assert_eq!(s.pending_bytes(), 0);
    assert!(s.buffered_bytes() < idle + 10_000, "{}", s.buffered_bytes());
}

#[test]
fn commands_before_connect_are_refused_undecoded() {
    let mut s = handshaken();
    // createStream whose command object is garbage: refused on its name alone.
    let mut body = Command::new("createStream", 2.0, Amf0Value::Null, vec![]).encode();
    body.truncate(body.len() - 1);
    body.extend_from_slice(&[0x03, 0xff, 0xff]);
    let mut out = bytes::BytesMut::new();
    ChunkWriter::new()
        .write(&mut out, 3, 0, message::COMMAND_AMF0, 0, &body)
        .expect("fits");
    s.handle_input(Instant::now(), &out).expect("not fatal");
    let mut sent = Vec::new();
    while let Some(o) = s.poll_output() {
        match o {
            weir_rtmp::ServerOutput::Transmit(b) => sent.extend_from_slice(&b),
            weir_rtmp::ServerOutput::Event(e) => panic!("no event expected: {e:?}"),
        }
    }
    let mut wire = vec![0u8; 1 + 2 * 1536];
    wire.extend_from_slice(&sent);
    let cmds = commands(&server_messages(&wire));
    assert_eq!(cmds.len(), 1, "{cmds:?}");
    assert_eq!(
        (cmds[0].name.as_str(), cmds[0].transaction_id),
        ("_error", 2.0)
    );
}

#[test]
fn progress_counts_handshakes_and_whole_messages_only() {
    let (prefix, _, _) = recorded();
    let mut s = ServerSession::new(ServerConfig::default());
    let now = Instant::now();
    // A dribbled handshake is no progress until it completes.
    for b in &prefix[..3072] {
        s.handle_input(now, std::slice::from_ref(b))
            .expect("handshake");
        assert_eq!(s.progress(), 0);
    }
    s.handle_input(now, &prefix[3072..3073]).expect("handshake");
    assert_eq!(s.progress(), 1);
    // Half a message: none; the rest: one.
    let mut out = bytes::BytesMut::new();
    ChunkWriter::new()
        .write(&mut out, 4, 0, message::VIDEO, 1, &[1; 100])
        .expect("fits");
    s.handle_input(now, &out[..60]).expect("partial");
    assert_eq!(s.progress(), 1);
    s.handle_input(now, &out[60..]).expect("rest");
    assert_eq!(s.progress(), 2);
}
