//! The renditions of a broadcast packaged one CMAF track per playlist (a transcode
//! ladder): what viewers on any shard read.
//!
//! ```text
//! /live/<channel>/index.m3u8                       variants (one per video rendition) + audio group
//! /live/<channel>/<broadcast>/<rendition>/media.m3u8
//! /live/<channel>/<broadcast>/<rendition>/<object>
//! ```
//! Each rendition has its own [`HlsDelivery`] (snapshot, waiters, viewer meter); the
//! packager task (`renditions_task`) publishes the set and re-renders the multivariant
//! playlist when a rendition's measured figures change, so a request is still a lookup.

use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use weir_media::TrackKind;

use crate::delivery::HlsDelivery;

/// The name (URL directory) of the audio rendition.
pub const AUDIO_RENDITION: &str = "audio";

/// One rendition: a CMAF track and its LL-HLS playlist.
#[derive(Debug)]
pub struct Rendition {
    /// Its directory under the broadcast (`720p`, `audio`).
    pub name: String,
    /// Video or audio.
    pub kind: TrackKind,
    /// Its snapshots and waiters.
    pub delivery: HlsDelivery,
}

/// The published renditions of a broadcast and their multivariant playlist.
#[derive(Debug, Clone)]
pub struct RenditionSet {
    /// Video renditions top first, then audio.
    pub list: Vec<Arc<Rendition>>,
    /// `index.m3u8`, rendered when the set or a rendition's figures change.
    pub multivariant: Bytes,
    /// `manifest.mpd` without its `UTCTiming` and closing tag (the origin adds them,
    /// naming its own clock URL), rendered when a segment starts or completes.
    pub mpd: Option<Bytes>,
}

impl RenditionSet {
    /// The rendition named `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<Rendition>> {
        self.list.iter().find(|r| r.name == name)
    }

    /// Viewers: each player fetches one video rendition at a time (and the audio beside
    /// it), so the video renditions' counts add up; audio counts for audio-only ones.
    pub fn viewers(&self) -> u64 {
        let video: u64 = self
            .list
            .iter()
            .filter(|r| r.kind == TrackKind::Video)
            .map(|r| r.delivery.viewers())
            .sum();
        if self.list.iter().any(|r| r.kind == TrackKind::Video) {
            video
        } else {
            self.list.iter().map(|r| r.delivery.viewers()).sum()
        }
    }

    /// Bytes the renditions' current snapshots refer to.
    pub fn memory_bytes(&self) -> usize {
        self.list
            .iter()
            .map(|r| r.delivery.snapshot().memory_bytes())
            .sum()
    }
}

/// Where a broadcast's rendition set is published (None until the packager knows its
/// tracks, and for broadcasts packaged as one muxed playlist).
#[derive(Debug, Default)]
pub struct RenditionSlot {
    current: Mutex<Option<Arc<RenditionSet>>>,
}

impl RenditionSlot {
    /// The current set.
    pub fn get(&self) -> Option<Arc<RenditionSet>> {
        self.current.lock().clone()
    }

    /// Publishes a new set.
    pub fn set(&self, set: RenditionSet) {
        *self.current.lock() = Some(Arc::new(set));
    }
}
