//! The GOP cache: the frames since the last key frame, for subscribers joining late.

use std::collections::VecDeque;

use weir_media::{Frame, TrackId};

/// Frames since the last key frame of the primary video track (see the crate docs).
#[derive(Debug, Default)]
pub(crate) struct GopCache {
    frames: VecDeque<Frame>,
    bytes: usize,
    max_frames: usize,
    max_bytes: usize,
    /// The cache overflowed: nothing is kept until the next key frame.
    overflowed: bool,
}

impl GopCache {
    pub(crate) fn new(max_frames: usize, max_bytes: usize) -> Self {
        Self {
            max_frames,
            max_bytes,
            ..Self::default()
        }
    }

    /// Keeps `frame` if it belongs to the current GOP of `primary` (video broadcasts; an
    /// audio-only broadcast has no GOPs and keeps nothing).
    pub(crate) fn push(&mut self, primary: Option<TrackId>, frame: &Frame) {
        let Some(primary) = primary else {
            return;
        };
        if frame.track == primary && frame.keyframe {
            self.clear();
            self.overflowed = false;
        } else if self.frames.is_empty() || self.overflowed {
            return; // no key frame yet: a joiner could not start here
        }
        if self.frames.len() >= self.max_frames || self.bytes + frame.data.len() > self.max_bytes {
            // A GOP too long to cache: joiners wait for the next key frame instead.
            self.clear();
            self.overflowed = true;
            return;
        }
        self.bytes += frame.data.len();
        self.frames.push_back(frame.clone());
    }

    pub(crate) fn clear(&mut self) {
        self.frames.clear();
        self.bytes = 0;
    }

    pub(crate) fn frames(&self) -> impl Iterator<Item = &Frame> {
        self.frames.iter()
    }

    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }
}
