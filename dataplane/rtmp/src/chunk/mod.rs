//! The chunk stream: RTMP messages split into chunks and interleaved by chunk stream id.

mod reader;
mod shared;
mod writer;

use bytes::Bytes;

pub use reader::{ChunkReader, MAX_CHUNK_STREAMS, is_command_type};
pub use shared::SharedBody;
pub use writer::{ChunkWriter, chunk_body};

/// The chunk size both sides start with.
pub const DEFAULT_CHUNK_SIZE: u32 = 128;
/// The largest chunk size (the top bit of Set Chunk Size must be zero).
pub const MAX_CHUNK_SIZE: u32 = 0x7FFF_FFFF;
/// The 24-bit timestamp value that says "the real value follows in 4 bytes".
pub const EXTENDED_TIMESTAMP: u32 = 0xFF_FFFF;
/// The largest message length a chunk header can carry (24 bits).
pub const MAX_MESSAGE_LENGTH: usize = 0xFF_FFFF;

/// One reassembled RTMP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtmpMessage {
    /// The chunk stream it arrived on.
    pub csid: u32,
    /// Absolute timestamp in milliseconds (deltas accumulated, wrapping at 2^32).
    pub timestamp: u32,
    /// Message type id (8 audio, 9 video, 20 AMF0 command, …).
    pub type_id: u8,
    /// Message stream id.
    pub stream_id: u32,
    /// The message body.
    pub payload: Bytes,
}
