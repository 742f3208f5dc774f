//! What the node asks of, and tells, the world around it: publish authorisation and
//! stream lifecycle events. The binary implements these (stream keys; the control plane
//! in-process or over HTTP); the node never blocks a shard on them.

use std::future::Future;
use std::pin::Pin;

pub use crate::relay::RelayTarget;

/// A future that runs on the shard that awaits it.
pub type LocalFuture<T> = Pin<Box<dyn Future<Output = T>>>;

/// Who may publish where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishGrant {
    /// The channel's URL name (playback path `/live/<channel>/…`).
    pub channel: String,
    /// The control plane's id of the channel (equal to `channel` without one).
    pub channel_id: String,
    /// Playback of this channel needs a signed URL (see [`PublishAuth::playback_access`]).
    pub signed_playback: bool,
    /// The channel's transcode setting: `Some(true)` runs the ladder, `Some(false)` never
    /// does, `None` follows the node (`[node.ladder] enabled`).
    pub transcode: Option<bool>,
    /// The channel's recording setting: `Some(true)` records its broadcasts, `Some(false)`
    /// never, `None` follows the node (`[node] record`).
    pub record: Option<bool>,
    /// The channel's enabled relay destinations (multistreaming): a new broadcast is
    /// pushed to each of them.
    pub destinations: Vec<RelayTarget>,
}

/// Why a publish was refused; `code` is the RTMP status code sent to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishRefusal {
    /// RTMP `onStatus` code, e.g. `NetStream.Publish.BadName`.
    pub code: &'static str,
    /// Human-readable reason (safe to log and to send: no secrets).
    pub reason: String,
}

/// Decides whether a publisher may publish.
pub trait PublishAuth: Send + Sync + 'static {
    /// Checks the publishing name an RTMP client sent for application `app`.
    /// Implementations must never log the key itself.
    fn authorize(
        &self,
        app: &str,
        stream_name: &str,
    ) -> LocalFuture<Result<PublishGrant, PublishRefusal>>;

    /// For channels with signed playback: what a playlist request's query string
    /// (`exp=…&sig=…`) grants on `channel` now.
    fn playback_access(&self, channel: &str, query: &str) -> PlaybackAccess;
}

/// The verdict on a signed playback URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaybackAccess {
    /// Valid and not expired.
    Allowed,
    /// Genuinely signed but past its expiry: refused, with a reason that says so.
    Expired,
    /// Missing, malformed or forged.
    Denied,
}

/// A broadcast as reported in lifecycle events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BroadcastInfo {
    /// Channel URL name.
    pub channel: String,
    /// Control-plane channel id.
    pub channel_id: String,
    /// This broadcast's id (changes with every new broadcast on the channel).
    pub broadcast_id: String,
}

/// A rendition of a live broadcast, as reported to the control plane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenditionInfo {
    /// Name (`720p`; `source` for a broadcast packaged as it came).
    pub name: String,
    /// RFC 6381 codec strings of its tracks, comma-separated.
    pub codecs: String,
    /// Video width (0: audio only).
    pub width: u32,
    /// Video height (0: audio only).
    pub height: u32,
    /// Nominal bitrate, bit/s (0: not known, e.g. the source passed through).
    pub bitrate: u64,
}

/// One rung of a ladder as reported to the control plane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranscoderRung {
    /// Rendition name (`720p`, `source`).
    pub name: String,
    /// Output width.
    pub width: u32,
    /// Output height.
    pub height: u32,
    /// Video bitrate now, bit/s (nominal or 0 for a passthrough rung).
    pub bitrate: u64,
    /// The source's own frames.
    pub passthrough: bool,
    /// Switched off because the transcoder could not keep up.
    pub dropped: bool,
}

/// What a broadcast's transcoder does, reported when it changes: started, overloaded or
/// recovered, new per-title bitrates, failed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TranscoderReport {
    /// Encoder in use; `None` when the source is passed through.
    pub encoder: Option<String>,
    /// The rungs, top first.
    pub rungs: Vec<TranscoderRung>,
    /// Encoded rungs switched off, from the top.
    pub dropped_rungs: u32,
    /// Why the source is packaged as it came instead of transcoded.
    pub failure: Option<String>,
}

