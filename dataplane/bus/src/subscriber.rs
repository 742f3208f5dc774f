//! Subscribers: one bounded queue each, with a stated policy for falling behind.

use std::collections::VecDeque;
use std::sync::Arc;

use event_listener::Event;
use parking_lot::Mutex;
use weir_media::{Frame, TrackId};

use crate::event::{BusEvent, Closed};

/// What happens to a subscriber whose queue is full when a frame arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LagPolicy {
    /// Drop every queued frame, tell the subscriber ([`BusEvent::Skipped`]) and resume
    /// each video track at its next key frame. For outputs that follow live (packagers,
    /// WebRTC viewers, relays).
    SkipToKeyframe,
    /// Close the subscriber ([`Closed::Lagged`]). For outputs that must not miss a frame
    /// (a recorder would rather stop and say so than write a file with holes).
    Disconnect,
}

/// How a subscriber is bounded and what it does when it falls behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubscribeOptions {
    /// The policy when the queue is full.
    pub policy: LagPolicy,
    /// Most frames queued.
    pub max_frames: usize,
    /// Most frame bytes queued (a single frame larger than this is still delivered to an
    /// empty queue).
    pub max_bytes: usize,
}

impl Default for SubscribeOptions {
    fn default() -> Self {
        Self {
            policy: LagPolicy::SkipToKeyframe,
            max_frames: 4096,
            max_bytes: 32 << 20,
        }
    }
}

#[derive(Debug)]
struct Queue {
    items: VecDeque<BusEvent>,
    frames: usize,
    bytes: usize,
    /// Tracks that may deliver their next frame; others wait for a key frame.
    synced: Vec<TrackId>,
    closed: Option<Closed>,
}

/// The part of a subscriber the publisher side holds.
#[derive(Debug)]
pub(crate) struct SubShared {
    queue: Mutex<Queue>,
    ready: Event,
    options: SubscribeOptions,
    /// The receiving side was dropped.
    gone: std::sync::atomic::AtomicBool,
}

/// Keeps at most this many synced track ids per subscriber (more tracks are re-synced at
/// each key frame, which is harmless).
const MAX_SYNCED: usize = 64;

