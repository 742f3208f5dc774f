//! Typed errors of the codec engine.

/// Why a ladder could not be planned or started.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The ladder configuration is unusable.
    #[error("invalid ladder configuration: {0}")]
    Config(String),
    /// The source track cannot be transcoded (not H.264, bad avcC, unknown dimensions).
    #[error("unusable source track: {0}")]
    Source(String),
    /// GStreamer could not be initialised.
    #[error("GStreamer init failed: {0}")]
    Init(String),
    /// A GStreamer element the ladder needs is not installed.
    #[error("GStreamer element {0:?} is not installed")]
    MissingElement(&'static str),
    /// No encoder (or decoder) permitted by the choice is available.
    #[error("no usable {what}: {reason}")]
    NoCodec {
        /// "encoder" or "decoder".
        what: &'static str,
        /// What was tried and why it failed.
        reason: String,
    },
    /// Building or linking the pipeline failed.
    #[error("pipeline construction failed: {0}")]
    Pipeline(String),
    /// The pipeline did not reach PLAYING.
    #[error("pipeline did not start: {0}")]
    Start(String),
}

/// Why [`crate::Ladder::push`] did not take a frame. The frame is dropped in every case
/// and counted in [`crate::LadderStats`]; the caller never blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    /// The input queue holds more than `max_input_backlog` of media. The ladder now
    /// waits for the next keyframe before it takes frames again.
    #[error("ladder input queue full")]
    Full,
    /// No keyframe since start or since the last overflow: a decoder cannot use this frame.
    #[error("waiting for a keyframe")]
    AwaitingKeyframe,
    /// Not a video frame, or its timestamps fall before the ladder's time origin.
    #[error("frame refused: {0}")]
    Refused(&'static str),
    /// The ladder has finished, failed or is stopping.
    #[error("ladder closed")]
    Closed,
}
