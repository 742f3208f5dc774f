//! The publishing client side of an RTMP connection (load generator, relay, tests).
//!
//! Sequence: handshake → Set Chunk Size + `connect` → `releaseStream`, `FCPublish`,
//! `createStream` → `publish` on the new stream → `NetStream.Publish.Start`.

use std::collections::VecDeque;
use std::time::Instant;

use bytes::Bytes;

use crate::RtmpError;
use crate::amf0::Amf0Value;
use crate::chunk::{RtmpMessage, SharedBody};
use crate::command::{Command, read_status};
use crate::handshake::ClientHandshake;
use crate::link::Link;
use crate::message::{self, CSID_COMMAND, ControlMessage};
use crate::server::MediaKind;

const TXN_CONNECT: f64 = 1.0;
const TXN_CREATE_STREAM: f64 = 4.0;
const CSID_AUDIO: u32 = 4;
const CSID_STREAM: u32 = 5;
const CSID_VIDEO: u32 = 6;

/// The chunk stream and message type of a kind of media.
fn media_stream(kind: MediaKind) -> (u32, u8) {
    match kind {
        MediaKind::Audio => (CSID_AUDIO, message::AUDIO),
        MediaKind::Video => (CSID_VIDEO, message::VIDEO),
        MediaKind::Data => (CSID_STREAM, message::DATA_AMF0),
    }
}

/// What to publish where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// Application name (`connect`'s `app`).
    pub app: String,
    /// `tcUrl`, e.g. `rtmp://host/app`.
    pub tc_url: String,
    /// Publishing name (stream key, may carry `?query`).
    pub stream_name: String,
    /// Chunk size announced right after the handshake and used for sending.
    pub out_chunk_size: u32,
}

/// What the client asks the driver to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientOutput {
    /// Bytes to write to the socket, in order (consecutive ones may be written together).
    Transmit(Bytes),
    /// Progress of the session.
    Event(ClientEvent),
}

/// Events of a client session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    /// `connect` succeeded.
    Connected,
    /// The server answered NetStream.Publish.Start: media may flow.
    Publishing {
        /// The message stream id media is sent on.
        stream_id: u32,
    },
    /// The server refused the connection or the publish.
    Rejected {
        /// Status code, e.g. `NetStream.Publish.BadName`.
        code: String,
        /// Human-readable description.
        description: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Handshake,
    Connecting,
    CreatingStream,
    PublishSent,
    Publishing,
    Rejected,
}

/// The sans-IO publishing side of one RTMP connection.
#[derive(Debug)]
pub struct ClientSession {
    config: ClientConfig,
    handshake: ClientHandshake,
    link: Link,
    out: VecDeque<ClientOutput>,
    state: State,
    stream_id: u32,
}

