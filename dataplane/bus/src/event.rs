//! What a subscriber receives.

use std::sync::Arc;

use weir_media::Frame;

use crate::tracks::TrackSet;

/// One item of a subscriber's stream, in publish order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusEvent {
    /// The broadcast's tracks: the first event a subscriber gets once tracks are known,
    /// and again whenever the publisher changes them. Frames that follow belong to these.
    Tracks(Arc<TrackSet>),
    /// One access unit. Per track, a subscriber's frames start at a key frame and follow
    /// in decode order without holes, except right after [`BusEvent::Skipped`].
    Frame(Frame),
    /// The subscriber fell behind and `frames` frames were dropped for it (policy
    /// [`crate::LagPolicy::SkipToKeyframe`]); each video track resumes at its next key
    /// frame (audio at once).
    Skipped {
        /// Frames dropped.
        frames: u64,
    },
    /// The publisher left; it may come back (then frames follow again, with timestamps
    /// that may restart: the ingest's clock is a new one).
    PublisherLeft,
    /// A publisher started publishing (the first one, or one coming back).
    PublisherJoined {
        /// True when a publisher had published on this broadcast before.
        resumed: bool,
    },
    /// The broadcast ended: nothing follows.
    Ended,
}

/// Why a subscriber receives nothing more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Closed {
    /// The broadcast ended (after [`BusEvent::Ended`]).
    #[error("the broadcast ended")]
    Ended,
    /// The subscriber fell behind with policy [`crate::LagPolicy::Disconnect`].
    #[error("the subscriber fell behind and was dropped")]
    Lagged,
}
