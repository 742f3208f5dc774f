//! The bridge between the data-plane node (compio shards) and the control plane (tokio).
//!
//! Shards never wait on the control plane except for a publish authorisation, which is a
//! bounded request/reply over a runtime-free channel. Lifecycle events are queued in
//! order and retried until the control plane takes them, so a control plane (or etcd)
//! outage never stops media, and state converges when it comes back. Viewer counts for
//! the same broadcast are coalesced while queued; relay reports of a broadcast are
//! gathered for [`RELAY_GATHER`] and go to the control plane as one write (a broadcast
//! relayed to hundreds of destinations would otherwise write its stream record
//! hundreds of times every few seconds).

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
/// How long relay reports wait to go with the broadcast's others.
pub const RELAY_GATHER: Duration = Duration::from_millis(250);
/// Most relay reports in one call (within the control plane's body limit).
const RELAYS_PER_CALL: usize = 64;

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
    /// Where relays of the broadcast stand (one per destination, the latest).
    Relays(BroadcastInfo, Vec<RelayReport>),
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
        self.send(NodeEvent::Relays(b.clone(), vec![report]));
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
    /// Relay reports are queued: flush by then.
    relays_due: Option<tokio::time::Instant>,
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
        relays_due: None,
    };
    let mut tick = tokio::time::interval(HEARTBEAT);
    loop {
        let relays_due = l.relays_due;
        let gathered = async move {
            match relays_due {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            msg = rx.recv() => match msg {
                Some(Msg::Authorize { key_id, channel, reply }) => {
                    let answer = l.backend.authorize(&key_id, &channel).await;
                    let _ = reply.send(answer);
                }
                Some(Msg::Event(NodeEvent::Relays(b, reports))) => l.gather_relays(b, reports),
                Some(Msg::Event(e)) => {
                    l.enqueue(e);
                    l.flush().await;
                }
                None => return,
            },
            () = gathered => l.flush().await,
            _ = tick.tick() => {
                l.heartbeat().await;
                l.flush().await;
            }
        }
    }
}

/// `reports` into `list`: a destination already there gets its newer report.
fn merge_reports(list: &mut Vec<RelayReport>, reports: Vec<RelayReport>) {
    for r in reports {
        match list
            .iter_mut()
            .find(|x| x.destination_id == r.destination_id)
        {
            Some(x) => *x = r,
            None => list.push(r),
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

    /// Queues relay reports with the broadcast's last queued ones (the latest per
    /// destination wins), to be flushed within [`RELAY_GATHER`].
    fn gather_relays(&mut self, b: BroadcastInfo, reports: Vec<RelayReport>) {
        let last = self.queue.iter_mut().rev().find_map(|q| match q {
            NodeEvent::Relays(qb, list) if qb.broadcast_id == b.broadcast_id => Some(list),
            _ => None,
        });
        match last {
            Some(list) if list.len() < RELAYS_PER_CALL => merge_reports(list, reports),
            _ => self.enqueue(NodeEvent::Relays(b, reports)),
        }
        self.relays_due
            .get_or_insert_with(|| tokio::time::Instant::now() + RELAY_GATHER);
    }

    async fn flush(&mut self) {
        self.relays_due = None;
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
            NodeEvent::Relays(b, reports) => {
                let id = self.streams.get(&b.broadcast_id).or_else(|| {
                    self.ended
                        .iter()
                        .find(|(bid, _)| *bid == b.broadcast_id)
                        .map(|(_, id)| id)
                });
                if let Some(id) = id {
                    self.backend.relays(id, reports).await?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use weir_node::RelayState;

    fn report(dest: &str, state: RelayState, bitrate: u64) -> RelayReport {
        RelayReport {
            destination_id: dest.into(),
            state,
            reason: None,
            bitrate,
        }
    }

    #[test]
    fn gathered_relay_reports_keep_the_latest_per_destination() {
        let mut list = vec![report("a", RelayState::Connecting, 0)];
        merge_reports(&mut list, vec![report("b", RelayState::Live, 7)]);
        merge_reports(&mut list, vec![report("a", RelayState::Live, 9)]);
        merge_reports(&mut list, vec![report("b", RelayState::Stopped, 0)]);
        let got: Vec<(&str, &str, u64)> = list
            .iter()
            .map(|r| (r.destination_id.as_str(), r.state.as_str(), r.bitrate))
            .collect();
        assert_eq!(got, [("a", "live", 9), ("b", "stopped", 0)]);
    }
}
