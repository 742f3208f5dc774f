//! The bridge between the data-plane node (compio shards) and the control plane (tokio).
//!
//! Shards never wait on the control plane except for a publish authorisation, which is a
//! bounded request/reply over a runtime-free channel. Lifecycle events are queued in
//! order and retried until the control plane takes them, so a control plane (or etcd)
//! outage never stops media, and state converges when it comes back. Viewer counts for
//! the same broadcast are coalesced while queued.

mod backend;
pub mod clips;
pub mod probe;
pub mod relays;
mod remote;
pub mod setup;
pub mod studio;
pub mod studio_remote;
pub mod studio_server;
mod studio_wire;

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use weir_node::{
    BroadcastInfo, RecordingReport, RecordingStart, RelayReport, RelayTarget, RenditionInfo,
    StreamEvents, TranscoderReport,
};

pub use backend::Backend;
pub use remote::Remote;

/// Most events held while the control plane is unreachable.
const MAX_QUEUED: usize = 10_000;
/// Ended broadcasts remembered for late relay reports.
const RECENTLY_ENDED: usize = 256;
/// Heartbeat period and lease.
const HEARTBEAT: Duration = Duration::from_secs(2);
const LEASE: Duration = Duration::from_secs(10);

/// What the control plane says about a channel a key may publish to.
#[derive(Debug, Default)]
pub struct ChannelPolicy {
    /// The channel's id.
    pub channel_id: String,
    /// Playback needs signed URLs.
    pub signed_playback: bool,
    /// The channel's transcode setting (`None`: the node's default).
    pub transcode: Option<bool>,
    /// The channel's recording setting (`None`: the node's default).
    pub record: Option<bool>,
    /// Enabled relay destinations.
    pub destinations: Vec<RelayTarget>,
}

/// What the control plane answered about a stream key.
#[derive(Debug)]
pub enum KeyAnswer {
    /// Allowed, publishing to this channel.
    Channel(ChannelPolicy),
    /// Revoked or unknown.
    Refused,
    /// No answer (control plane or its storage unreachable).
    Unreachable,
}

/// A lifecycle event from the node.
#[derive(Debug, Clone)]
pub enum NodeEvent {
    /// A broadcast began.
    Started(BroadcastInfo, &'static str),
    /// Media is packaged: codecs and dimensions.
    Live(BroadcastInfo, Vec<RenditionInfo>),
    /// A broadcast ended.
    Ended(BroadcastInfo),
    /// Viewers on this node.
    Viewers(BroadcastInfo, u64),
    /// What the broadcast's transcoder does.
    Transcoder(BroadcastInfo, TranscoderReport),
    /// Where a relay of the broadcast stands.
    Relay(BroadcastInfo, RelayReport),
    /// A recording of the broadcast began.
    RecordingStarted(BroadcastInfo, RecordingStart),
    /// A recording is finished (not tied to a live broadcast: also at node start).
    RecordingFinished(RecordingReport),
    /// The retention sweep deleted a recording.
    RecordingDeleted(String),
}

impl NodeEvent {
    /// Whether `self` replaces a queued `other` (only the latest count or transcoder
    /// report of a broadcast matters).
    fn supersedes(&self, other: &NodeEvent) -> bool {
        match (self, other) {
            (NodeEvent::Viewers(a, _), NodeEvent::Viewers(b, _))
            | (NodeEvent::Transcoder(a, _), NodeEvent::Transcoder(b, _)) => {
                a.broadcast_id == b.broadcast_id
            }
            (NodeEvent::Relay(a, x), NodeEvent::Relay(b, y)) => {
                a.broadcast_id == b.broadcast_id && x.destination_id == y.destination_id
            }
            _ => false,
        }
    }
}

enum Msg {
    Authorize {
        key_id: String,
        channel: String,
        reply: oneshot::Sender<KeyAnswer>,
    },
    Event(NodeEvent),
}

/// The node's handle: implements [`StreamEvents`] and asks about keys.
#[derive(Clone)]
pub struct Bridge {
    tx: mpsc::Sender<Msg>,
}

impl Bridge {
    /// Asks the control plane about a key id (its signature was already checked).
    pub async fn authorize(&self, key_id: &str, channel: &str) -> KeyAnswer {
        let (reply, rx) = oneshot::channel();
        let msg = Msg::Authorize {
            key_id: key_id.to_owned(),
            channel: channel.to_owned(),
            reply,
        };
        if self.tx.try_send(msg).is_err() {
            return KeyAnswer::Unreachable;
        }
        rx.await.unwrap_or(KeyAnswer::Unreachable)
    }

