//! [`Broadcast`] and its one [`Publisher`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use weir_media::{Frame, TrackId, TrackKind};

use crate::event::BusEvent;
use crate::gop::GopCache;
use crate::subscriber::{SubShared, SubscribeOptions, Subscriber};
use crate::tracks::TrackSet;

/// Limits of one broadcast.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BusConfig {
    /// Most frames kept in the GOP cache.
    pub gop_cache_frames: usize,
    /// Most frame bytes kept in the GOP cache; a longer GOP is not cached (joiners then
    /// start at the next key frame).
    pub gop_cache_bytes: usize,
    /// Most subscribers of one broadcast.
    pub max_subscribers: usize,
}

impl Default for BusConfig {
    fn default() -> Self {
        Self {
            gop_cache_frames: 2048,
            gop_cache_bytes: 16 << 20,
            max_subscribers: 4096,
        }
    }
}

/// Why a publish or subscribe was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BusError {
    /// Another publisher holds the broadcast (and takeover was not asked for).
    #[error("the broadcast already has a publisher")]
    Busy,
    /// The broadcast ended.
    #[error("the broadcast ended")]
    Ended,
    /// [`BusConfig::max_subscribers`] reached.
    #[error("too many subscribers")]
    TooManySubscribers,
}

#[derive(Debug)]
struct State {
    tracks: Option<Arc<TrackSet>>,
    gop: GopCache,
    subscribers: Vec<Arc<SubShared>>,
    /// Generation of the current publisher (`None`: none publishing).
    publisher: Option<u64>,
    generation: u64,
    ended: bool,
}

#[derive(Debug)]
struct Shared {
    config: BusConfig,
    state: Mutex<State>,
    /// Video track indices (bits) whose key frame an output asked for (see
    /// [`Broadcast::request_keyframe`]); taken by the publisher.
    keyframe_requests: AtomicU64,
    /// Frame payload bytes delivered since the broadcast began (every publisher).
    bytes_published: AtomicU64,
}

/// One broadcast on the bus: its tracks, its GOP cache and its subscribers. Cheap to
/// clone (a handle); `Send + Sync`, shared by every shard.
#[derive(Debug, Clone)]
pub struct Broadcast {
    shared: Arc<Shared>,
}

impl Broadcast {
    /// A broadcast with no publisher and no tracks yet.
    pub fn new(config: BusConfig) -> Self {
        Self {
            shared: Arc::new(Shared {
                config,
                state: Mutex::new(State {
                    tracks: None,
                    gop: GopCache::new(config.gop_cache_frames, config.gop_cache_bytes),
                    subscribers: Vec::new(),
                    publisher: None,
                    generation: 0,
                    ended: false,
                }),
                keyframe_requests: AtomicU64::new(0),
                bytes_published: AtomicU64::new(0),
            }),
        }
    }

    /// Becomes the broadcast's publisher. With `takeover`, a current publisher is
    /// displaced: its handle stops delivering (its frames are ignored from now on).
    pub fn publish(&self, takeover: bool) -> Result<Publisher, BusError> {
        let mut st = self.shared.state.lock();
        if st.ended {
            return Err(BusError::Ended);
        }
        if st.publisher.is_some() && !takeover {
            return Err(BusError::Busy);
        }
        let resumed = st.generation > 0;
        if st.publisher.take().is_some() {
            broadcast_to(&mut st, &[BusEvent::PublisherLeft]);
        }
        st.gop.clear();
        st.generation += 1;
        st.publisher = Some(st.generation);
        let generation = st.generation;
        broadcast_to(&mut st, &[BusEvent::PublisherJoined { resumed }]);
        Ok(Publisher {
            broadcast: self.clone(),
            generation,
            batch: Vec::new(),
        })
    }

    /// A new subscriber. It first receives the current tracks (when known) and the GOP
    /// cache (from the last key frame of the primary video track), then live events.
    pub fn subscribe(&self, options: SubscribeOptions) -> Result<Subscriber, BusError> {
        let mut st = self.shared.state.lock();
        if st.ended {
            return Err(BusError::Ended);
        }
        st.subscribers.retain(|s| !s.is_dead());
        if st.subscribers.len() >= self.shared.config.max_subscribers {
            return Err(BusError::TooManySubscribers);
        }
        let sub = SubShared::new(options);
        let head = st.tracks.clone().map(BusEvent::Tracks);
        let cached: Vec<BusEvent> = st.gop.frames().cloned().map(BusEvent::Frame).collect();
        sub.deliver(head.iter().chain(cached.iter()));
        st.subscribers.push(sub.clone());
        metrics::counter!("weir_bus_subscribes_total").increment(1);
        Ok(Subscriber::new(sub))
    }

    /// Asks the publisher for a key frame of video track `track` (coalesced: many
    /// requests before the publisher looks are one).
    pub fn request_keyframe(&self, track: TrackId) {
        if track.kind == TrackKind::Video && track.index < 64 {
            self.shared
                .keyframe_requests
                .fetch_or(1u64 << track.index, Ordering::Relaxed);
        }
    }

