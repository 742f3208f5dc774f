//! A ClientSession and a ServerSession talking in memory, in virtual time.

use std::time::{Duration, Instant};

use bytes::Bytes;
use weir_rtmp::amf0::Amf0Value;
use weir_rtmp::chunk::{ChunkReader, ChunkWriter, RtmpMessage};
use weir_rtmp::command::Command;
use weir_rtmp::message::{self, ControlMessage, UserControl};
use weir_rtmp::{
    ClientConfig, ClientEvent, ClientOutput, ClientSession, MediaKind, RtmpError, ServerConfig,
    ServerEvent, ServerOutput, ServerSession,
};

struct Pair {
    now: Instant,
    client: ClientSession,
    server: ServerSession,
    server_events: Vec<ServerEvent>,
    client_events: Vec<ClientEvent>,
    /// Everything the client sent, in order.
    c2s: Vec<u8>,
    /// Everything the server sent, in order.
    s2c: Vec<u8>,
    accept: bool,
}

fn client_config(chunk: u32) -> ClientConfig {
    ClientConfig {
        app: "live".into(),
        tc_url: "rtmp://localhost/live".into(),
        stream_name: "key?sig=abc".into(),
        out_chunk_size: chunk,
    }
}

impl Pair {
    fn new(chunk: u32, server: ServerConfig) -> Self {
        Self {
            now: Instant::now(),
            client: ClientSession::new(client_config(chunk)),
            server: ServerSession::new(server),
            server_events: Vec::new(),
            client_events: Vec::new(),
            c2s: Vec::new(),
            s2c: Vec::new(),
            accept: true,
        }
    }

    /// Moves bytes both ways until neither side has anything to say.
    fn pump(&mut self) -> Result<(), RtmpError> {
        loop {
            self.now += Duration::from_millis(1);
            let mut progressed = false;
            while let Some(o) = self.client.poll_output() {
                match o {
                    ClientOutput::Transmit(b) => {
                        progressed = true;
                        self.c2s.extend_from_slice(&b);
                        self.server.handle_input(self.now, &b)?;
                    }
                    ClientOutput::Event(e) => self.client_events.push(e),
                }
            }
            while let Some(o) = self.server.poll_output() {
                match o {
                    ServerOutput::Transmit(b) => {
                        progressed = true;
                        self.s2c.extend_from_slice(&b);
                        self.client.handle_input(self.now, &b)?;
                    }
                    ServerOutput::Event(e) => {
                        if let ServerEvent::PublishRequested { stream_id, .. } = e {
                            if self.accept {
                                self.server.accept_publish(stream_id);
                            } else {
                                self.server.reject_publish(
                                    stream_id,
                                    "NetStream.Publish.Unauthorized",
                                    "bad key",
                                );
                            }
                        }
                        self.server_events.push(e);
                    }
                }
            }
            if !progressed {
                return Ok(());
            }
        }
    }

    fn publish(chunk: u32) -> Self {
        let mut p = Self::new(chunk, ServerConfig::default());
        p.pump().expect("publish flow");
        assert!(p.client.is_publishing(), "events: {:?}", p.client_events);
        p.server_events.clear();
        p
    }

    fn media(&self) -> Vec<(MediaKind, u32, Bytes)> {
        self.server_events
            .iter()
            .filter_map(|e| match e {
                ServerEvent::Media {
                    kind,
                    timestamp,
                    payload,
                    stream_id: 1,
                } => Some((*kind, *timestamp, payload.clone())),
                _ => None,
            })
            .collect()
    }
}

/// Decodes what the server sent (after S0+S1+S2) into messages.
fn server_messages(s2c: &[u8]) -> Vec<RtmpMessage> {
    let mut r = ChunkReader::new(1 << 24, 1 << 26);
    r.push(&s2c[1 + 2 * 1536..]);
    let mut v = Vec::new();
    while let Some(m) = r.next_message().expect("server output is valid") {
        if let Ok(Some(ControlMessage::SetChunkSize(n))) =
            ControlMessage::decode(m.type_id, &m.payload)
        {
            r.set_chunk_size(n).expect("valid");
        }
        v.push(m);
    }
    v
}

fn commands(msgs: &[RtmpMessage]) -> Vec<Command> {
    msgs.iter()
        .filter(|m| m.type_id == message::COMMAND_AMF0)
        .map(|m| Command::decode(&m.payload).expect("valid command"))
        .collect()
}

