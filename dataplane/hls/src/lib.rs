//! LL-HLS packaging and playlist state (sans-IO).
//!
//! A [`LiveStream`] turns the frames of one broadcast into Low-Latency HLS
//! (RFC 8216bis, protocol version 9) objects held in memory as immutable [`bytes::Bytes`]:
//!
//! - `index.m3u8`: the multivariant playlist ([`Snapshot::multivariant_playlist`]).
//! - `media.m3u8`: the media playlist ([`Snapshot::media_playlist`]) with blocking
//!   reload (`_HLS_msn`, `_HLS_part`), delta updates (`_HLS_skip`), parts and a preload
//!   hint; parsed from the request by [`PlaylistQuery::parse`].
//! - `init-<n>.mp4`, `seg-<msn>.m4s`, `part-<msn>-<idx>.m4s` ([`Snapshot::object`]):
//!   CMAF init segments, segments and parts. A part is one CMAF chunk (`moof` + `mdat`
//!   with both tracks, or audio only while video is stalled); a segment is the
//!   concatenation of its parts. Both are [`Rope`]s: the samples' bytes as they came
//!   from ingest are shared, never copied, by parts and segments.
//!
//! Only the default tracks ([`media::TrackId::VIDEO`], [`media::TrackId::AUDIO`]) are
//! packaged by one [`LiveStream`]: frames of tracks with another index are ignored. A
//! broadcast with several renditions (a transcode ladder) runs one `LiveStream` per CMAF
//! track (video-only per rendition, one audio-only) and lists them with
//! [`multivariant_playlist`] (variants sharing an audio group) and
//! [`LiveStream::set_rendition_reports`] (`EXT-X-RENDITION-REPORT`).
//!
//! # Snapshots
//! Viewers never touch the [`LiveStream`]: it renders a [`Snapshot`] once per change (a
//! part added, a segment completed, tracks set, pause, resume, end) and
//! [`LiveStream::snapshot`] hands out the current one in an [`std::sync::Arc`]. A snapshot
//! is immutable and `Send + Sync`; it holds the full and delta playlist texts, the
//! multivariant playlist and the table of objects (reference-counted, not copied), so
//! answering a request is a lookup. [`LiveStream::media_playlist`],
//! [`LiveStream::object`] and [`LiveStream::multivariant_playlist`] answer from the
//! current snapshot.
//!
//! # Positions and waiting
//! A [`Position`] `(msn, part)` says how far the stream has got: the segment in progress
//! and its parts so far; positions only grow and compare lexicographically. No sockets
//! and no clocks here: the caller passes wall-clock time with each frame, and an answer
//! that cannot be given yet is [`PlaylistAnswer::Wait`] / [`ObjectAnswer::Wait`] with
//! the position at which it can: `_HLS_msn=M&_HLS_part=P` and `part-M-P.m4s` wait for
//! `(M, P + 1)`, `_HLS_msn=M` and `seg-M.m4s` for `(M + 1, 0)`. The caller parks each
//! waiter under its position and, when [`LiveStream::push_frame`] reports a change,
//! wakes those whose position [`Snapshot::position`] reached (all of them when the
//! stream ends), which ask the new snapshot again.
//!
//! # Cutting
//! Parts are at most [`HlsConfig::part_target`] long (unless one frame is longer) and
//! start with `INDEPENDENT=YES` when they begin with a key frame. Segments start at video
//! key frames once [`HlsConfig::segment_target`] is reached (audio-only streams cut by
//! time).
//!
//! # Target duration and long GOPs
//! `EXT-X-TARGETDURATION` is [`HlsConfig::target_duration`] rounded up to whole seconds
//! (default 4 s, never below the segment target), announced from the first playlist on
//! and never changed (RFC 8216 forbids changing it; hls.js, AVPlayer and ffmpeg plan
//! their reloads with it); `CAN-SKIP-UNTIL` is six of it. Segments only start at key
//! frames while they can: an encoder whose key frame interval is longer than the target
//! (x264's default keyint 250 is 10 s at 25 fps) gets its segment cut anyway, without a
//! key frame, just before its `EXTINF` would round above the target, so every `EXTINF`
//! rounds to at most `EXT-X-TARGETDURATION` and memory stays bounded. Such a segment's
//! first part has no `INDEPENDENT=YES`, and the segment ends at the next key frame,
//! however short it is then. `EXT-X-INDEPENDENT-SEGMENTS` is only in the media playlist
//! while every listed segment starts with a key frame, and only in the multivariant
//! playlist while no segment of the broadcast was cut that way.
//!
//! # Video stalls
//! Video is the master track; if its frames stop (camera lost, app backgrounded) while
//! audio goes on, the playlist must not freeze. Once more than [`HlsConfig::video_stall`]
//! of audio has arrived since the last video frame (in arrival order, so a publisher
//! whose tracks are stamped seconds apart does not look stalled), the open part and
//! segment are closed and audio becomes the master: audio-only parts (a `moof` with
//! only the audio `traf`) cut by audio time, audio-only segments cut at the segment
//! target. They are listed as gaps in the video: `GAP=YES` on their parts and
//! `EXT-X-GAP` on their segments. Players of a muxed stream cannot play audio without the
//! video it is muxed with (hls.js keeps one SourceBuffer for both, whose buffered range
//! stops where video stops: fed the audio-only parts it stalled for good), so they skip
//! the gap and jump the hole when video returns (checked with hls.js in Chromium); the
//! audio stays fetchable for players that want it. [`Snapshot::video_stalled`] tells.
//! When video comes back, its frames are dropped until a key frame, which closes the
//! audio-only part and segment and starts a new (independent) segment. Every `traf` has
//! its absolute `tfdt`, so the timeline stays continuous without a discontinuity.
//!
//! # Preload hints
//! `EXT-X-PRELOAD-HINT` names the next part of the segment in progress, or part 0 of the
//! next segment. A segment only ends right after a sample went into its last part, so
//! the hinted part always comes to exist, unless the stream ends first: a request waiting
//! on it then gets [`ObjectAnswer::Gone`].
//!
//! # Memory
//! At most [`HlsConfig::window`] complete segments are kept (with the init segments they
//! use), plus the segment in progress and the samples of the open part. A snapshot a
//! viewer still holds keeps the objects it names alive.

mod answer;
mod clock;
mod config;
mod dash;
mod datetime;
mod names;
mod packager;
mod part;
mod playlist;
mod query;
mod snapshot;
mod stream;
mod variant;
mod window;

pub use answer::{ObjectAnswer, ObjectKind, PlaylistAnswer, Position};
pub use config::HlsConfig;
pub use dash::{
    DashManifest, DashRepresentation, Timeline, TimelineEntry, close_mpd, render_mpd_open,
};
pub use datetime::format_iso8601_ms;
pub use names::{MEDIA_PLAYLIST, MULTIVARIANT_PLAYLIST, ObjectName};
pub use playlist::{RenditionReport, VERSION};
pub use query::{MAX_QUERY_LEN, PlaylistQuery, QueryError};
pub use snapshot::{CompleteSegment, Snapshot};
pub use stream::LiveStream;
pub use variant::{AUDIO_GROUP, AudioRendition, VariantInfo, VideoVariant, multivariant_playlist};
pub use weir_cmaf::Rope;

/// The media bus types this crate's API takes ([`media::Frame`], track configs).
pub use weir_media as media;
