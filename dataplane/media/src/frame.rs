//! Frames: one access unit on the bus.

use bytes::Bytes;

/// Ticks per second of every timestamp on the bus (the MPEG 90 kHz clock).
///
/// 90 kHz divides exactly into FLV/RTMP milliseconds (×90), MPEG-TS and RTP video
/// clocks, and Opus 20 ms packets (1800 ticks), so no ingest has to round.
pub const TIMESCALE: u32 = 90_000;

/// Which elementary stream of a broadcast a frame belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TrackKind {
    /// The video track.
    Video,
    /// The audio track.
    Audio,
}

/// Identifies a track within a broadcast: its kind and its index among the broadcast's
/// tracks of that kind (an Enhanced RTMP track id, a rendition of a ladder, an audio
/// language). Index 0 is the default track; most broadcasts have only [`TrackId::VIDEO`]
/// and [`TrackId::AUDIO`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TrackId {
    /// Video or audio.
    pub kind: TrackKind,
    /// Index among the tracks of this kind (0 = default).
    pub index: u8,
}

impl TrackId {
    /// The default video track.
    pub const VIDEO: TrackId = TrackId::new(TrackKind::Video, 0);
    /// The default audio track.
    pub const AUDIO: TrackId = TrackId::new(TrackKind::Audio, 0);

    /// Track `index` of `kind`.
    pub const fn new(kind: TrackKind, index: u8) -> Self {
        Self { kind, index }
    }

    /// True for a video track.
    pub fn is_video(self) -> bool {
        self.kind == TrackKind::Video
    }
}

impl std::fmt::Display for TrackId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let k = match self.kind {
            TrackKind::Video => "video",
            TrackKind::Audio => "audio",
        };
        write!(f, "{k}{}", self.index)
    }
}

/// One access unit, in MP4 sample format, with normalised timestamps.
///
/// Invariants kept by the ingest's [`crate::TimestampNormalizer`]: `dts` never goes
/// backwards within a track and is never negative; `pts - dts` is the composition
/// offset and may be negative (carried as a signed offset, never rewritten).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The track this frame belongs to.
    pub track: TrackId,
    /// Decode timestamp in [`TIMESCALE`] ticks.
    pub dts: i64,
    /// Presentation timestamp in [`TIMESCALE`] ticks.
    pub pts: i64,
    /// True for a random access point (IDR / key frame). Always true for audio.
    pub keyframe: bool,
    /// The sample bytes (see the crate docs for the format per codec).
    pub data: Bytes,
}

impl Frame {
    /// Video or audio.
    pub fn kind(&self) -> TrackKind {
        self.track.kind
    }

    /// The composition offset (`pts - dts`) in ticks; negative offsets are legal.
    pub fn composition_offset(&self) -> i64 {
        self.pts - self.dts
    }
}