#[test]
fn publish_flow_and_server_replies() {
    let mut p = Pair::new(4096, ServerConfig::default());
    p.pump().expect("flow");
    assert_eq!(
        p.server_events,
        vec![
            ServerEvent::Connected {
                app: "live".into(),
                tc_url: Some("rtmp://localhost/live".into())
            },
            ServerEvent::PublishRequested {
                stream_id: 1,
                app: "live".into(),
                name: "key?sig=abc".into(),
                kind: "live".into()
            },
        ]
    );
    assert_eq!(
        p.client_events,
        vec![
            ClientEvent::Connected,
            ClientEvent::Publishing { stream_id: 1 }
        ]
    );
    let msgs = server_messages(&p.s2c);
    let ctrl: Vec<_> = msgs
        .iter()
        .filter_map(|m| ControlMessage::decode(m.type_id, &m.payload).expect("valid"))
        .collect();
    assert_eq!(
        &ctrl[..3],
        &[
            ControlMessage::WindowAckSize(2_500_000),
            ControlMessage::SetPeerBandwidth {
                size: 2_500_000,
                limit: 2
            },
            ControlMessage::SetChunkSize(4096)
        ]
    );
    assert!(ctrl.contains(&ControlMessage::UserControl(UserControl::StreamBegin(1))));
    let cmds = commands(&msgs);
    let names: Vec<&str> = cmds.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        ["_result", "_result", "onFCPublish", "_result", "_result", "onStatus"]
    );
    assert_eq!(
        cmds[0].args[0].get("code"),
        Some(&Amf0Value::string("NetConnection.Connect.Success"))
    );
    assert_eq!(cmds[0].object.get("capabilities"), Some(&Amf0Value::Number(31.0)));
    assert_eq!(cmds[4].args[0], Amf0Value::Number(1.0));
}

#[test]
fn rejected_publish_reaches_the_client() {
    let mut p = Pair::new(128, ServerConfig::default());
    p.accept = false;
    p.pump().expect("flow");
    assert_eq!(
        p.client_events.last(),
        Some(&ClientEvent::Rejected {
            code: "NetStream.Publish.Unauthorized".into(),
            description: "bad key".into()
        })
    );
    // Media after a rejection is dropped.
    p.client.send_media(MediaKind::Video, 0, Bytes::from_static(b"v"));
    p.pump().expect("ok");
    assert!(p.media().is_empty());
    assert_eq!(p.server.dropped_media(), 1);
}

fn sample_media() -> Vec<(MediaKind, u32, Bytes)> {
    let mut v = Vec::new();
    for i in 0..20u32 {
        v.push((MediaKind::Audio, i * 23, Bytes::from(vec![0xaf; 50 + i as usize])));
        v.push((MediaKind::Video, i * 33, Bytes::from(vec![0x17; 300 + 7 * i as usize])));
    }
    v.push((MediaKind::Video, 700, Bytes::new()));
    v
}

#[test]
fn media_with_chunk_sizes_1_128_and_large() {
    for chunk in [1, 128, 60_000] {
        let mut p = Pair::publish(chunk);
        let sent = sample_media();
        for (k, t, b) in &sent {
            p.client.send_media(*k, *t, b.clone());
        }
        p.pump().expect("media");
        assert_eq!(p.media(), sent, "chunk size {chunk}");
    }
}

#[test]
fn set_data_frame_is_stripped() {
    let mut p = Pair::publish(128);
    let body = weir_rtmp::amf0::encode_all(&[
        Amf0Value::string("@setDataFrame"),
        Amf0Value::string("onMetaData"),
        Amf0Value::EcmaArray(vec![("width".into(), Amf0Value::Number(640.0))]),
    ]);
    p.client.send_media(MediaKind::Data, 0, Bytes::from(body.clone()));
    p.pump().expect("data");
    let m = p.media();
    assert_eq!(m[0].0, MediaKind::Data);
    assert_eq!(&m[0].2[..], &body[16..]);
}

