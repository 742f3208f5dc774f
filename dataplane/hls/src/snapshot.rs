//! [`Snapshot`]: an immutable view of a [`crate::LiveStream`] at one moment, which
//! viewers read without locking the stream.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use weir_cmaf::Rope;
use weir_media::{AudioConfig, VideoConfig};

use crate::answer::{ObjectAnswer, ObjectKind, PlaylistAnswer, Position};
use crate::config::HlsConfig;
use crate::dash::{Timeline, TimelineEntry};
use crate::names::ObjectName;
use crate::playlist::{self, RenditionReport};
use crate::query::PlaylistQuery;
use crate::variant::VariantInfo;
use crate::window::{Segment, Window};

/// The state of a stream after one change, rendered once: playlist texts, the objects
/// that exist, the live [`Position`].
///
/// [`crate::LiveStream`] renders a new one (in an [`Arc`]) each time its state changes
/// and never per request; [`crate::LiveStream::snapshot`] hands out the current one.
/// Answering from a snapshot is a lookup and a reference-count increment: playlists are
/// [`Bytes`], objects are [`Rope`]s sharing the packaged bytes.
#[derive(Debug)]
pub struct Snapshot {
    position: Position,
    ended: bool,
    video_stalled: bool,
    target_duration: Duration,
    /// The full media playlist; None before the first part.
    media: Option<Bytes>,
    /// The delta update (`_HLS_skip`), when some segments can be skipped.
    delta: Option<Bytes>,
    multivariant: Option<Bytes>,
    variant: Option<VariantInfo>,
    last_part: Option<(u64, u64)>,
    timeline: Timeline,
    inits: Vec<(u64, Bytes)>,
    /// Complete segments kept, consecutive media sequence numbers.
    closed: Vec<Arc<Segment>>,
    /// Parts of the segment in progress (media sequence number `position.msn`).
    open: Vec<Rope>,
    parts_per_segment: u64,
    advance_part_limit: u64,
}

// Shared by every viewer on every shard.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Snapshot>();
};

/// What a snapshot is rendered from.
pub(crate) struct Source<'a> {
    pub config: &'a HlsConfig,
    pub window: &'a Window,
    pub inits: &'a VecDeque<(u64, Bytes)>,
    pub video: Option<&'a VideoConfig>,
    pub audio: Option<&'a AudioConfig>,
    pub ended: bool,
    pub video_stalled: bool,
    pub reports: &'a [RenditionReport],
}

impl Snapshot {
    /// Renders the playlists and collects the objects of `src`.
    pub(crate) fn render(src: &Source<'_>) -> Self {
        let w = src.window;
        let (media, delta) = if w.is_empty() {
            (None, None)
        } else {
            let full = playlist::media_playlist(src.config, w, src.ended, false, src.reports);
            let delta = (playlist::skippable(w) > 0)
                .then(|| playlist::media_playlist(src.config, w, src.ended, true, src.reports));
            (Some(Bytes::from(full)), delta.map(Bytes::from))
        };
        let variant = (src.video.is_some() || src.audio.is_some())
            .then(|| VariantInfo::of(w, src.video, src.audio));
        let multivariant = variant
            .as_ref()
            .map(|info| Bytes::from(playlist::multivariant(src.config, info)));
        let last_part = match &w.open {
            Some(open) if !open.parts.is_empty() => Some((open.msn, open.parts.len() as u64 - 1)),
            _ => w
                .closed
                .back()
                .and_then(|s| Some((s.msn, (s.parts.len() as u64).checked_sub(1)?))),
        };
        let entry = |s: &Segment, complete: bool| TimelineEntry {
            msn: s.msn,
            start: s.start,
            duration: s.ticks,
            wallclock_ms: s.wallclock_ms,
            complete,
        };
        let newest = w.open.as_ref().or(w.closed.back().map(|s| &**s));
        let timeline = Timeline {
            timescale: newest.map_or(0, |s| s.timescale),
            init: newest.map_or(0, |s| s.init),
            entries: w
                .closed
                .iter()
                .map(|s| entry(s, true))
                .chain(w.open.as_ref().map(|s| entry(s, false)))
                .collect(),
        };
        Self {
            timeline,
            position: Position::new(w.next_msn, w.open_parts()),
            ended: src.ended,
            video_stalled: src.video_stalled,
            target_duration: Duration::from_secs(w.target_duration),
            media,
            delta,
            multivariant,
            variant,
            last_part,
            inits: src.inits.iter().cloned().collect(),
            closed: w.closed.iter().cloned().collect(),
            open: w
                .open
                .as_ref()
                .map(|s| s.parts.iter().map(|p| p.data.clone()).collect())
                .unwrap_or_default(),
            parts_per_segment: parts_per_segment(src.config),
            advance_part_limit: advance_part_limit(src.config),
        }
    }

