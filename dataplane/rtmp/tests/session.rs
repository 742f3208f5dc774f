//! A ClientSession and a ServerSession talking in memory, in virtual time: the
//! publish flow, media at several chunk sizes, timestamps, interleaving, split input.

mod common;

use std::time::Instant;

use bytes::Bytes;
use common::{Pair, commands, feed, recorded, sample_media, server_messages};
use weir_rtmp::amf0::Amf0Value;
use weir_rtmp::chunk::ChunkWriter;
use weir_rtmp::command::Command;
use weir_rtmp::message::{self, ControlMessage, UserControl};
use weir_rtmp::{ClientEvent, MediaKind, ServerConfig, ServerEvent, ServerSession};

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
        [
            "_result",
            "_result",
            "onFCPublish",
            "_result",
            "_result",
            "onStatus"
        ]
    );
    assert_eq!(
        cmds[0].args[0].get("code"),
        Some(&Amf0Value::string("NetConnection.Connect.Success"))
    );
    assert_eq!(
        cmds[0].object.get("capabilities"),
        Some(&Amf0Value::Number(31.0))
    );
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
    p.client
        .send_media(MediaKind::Video, 0, Bytes::from_static(b"v"));
    p.pump().expect("ok");
    assert!(p.media().is_empty());
    assert_eq!(p.server.dropped_media(), 1);
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
    p.client
        .send_media(MediaKind::Data, 0, Bytes::from(body.clone()));
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
            sent.push((
                MediaKind::Audio,
                t.wrapping_add(5),
                Bytes::from(vec![2u8; 20]),
            ));
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
    w.write(&mut a, 10, 40, message::AUDIO, 1, &[0xaa; 1000])
        .expect("fits");
    w.write(&mut v, 11, 33, message::VIDEO, 1, &[0xbb; 1000])
        .expect("fits");
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
        p.client
            .send_media(MediaKind::Video, i, Bytes::from(vec![0; 500]));
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
    assert!(
        ctrl.contains(&ControlMessage::UserControl(UserControl::PingResponse(
            1234
        )))
    );
    let acks = ctrl
        .iter()
        .filter(|c| matches!(c, ControlMessage::Acknowledgement(_)))
        .count();
    assert!(acks >= 2, "{acks} acks");
}
