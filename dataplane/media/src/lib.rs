//! The media bus shared by every ingest and every output.
//!
//! Owns: [`Frame`] (one access unit in MP4 sample format, in the bus timebase of
//! [`TIMESCALE`] ticks per second), [`TrackConfig`] (codec, decoder configuration
//! record and dimensions), the [`TimestampNormalizer`] every ingest runs exactly once,
//! and small codec helpers that ingests and outputs need to describe a track (RFC 6381
//! codec strings, dimensions, sample rates): H.264 SPS and avcC, H.265 SPS and hvcC,
//! AAC AudioSpecificConfig, and Annex B ↔ length-prefixed NAL unit framing.
//!
//! Payload formats on the bus are the MP4 sample formats, so packagers never rewrite
//! bytes: H.264/H.265 access units are 4-byte length-prefixed NAL units (AVCC/HVCC),
//! AV1 is a sequence of low-overhead OBUs, AAC is raw (no ADTS), Opus is raw packets.

mod aac;
mod annexb;
mod bits;
mod frame;
mod h264;
mod hevc;
mod timestamp;
mod track;

pub use aac::{AacConfig, AacConfigError};
pub use annexb::{AnnexBNals, annexb_nals, push_length_prefixed};
pub use bits::{BitReader, BitsError, unescape_rbsp};
pub use frame::{Frame, TIMESCALE, TrackId, TrackKind};
pub use h264::{H264Error, ParameterSets, SpsInfo, avcc_record, parse_avcc, parse_sps};
pub use hevc::{HevcError, HevcSpsInfo, hvcc_record, parse_hevc_sps};
pub use timestamp::{NormalizedTime, TimestampNormalizer};
pub use track::{AudioConfig, Codec, TrackConfig, VideoConfig};
