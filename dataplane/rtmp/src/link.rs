//! What both ends of a connection share after the handshake: the chunk reader and
//! writer, pending output bytes, acknowledgements and protocol control messages.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

use crate::RtmpError;
use crate::chunk::{ChunkReader, ChunkWriter, RtmpMessage, SharedBody};
use crate::command::Command;
use crate::message::{CSID_CONTROL, ControlMessage, UserControl};

/// Bodies shorter than this are copied into the connection's buffer even when shared:
/// one more piece to write costs more than copying them.
const SHARE_MIN: usize = 512;

#[derive(Debug)]
pub(crate) struct Link {
    pub(crate) reader: ChunkReader,
    pub(crate) writer: ChunkWriter,
    /// Bytes to transmit, not yet handed to the driver (after `ready`).
    pub(crate) tx: BytesMut,
    /// Earlier bytes to transmit, in order: pieces of `tx` and shared bodies.
    ready: VecDeque<Bytes>,
    bytes_in: u64,
    last_ack: u64,
    ack_window: u32,
}

impl Link {
    pub(crate) fn new(max_message_size: usize, max_pending_bytes: usize, ack_window: u32) -> Self {
        Self {
            reader: ChunkReader::new(max_message_size, max_pending_bytes),
            writer: ChunkWriter::new(),
            tx: BytesMut::new(),
            ready: VecDeque::new(),
            bytes_in: 0,
            last_ack: 0,
            ack_window,
        }
    }

    /// Chunks one message into `tx`. Messages too long for a chunk header (16 MiB) are
    /// dropped with a warning.
    pub(crate) fn send(
        &mut self,
        csid: u32,
        timestamp: u32,
        type_id: u8,
        stream_id: u32,
        payload: &[u8],
    ) {
        if let Err(e) =
            self.writer
                .write(&mut self.tx, csid, timestamp, type_id, stream_id, payload)
        {
            tracing::warn!(error = %e, "rtmp: outgoing message dropped");
        }
    }

    /// Chunks one message whose body other connections send too: this connection's
    /// first chunk header, then the body's shared chunk stream form (no copy). Small
    /// bodies, and messages that need an extended timestamp, are chunked as by
    /// [`Self::send`].
    pub(crate) fn send_shared(
        &mut self,
        csid: u32,
        timestamp: u32,
        type_id: u8,
        stream_id: u32,
        body: &SharedBody,
    ) {
        let payload = body.payload();
        if payload.len() >= SHARE_MIN {
            match self.writer.write_header(
                &mut self.tx,
                csid,
                timestamp,
                type_id,
                stream_id,
                payload.len(),
            ) {
                Ok(true) => {
                    self.ready.push_back(self.tx.split().freeze());
                    let chunked = body.chunked(self.writer.chunk_size(), csid);
                    self.ready.push_back(chunked);
                    return;
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "rtmp: outgoing message dropped");
                    return;
                }
            }
        }
        self.send(csid, timestamp, type_id, stream_id, payload);
    }

    pub(crate) fn send_control(&mut self, msg: ControlMessage) {
        let (ty, body) = msg.encode();
        self.send(CSID_CONTROL, 0, ty, 0, &body);
    }

    pub(crate) fn send_command(&mut self, csid: u32, stream_id: u32, cmd: &Command) {
        self.send(
            csid,
            0,
            crate::message::COMMAND_AMF0,
            stream_id,
            &cmd.encode(),
        );
    }

    /// The next bytes to transmit, in order (several pieces after shared bodies).
    pub(crate) fn take_tx(&mut self) -> Option<Bytes> {
        if let Some(b) = self.ready.pop_front() {
            return Some(b);
        }
        (!self.tx.is_empty()).then(|| self.tx.split().freeze())
    }

    /// Counts received bytes and sends an Acknowledgement when a window is complete.
    pub(crate) fn count_input(&mut self, n: usize) {
        self.bytes_in += n as u64;
        if self.ack_window > 0 && self.bytes_in - self.last_ack >= u64::from(self.ack_window) {
            self.last_ack = self.bytes_in;
            self.send_control(ControlMessage::Acknowledgement(self.bytes_in as u32));
        }
    }

    /// Handles protocol control messages (types 1–6). Returns false for other messages.
    pub(crate) fn handle_control(&mut self, msg: &RtmpMessage) -> Result<bool, RtmpError> {
        let Some(ctrl) = ControlMessage::decode(msg.type_id, &msg.payload)? else {
            return Ok(false);
        };
        match ctrl {
            ControlMessage::SetChunkSize(n) => self.reader.set_chunk_size(n)?,
            ControlMessage::Abort(csid) => self.reader.abort(csid),
            ControlMessage::WindowAckSize(n) => self.ack_window = n,
            ControlMessage::UserControl(UserControl::PingRequest(t)) => {
                self.send_control(ControlMessage::UserControl(UserControl::PingResponse(t)));
            }
            ControlMessage::Acknowledgement(_)
            | ControlMessage::SetPeerBandwidth { .. }
            | ControlMessage::UserControl(_) => {}
        }
        Ok(true)
    }
}