impl ClientSession {
    /// A session whose C0+C1 are ready to be transmitted.
    pub fn new(config: ClientConfig) -> Self {
        let mut link = Link::new(8 << 20, 16 << 20, 2_500_000);
        let seed = config
            .stream_name
            .bytes()
            .fold(0x51_7cc1_b727_220au64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
            });
        let handshake = ClientHandshake::start(seed, &mut link.tx);
        Self {
            config,
            handshake,
            link,
            out: VecDeque::new(),
            state: State::Handshake,
            stream_id: 0,
        }
    }

    /// Feed bytes read from the socket. Errors are fatal for the connection.
    pub fn handle_input(&mut self, _now: Instant, data: &[u8]) -> Result<(), RtmpError> {
        let mut rest = data;
        if !self.handshake.is_done() {
            let used = self.handshake.feed(rest, &mut self.link.tx)?;
            rest = &rest[used..];
            if !self.handshake.is_done() {
                return Ok(());
            }
            self.set_chunk_size(self.config.out_chunk_size);
            self.send_connect();
        }
        while let Some(msg) = self.link.reader.next_message_from(&mut rest)? {
            self.handle_message(msg)?;
        }
        self.link.count_input(data.len());
        Ok(())
    }

    /// Next thing to do: bytes to write, or an event.
    pub fn poll_output(&mut self) -> Option<ClientOutput> {
        if let Some(o) = self.out.pop_front() {
            return Some(o);
        }
        self.link.take_tx().map(ClientOutput::Transmit)
    }

    /// True once NetStream.Publish.Start has arrived.
    pub fn is_publishing(&self) -> bool {
        self.state == State::Publishing
    }

    /// The message stream id from `createStream` (0 before).
    pub fn stream_id(&self) -> u32 {
        self.stream_id
    }

    /// Sends one media message (an FLV tag body for audio/video, an AMF0 body for data).
    /// Messages larger than 16 MiB cannot be framed and are dropped with a warning.
    pub fn send_media(&mut self, kind: MediaKind, timestamp_ms: u32, payload: Bytes) {
        let (csid, ty) = media_stream(kind);
        self.link
            .send(csid, timestamp_ms, ty, self.stream_id, &payload);
    }

    /// Sends one media message whose body other sessions send too (relay fan-out): its
    /// chunk stream form is made once per chunk size and shared, and this session only
    /// adds its own chunk header, so the output may come as several
    /// [`ClientOutput::Transmit`]s, to be written in order (vectored).
    pub fn send_shared_media(&mut self, kind: MediaKind, timestamp_ms: u32, body: &SharedBody) {
        let (csid, ty) = media_stream(kind);
        self.link
            .send_shared(csid, timestamp_ms, ty, self.stream_id, body);
    }

    /// Announces and starts using a new outgoing chunk size (clamped to 1..=0x7FFF_FFFF).
    pub fn set_chunk_size(&mut self, size: u32) {
        let size = size.clamp(1, crate::chunk::MAX_CHUNK_SIZE);
        self.link.send_control(ControlMessage::SetChunkSize(size));
        self.link.writer.set_chunk_size(size);
    }

    /// Sends a Set Chunk Size with any value, without changing how we chunk (tests).
    pub fn send_raw_chunk_size(&mut self, value: u32) {
        self.link.send_control(ControlMessage::SetChunkSize(value));
    }

    /// Ends the publish in order: `FCUnpublish` and `deleteStream` (the server ends its
    /// broadcast at once instead of waiting for a time-out).
    pub fn unpublish(&mut self) {
        let name = Amf0Value::string(self.config.stream_name.clone());
        let id = Amf0Value::Number(f64::from(self.stream_id));
        self.send_command(&Command::new(
            "FCUnpublish",
            6.0,
            Amf0Value::Null,
            vec![name],
        ));
        self.send_command(&Command::new(
            "deleteStream",
            7.0,
            Amf0Value::Null,
            vec![id],
        ));
    }

    /// Sends an arbitrary command on the NetConnection (tests, extensions).
    pub fn send_command(&mut self, cmd: &Command) {
        self.link.send_command(CSID_COMMAND, 0, cmd);
    }

    fn send_connect(&mut self) {
        let obj = Amf0Value::object([
            ("app", Amf0Value::string(self.config.app.clone())),
            ("type", Amf0Value::string("nonprivate")),
            ("flashVer", Amf0Value::string("FMLE/3.0 (compatible; weir)")),
            ("tcUrl", Amf0Value::string(self.config.tc_url.clone())),
        ]);
        self.send_command(&Command::new("connect", TXN_CONNECT, obj, vec![]));
        self.state = State::Connecting;
    }

    fn push_event(&mut self, e: ClientEvent) {
        while let Some(tx) = self.link.take_tx() {
            self.out.push_back(ClientOutput::Transmit(tx));
        }
        self.out.push_back(ClientOutput::Event(e));
    }

    fn reject(&mut self, status: Option<&Amf0Value>) {
        let (_, code, description) = status.map(read_status).unwrap_or_default();
        self.state = State::Rejected;
        self.push_event(ClientEvent::Rejected { code, description });
    }

    fn handle_message(&mut self, msg: RtmpMessage) -> Result<(), RtmpError> {
        if self.link.handle_control(&msg)? || msg.type_id != message::COMMAND_AMF0 {
            return Ok(());
        }
        let Ok(cmd) = Command::decode(&msg.payload) else {
            return Ok(());
        };
        let name = self.config.stream_name.clone();
        match (cmd.name.as_str(), self.state) {
            ("_result", State::Connecting) if cmd.transaction_id == TXN_CONNECT => {
                self.push_event(ClientEvent::Connected);
                let n = || vec![Amf0Value::string(name.clone())];
                self.send_command(&Command::new("releaseStream", 2.0, Amf0Value::Null, n()));
                self.send_command(&Command::new("FCPublish", 3.0, Amf0Value::Null, n()));
                let create =
                    Command::new("createStream", TXN_CREATE_STREAM, Amf0Value::Null, vec![]);
                self.send_command(&create);
                self.state = State::CreatingStream;
            }
            ("_result", State::CreatingStream) if cmd.transaction_id == TXN_CREATE_STREAM => {
                self.stream_id = cmd.arg_number(0).unwrap_or(1.0) as u32;
                let publish = Command::new(
                    "publish",
                    5.0,
                    Amf0Value::Null,
                    vec![Amf0Value::string(name), Amf0Value::string("live")],
                );
                self.link
                    .send_command(CSID_STREAM, self.stream_id, &publish);
                self.state = State::PublishSent;
            }
            ("_error", State::Connecting | State::CreatingStream) => {
                self.reject(cmd.args.first());
            }
            ("onStatus", State::PublishSent | State::Publishing) => {
                let (level, code, _) = cmd.args.first().map(read_status).unwrap_or_default();
                if level == "error" {
                    self.reject(cmd.args.first());
                } else if code == "NetStream.Publish.Start" && self.state == State::PublishSent {
                    self.state = State::Publishing;
                    self.push_event(ClientEvent::Publishing {
                        stream_id: self.stream_id,
                    });
                }
            }
            _ => {}
        }
        Ok(())
    }
}