    /// Ends the broadcast: subscribers get [`BusEvent::Ended`], publishing stops.
    pub fn end(&self) {
        let mut st = self.shared.state.lock();
        if st.ended {
            return;
        }
        st.ended = true;
        st.publisher = None;
        st.gop.clear();
        broadcast_to(&mut st, &[BusEvent::Ended]);
        st.subscribers.clear();
    }

    /// Frame payload bytes its publishers delivered so far (what an ingest bitrate
    /// meter reads).
    pub fn bytes_published(&self) -> u64 {
        self.shared.bytes_published.load(Ordering::Relaxed)
    }

    /// True after [`Self::end`].
    pub fn is_ended(&self) -> bool {
        self.shared.state.lock().ended
    }

    /// True while a publisher is publishing.
    pub fn has_publisher(&self) -> bool {
        self.shared.state.lock().publisher.is_some()
    }

    /// The current tracks.
    pub fn tracks(&self) -> Option<Arc<TrackSet>> {
        self.shared.state.lock().tracks.clone()
    }

    /// Live subscribers.
    pub fn subscriber_count(&self) -> usize {
        let mut st = self.shared.state.lock();
        st.subscribers.retain(|s| !s.is_dead());
        st.subscribers.len()
    }

    /// Bytes of frames held for this broadcast: the GOP cache plus every subscriber's
    /// queue (frame payloads are shared, so this is an upper bound of what they pin).
    pub fn memory_bytes(&self) -> usize {
        let st = self.shared.state.lock();
        st.gop.bytes()
            + st.subscribers
                .iter()
                .map(|s| s.queued_bytes())
                .sum::<usize>()
    }
}

/// Delivers `items` to every live subscriber and forgets dead ones.
fn broadcast_to(st: &mut State, items: &[BusEvent]) {
    st.subscribers.retain(|s| {
        if s.is_dead() {
            return false;
        }
        s.deliver(items.iter());
        true
    });
}

/// The publishing side of a broadcast (one at a time). Frames are batched: pushes are
/// delivered to every subscriber at the next [`Publisher::flush`] (one lock per
/// subscriber per batch), at a track change, and when the handle is dropped. A
/// publisher never waits for a subscriber.
///
/// Dropping it tells subscribers [`BusEvent::PublisherLeft`].
#[derive(Debug)]
pub struct Publisher {
    broadcast: Broadcast,
    generation: u64,
    batch: Vec<BusEvent>,
}

impl Publisher {
    /// Announces the broadcast's tracks (all of them). Frames pushed after this belong
    /// to these tracks. The same set again changes nothing.
    pub fn set_tracks(&mut self, tracks: TrackSet) {
        self.flush();
        let mut st = self.broadcast.shared.state.lock();
        if st.publisher != Some(self.generation) {
            return;
        }
        if st.tracks.as_deref() == Some(&tracks) {
            return;
        }
        let tracks = Arc::new(tracks);
        st.tracks = Some(tracks.clone());
        st.gop.clear();
        broadcast_to(&mut st, &[BusEvent::Tracks(tracks)]);
    }

    /// Queues a frame for the next [`Self::flush`]. Frames of tracks not in the current
    /// track set are dropped there.
    pub fn push(&mut self, frame: Frame) {
        self.batch.push(BusEvent::Frame(frame));
    }

    /// The video tracks whose key frame an output asked for since the last call (a
    /// viewer lost pictures). Ingests that can ask their sender (WebRTC PLI) do; those
    /// that cannot (RTMP) ignore it.
    pub fn take_keyframe_requests(&self) -> Vec<TrackId> {
        let bits = self
            .broadcast
            .shared
            .keyframe_requests
            .swap(0, Ordering::Relaxed);
        (0..64u8)
            .filter(|i| bits & (1u64 << i) != 0)
            .map(|i| TrackId::new(TrackKind::Video, i))
            .collect()
    }

    /// Delivers the queued frames to every subscriber and the GOP cache.
    pub fn flush(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let mut st = self.broadcast.shared.state.lock();
        if st.publisher != Some(self.generation) {
            self.batch.clear();
            return; // displaced by a takeover, or the broadcast ended
        }
        let tracks = st.tracks.clone();
        let primary = tracks.as_ref().and_then(|t| t.primary_video());
        self.batch.retain(|e| match (e, &tracks) {
            (BusEvent::Frame(f), Some(t)) => t.contains(f.track),
            _ => false,
        });
        let mut bytes = 0;
        for e in &self.batch {
            if let BusEvent::Frame(f) = e {
                st.gop.push(primary, f);
                bytes += f.data.len() as u64;
            }
        }
        self.broadcast
            .shared
            .bytes_published
            .fetch_add(bytes, Ordering::Relaxed);
        broadcast_to(&mut st, &self.batch);
        self.batch.clear();
    }

    /// True while this handle is the broadcast's publisher (not displaced, not ended).
    pub fn is_current(&self) -> bool {
        self.broadcast.shared.state.lock().publisher == Some(self.generation)
    }

    /// The broadcast published to.
    pub fn broadcast(&self) -> &Broadcast {
        &self.broadcast
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.flush();
        let mut st = self.broadcast.shared.state.lock();
        if st.publisher == Some(self.generation) {
            st.publisher = None;
            st.gop.clear();
            broadcast_to(&mut st, &[BusEvent::PublisherLeft]);
        }
    }
}
