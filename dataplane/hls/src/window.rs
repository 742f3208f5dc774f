//! The sliding window of segments: the one in progress and the completed ones kept.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use weir_cmaf::Rope;

use crate::part::PartOut;

/// A partial segment.
#[derive(Debug, Clone)]
pub(crate) struct Part {
    pub data: Rope,
    pub duration: Duration,
    pub independent: bool,
    /// No video in a stream with video (see `PartOut::gap`).
    pub gap: bool,
}

/// A media segment: complete once `data` holds the concatenation of its parts (pieces
/// shared with the parts, not copies).
#[derive(Debug, Clone)]
pub(crate) struct Segment {
    pub msn: u64,
    /// Index of its init segment (`init-<n>.mp4`).
    pub init: u64,
    /// Carries `EXT-X-DISCONTINUITY`.
    pub discontinuity: bool,
    /// `EXT-X-PROGRAM-DATE-TIME` (UNIX ms).
    pub wallclock_ms: u64,
    pub parts: Vec<Part>,
    pub duration: Duration,
    /// Video samples in it (0: audio only, e.g. while the video track stalled).
    pub video_frames: u64,
    /// Every part is a gap (audio only while the video stalled): `EXT-X-GAP`.
    pub gap: bool,
    pub bytes: usize,
    pub data: Rope,
    /// Decode time of its first master sample (master timescale ticks).
    pub start: u64,
    /// Its master samples' total duration (master timescale ticks).
    pub ticks: u64,
    /// The master track's timescale.
    pub timescale: u32,
}

impl Segment {
    /// Starts with a key frame (its first part is independent).
    pub(crate) fn independent(&self) -> bool {
        self.parts.first().is_none_or(|p| p.independent)
    }

    /// Holds video.
    pub(crate) fn has_video(&self) -> bool {
        self.video_frames > 0
    }
}

/// Segments of the playlist.
#[derive(Debug)]
pub(crate) struct Window {
    /// Completed segments, immutable (shared with snapshots).
    pub closed: VecDeque<Arc<Segment>>,
    pub open: Option<Segment>,
    /// Media sequence number of the segment in progress (or the next one).
    pub next_msn: u64,
    /// `EXT-X-DISCONTINUITY` tags of segments dropped from the window.
    pub evicted_discontinuities: u64,
    /// `EXT-X-TARGETDURATION` in seconds; fixed for the broadcast.
    pub target_duration: u64,
    /// A segment that does not start with a key frame was made in this broadcast.
    pub dependent_cut: bool,
    limit: usize,
}

impl Window {
    /// A window of `limit` complete segments announcing `target_duration` seconds.
    pub(crate) fn new(limit: usize, target_duration: u64) -> Self {
        Self {
            closed: VecDeque::with_capacity(limit + 1),
            open: None,
            next_msn: 0,
            evicted_discontinuities: 0,
            target_duration,
            dependent_cut: false,
            limit,
        }
    }

    /// True before the first part exists.
    pub(crate) fn is_empty(&self) -> bool {
        self.closed.is_empty() && self.open.is_none()
    }

    /// Appends a part to the segment in progress, opening one (with `init`, and taking
    /// `discontinuity`) if none is.
    pub(crate) fn add_part(&mut self, part: PartOut, init: u64, discontinuity: &mut bool) {
        if self.open.is_none() && !part.independent {
            self.dependent_cut = true;
        }
        let seg = self.open.get_or_insert_with(|| Segment {
            msn: self.next_msn,
            init,
            discontinuity: std::mem::take(discontinuity),
            wallclock_ms: part.wallclock_ms,
            parts: Vec::new(),
            duration: Duration::ZERO,
            video_frames: 0,
            gap: false,
            bytes: 0,
            data: Rope::default(),
            start: part.start,
            ticks: 0,
            timescale: part.timescale,
        });
        seg.ticks += part.ticks;
        seg.duration += part.duration;
        seg.video_frames += u64::from(part.video_frames);
        seg.bytes += part.data.len();
        seg.parts.push(Part {
            data: part.data,
            duration: part.duration,
            independent: part.independent,
            gap: part.gap,
        });
        seg.gap = seg.parts.iter().all(|p| p.gap);
    }

    /// Completes the segment in progress and drops segments beyond the window.
    pub(crate) fn close_segment(&mut self) {
        let Some(mut seg) = self.open.take() else {
            return;
        };
        seg.data = Rope::concat(seg.parts.iter().map(|p| &p.data));
        self.closed.push_back(Arc::new(seg));
        self.next_msn += 1;
        while self.closed.len() > self.limit {
            if let Some(old) = self.closed.pop_front() {
                self.evicted_discontinuities += u64::from(old.discontinuity);
            }
        }
    }

    /// Every listed segment (complete or in progress) starts with a key frame.
    pub(crate) fn all_independent(&self) -> bool {
        self.closed
            .iter()
            .map(|s| &**s)
            .chain(self.open.as_ref())
            .all(Segment::independent)
    }

    /// Parts of the segment in progress.
    pub(crate) fn open_parts(&self) -> u64 {
        self.open.as_ref().map_or(0, |s| s.parts.len() as u64)
    }

    /// The lowest init index still referenced.
    pub(crate) fn oldest_init(&self) -> Option<u64> {
        self.closed
            .front()
            .map(|s| s.init)
            .or(self.open.as_ref().map(|s| s.init))
    }

    /// Bytes held by segments and parts.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.closed.iter().map(|s| s.data.len()).sum::<usize>()
            + self.open.as_ref().map_or(0, |s| s.bytes)
    }
}