#[test]
fn timestamps_cross_extended_and_wrap() {
    for chunk in [1, 128] {
        let mut p = Pair::publish(chunk);
        let times: [u32; 9] = [
            0xFF_FFF0,
            0xFF_FFFE,
            0xFF_FFFF,
            0x0100_0000,
            0x0100_0021,
            0xFFFF_FFE0,
            0xFFFF_FFFF,
            0x10,
            0x31,
        ];
        let mut sent = Vec::new();
        for t in times {
            sent.push((MediaKind::Video, t, Bytes::from(vec![1u8; 200])));
            sent.push((MediaKind::Audio, t.wrapping_add(5), Bytes::from(vec![2u8; 20])));
        }
        for (k, t, b) in &sent {
            p.client.send_media(*k, *t, b.clone());
        }
        p.pump().expect("media");
        assert_eq!(p.media(), sent);
    }
}

#[test]
fn interleaved_chunks_across_chunk_streams() {
    let mut p = Pair::publish(128);
    // Two 1000-byte messages on chunk streams 10 and 11, chunked at 128 and interleaved.
    let mut w = ChunkWriter::new();
    w.set_chunk_size(128);
    let (mut a, mut v) = (bytes::BytesMut::new(), bytes::BytesMut::new());
    w.write(&mut a, 10, 40, message::AUDIO, 1, &[0xaa; 1000]).expect("fits");
    w.write(&mut v, 11, 33, message::VIDEO, 1, &[0xbb; 1000]).expect("fits");
    let split = |b: &[u8]| -> Vec<Vec<u8>> {
        let mut out = vec![b[..12 + 128].to_vec()];
        out.extend(b[12 + 128..].chunks(129).map(<[u8]>::to_vec));
        out
    };
    let (pa, pv) = (split(&a), split(&v));
    let mut wire = Vec::new();
    for (x, y) in pa.iter().zip(&pv) {
        wire.extend_from_slice(x);
        wire.extend_from_slice(y);
    }
    p.server.handle_input(p.now, &wire).expect("valid");
    p.pump().expect("ok");
    assert_eq!(
        p.media(),
        vec![
            (MediaKind::Audio, 40, Bytes::from(vec![0xaa; 1000])),
            (MediaKind::Video, 33, Bytes::from(vec![0xbb; 1000]))
        ]
    );
}

/// The client→server bytes of a publish (prefix) and of some media after it.
fn recorded() -> (Vec<u8>, Vec<u8>, Vec<ServerEvent>) {
    let mut p = Pair::new(100, ServerConfig::default());
    p.pump().expect("flow");
    let prefix = p.c2s.clone();
    let events = p.server_events.clone();
    for (k, t, b) in sample_media().into_iter().take(8) {
        p.client.send_media(k, t, b);
    }
    p.client.send_media(MediaKind::Video, 0x0100_0000, Bytes::from(vec![3; 150]));
    p.pump().expect("media");
    let media = p.c2s[prefix.len()..].to_vec();
    let mut all = events;
    all.extend(p.server_events[2..].iter().cloned());
    (prefix, media, all)
}

fn feed(server: &mut ServerSession, now: Instant, data: &[u8], events: &mut Vec<ServerEvent>) {
    server.handle_input(now, data).expect("valid input");
    let mut accept = Vec::new();
    while let Some(o) = server.poll_output() {
        if let ServerOutput::Event(e) = o {
            if let ServerEvent::PublishRequested { stream_id, .. } = &e {
                accept.push(*stream_id);
            }
            events.push(e);
        }
    }
    for id in accept {
        server.accept_publish(id);
    }
}

#[test]
fn input_split_at_every_byte_boundary() {
    let (prefix, media, want) = recorded();
    let now = Instant::now();
    // One byte per call through the whole session.
    let mut s = ServerSession::new(ServerConfig::default());
    let mut got = Vec::new();
    for b in prefix.iter().chain(&media) {
        feed(&mut s, now, std::slice::from_ref(b), &mut got);
    }
    assert_eq!(got, want);
    // Every two-way split of the publish prefix, then of the media.
    for k in 0..=prefix.len() {
        let mut s = ServerSession::new(ServerConfig::default());
        let mut got = Vec::new();
        feed(&mut s, now, &prefix[..k], &mut got);
        feed(&mut s, now, &prefix[k..], &mut got);
        feed(&mut s, now, &media, &mut got);
        assert_eq!(got, want, "split at {k}");
    }
    for k in 0..=media.len() {
        let mut s = ServerSession::new(ServerConfig::default());
        let mut got = Vec::new();
        feed(&mut s, now, &prefix, &mut got);
        feed(&mut s, now, &media[..k], &mut got);
        feed(&mut s, now, &media[k..], &mut got);
        assert_eq!(got, want, "media split at {k}");
    }
}

