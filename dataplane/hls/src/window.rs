//! The sliding window of segments: the one in progress and the completed ones kept.

use std::collections::VecDeque;
use std::time::Duration;

use weir_cmaf::Rope;

use crate::packager::PartOut;

/// A partial segment.
#[derive(Debug, Clone)]
pub(crate) struct Part {
    pub data: Rope,
    pub duration: Duration,
    pub independent: bool,
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
    pub video_frames: u64,
    pub bytes: usize,
    pub data: Rope,
}

/// Segments of the playlist.
#[derive(Debug)]
pub(crate) struct Window {
    pub closed: VecDeque<Segment>,
    pub open: Option<Segment>,
    /// Media sequence number of the segment in progress (or the next one).
    pub next_msn: u64,
    /// `EXT-X-DISCONTINUITY` tags of segments dropped from the window.
    pub evicted_discontinuities: u64,
    /// `EXT-X-TARGETDURATION` in seconds; never decreases.
    pub target_duration: u64,
    limit: usize,
}

impl Window {
    pub(crate) fn new(limit: usize, segment_target: Duration) -> Self {
        Self {
            closed: VecDeque::with_capacity(limit + 1),
            open: None,
            next_msn: 0,
            evicted_discontinuities: 0,
            target_duration: ceil_secs(segment_target).max(1),
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
        let seg = self.open.get_or_insert_with(|| Segment {
            msn: self.next_msn,
            init,
            discontinuity: std::mem::take(discontinuity),
            wallclock_ms: part.wallclock_ms,
            parts: Vec::new(),
            duration: Duration::ZERO,
            video_frames: 0,
            bytes: 0,
            data: Rope::default(),
        });
        seg.duration += part.duration;
        seg.video_frames += u64::from(part.video_frames);
        seg.bytes += part.data.len();
        seg.parts.push(Part {
            data: part.data,
            duration: part.duration,
            independent: part.independent,
        });
    }

    /// Completes the segment in progress and drops segments beyond the window.
    pub(crate) fn close_segment(&mut self) {
        let Some(mut seg) = self.open.take() else {
            return;
        };
        seg.data = Rope::concat(seg.parts.iter().map(|p| &p.data));
        let rounded = (seg.duration.as_nanos() + 500_000_000) / 1_000_000_000;
        self.target_duration = self
            .target_duration
            .max(u64::try_from(rounded).unwrap_or(u64::MAX));
        self.closed.push_back(seg);
        self.next_msn += 1;
        while self.closed.len() > self.limit {
            if let Some(old) = self.closed.pop_front() {
                self.evicted_discontinuities += u64::from(old.discontinuity);
            }
        }
    }

    /// The segment with this media sequence number, if kept (complete or in progress).
    pub(crate) fn segment(&self, msn: u64) -> Option<&Segment> {
        if let Some(open) = self.open.as_ref().filter(|s| s.msn == msn) {
            return Some(open);
        }
        let first = self.closed.front()?.msn;
        let i = usize::try_from(msn.checked_sub(first)?).ok()?;
        self.closed.get(i)
    }

    /// Parts of the segment in progress.
    pub(crate) fn open_parts(&self) -> u64 {
        self.open.as_ref().map_or(0, |s| s.parts.len() as u64)
    }

    /// The lowest init index still referenced.
    pub(crate) fn oldest_init(&self) -> Option<u64> {
        self.closed.front().or(self.open.as_ref()).map(|s| s.init)
    }

    /// Bytes held by segments and parts.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.closed.iter().map(|s| s.data.len()).sum::<usize>()
            + self.open.as_ref().map_or(0, |s| s.bytes)
    }
}

/// Whole seconds, rounded up.
pub(crate) fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}
