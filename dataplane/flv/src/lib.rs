//! FLV tag bodies (legacy and Enhanced RTMP) → media-bus track configs and frames.
//!
//! RTMP media messages are FLV tag bodies, so the RTMP ingest and FLV files share
//! this crate:
//!
//! - [`video`]: VIDEODATA — legacy AVC (and the HEVC codec id 12 extension), Enhanced
//!   RTMP `ExVideoTagHeader` with `avc1`, `hvc1`, `av01`, `vp09`, ModEx and multitrack
//!   (OneTrack, ManyTracks, ManyTracksManyCodecs: every track is returned).
//! - [`audio`]: AUDIODATA — legacy AAC, Enhanced RTMP `mp4a` and `Opus`, ModEx and
//!   multitrack.
//! - [`script`]: the `onMetaData` fields we use (width, height, frame rate, data rates).
//! - [`FlvDemuxer`]: owns the broadcast's [`weir_media::TimestampNormalizer`] and turns
//!   tags into [`DemuxEvent`]s: a `Track` whenever a track's configuration changes, then
//!   frames whose payloads are zero-copy slices of the tag (AVCC/HVCC length-prefixed NAL
//!   units, AV1 OBUs, raw AAC, Opus packets). Each Enhanced RTMP track id is its own bus
//!   track (`TrackId { kind, index: track_id }`, index 0 outside multitrack tags).
//! - [`mux`]: the reverse, bus tracks and frames → tag bodies (relays to RTMP servers).
//! - [`mod@file`]: an FLV file reader (header and tags), for files and tests.
//!
//! Errors are per tag ([`FlvError`]): the caller logs and goes on with the stream.

pub mod audio;
mod demux;
mod dims;
mod error;
pub mod file;
pub mod fuzzing;
pub mod mux;
mod read;
pub mod script;
pub mod video;

pub use demux::{DemuxEvent, DemuxStats, FlvDemuxer, MAX_TRACKS_PER_KIND};
pub use dims::{av1_dimensions, hevc_dimensions};
pub use error::FlvError;
pub use script::StreamMetadata;
