//! A sans-IO MPEG-TS demuxer producing media-bus frames (for the SRT ingest, and any
//! other source of transport stream bytes).
//!
//! Owns: finding 188-byte packets in bytes split anywhere (resync on 0x47 after garbage),
//! PAT/PMT (CRC32-checked, reassembled within bounds), PES reassembly, and turning each
//! elementary stream's access units into bus payloads with their track configuration:
//!
//! | stream type | codec | frame payload | config record |
//! |---|---|---|---|
//! | 0x1B | H.264 | 4-byte length-prefixed NAL units | avcC from the SPS/PPS in the stream |
//! | 0x24 | H.265 | 4-byte length-prefixed NAL units | hvcC from the VPS/SPS/PPS in the stream |
//! | 0x0F | AAC in ADTS | raw AAC (one frame each) | AudioSpecificConfig from the ADTS header |
//! | 0x06 + `Opus` registration | Opus | raw Opus packets | OpusHead from the PMT |
//!
//! Video access units are delimited by PES boundaries (one access unit per PES, as ffmpeg
//! and OBS write; unbounded video PES end at the next payload unit start, so a frame is
//! emitted when the next one begins). Parameter sets are kept out of the samples (the
//! record carries them; a change is a new [`TsEvent::Track`]); access unit delimiters and
//! filler are dropped, SEI kept. A video track starts at its first IDR/IRAP access unit
//! with usable parameter sets.
//!
//! Timestamps are the stream's 33-bit 90 kHz values, **not** unwrapped: the ingest runs
//! [`weir_media::TimestampNormalizer::normalize_90k`] with `dts` and
//! [`composition_offset`]`(dts, pts)`. A PES without DTS has `dts = pts`.
//!
//! Scope and bounds: the first program of the PAT only; at most [`MAX_STREAMS`]
//! elementary streams (track ids in PMT order: the first video is [`TrackId::VIDEO`],
//! further ones index 1.., the same for audio); a PES holds at most [`MAX_PES_SIZE`]
//! bytes and all streams together [`MAX_PES_BUFFERED`]; at most [`MAX_PENDING_EVENTS`]
//! events wait for [`TsDemuxer::poll`]. Anything lost or malformed (continuity gap,
//! discontinuity, bad CRC, oversized PES, unsupported stream, once per PID) is reported
//! as [`TsEvent::Dropped`], and the access unit it touched is dropped whole: no half
//! frame reaches the bus. No input makes it panic.
//!
//! [`TrackId::VIDEO`]: weir_media::TrackId::VIDEO

mod adts;
mod demux;
mod error;
mod es;
mod framer;
pub mod fuzzing;
mod h264;
mod hevc;
mod opus;
mod packet;
mod pes;
mod psi;
mod queue;
#[cfg(test)]
mod testmux;
mod timestamp;
mod video;

use bytes::Bytes;
use weir_media::{TrackConfig, TrackId};

pub use demux::TsDemuxer;
pub use error::{AuError, DropReason, PesError, SectionError};
pub use timestamp::composition_offset;

/// Elementary streams read from the program; further ones are reported and ignored.
pub const MAX_STREAMS: usize = 16;
/// Largest PES packet (one video access unit) collected.
pub const MAX_PES_SIZE: usize = 8 << 20;
/// Largest total of PES bytes held for all streams together.
pub const MAX_PES_BUFFERED: usize = 16 << 20;
/// Events waiting for [`TsDemuxer::poll`] before new ones are dropped.
pub const MAX_PENDING_EVENTS: usize = 1024;

/// What the demuxer produces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TsEvent {
    /// A track's configuration: before its first frame, and again when it changes (new
    /// parameter sets, sample rate...).
    Track {
        /// The track.
        id: TrackId,
        /// Its configuration.
        config: TrackConfig,
    },
    /// One access unit in bus format (see the crate docs).
    Frame {
        /// The track it belongs to (announced by a [`TsEvent::Track`] before).
        track: TrackId,
        /// Decode timestamp: 33-bit, 90 kHz, as in the stream.
        dts: u64,
        /// Presentation timestamp: 33-bit, 90 kHz, as in the stream.
        pts: u64,
        /// A random access point (IDR / IRAP; always true for audio).
        keyframe: bool,
        /// The payload.
        data: Bytes,
    },
    /// Something was lost or malformed; the affected access unit was dropped.
    Dropped {
        /// What and where.
        reason: DropReason,
    },
}