    fn send(&self, e: NodeEvent) {
        if self.tx.try_send(Msg::Event(e)).is_err() {
            metrics::counter!("weir_control_events_dropped_total").increment(1);
        }
    }
}

impl StreamEvents for Bridge {
    fn stream_started(&self, b: &BroadcastInfo, protocol: &'static str) {
        self.send(NodeEvent::Started(b.clone(), protocol));
    }
    fn stream_live(&self, b: &BroadcastInfo, renditions: Vec<RenditionInfo>) {
        self.send(NodeEvent::Live(b.clone(), renditions));
    }
    fn stream_ended(&self, b: &BroadcastInfo) {
        self.send(NodeEvent::Ended(b.clone()));
    }
    fn viewers(&self, b: &BroadcastInfo, count: u64) {
        self.send(NodeEvent::Viewers(b.clone(), count));
    }
    fn transcoder(&self, b: &BroadcastInfo, report: TranscoderReport) {
        self.send(NodeEvent::Transcoder(b.clone(), report));
    }
    fn relay(&self, b: &BroadcastInfo, report: RelayReport) {
        self.send(NodeEvent::Relay(b.clone(), report));
    }
    fn recording_started(&self, b: &BroadcastInfo, r: &RecordingStart) {
        self.send(NodeEvent::RecordingStarted(b.clone(), r.clone()));
    }
    fn recording_finished(&self, r: &RecordingReport) {
        self.send(NodeEvent::RecordingFinished(r.clone()));
    }
    fn recording_deleted(&self, recording_id: &str) {
        self.send(NodeEvent::RecordingDeleted(recording_id.to_owned()));
    }
}

/// This node as the control plane sees it.
#[derive(Debug, Clone)]
pub struct NodeIdentity {
    /// Node id.
    pub id: String,
    /// Its HTTP origin address.
    pub address: String,
    /// Shard count.
    pub shards: u32,
    /// Where the control plane reaches this node's studio director, if it runs one.
    pub studio_url: Option<String>,
}

/// Starts the bridge task on the current tokio runtime.
pub fn start(backend: Backend, node: NodeIdentity) -> Bridge {
    let (tx, rx) = mpsc::channel(MAX_QUEUED);
    tokio::spawn(run(backend, node, rx));
    Bridge { tx }
}

/// Whether a failed call should be retried.
#[derive(Debug)]
pub enum CallError {
    /// Unreachable or failing: retry later.
    Transient(String),
    /// Refused for good (unknown channel, bad request): drop the event.
    Permanent(String),
}

struct Loop {
    backend: Backend,
    node: NodeIdentity,
    queue: VecDeque<NodeEvent>,
    streams: HashMap<String, String>,
    /// Broadcasts ended lately (broadcast id, stream id): relays report their last
    /// state after the broadcast's end.
    ended: VecDeque<(String, String)>,
    viewers: HashMap<String, u64>,
    registered: Option<bool>,
}

async fn run(backend: Backend, node: NodeIdentity, mut rx: mpsc::Receiver<Msg>) {
    let mut l = Loop {
        backend,
        node,
        queue: VecDeque::new(),
        streams: HashMap::new(),
        ended: VecDeque::new(),
        viewers: HashMap::new(),
        registered: None,
    };
    let mut tick = tokio::time::interval(HEARTBEAT);
    loop {
        tokio::select! {
            msg = rx.recv() => match msg {
                Some(Msg::Authorize { key_id, channel, reply }) => {
                    let answer = l.backend.authorize(&key_id, &channel).await;
                    let _ = reply.send(answer);
                }
                Some(Msg::Event(e)) => {
                    l.enqueue(e);
                    l.flush().await;
                }
                None => return,
            },
            _ = tick.tick() => {
                l.heartbeat().await;
                l.flush().await;
            }
        }
    }
}

impl Loop {
    fn enqueue(&mut self, e: NodeEvent) {
        self.queue.retain(|q| !e.supersedes(q));
        if self.queue.len() >= MAX_QUEUED {
            metrics::counter!("weir_control_events_dropped_total").increment(1);
            return;
        }
        self.queue.push_back(e);
    }

