//! The server side of an RTMP connection: handshake, NetConnection and NetStream
//! commands of a publisher, and its media messages.

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use bytes::Bytes;

use crate::RtmpError;
use crate::amf0::{self, Amf0Value};
use crate::chunk::RtmpMessage;
use crate::command::{Command, on_status, status_object};
use crate::handshake::ServerHandshake;
use crate::link::Link;
use crate::message::{self, CSID_COMMAND, ControlMessage, UserControl};

/// Chunk stream id for NetStream commands (`onStatus`).
const CSID_STREAM: u32 = 5;
/// The commands a publisher's connection answers (anything else gets `_error`).
const SERVER_COMMANDS: &[&str] = &[
    "connect",
    "releaseStream",
    "FCPublish",
    "createStream",
    "publish",
    "FCUnpublish",
    "deleteStream",
    "closeStream",
];
/// Most message streams one connection may create.
pub const MAX_STREAMS: usize = 16;

/// Limits and parameters of a server connection.
///
/// Until a publish is accepted, every message is bounded by `max_command_size` and the
/// partial messages together by four times that: a connection that has not been
/// admitted holds little memory, whatever it announces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Largest message accepted once publishing (default 8 MiB).
    pub max_message_size: usize,
    /// Largest command, data or protocol control message (AMF0/AMF3 commands such as
    /// `connect` and `publish`, `onMetaData`; default 64 KiB), checked on the length the
    /// chunk header announces, before the message is buffered.
    pub max_command_size: usize,
    /// Chunk size the server sends with (default 4096).
    pub out_chunk_size: u32,
    /// Window Acknowledgement Size and peer bandwidth announced to the client (default 2 500 000).
    pub window_ack_size: u32,
    /// Bound on the bytes buffered in partial messages across chunk streams (default 16 MiB).
    pub max_pending_bytes: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            max_message_size: 8 << 20,
            max_command_size: 64 << 10,
            out_chunk_size: 4096,
            window_ack_size: 2_500_000,
            max_pending_bytes: 16 << 20,
        }
    }
}

/// What the server asks the driver to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerOutput {
    /// Bytes to write to the socket, in order.
    Transmit(Bytes),
    /// Something for the application.
    Event(ServerEvent),
}

/// Kinds of media message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaKind {
    /// An FLV AUDIODATA body (message type 8).
    Audio,
    /// An FLV VIDEODATA body (message type 9).
    Video,
    /// An AMF0 data message (type 18, or 15), e.g. `onMetaData`. A leading
    /// `@setDataFrame` is removed, so the payload is an FLV SCRIPTDATA body.
    Data,
}

