//! Shared helpers: a client and a server wired together in memory, in virtual time.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use weir_rtmp::chunk::{ChunkReader, RtmpMessage};
use weir_rtmp::command::Command;
use weir_rtmp::message::{self, ControlMessage};
use weir_rtmp::{
    ClientConfig, ClientEvent, ClientOutput, ClientSession, MediaKind, RtmpError, ServerConfig,
    ServerEvent, ServerOutput, ServerSession,
};

pub struct Pair {
    pub now: Instant,
    pub client: ClientSession,
    pub server: ServerSession,
    pub server_events: Vec<ServerEvent>,
    pub client_events: Vec<ClientEvent>,
    /// Everything the client sent, in order.
    pub c2s: Vec<u8>,
    /// Everything the server sent, in order.
    pub s2c: Vec<u8>,
    pub accept: bool,
}

pub fn client_config(chunk: u32) -> ClientConfig {
    ClientConfig {
        app: "live".into(),
        tc_url: "rtmp://localhost/live".into(),
        stream_name: "key?sig=abc".into(),
        out_chunk_size: chunk,
    }
}

impl Pair {
    pub fn new(chunk: u32, server: ServerConfig) -> Self {
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
    pub fn pump(&mut self) -> Result<(), RtmpError> {
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

    pub fn publish(chunk: u32) -> Self {
        let mut p = Self::new(chunk, ServerConfig::default());
        p.pump().expect("publish flow");
        assert!(p.client.is_publishing(), "events: {:?}", p.client_events);
        p.server_events.clear();
        p
    }

    pub fn media(&self) -> Vec<(MediaKind, u32, Bytes)> {
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
pub fn server_messages(s2c: &[u8]) -> Vec<RtmpMessage> {
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

pub fn commands(msgs: &[RtmpMessage]) -> Vec<Command> {
    msgs.iter()
        .filter(|m| m.type_id == message::COMMAND_AMF0)
        .map(|m| Command::decode(&m.payload).expect("valid command"))
        .collect()
}

pub fn sample_media() -> Vec<(MediaKind, u32, Bytes)> {
    let mut v = Vec::new();
    for i in 0..20u32 {
        v.push((
            MediaKind::Audio,
            i * 23,
            Bytes::from(vec![0xaf; 50 + i as usize]),
        ));
        v.push((
            MediaKind::Video,
            i * 33,
            Bytes::from(vec![0x17; 300 + 7 * i as usize]),
        ));
    }
    v.push((MediaKind::Video, 700, Bytes::new()));
    v
}

/// The client→server bytes of a publish (prefix) and of some media after it.
pub fn recorded() -> (Vec<u8>, Vec<u8>, Vec<ServerEvent>) {
    let mut p = Pair::new(100, ServerConfig::default());
    p.pump().expect("flow");
    let prefix = p.c2s.clone();
    let events = p.server_events.clone();
    for (k, t, b) in sample_media().into_iter().take(8) {
        p.client.send_media(k, t, b);
    }
    p.client
        .send_media(MediaKind::Video, 0x0100_0000, Bytes::from(vec![3; 150]));
    p.pump().expect("media");
    let media = p.c2s[prefix.len()..].to_vec();
    let mut all = events;
    all.extend(p.server_events[2..].iter().cloned());
    (prefix, media, all)
}

pub fn feed(server: &mut ServerSession, now: Instant, data: &[u8], events: &mut Vec<ServerEvent>) {
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