/// Where a relay to one destination stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayState {
    /// Resolving, connecting, handshaking or waiting for `NetStream.Publish.Start`.
    Connecting,
    /// Publishing to the destination.
    Live,
    /// The last attempt failed; another follows after a back-off.
    Retrying,
    /// Given up: the destination cannot be used (bad URL, refused address).
    Failed,
    /// The broadcast ended and the destination was told so.
    Stopped,
}

impl RelayState {
    /// Lower-case name (`live`, `retrying`…), as reported.
    pub fn as_str(self) -> &'static str {
        match self {
            RelayState::Connecting => "connecting",
            RelayState::Live => "live",
            RelayState::Retrying => "retrying",
            RelayState::Failed => "failed",
            RelayState::Stopped => "stopped",
        }
    }
}

/// A relay's state, reported on every change and every few seconds while live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayReport {
    /// The control plane's destination id.
    pub destination_id: String,
    /// Where it stands.
    pub state: RelayState,
    /// Why it is retrying or failed (never contains the stream key).
    pub reason: Option<String>,
    /// Bits per second sent over the last report period (0 unless live).
    pub bitrate: u64,
}

/// A recording began (its directory and index exist on disk).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingStart {
    /// The recording id (also its directory name and its `/vod/<id>/` path).
    pub recording_id: String,
    /// Where it is written on this node.
    pub path: String,
    /// Its playlist on this node's origin, as a path (`/vod/<id>/index.m3u8`).
    pub playback_path: String,
}

/// A recording is finished: its playlist is a VOD with `EXT-X-ENDLIST`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingReport {
    /// The recording id.
    pub recording_id: String,
    /// The control plane's channel id.
    pub channel_id: String,
    /// The broadcast it recorded.
    pub broadcast_id: String,
    /// Where it is on this node.
    pub path: String,
    /// Its playlist path on this node's origin.
    pub playback_path: String,
    /// When it started (UNIX ms).
    pub started_ms: u64,
    /// Media duration of its segments.
    pub duration_ms: u64,
    /// Bytes on disk (init and media segments).
    pub bytes: u64,
    /// Media segments.
    pub segments: u64,
    /// Finished at node start from its index: the node died while recording, and the
    /// segment being written then is lost.
    pub recovered: bool,
}

/// Lifecycle events; implementations must return at once (queue, never block).
pub trait StreamEvents: Send + Sync + 'static {
    /// A publisher was admitted and a new broadcast began (state `starting`).
    fn stream_started(&self, b: &BroadcastInfo, protocol: &'static str);
    /// The broadcast's tracks are known and media is packaged (state `live`), as these
    /// renditions (one for a broadcast packaged as it came; one per rung with a ladder).
    fn stream_live(&self, b: &BroadcastInfo, renditions: Vec<RenditionInfo>);
    /// The broadcast ended (publisher gone past the grace period, or shutdown).
    fn stream_ended(&self, b: &BroadcastInfo);
    /// Current viewers of the broadcast on this node.
    fn viewers(&self, b: &BroadcastInfo, count: u64);
    /// The broadcast's transcoder changed what it does. Only the latest report of a
    /// broadcast matters: implementations may coalesce.
    fn transcoder(&self, b: &BroadcastInfo, report: TranscoderReport) {
        let _ = (b, report);
    }
    /// A relay of the broadcast changed state (or reports its bitrate). Only the latest
    /// report per destination matters: implementations may coalesce.
    fn relay(&self, b: &BroadcastInfo, report: RelayReport) {
        let _ = (b, report);
    }
    /// A recording of the broadcast began.
    fn recording_started(&self, b: &BroadcastInfo, r: &RecordingStart) {
        let _ = (b, r);
    }
    /// A recording is finished (the broadcast ended, or, at node start, a recording whose
    /// node died was finished from its index). Not tied to a live broadcast.
    fn recording_finished(&self, r: &RecordingReport) {
        let _ = r;
    }
    /// The retention sweep deleted a recording from this node's disk.
    fn recording_deleted(&self, recording_id: &str) {
        let _ = recording_id;
    }
}

/// Events go nowhere (a node without a control plane).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoEvents;

impl StreamEvents for NoEvents {
    fn stream_started(&self, _: &BroadcastInfo, _: &'static str) {}
    fn stream_live(&self, _: &BroadcastInfo, _: Vec<RenditionInfo>) {}
    fn stream_ended(&self, _: &BroadcastInfo) {}
    fn viewers(&self, _: &BroadcastInfo, _: u64) {}
}
