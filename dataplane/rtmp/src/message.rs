//! Message type ids and the protocol control messages (types 1–6).

use bytes::{BufMut, Bytes, BytesMut};

use crate::RtmpError;

/// Set Chunk Size.
pub const SET_CHUNK_SIZE: u8 = 1;
/// Abort Message.
pub const ABORT: u8 = 2;
/// Acknowledgement.
pub const ACKNOWLEDGEMENT: u8 = 3;
/// User Control Message.
pub const USER_CONTROL: u8 = 4;
/// Window Acknowledgement Size.
pub const WINDOW_ACK_SIZE: u8 = 5;
/// Set Peer Bandwidth.
pub const SET_PEER_BANDWIDTH: u8 = 6;
/// Audio data (an FLV AUDIODATA body).
pub const AUDIO: u8 = 8;
/// Video data (an FLV VIDEODATA body).
pub const VIDEO: u8 = 9;
/// AMF3 data message (one format byte, then AMF0 in practice).
pub const DATA_AMF3: u8 = 15;
/// AMF3 command message (one format byte, then AMF0 in practice).
pub const COMMAND_AMF3: u8 = 17;
/// AMF0 data message (`@setDataFrame`, `onMetaData`, …).
pub const DATA_AMF0: u8 = 18;
/// AMF0 command message.
pub const COMMAND_AMF0: u8 = 20;
/// Aggregate message (a run of FLV tags).
pub const AGGREGATE: u8 = 22;

/// Chunk stream id for protocol control messages.
pub const CSID_CONTROL: u32 = 2;
/// Chunk stream id for NetConnection commands.
pub const CSID_COMMAND: u32 = 3;

/// User Control event payloads (message type 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserControl {
    /// The stream became functional.
    StreamBegin(u32),
    /// Playback of the stream ended.
    StreamEof(u32),
    /// No more data on the stream.
    StreamDry(u32),
    /// The client's buffer length for a stream.
    SetBufferLength {
        /// The stream id.
        stream_id: u32,
        /// Buffer length in milliseconds.
        millis: u32,
    },
    /// The stream is recorded.
    StreamIsRecorded(u32),
    /// A ping with the sender's timestamp.
    PingRequest(u32),
    /// The answer to a ping, echoing its timestamp.
    PingResponse(u32),
    /// An event type we do not interpret.
    Other(u16),
}

/// A protocol control message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlMessage {
    /// New chunk size for the sender's chunks.
    SetChunkSize(u32),
    /// Discard the partial message on a chunk stream.
    Abort(u32),
    /// Bytes received so far.
    Acknowledgement(u32),
    /// A user control event.
    UserControl(UserControl),
    /// How many bytes the sender wants between acknowledgements.
    WindowAckSize(u32),
    /// Limits the peer's output bandwidth (limit type 0 hard, 1 soft, 2 dynamic).
    SetPeerBandwidth {
        /// Window size in bytes.
        size: u32,
        /// Limit type.
        limit: u8,
    },
}

fn be32(p: &[u8], what: &'static str) -> Result<u32, RtmpError> {
    match p.get(..4) {
        Some(b) => Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]])),
        None => Err(RtmpError::Malformed(what)),
    }
}

impl ControlMessage {
    /// Decodes a control message of type `type_id`; `Ok(None)` for other types.
    ///
    /// A Set Chunk Size of 0 or with the top bit set is refused here.
    pub fn decode(type_id: u8, p: &[u8]) -> Result<Option<Self>, RtmpError> {
        Ok(Some(match type_id {
            SET_CHUNK_SIZE => {
                let size = be32(p, "Set Chunk Size")?;
                if size == 0 || size > crate::chunk::MAX_CHUNK_SIZE {
                    return Err(RtmpError::InvalidChunkSize(size));
                }
                ControlMessage::SetChunkSize(size)
            }
            ABORT => ControlMessage::Abort(be32(p, "Abort")?),
            ACKNOWLEDGEMENT => ControlMessage::Acknowledgement(be32(p, "Acknowledgement")?),
            WINDOW_ACK_SIZE => ControlMessage::WindowAckSize(be32(p, "Window Ack Size")?),
            SET_PEER_BANDWIDTH => ControlMessage::SetPeerBandwidth {
                size: be32(p, "Set Peer Bandwidth")?,
                limit: p.get(4).copied().unwrap_or(2),
            },
            USER_CONTROL => {
                let what = "User Control";
                let Some(ty) = p.get(..2) else {
                    return Err(RtmpError::Malformed(what));
                };
                let ty = u16::from_be_bytes([ty[0], ty[1]]);
                let arg = || be32(&p[2..], what);
                ControlMessage::UserControl(match ty {
                    0 => UserControl::StreamBegin(arg()?),
                    1 => UserControl::StreamEof(arg()?),
                    2 => UserControl::StreamDry(arg()?),
                    3 => UserControl::SetBufferLength {
                        stream_id: arg()?,
                        millis: be32(p.get(6..).unwrap_or_default(), what)?,
                    },
                    4 => UserControl::StreamIsRecorded(arg()?),
                    6 => UserControl::PingRequest(arg()?),
                    7 => UserControl::PingResponse(arg()?),
                    other => UserControl::Other(other),
                })
            }
            _ => return Ok(None),
        }))
    }

