//! [`TrackSet`]: the tracks of a broadcast and their decoder configurations.

use weir_media::{AudioConfig, TrackConfig, TrackId, TrackKind, VideoConfig};

/// Most tracks one broadcast may carry (renditions and languages together).
pub const MAX_TRACKS: usize = 32;

/// The tracks of a broadcast, ordered by [`TrackId`] (video before audio, then by index).
///
/// A publisher announces the whole set at once ([`crate::Publisher::set_tracks`]), so a
/// subscriber always sees a consistent set: the frames that follow a set belong to its
/// tracks and are decodable with its configurations.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrackSet {
    tracks: Vec<(TrackId, TrackConfig)>,
}

/// A track set was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrackSetError {
    /// More than [`MAX_TRACKS`] tracks.
    #[error("a broadcast carries at most {MAX_TRACKS} tracks")]
    TooMany,
    /// The config's kind does not match the id's kind.
    #[error("track {0} was given a config of the other kind")]
    KindMismatch(TrackId),
}

impl TrackSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces the configuration of track `id`.
    pub fn insert(&mut self, id: TrackId, config: TrackConfig) -> Result<(), TrackSetError> {
        let kind = match config {
            TrackConfig::Video(_) => TrackKind::Video,
            TrackConfig::Audio(_) => TrackKind::Audio,
        };
        if kind != id.kind {
            return Err(TrackSetError::KindMismatch(id));
        }
        match self.tracks.binary_search_by_key(&id, |(i, _)| *i) {
            Ok(at) => self.tracks[at].1 = config,
            Err(_) if self.tracks.len() >= MAX_TRACKS => return Err(TrackSetError::TooMany),
            Err(at) => self.tracks.insert(at, (id, config)),
        }
        Ok(())
    }

    /// Removes track `id`; true when it was there.
    pub fn remove(&mut self, id: TrackId) -> bool {
        match self.tracks.binary_search_by_key(&id, |(i, _)| *i) {
            Ok(at) => {
                self.tracks.remove(at);
                true
            }
            Err(_) => false,
        }
    }

    /// The configuration of track `id`.
    pub fn get(&self, id: TrackId) -> Option<&TrackConfig> {
        self.tracks
            .binary_search_by_key(&id, |(i, _)| *i)
            .ok()
            .map(|at| &self.tracks[at].1)
    }

    /// True when track `id` is in the set.
    pub fn contains(&self, id: TrackId) -> bool {
        self.get(id).is_some()
    }

    /// Every track, in id order.
    pub fn iter(&self) -> impl Iterator<Item = (TrackId, &TrackConfig)> {
        self.tracks.iter().map(|(i, c)| (*i, c))
    }

    /// Number of tracks.
    pub fn len(&self) -> usize {
        self.tracks.len()
    }

    /// True without tracks.
    pub fn is_empty(&self) -> bool {
        self.tracks.is_empty()
    }

    /// The track of `kind` with the lowest index (the default one).
    pub fn first(&self, kind: TrackKind) -> Option<TrackId> {
        self.tracks.iter().map(|(i, _)| *i).find(|i| i.kind == kind)
    }

    /// The video track with the lowest index: the one whose key frames start GOPs in the
    /// cache (see [`crate::Broadcast::subscribe`]).
    pub fn primary_video(&self) -> Option<TrackId> {
        self.first(TrackKind::Video)
    }

    /// The configuration of video track `index`.
    pub fn video(&self, index: u8) -> Option<&VideoConfig> {
        match self.get(TrackId::new(TrackKind::Video, index)) {
            Some(TrackConfig::Video(v)) => Some(v),
            _ => None,
        }
    }

    /// The configuration of audio track `index`.
    pub fn audio(&self, index: u8) -> Option<&AudioConfig> {
        match self.get(TrackId::new(TrackKind::Audio, index)) {
            Some(TrackConfig::Audio(a)) => Some(a),
            _ => None,
        }
    }
}
