//! Why data was dropped: the typed reasons of [`TsEvent::Dropped`](crate::TsEvent).

use weir_media::TrackId;

use crate::MAX_STREAMS;

/// Something was lost or malformed; the affected access unit was dropped (never a half
/// frame reaches the bus). Each reason names the PID or track it concerns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DropReason {
    /// Bytes that were not MPEG-TS packets were skipped to find the 0x47 sync byte again.
    #[error("{skipped} bytes skipped to find the TS sync byte")]
    Resync {
        /// How many bytes.
        skipped: usize,
    },
    /// A packet flagged `transport_error_indicator` (corrupted on the way): ignored, and
    /// the PES in progress on its PID dropped.
    #[error("PID {pid}: packet with the transport error indicator set")]
    TransportError {
        /// The packet's PID.
        pid: u16,
    },
    /// The continuity counter jumped: packets of this PID were lost.
    #[error("PID {pid}: continuity counter {got}, expected {expected}: packets lost")]
    Continuity {
        /// The PID.
        pid: u16,
        /// The counter that should have come.
        expected: u8,
        /// The counter that came.
        got: u8,
    },
    /// The adaptation field signalled a discontinuity in the middle of a PES.
    #[error("PID {pid}: discontinuity indicator inside a PES")]
    Discontinuity {
        /// The PID.
        pid: u16,
    },
    /// A PES packet grew past its bound ([`MAX_PES_SIZE`](crate::MAX_PES_SIZE), or all
    /// streams together past [`MAX_PES_BUFFERED`](crate::MAX_PES_BUFFERED)).
    #[error("PID {pid}: PES packet larger than {limit} bytes")]
    PesTooLarge {
        /// The PID.
        pid: u16,
        /// The bound it hit.
        limit: usize,
    },
    /// A PES packet was malformed or ended early.
    #[error("PID {pid}: {error}")]
    MalformedPes {
        /// The PID.
        pid: u16,
        /// What was wrong.
        error: PesError,
    },
    /// A PAT or PMT section was unusable.
    #[error("PID {pid}: {error}")]
    Section {
        /// The PID.
        pid: u16,
        /// What was wrong.
        error: SectionError,
    },
    /// An elementary stream type the demuxer does not handle (once per PID and PMT).
    #[error("PID {pid}: stream type {stream_type:#04x} is not supported")]
    Unsupported {
        /// The elementary stream's PID.
        pid: u16,
        /// Its PMT `stream_type`.
        stream_type: u8,
    },
    /// The program has more elementary streams than the demuxer keeps.
    #[error("PID {pid}: more than {MAX_STREAMS} elementary streams in the program")]
    TooManyStreams {
        /// The stream left out.
        pid: u16,
    },
    /// A scrambled (encrypted) packet: its payload cannot be read (once per PID).
    #[error("PID {pid}: scrambled packets")]
    Scrambled {
        /// The PID.
        pid: u16,
    },
    /// An access unit that could not be turned into a bus frame.
    #[error("{track}: {error}")]
    AccessUnit {
        /// The track.
        track: TrackId,
        /// What was wrong.
        error: AuError,
    },
    /// Access units before a video track's first random access point (parameter sets
    /// and an IDR/IRAP picture) were skipped; reported when that point comes.
    #[error("{track}: {frames} access units before the first key frame skipped")]
    BeforeKeyframe {
        /// The track.
        track: TrackId,
        /// How many access units.
        frames: u32,
    },
    /// Events were discarded because [`poll`](crate::TsDemuxer::poll) was not called
    /// often enough (see [`MAX_PENDING_EVENTS`](crate::MAX_PENDING_EVENTS)).
    #[error("{events} events dropped: the event queue was full")]
    QueueFull {
        /// How many events.
        events: usize,
    },
}

/// What was wrong with a PES packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PesError {
    /// No `00 00 01` start code, or a stream id without the optional PES header.
    #[error("PES packet without a start code or PES header")]
    StartCode,
    /// The optional header is longer than the packet.
    #[error("PES header truncated")]
    Header,
    /// The packet ended (next PES, end of input) before its declared length.
    #[error("PES packet shorter than its declared length")]
    Truncated,
}

/// What was wrong with a PSI section.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SectionError {
    /// The CRC32 did not match.
    #[error("section CRC32 mismatch")]
    Crc,
    /// The section's fields were inconsistent or out of range.
    #[error("malformed section")]
    Malformed,
}

/// What was wrong with an access unit's payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuError {
    /// A PES without PTS where none can be inferred.
    #[error("access unit without a timestamp")]
    NoTimestamp,
    /// A parameter set (SPS, PPS, VPS) that cannot be parsed or does not fit a record.
    #[error("unusable parameter set")]
    ParameterSet,
    /// An ADTS frame header was malformed or the frame was truncated.
    #[error("malformed ADTS frame")]
    Adts,
    /// ADTS with channel configuration 0 (an in-band PCE) or several raw data blocks.
    #[error("unsupported ADTS frame (PCE or several raw data blocks)")]
    AdtsUnsupported,
    /// A malformed Opus-in-TS control header or Opus packet.
    #[error("malformed Opus access unit")]
    Opus,
}