    async fn flush(&mut self) {
        while let Some(e) = self.queue.front().cloned() {
            match self.apply(&e).await {
                Ok(()) => {
                    self.queue.pop_front();
                }
                Err(CallError::Permanent(why)) => {
                    tracing::debug!(event = ?e, %why, "control plane refused an event");
                    self.queue.pop_front();
                }
                Err(CallError::Transient(why)) => {
                    tracing::debug!(%why, queued = self.queue.len(), "control plane unreachable: events queued");
                    return;
                }
            }
        }
    }

    async fn apply(&mut self, e: &NodeEvent) -> Result<(), CallError> {
        let node = self.node.id.clone();
        match e {
            NodeEvent::Started(b, protocol) => {
                let id = self.backend.started(&b.channel_id, &node, protocol).await?;
                self.streams.insert(b.broadcast_id.clone(), id);
            }
            NodeEvent::Live(b, renditions) => {
                if let Some(id) = self.streams.get(&b.broadcast_id) {
                    self.backend.live(id, renditions).await?;
                }
            }
            NodeEvent::Ended(b) => {
                if let Some(id) = self.streams.get(&b.broadcast_id).cloned() {
                    self.backend.ended(&id).await?;
                    self.streams.remove(&b.broadcast_id);
                    if self.ended.len() >= RECENTLY_ENDED {
                        self.ended.pop_front();
                    }
                    self.ended.push_back((b.broadcast_id.clone(), id));
                }
                self.viewers.remove(&b.broadcast_id);
            }
            NodeEvent::Viewers(b, n) => {
                self.viewers.insert(b.broadcast_id.clone(), *n);
                self.backend.viewers(&b.channel_id, &node, *n).await?;
            }
            NodeEvent::Transcoder(b, report) => {
                if let Some(id) = self.streams.get(&b.broadcast_id) {
                    self.backend.transcoder(id, report).await?;
                }
            }
            NodeEvent::Relay(b, report) => {
                let id = self.streams.get(&b.broadcast_id).or_else(|| {
                    self.ended
                        .iter()
                        .find(|(bid, _)| *bid == b.broadcast_id)
                        .map(|(_, id)| id)
                });
                if let Some(id) = id {
                    self.backend.relay(id, report).await?;
                }
            }
            NodeEvent::RecordingStarted(b, r) => {
                // A broadcast the control plane does not know (a key issued offline for
                // a channel it does not have) is recorded but not listed.
                let id = self.streams.get(&b.broadcast_id).or_else(|| {
                    self.ended
                        .iter()
                        .find(|(bid, _)| *bid == b.broadcast_id)
                        .map(|(_, id)| id)
                });
                if let Some(id) = id {
                    let started = weir_api::RecordingStarted {
                        stream_id: id.clone(),
                        recording_id: r.recording_id.clone(),
                        location: r.path.clone(),
                        playback_url: Some(self.playback_url(&r.playback_path)),
                    };
                    self.backend.recording_started(&started).await?;
                }
            }
            NodeEvent::RecordingFinished(r) => {
                let finished = weir_api::RecordingFinished {
                    recording_id: r.recording_id.clone(),
                    channel_id: r.channel_id.clone(),
                    location: r.path.clone(),
                    playback_url: Some(self.playback_url(&r.playback_path)),
                    started_at: i64::try_from(r.started_ms).unwrap_or(0),
                    duration_ms: r.duration_ms,
                    size_bytes: r.bytes,
                    segments: r.segments,
                };
                self.backend.recording_finished(&finished).await?;
            }
            NodeEvent::RecordingDeleted(id) => self.backend.recording_deleted(id).await?,
        }
        Ok(())
    }

    /// A path on this node's origin as a URL players can fetch.
    fn playback_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.node.address)
    }

    async fn heartbeat(&mut self) {
        let viewers = self.viewers.values().sum();
        let streams = self.streams.len() as u32;
        let ok = match self
            .backend
            .heartbeat(&self.node, streams, viewers, LEASE)
            .await
        {
            Ok(()) => true,
            Err(CallError::Transient(why) | CallError::Permanent(why)) => {
                if self.registered != Some(false) {
                    tracing::warn!(%why, "lost the control plane: media keeps flowing, events are queued");
                }
                false
            }
        };
        match (self.registered, ok) {
            (None, true) => {
                tracing::info!(node = %self.node.id, "registered with the control plane")
            }
            (Some(false), true) => {
                tracing::info!(node = %self.node.id, "re-registered with the control plane")
            }
            _ => {}
        }
        self.registered = Some(ok);
    }
}