    /// The live position: the segment in progress and how many parts it has.
    pub fn position(&self) -> Position {
        self.position
    }

    /// True once the stream ended (`EXT-X-ENDLIST`): every answer is final.
    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// True while the video track is stalled and segments carry audio only.
    pub fn video_stalled(&self) -> bool {
        self.video_stalled
    }

    /// The announced `EXT-X-TARGETDURATION` (whole seconds, fixed for the broadcast).
    /// Blocking requests give up after three of these.
    pub fn target_duration(&self) -> Duration {
        self.target_duration
    }

    /// The multivariant playlist (`index.m3u8`), or None before tracks are known.
    pub fn multivariant_playlist(&self) -> Option<Bytes> {
        self.multivariant.clone()
    }

    /// What a multivariant playlist says of this rendition (None before tracks are known).
    pub fn variant_info(&self) -> Option<&VariantInfo> {
        self.variant.as_ref()
    }

    /// The segments held, in media time (for a DASH `SegmentTimeline`).
    pub fn timeline(&self) -> &Timeline {
        &self.timeline
    }

    /// The last part that exists: `(msn, part index)`, as an `EXT-X-RENDITION-REPORT`
    /// of this rendition names it (`LAST-MSN`, `LAST-PART`).
    pub fn last_part(&self) -> Option<(u64, u64)> {
        self.last_part
    }

    /// The media playlist (`media.m3u8`) for a request with LL-HLS parameters.
    ///
    /// - `NotReady` until the first part exists.
    /// - After the end, always `Ready`.
    /// - `_HLS_msn=M`: `BadRequest` when M is more than two past the segment in progress;
    ///   `Ready` once segment M is complete or, with `_HLS_part=P`, once part P of it
    ///   exists (a later segment also satisfies); else `Wait` with the position that
    ///   satisfies it. `BadRequest` also when the requested part is further ahead than
    ///   the Advance Part Limit (3 s worth of parts).
    /// - `_HLS_skip`: the delta update replacing segments older than `CAN-SKIP-UNTIL`
    ///   with `EXT-X-SKIP` (the full playlist while nothing can be skipped).
    pub fn media_playlist(&self, query: &PlaylistQuery) -> PlaylistAnswer {
        let Some(full) = &self.media else {
            return PlaylistAnswer::NotReady;
        };
        if !self.ended
            && let Some(msn) = query.msn
        {
            let live = self.position.msn;
            if msn > live.saturating_add(2) {
                return PlaylistAnswer::BadRequest("_HLS_msn is too far ahead");
            }
            if let Some(part) = query.part
                && self.parts_ahead(msn, part) > self.advance_part_limit
            {
                return PlaylistAnswer::BadRequest("_HLS_part is too far ahead");
            }
            let needed = match query.part {
                Some(part) => Position::after_part(msn, part),
                None => Position::after_segment(msn),
            };
            if self.position < needed {
                return PlaylistAnswer::Wait(needed);
            }
        }
        let text = match &self.delta {
            Some(delta) if query.skip => delta,
            _ => full,
        };
        PlaylistAnswer::Ready(text.clone())
    }

    /// An object by its file name (`init-<n>.mp4`, `seg-<msn>.m4s`, `part-<msn>-<i>.m4s`).
    pub fn object(&self, name: &str) -> ObjectAnswer {
        let Some(parsed) = ObjectName::parse(name) else {
            return ObjectAnswer::Gone;
        };
        let live = self.position.msn;
        let waiting = !self.ended;
        match parsed {
            ObjectName::Init(n) => match self.inits.iter().find(|(i, _)| *i == n) {
                Some((_, bytes)) => ObjectAnswer::Ready(bytes.clone().into(), ObjectKind::Init),
                None => ObjectAnswer::Gone,
            },
            ObjectName::Segment(msn) => match self.closed_segment(msn) {
                Some(seg) => ObjectAnswer::Ready(seg.data.clone(), ObjectKind::Segment),
                None if waiting && msn == live => ObjectAnswer::Wait(Position::after_segment(msn)),
                None => ObjectAnswer::Gone,
            },
            ObjectName::Part(msn, idx) => {
                let i = usize::try_from(idx).ok();
                let found = if msn == live {
                    i.and_then(|i| self.open.get(i))
                } else {
                    self.closed_segment(msn)
                        .and_then(|s| s.parts.get(i?))
                        .map(|p| &p.data)
                };
                if let Some(data) = found {
                    return ObjectAnswer::Ready(data.clone(), ObjectKind::Part);
                }
                let next = self.position.part;
                let soon = (msn == live && idx <= next.saturating_add(1))
                    || (msn == live.saturating_add(1) && idx == 0);
                if waiting && soon {
                    ObjectAnswer::Wait(Position::after_part(msn, idx))
                } else {
                    ObjectAnswer::Gone
                }
            }
        }
    }

