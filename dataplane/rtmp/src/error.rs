//! The error type of the RTMP layer.

/// A fatal error on an RTMP connection: the driver logs it and closes the socket.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RtmpError {
    /// The C0/S0 byte named a protocol version we do not speak.
    #[error("unsupported RTMP version {0} (only version 3, plain RTMP, is supported)")]
    UnsupportedVersion(u8),
    /// A Set Chunk Size of 0 or with the top bit set (a size of 2 GiB or more).
    #[error("invalid chunk size {0}: must be between 1 and 2147483647")]
    InvalidChunkSize(u32),
    /// A message header announced more bytes than the configured limit.
    #[error("message of {len} bytes exceeds the limit of {max} bytes")]
    MessageTooLarge {
        /// The announced message length.
        len: usize,
        /// The configured `max_message_size`.
        max: usize,
    },
    /// A command, data or control message header announced more bytes than the
    /// command limit (checked before the message is buffered).
    #[error(
        "command or data message (type {type_id}) of {len} bytes exceeds the limit of {max} bytes"
    )]
    CommandTooLarge {
        /// The message type id.
        type_id: u8,
        /// The announced message length.
        len: usize,
        /// The limit in force.
        max: usize,
    },
    /// Partially received messages across all chunk streams hold too many bytes.
    #[error("partially received messages exceed the limit of {max} bytes")]
    PendingBytesExceeded {
        /// The configured `max_pending_bytes`.
        max: usize,
    },
    /// The peer used more distinct chunk stream ids than we keep state for.
    #[error("too many chunk streams in use (limit {0})")]
    TooManyChunkStreams(usize),
    /// A compressed chunk header (fmt 1, 2 or 3) on a chunk stream that never had a full one.
    #[error("chunk stream {csid} starts with a fmt {fmt} header; the first chunk must be fmt 0")]
    NoPreviousHeader {
        /// The chunk stream id.
        csid: u32,
        /// The header type used.
        fmt: u8,
    },
    /// A protocol control message whose body is too short or malformed.
    #[error("malformed {0} message")]
    Malformed(&'static str),
}
