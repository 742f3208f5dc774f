//! The error type of the FLV layer. Errors are per tag: the stream goes on.

use weir_rtmp::amf0::Amf0Error;

/// Why one FLV tag body could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlvError {
    /// The tag body ended inside a header field.
    #[error("{0} truncated")]
    Truncated(&'static str),
    /// A legacy video codec id other than AVC (7) or HEVC (12).
    #[error("unsupported video codec id {0}")]
    UnsupportedVideoCodec(u8),
    /// An Enhanced RTMP video FourCC we do not carry.
    #[error("unsupported video codec {}", String::from_utf8_lossy(.0))]
    UnsupportedVideoFourCc([u8; 4]),
    /// A legacy SoundFormat other than AAC (10).
    #[error("unsupported audio format {0}")]
    UnsupportedAudioFormat(u8),
    /// An Enhanced RTMP audio FourCC we do not carry.
    #[error("unsupported audio codec {}", String::from_utf8_lossy(.0))]
    UnsupportedAudioFourCc([u8; 4]),
    /// A sequence header whose decoder configuration record is malformed.
    #[error("invalid {codec} configuration record: {reason}")]
    InvalidConfig {
        /// The codec name.
        codec: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// An onMetaData body that is not valid AMF0.
    #[error("invalid script data: {0}")]
    Script(#[from] Amf0Error),
    /// An Enhanced RTMP `AvMultitrackType` other than OneTrack, ManyTracks or
    /// ManyTracksManyCodecs.
    #[error("unsupported multitrack type {0}")]
    UnsupportedMultitrackType(u8),
    /// A tag, or the broadcast, with more tracks of one kind than
    /// [`MAX_TRACKS_PER_KIND`](crate::MAX_TRACKS_PER_KIND).
    #[error("more than {max} {0} tracks", max = crate::MAX_TRACKS_PER_KIND)]
    TooManyTracks(&'static str),
    /// Not an FLV file (bad signature or header).
    #[error("not an FLV file")]
    NotFlv,
}