#[test]
fn four_gib_and_top_bit_chunk_sizes_are_refused() {
    for bad in [u32::MAX, 0x8000_0000, 0] {
        let mut p = Pair::publish(128);
        p.client.send_raw_chunk_size(bad);
        assert_eq!(p.pump(), Err(RtmpError::InvalidChunkSize(bad)));
    }
    let msg = RtmpError::InvalidChunkSize(u32::MAX).to_string();
    assert!(msg.contains("4294967295") && msg.contains("2147483647"), "{msg}");
    // The largest legal size is accepted.
    let mut p = Pair::publish(128);
    p.client.set_chunk_size(0x7FFF_FFFF);
    p.client.send_media(MediaKind::Audio, 1, Bytes::from_static(b"abc"));
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
    feed(&mut s, Instant::now(), &prefix[..prefix.len() - 3], &mut got);
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
    p.client.send_media(MediaKind::Video, 0, Bytes::from(vec![0; 1000]));
    p.pump().expect("at the limit");
    p.client.send_media(MediaKind::Video, 0, Bytes::from(vec![0; 1001]));
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
    p.client
        .send_command(&Command::new("getStreamLength", 9.0, Amf0Value::Null, vec![]));
    p.client
        .send_command(&Command::new("noAnswer", 0.0, Amf0Value::Null, vec![]));
    p.client.send_media(MediaKind::Audio, 5, Bytes::from_static(b"a"));
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
fn ping_ack_and_unpublish() {
    let config = ServerConfig {
        window_ack_size: 5000,
        ..ServerConfig::default()
    };
    let mut p = Pair::new(128, config);
    p.pump().expect("flow");
    // A ping request from the client is answered.
    let (ty, body) = ControlMessage::UserControl(UserControl::PingRequest(1234)).encode();
    let mut w = ChunkWriter::new();
    let mut raw = bytes::BytesMut::new();
    w.write(&mut raw, 2, 0, ty, 0, &body).expect("fits");
    p.server.handle_input(p.now, &raw).expect("valid");
    for i in 0..30 {
        p.client.send_media(MediaKind::Video, i, Bytes::from(vec![0; 500]));
        // One read per message: an Acknowledgement covers everything read so far.
        p.pump().expect("ok");
    }
    p.client.send_command(&Command::new(
        "FCUnpublish",
        6.0,
        Amf0Value::Null,
        vec![Amf0Value::string("key?sig=abc")],
    ));
    p.client.send_command(&Command::new(
        "deleteStream",
        7.0,
        Amf0Value::Null,
        vec![Amf0Value::Number(1.0)],
    ));
    p.pump().expect("ok");
    let unpublished = p
        .server_events
        .iter()
        .filter(|e| matches!(e, ServerEvent::Unpublished { stream_id: 1 }))
        .count();
    assert_eq!(unpublished, 1);
    let ctrl: Vec<_> = server_messages(&p.s2c)
        .iter()
        .filter_map(|m| ControlMessage::decode(m.type_id, &m.payload).expect("valid"))
        .collect();
    assert!(ctrl.contains(&ControlMessage::UserControl(UserControl::PingResponse(1234))));
    let acks = ctrl
        .iter()
        .filter(|c| matches!(c, ControlMessage::Acknowledgement(_)))
        .count();
    assert!(acks >= 2, "{acks} acks");
}

#[test]
fn abort_message_discards_partial() {
    let mut p = Pair::publish(128);
    let mut w = ChunkWriter::new();
    w.set_chunk_size(128);
    let mut part = bytes::BytesMut::new();
    w.write(&mut part, 12, 0, message::VIDEO, 1, &[7; 300]).expect("fits");
    let (ty, body) = ControlMessage::Abort(12).encode();
    let mut abort = bytes::BytesMut::new();
    ChunkWriter::new().write(&mut abort, 2, 0, ty, 0, &body).expect("fits");
    let mut wire = part[..12 + 128].to_vec();
    wire.extend_from_slice(&abort);
    p.server.handle_input(p.now, &wire).expect("valid");
    let mut next = bytes::BytesMut::new();
    ChunkWriter::new()
        .write(&mut next, 12, 9, message::VIDEO, 1, b"ok")
        .expect("fits");
    p.server.handle_input(p.now, &next).expect("valid");
    p.pump().expect("ok");
    assert_eq!(p.media(), vec![(MediaKind::Video, 9, Bytes::from_static(b"ok"))]);
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