    /// Encodes the message: its type id and body.
    pub fn encode(&self) -> (u8, Bytes) {
        let mut b = BytesMut::with_capacity(10);
        let ty = match *self {
            ControlMessage::SetChunkSize(v) => {
                b.put_u32(v);
                SET_CHUNK_SIZE
            }
            ControlMessage::Abort(v) => {
                b.put_u32(v);
                ABORT
            }
            ControlMessage::Acknowledgement(v) => {
                b.put_u32(v);
                ACKNOWLEDGEMENT
            }
            ControlMessage::WindowAckSize(v) => {
                b.put_u32(v);
                WINDOW_ACK_SIZE
            }
            ControlMessage::SetPeerBandwidth { size, limit } => {
                b.put_u32(size);
                b.put_u8(limit);
                SET_PEER_BANDWIDTH
            }
            ControlMessage::UserControl(uc) => {
                let (ty, a, c) = match uc {
                    UserControl::StreamBegin(s) => (0, s, None),
                    UserControl::StreamEof(s) => (1, s, None),
                    UserControl::StreamDry(s) => (2, s, None),
                    UserControl::SetBufferLength { stream_id, millis } => {
                        (3, stream_id, Some(millis))
                    }
                    UserControl::StreamIsRecorded(s) => (4, s, None),
                    UserControl::PingRequest(t) => (6, t, None),
                    UserControl::PingResponse(t) => (7, t, None),
                    UserControl::Other(t) => (t, 0, None),
                };
                b.put_u16(ty);
                b.put_u32(a);
                if let Some(c) = c {
                    b.put_u32(c);
                }
                USER_CONTROL
            }
        };
        (ty, b.freeze())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_all() {
        let all = [
            ControlMessage::SetChunkSize(4096),
            ControlMessage::Abort(4),
            ControlMessage::Acknowledgement(123_456),
            ControlMessage::WindowAckSize(2_500_000),
            ControlMessage::SetPeerBandwidth {
                size: 2_500_000,
                limit: 2,
            },
            ControlMessage::UserControl(UserControl::StreamBegin(1)),
            ControlMessage::UserControl(UserControl::StreamEof(1)),
            ControlMessage::UserControl(UserControl::StreamDry(1)),
            ControlMessage::UserControl(UserControl::SetBufferLength {
                stream_id: 1,
                millis: 3000,
            }),
            ControlMessage::UserControl(UserControl::StreamIsRecorded(1)),
            ControlMessage::UserControl(UserControl::PingRequest(77)),
            ControlMessage::UserControl(UserControl::PingResponse(77)),
        ];
        for m in all {
            let (ty, body) = m.encode();
            assert_eq!(ControlMessage::decode(ty, &body), Ok(Some(m)));
        }
        assert_eq!(ControlMessage::decode(AUDIO, &[]), Ok(None));
    }

    #[test]
    fn invalid_chunk_sizes_and_short_bodies() {
        assert_eq!(
            ControlMessage::decode(SET_CHUNK_SIZE, &[0xff, 0xff, 0xff, 0xff]),
            Err(RtmpError::InvalidChunkSize(u32::MAX))
        );
        assert_eq!(
            ControlMessage::decode(SET_CHUNK_SIZE, &[0, 0, 0, 0]),
            Err(RtmpError::InvalidChunkSize(0))
        );
        assert!(ControlMessage::decode(SET_CHUNK_SIZE, &[0, 1]).is_err());
        assert!(ControlMessage::decode(USER_CONTROL, &[0]).is_err());
        assert!(ControlMessage::decode(USER_CONTROL, &[0, 6, 1]).is_err());
    }
}
