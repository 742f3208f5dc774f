//! The media bus: where every ingest publishes and every output subscribes.
//!
//! A [`Broadcast`] is one live stream: a [`TrackSet`] (any number of video and audio
//! tracks: a ladder's renditions, an OBS multitrack stream, audio languages) and a stream
//! of [`Frame`](weir_media::Frame)s, written by exactly one [`Publisher`] and read by any
//! number of [`Subscriber`]s, on any shard or thread. This crate owns the fan-out, the
//! bounds and the GOP cache; it never looks inside a frame's bytes.
//!
//! # What an ingest must provide
//! - **Tracks before frames.** [`Publisher::set_tracks`] with the complete set (every
//!   track's decoder configuration) before the frames that need it; a changed set
//!   (new SPS, a track added) is announced the same way. Frames of tracks outside the
//!   current set are dropped.
//! - **Normalised timestamps, per track**: dts in [`TIMESCALE`](weir_media::TIMESCALE)
//!   ticks, never negative, strictly increasing per track; composition offsets carried
//!   (they may be negative); tracks of one broadcast on one timeline, so that equal
//!   times are simultaneous. [`weir_media::TimestampNormalizer`] does this for
//!   millisecond clocks; an ingest runs it once and nothing downstream fixes times.
//! - **MP4 sample formats**: length-prefixed NAL units, raw AAC, OBUs, raw Opus.
//! - `keyframe` set on random access points (every audio frame is one).
//! - Frames in decode order per track; tracks interleaved roughly in time (a track may
//!   lag another, e.g. audio stamped behind video, but each track is in order).
//! - Batches: [`Publisher::push`] then [`Publisher::flush`] once per read from the
//!   network, so subscribers are woken once per batch, not per frame.
//!
//! Authentication, admission (who may publish where) and lifecycle reporting are the
//! node's, around the ingest; a driver only parses its protocol and publishes.
//!
//! # What an output may assume
//! - Its first event is [`BusEvent::Tracks`] (as soon as tracks are known), and every
//!   change of tracks comes as a new `Tracks` before the frames that need it.
//! - A subscriber joining mid-stream starts at the last key frame of the primary video
//!   track (the video track with the lowest index) with the frames since (the GOP cache,
//!   bounded by [`BusConfig`]); per track, its frames start at a key frame.
//! - Per track, frames come in decode order without holes, except after
//!   [`BusEvent::Skipped`] (it fell behind; see [`LagPolicy`]) and across
//!   [`BusEvent::PublisherLeft`] / [`BusEvent::PublisherJoined`] (the publisher
//!   reconnected: timestamps of the new publisher restart on its own clock; every track
//!   resumes at a key frame).
//! - [`BusEvent::Ended`] is the last event.
//!
//! # Bounds
//! Every subscriber is a bounded queue ([`SubscribeOptions`]: frames and bytes). When a
//! frame would overflow it, its [`LagPolicy`] applies at once, on the publisher's side:
//! skip to the next key frame, or disconnect. A slow subscriber therefore never grows
//! memory, never makes the publisher wait, and never delays other subscribers. The GOP
//! cache is bounded the same way (a GOP that does not fit is not cached).
//!
//! # Threads
//! Everything is `Send + Sync`; a subscriber is woken through an
//! [`event_listener::Event`], so it can be awaited from any runtime (the shards' compio
//! loops, a codec thread with a blocking executor).

mod broadcast;
mod event;
mod gop;
mod subscriber;
mod tracks;

pub use broadcast::{Broadcast, BusConfig, BusError, Publisher};
pub use event::{BusEvent, Closed};
pub use subscriber::{LagPolicy, SubscribeOptions, Subscriber};
pub use tracks::{MAX_TRACKS, TrackSet, TrackSetError};

// Shared by every shard: the handles must be Send + Sync.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Broadcast>();
    assert_send_sync::<Publisher>();
    assert_send_sync::<Subscriber>();
};