impl SubShared {
    pub(crate) fn new(options: SubscribeOptions) -> Arc<Self> {
        Arc::new(Self {
            queue: Mutex::new(Queue {
                items: VecDeque::new(),
                frames: 0,
                bytes: 0,
                synced: Vec::new(),
                closed: None,
            }),
            ready: Event::new(),
            options,
            gone: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// True once the subscriber is of no more use (receiver dropped or closed).
    pub(crate) fn is_dead(&self) -> bool {
        self.gone.load(std::sync::atomic::Ordering::Relaxed) || self.queue.lock().closed.is_some()
    }

    /// Queues a batch of items under one lock and wakes the receiver once.
    pub(crate) fn deliver<'a>(&self, items: impl IntoIterator<Item = &'a BusEvent>) {
        let mut q = self.queue.lock();
        if q.closed.is_some() {
            return;
        }
        let before = q.items.len();
        for item in items {
            match item {
                BusEvent::Frame(f) => self.offer(&mut q, f),
                BusEvent::Ended => {
                    q.items.push_back(BusEvent::Ended);
                    q.closed = Some(Closed::Ended);
                    break;
                }
                BusEvent::PublisherLeft | BusEvent::Tracks(_) => {
                    // After a gap in the media (new tracks, a new publisher), every
                    // track starts again at a key frame.
                    q.synced.clear();
                    q.items.push_back(item.clone());
                }
                other => q.items.push_back(other.clone()),
            }
            if q.closed.is_some() {
                break;
            }
        }
        let woke = q.items.len() != before || q.closed.is_some();
        drop(q);
        if woke {
            self.ready.notify(usize::MAX);
        }
    }

    /// Queues one frame, applying the key frame rule and the lag policy.
    fn offer(&self, q: &mut Queue, frame: &Frame) {
        if !frame.keyframe && !q.synced.contains(&frame.track) {
            return; // this track resumes at its next key frame
        }
        let len = frame.data.len();
        let full = q.frames > 0
            && (q.frames >= self.options.max_frames || q.bytes + len > self.options.max_bytes);
        if full {
            match self.options.policy {
                LagPolicy::Disconnect => {
                    q.items.clear();
                    (q.frames, q.bytes) = (0, 0);
                    q.closed = Some(Closed::Lagged);
                    metrics::counter!("weir_bus_subscribers_dropped_total").increment(1);
                    return;
                }
                LagPolicy::SkipToKeyframe => {
                    let dropped = q.frames as u64;
                    q.items.retain(|e| !matches!(e, BusEvent::Frame(_)));
                    (q.frames, q.bytes) = (0, 0);
                    q.synced.clear();
                    match q.items.back_mut() {
                        Some(BusEvent::Skipped { frames }) => *frames += dropped,
                        _ => q.items.push_back(BusEvent::Skipped { frames: dropped }),
                    }
                    metrics::counter!("weir_bus_frames_skipped_total").increment(dropped);
                    if !frame.keyframe {
                        return;
                    }
                }
            }
        }
        if !q.synced.contains(&frame.track) && q.synced.len() < MAX_SYNCED {
            q.synced.push(frame.track);
        }
        q.frames += 1;
        q.bytes += len;
        q.items.push_back(BusEvent::Frame(frame.clone()));
    }

    pub(crate) fn queued_bytes(&self) -> usize {
        self.queue.lock().bytes
    }

    fn mark_gone(&self) {
        self.gone.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut q = self.queue.lock();
        q.items.clear();
        (q.frames, q.bytes) = (0, 0);
    }
}

/// The receiving end of a subscription; `Send`, so it may live on any shard or thread.
///
/// Dropping it unsubscribes.
#[derive(Debug)]
pub struct Subscriber {
    shared: Arc<SubShared>,
}

impl Subscriber {
    pub(crate) fn new(shared: Arc<SubShared>) -> Self {
        Self { shared }
    }

    /// The next event, if one is queued. `Err` once the subscription is over and drained.
    pub fn try_recv(&mut self) -> Result<Option<BusEvent>, Closed> {
        let mut q = self.shared.queue.lock();
        match q.items.pop_front() {
            Some(item) => {
                if let BusEvent::Frame(f) = &item {
                    q.frames -= 1;
                    q.bytes -= f.data.len();
                }
                Ok(Some(item))
            }
            None => q.closed.map_or(Ok(None), Err),
        }
    }

    /// Moves every queued event into `out` (one lock). `Err` once the subscription is
    /// over and nothing is left; a final [`BusEvent::Ended`] is still returned as `Ok`.
    pub fn drain_into(&mut self, out: &mut Vec<BusEvent>) -> Result<(), Closed> {
        let mut q = self.shared.queue.lock();
        if q.items.is_empty() {
            return q.closed.map_or(Ok(()), Err);
        }
        out.extend(q.items.drain(..));
        (q.frames, q.bytes) = (0, 0);
        Ok(())
    }

    /// Waits until an event is queued or the subscription is over.
    pub async fn ready(&self) {
        loop {
            let listener = self.shared.ready.listen();
            {
                let q = self.shared.queue.lock();
                if !q.items.is_empty() || q.closed.is_some() {
                    return;
                }
            }
            listener.await;
        }
    }

    /// The next event, waiting for one.
    pub async fn recv(&mut self) -> Result<BusEvent, Closed> {
        loop {
            if let Some(event) = self.try_recv()? {
                return Ok(event);
            }
            self.ready().await;
        }
    }

    /// Bytes of frames waiting in this subscriber's queue.
    pub fn queued_bytes(&self) -> usize {
        self.shared.queued_bytes()
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.shared.mark_gone();
    }
}