/// Events of a server connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerEvent {
    /// The client sent `connect`; it has been answered with success.
    Connected {
        /// The application name (`app` of the command object).
        app: String,
        /// The `tcUrl`, when sent.
        tc_url: Option<String>,
    },
    /// The client wants to publish; answer with [`ServerSession::accept_publish`] or
    /// [`ServerSession::reject_publish`]. Media is dropped until accepted.
    PublishRequested {
        /// The message stream id the client publishes on.
        stream_id: u32,
        /// The application name from `connect`.
        app: String,
        /// The publishing name as sent (may carry a `?query`).
        name: String,
        /// Publishing type: `live`, `record` or `append`.
        kind: String,
    },
    /// A media message on an accepted stream.
    Media {
        /// The message stream id.
        stream_id: u32,
        /// Audio, video or data.
        kind: MediaKind,
        /// Absolute timestamp in milliseconds (extended timestamps resolved, wrapping).
        timestamp: u32,
        /// The message body.
        payload: Bytes,
    },
    /// The client stopped publishing (`FCUnpublish`, `deleteStream` or `closeStream`).
    Unpublished {
        /// The message stream id.
        stream_id: u32,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum StreamState {
    Idle,
    Requested(String),
    Publishing(String),
}

/// The sans-IO server side of one RTMP connection.
#[derive(Debug)]
pub struct ServerSession {
    config: ServerConfig,
    epoch: Option<Instant>,
    handshake: ServerHandshake,
    link: Link,
    out: VecDeque<ServerOutput>,
    app: Option<String>,
    next_stream_id: u32,
    streams: BTreeMap<u32, StreamState>,
    dropped_media: u64,
    /// Complete messages received, plus one for the finished handshake.
    progress: u64,
}

impl ServerSession {
    /// A connection waiting for the client's C0.
    pub fn new(config: ServerConfig) -> Self {
        let link = Link::new(
            config.max_message_size,
            config.max_pending_bytes,
            config.window_ack_size,
        );
        let mut session = Self {
            config,
            epoch: None,
            handshake: ServerHandshake::new(),
            link,
            out: VecDeque::new(),
            app: None,
            next_stream_id: 1,
            streams: BTreeMap::new(),
            dropped_media: 0,
            progress: 0,
        };
        session.apply_limits();
        session
    }

    /// The chunk reader's limits for the current state: small until a stream publishes.
    fn apply_limits(&mut self) {
        let c = &self.config;
        let command = c.max_command_size.min(c.max_message_size);
        let publishing = self
            .streams
            .values()
            .any(|s| matches!(s, StreamState::Publishing(_)));
        if publishing {
            self.link
                .reader
                .set_limits(c.max_message_size, command, c.max_pending_bytes);
        } else {
            let pending = c.max_pending_bytes.min(command.saturating_mul(4));
            self.link.reader.set_limits(command, command, pending);
        }
    }

    /// A count that grows whenever the peer makes progress: the handshake completed, or
    /// a whole message arrived. Bytes that complete nothing (a dribbled handshake, a
    /// partial chunk, garbage) leave it alone, so a driver's idle time-out can count
    /// from the last change.
    pub fn progress(&self) -> u64 {
        self.progress
    }

    /// Feed bytes read from the socket. Errors are fatal for the connection (the driver
    /// logs and closes). Incomplete input is kept until more arrives.
    pub fn handle_input(&mut self, now: Instant, data: &[u8]) -> Result<(), RtmpError> {
        let epoch = *self.epoch.get_or_insert(now);
        let mut rest = data;
        if !self.handshake.is_done() {
            let time = now.saturating_duration_since(epoch).as_millis() as u32;
            let used = self.handshake.feed(rest, time, &mut self.link.tx)?;
            rest = &rest[used..];
            if !self.handshake.is_done() {
                return Ok(());
            }
            self.progress += 1;
        }
        while let Some(msg) = self.link.reader.next_message_from(&mut rest)? {
            self.progress += 1;
            self.handle_message(msg)?;
        }
        self.link.count_input(data.len());
        Ok(())
    }

    /// Next thing to do: bytes to write, or an event for the application.
    pub fn poll_output(&mut self) -> Option<ServerOutput> {
        if let Some(o) = self.out.pop_front() {
            return Some(o);
        }
        self.link.take_tx().map(ServerOutput::Transmit)
    }

    /// Application answers a PublishRequested: sends Stream Begin and
    /// NetStream.Publish.Start; media on the stream flows from now on.
    pub fn accept_publish(&mut self, stream_id: u32) {
        let Some(state) = self.streams.get_mut(&stream_id) else {
            return;
        };
        let StreamState::Requested(name) = state else {
            return;
        };
        let description = format!("{name} is now published.");
        *state = StreamState::Publishing(std::mem::take(name));
        self.link
            .send_control(ControlMessage::UserControl(UserControl::StreamBegin(
                stream_id,
            )));
        let status = on_status("status", "NetStream.Publish.Start", &description);
        self.link.send_command(CSID_STREAM, stream_id, &status);
        self.apply_limits();
    }

    /// Refuses a publish: sends onStatus level "error" with `code` (e.g.
    /// "NetStream.Publish.BadName", "NetStream.Publish.Unauthorized") and `description`.
    /// The driver closes the connection afterwards.
    pub fn reject_publish(&mut self, stream_id: u32, code: &str, description: &str) {
        if let Some(state) = self.streams.get_mut(&stream_id) {
            *state = StreamState::Idle;
        }
        let status = on_status("error", code, description);
        self.link.send_command(CSID_STREAM, stream_id, &status);
    }

    /// Bytes reserved by partially received messages (their announced lengths).
    pub fn pending_bytes(&self) -> usize {
        self.link.reader.pending_bytes()
    }

    /// Bytes this session holds between inputs, for a memory budget: partially
    /// received messages (their buffers, allocated with the announced lengths), a
    /// cut-off chunk header, the handshake's block buffer and bytes to transmit not yet
    /// handed out. Bounded by the limits of [`ServerConfig`]: before a publish is
    /// accepted by four times `max_command_size` (plus the handshake's 1537 bytes).
    pub fn buffered_bytes(&self) -> usize {
        self.link.reader.buffered_bytes()
            + self.handshake.buffered_bytes()
            + self.link.tx.capacity()
    }

    /// Media messages dropped because their stream was not publishing.
    pub fn dropped_media(&self) -> u64 {
        self.dropped_media
    }

    /// The application name, once connected.
    pub fn app(&self) -> Option<&str> {
        self.app.as_deref()
    }

    fn push_event(&mut self, e: ServerEvent) {
        while let Some(tx) = self.link.take_tx() {
            self.out.push_back(ServerOutput::Transmit(tx));
        }
        self.out.push_back(ServerOutput::Event(e));
    }

    fn handle_message(&mut self, msg: RtmpMessage) -> Result<(), RtmpError> {
        if self.link.handle_control(&msg)? {
            return Ok(());
        }
        match msg.type_id {
            message::AUDIO => {
                self.media(msg.stream_id, MediaKind::Audio, msg.timestamp, msg.payload)
            }
            message::VIDEO => {
                self.media(msg.stream_id, MediaKind::Video, msg.timestamp, msg.payload)
            }
            message::DATA_AMF0 => self.data(msg.stream_id, msg.timestamp, msg.payload),
            message::DATA_AMF3 if msg.payload.first() == Some(&0) => {
                let p = msg.payload.slice(1..);
                self.data(msg.stream_id, msg.timestamp, p);
            }
            message::COMMAND_AMF0 => self.command(msg.stream_id, &msg.payload),
            message::COMMAND_AMF3 if !msg.payload.is_empty() => {
                self.command(msg.stream_id, &msg.payload[1..]);
            }
            message::AGGREGATE => self.aggregate(&msg),
            other => tracing::trace!(type_id = other, "rtmp: message ignored"),
        }
        Ok(())
    }

    fn media(&mut self, stream_id: u32, kind: MediaKind, timestamp: u32, payload: Bytes) {
        if matches!(
            self.streams.get(&stream_id),
            Some(StreamState::Publishing(_))
        ) {
            self.push_event(ServerEvent::Media {
                stream_id,
                kind,
                timestamp,
                payload,
            });
        } else {
            self.dropped_media += 1;
        }
    }

    fn data(&mut self, stream_id: u32, timestamp: u32, payload: Bytes) {
        // Nothing is decoded for a stream that is not publishing.
        if !matches!(
            self.streams.get(&stream_id),
            Some(StreamState::Publishing(_))
        ) {
            self.dropped_media += 1;
            return;
        }
        let mut rest = &payload[..];
        let payload = match amf0::decode(&mut rest) {
            Ok(Amf0Value::String(s)) if s == "@setDataFrame" => {
                payload.slice(payload.len() - rest.len()..)
            }
            _ => payload,
        };
        self.media(stream_id, MediaKind::Data, timestamp, payload);
    }

    /// An aggregate message: FLV tags (header, body, previous tag size) back to back,
    /// timed relative to the first tag.
    fn aggregate(&mut self, msg: &RtmpMessage) {
        let p = &msg.payload;
        let mut pos = 0;
        let mut base = None;
        while let Some(h) = p.get(pos..pos + 11) {
            let size = u32::from_be_bytes([0, h[1], h[2], h[3]]) as usize;
            let ts = u32::from_be_bytes([h[7], h[4], h[5], h[6]]);
            let start = pos + 11;
            let Some(end) = start.checked_add(size).filter(|&e| e <= p.len()) else {
                break;
            };
            let base = *base.get_or_insert(ts);
            let t = msg.timestamp.wrapping_add(ts.wrapping_sub(base));
            let body = p.slice(start..end);
            match h[0] & 0x1f {
                message::AUDIO => self.media(msg.stream_id, MediaKind::Audio, t, body),
                message::VIDEO => self.media(msg.stream_id, MediaKind::Video, t, body),
                message::DATA_AMF0 => self.data(msg.stream_id, t, body),
                _ => {}
            }
            pos = end + 4;
        }
    }

    fn reply(&mut self, name: &str, txn: f64, object: Amf0Value, args: Vec<Amf0Value>) {
        let c = Command::new(name, txn, object, args);
        self.link.send_command(CSID_COMMAND, 0, &c);
    }

    fn call_failed(&mut self, txn: f64, description: &str) {
        if txn != 0.0 {
            let status = status_object("error", "NetConnection.Call.Failed", description);
            self.reply("_error", txn, Amf0Value::Null, vec![status]);
        }
    }

    fn command(&mut self, msg_stream: u32, payload: &[u8]) {
        // Name and transaction id first: the rest (objects, arguments) is decoded only
        // for a command this connection accepts in its state.
        let (name, txn) = match Command::peek(payload) {
            Ok(head) => head,
            Err(e) => {
                tracing::debug!(error = %e, "rtmp: undecodable command ignored");
                return;
            }
        };
        if self.app.is_none() && name != "connect" {
            self.call_failed(txn, "not connected");
            return;
        }
        if !SERVER_COMMANDS.contains(&name.as_str()) {
            tracing::debug!(command = %name, "rtmp: unknown command");
            self.call_failed(txn, "unknown command");
            return;
        }
        let cmd = match Command::decode(payload) {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(error = %e, "rtmp: undecodable command ignored");
                return;
            }
        };
        match cmd.name.as_str() {
            "connect" => self.connect(&cmd),
            "releaseStream" => {
                self.reply("_result", txn, Amf0Value::Null, vec![Amf0Value::Undefined])
            }
            "FCPublish" => {
                let name = cmd.arg_str(0).unwrap_or_default().to_owned();
                let status = status_object("status", "NetStream.Publish.Start", &name);
                self.reply("onFCPublish", 0.0, Amf0Value::Null, vec![status]);
                self.reply("_result", txn, Amf0Value::Null, vec![Amf0Value::Undefined]);
            }
            "createStream" => {
                if self.streams.len() >= MAX_STREAMS {
                    self.call_failed(txn, "too many streams");
                    return;
                }
                let id = self.next_stream_id;
                self.next_stream_id += 1;
                self.streams.insert(id, StreamState::Idle);
                self.reply(
                    "_result",
                    txn,
                    Amf0Value::Null,
                    vec![Amf0Value::Number(f64::from(id))],
                );
            }
            "publish" => self.publish(msg_stream, &cmd),
            "FCUnpublish" => {
                let name = cmd.arg_str(0).unwrap_or_default();
                let found = self.streams.iter().find_map(|(id, s)| match s {
                    StreamState::Requested(n) | StreamState::Publishing(n) if n == name => {
                        Some(*id)
                    }
                    _ => None,
                });
                if let Some(id) = found {
                    self.unpublish(id);
                }
                if txn != 0.0 {
                    self.reply("_result", txn, Amf0Value::Null, vec![Amf0Value::Undefined]);
                }
            }
            "deleteStream" => {
                let id = cmd.arg_number(0).unwrap_or(-1.0);
                if id >= 0.0 && id <= f64::from(u32::MAX) {
                    let id = id as u32;
                    self.unpublish(id);
                    self.streams.remove(&id);
                }
            }
            "closeStream" => self.unpublish(msg_stream),
            _ => self.call_failed(txn, "unknown command"),
        }
    }

    fn connect(&mut self, cmd: &Command) {
        let txn = cmd.transaction_id;
        if self.app.is_some() {
            self.call_failed(txn, "already connected");
            return;
        }
        let app = cmd
            .object
            .get("app")
            .and_then(Amf0Value::as_str)
            .unwrap_or("")
            .to_owned();
        let tc_url = cmd
            .object
            .get("tcUrl")
            .and_then(Amf0Value::as_str)
            .map(str::to_owned);
        let encoding = cmd
            .object
            .get("objectEncoding")
            .and_then(Amf0Value::as_number)
            .unwrap_or(0.0);
        let window = self.config.window_ack_size;
        self.link
            .send_control(ControlMessage::WindowAckSize(window));
        self.link.send_control(ControlMessage::SetPeerBandwidth {
            size: window,
            limit: 2,
        });
        let chunk = self
            .config
            .out_chunk_size
            .clamp(1, crate::chunk::MAX_CHUNK_SIZE);
        self.link.send_control(ControlMessage::SetChunkSize(chunk));
        self.link.writer.set_chunk_size(chunk);
        let props = Amf0Value::object([
            ("fmsVer", Amf0Value::string("FMS/3,0,1,123")),
            ("capabilities", Amf0Value::Number(31.0)),
        ]);
        let mut info = status_object(
            "status",
            "NetConnection.Connect.Success",
            "Connection succeeded.",
        );
        if let Amf0Value::Object(p) = &mut info {
            p.push(("objectEncoding".into(), Amf0Value::Number(encoding)));
        }
        self.reply("_result", txn, props, vec![info]);
        self.app = Some(app.clone());
        self.push_event(ServerEvent::Connected { app, tc_url });
    }

    fn publish(&mut self, stream_id: u32, cmd: &Command) {
        let fail = |s: &mut Self, code: &str, description: &str| {
            let status = on_status("error", code, description);
            s.link.send_command(CSID_STREAM, stream_id, &status);
        };
        let name = cmd.arg_str(0).unwrap_or_default().to_owned();
        match self.streams.get(&stream_id) {
            None => return fail(self, "NetStream.Publish.Failed", "stream was not created"),
            Some(StreamState::Idle) => {}
            Some(_) => {
                return fail(
                    self,
                    "NetStream.Publish.BadConnection",
                    "already publishing",
                );
            }
        }
        if name.is_empty() {
            return fail(self, "NetStream.Publish.BadName", "missing publishing name");
        }
        let kind = cmd.arg_str(1).unwrap_or("live").to_owned();
        self.streams
            .insert(stream_id, StreamState::Requested(name.clone()));
        let app = self.app.clone().unwrap_or_default();
        self.push_event(ServerEvent::PublishRequested {
            stream_id,
            app,
            name,
            kind,
        });
    }

    fn unpublish(&mut self, stream_id: u32) {
        if let Some(s) = self.streams.get_mut(&stream_id)
            && *s != StreamState::Idle
        {
            *s = StreamState::Idle;
            self.push_event(ServerEvent::Unpublished { stream_id });
            self.apply_limits();
        }
    }
}