    /// The parts of segment `msn` so far and whether it is complete: all of them for a
    /// kept complete segment, those made so far for the segment in progress (complete
    /// once the stream ended). None for a segment not held.
    pub fn segment_parts(&self, msn: u64) -> Option<(Vec<Rope>, bool)> {
        if let Some(seg) = self.closed_segment(msn) {
            return Some((seg.parts.iter().map(|p| p.data.clone()).collect(), true));
        }
        (msn == self.position.msn).then(|| (self.open.clone(), self.ended))
    }

    /// The complete segment `msn`, if kept, with what a recorder stores of it (its
    /// bytes are shared with the snapshot, not copied). Complete segments have
    /// consecutive numbers from the oldest kept; the segment in progress is not one.
    pub fn complete_segment(&self, msn: u64) -> Option<CompleteSegment> {
        let s = self.closed_segment(msn)?;
        Some(CompleteSegment {
            msn: s.msn,
            init: s.init,
            discontinuity: s.discontinuity,
            independent: s.independent(),
            gap: s.gap,
            duration: s.duration,
            wallclock_ms: s.wallclock_ms,
            start: s.start,
            timescale: s.timescale,
            data: s.data.clone(),
        })
    }

    /// The media sequence number of the oldest complete segment kept.
    pub fn first_complete(&self) -> Option<u64> {
        self.closed.first().map(|s| s.msn)
    }

    /// Bytes this snapshot refers to: segments, parts, init segments and playlist texts
    /// (mostly shared with the stream and with other snapshots).
    pub fn memory_bytes(&self) -> usize {
        let texts = [&self.media, &self.delta, &self.multivariant]
            .into_iter()
            .flatten()
            .map(Bytes::len)
            .sum::<usize>();
        self.closed.iter().map(|s| s.data.len()).sum::<usize>()
            + self.open.iter().map(Rope::len).sum::<usize>()
            + self.inits.iter().map(|(_, b)| b.len()).sum::<usize>()
            + texts
    }

    /// The complete segment `msn`, if kept.
    fn closed_segment(&self, msn: u64) -> Option<&Segment> {
        let first = self.closed.first()?.msn;
        let i = usize::try_from(msn.checked_sub(first)?).ok()?;
        self.closed.get(i).map(|s| &**s)
    }

    /// How many parts past the newest existing one part `part` of segment `msn` is.
    fn parts_ahead(&self, msn: u64, part: u64) -> u64 {
        let live = self.position.msn;
        if msn < live {
            return 0;
        }
        (msn - live)
            .saturating_mul(self.parts_per_segment)
            .saturating_add(part)
            .saturating_add(1)
            .saturating_sub(self.position.part)
    }
}

/// A complete segment as [`Snapshot::complete_segment`] hands it out.
#[derive(Debug, Clone)]
pub struct CompleteSegment {
    /// Media sequence number.
    pub msn: u64,
    /// Index of its init segment (`init-<n>.mp4`).
    pub init: u64,
    /// It carries `EXT-X-DISCONTINUITY` (the publisher came back, or new tracks).
    pub discontinuity: bool,
    /// It starts with a key frame.
    pub independent: bool,
    /// Audio only while the video stalled (`EXT-X-GAP`).
    pub gap: bool,
    /// Its `EXTINF`.
    pub duration: Duration,
    /// `EXT-X-PROGRAM-DATE-TIME` of its first frame (UNIX ms).
    pub wallclock_ms: u64,
    /// Decode time of its first master sample, in `timescale` ticks.
    pub start: u64,
    /// The master track's timescale.
    pub timescale: u32,
    /// Its bytes (`moof` + `mdat` chunks).
    pub data: Rope,
}

/// Parts in a segment of the target length (rounded up).
fn parts_per_segment(config: &HlsConfig) -> u64 {
    let n = config
        .segment_target
        .as_nanos()
        .div_ceil(config.part_target.as_nanos().max(1));
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// The Advance Part Limit: 3 s worth of parts (at least 3).
fn advance_part_limit(config: &HlsConfig) -> u64 {
    let target = config.part_target.as_nanos().max(1);
    let limit = Duration::from_secs(3).as_nanos().div_ceil(target);
    u64::try_from(limit).unwrap_or(u64::MAX).max(3)
}
