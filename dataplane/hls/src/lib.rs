//! LL-HLS packaging and playlist state (sans-IO).
//!
//! A [`LiveStream`] turns the frames of one broadcast into Low-Latency HLS
//! (RFC 8216bis, protocol version 9) objects held in memory as immutable [`bytes::Bytes`]:
//!
//! - `index.m3u8`: the multivariant playlist ([`LiveStream::multivariant_playlist`]).
//! - `media.m3u8`: the media playlist ([`LiveStream::media_playlist`]) with blocking
//!   reload (`_HLS_msn`, `_HLS_part`), delta updates (`_HLS_skip`), parts and a preload
//!   hint; parsed from the request by [`PlaylistQuery::parse`].
//! - `init-<n>.mp4`, `seg-<msn>.m4s`, `part-<msn>-<idx>.m4s` ([`LiveStream::object`]):
//!   CMAF init segments, segments and parts. A part is one CMAF chunk (`moof` + `mdat`
//!   with both tracks); a segment is the concatenation of its parts. Both are
//!   [`Rope`]s: the samples' bytes as they came from ingest are shared, never copied,
//!   by parts and segments.
//!
//! No sockets and no clocks: the caller passes wall-clock time with each frame, and
//! when an answer is [`PlaylistAnswer::Wait`] / [`ObjectAnswer::Wait`] it waits until
//! [`LiveStream::push_frame`] returns true (or the stream pauses or ends) and asks again.
//!
//! # Cutting
//! Parts are at most [`HlsConfig::part_target`] long (unless one frame is longer) and
//! start with `INDEPENDENT=YES` when they begin with a key frame. Segments start at video
//! key frames once [`HlsConfig::segment_target`] is reached (audio-only streams cut by
//! time), so every segment is independent.
//!
//! # Target duration and long GOPs
//! `EXT-X-TARGETDURATION` starts at the segment target rounded up. Segments only start at
//! key frames, so an encoder whose key frame interval is longer than the target makes
//! longer segments; the target duration then grows to the longest segment (rounded, as
//! RFC 8216bis requires of every `EXTINF`) and never decreases (hls.js, AVPlayer and
//! ffmpeg re-read it on each reload). Splitting such segments is not an option: they
//! could not start with a key frame. A stream without key frames for
//! [`HlsConfig::max_segment`] is cut anyway so memory stays bounded.
//!
//! # Preload hints
//! `EXT-X-PRELOAD-HINT` names the next part of the segment in progress, or part 0 of the
//! next segment. A segment only ends right after a sample went into its last part, so
//! the hinted part always comes to exist, unless the stream ends first: a request waiting
//! on it then gets [`ObjectAnswer::Gone`].
//!
//! # Memory
//! At most [`HlsConfig::window`] complete segments are kept (with the init segments they
//! use), plus the segment in progress and the samples of the open part.

mod answer;
mod clock;
mod config;
mod datetime;
mod names;
mod packager;
mod playlist;
mod query;
mod stream;
mod window;

pub use answer::{ObjectAnswer, ObjectKind, PlaylistAnswer};
pub use config::HlsConfig;
pub use datetime::format_iso8601_ms;
pub use names::{MEDIA_PLAYLIST, MULTIVARIANT_PLAYLIST, ObjectName};
pub use playlist::VERSION;
pub use query::{MAX_QUERY_LEN, PlaylistQuery, QueryError};
pub use stream::LiveStream;
pub use weir_cmaf::Rope;

/// The media bus types this crate's API takes ([`media::Frame`], track configs).
pub use weir_media as media;
