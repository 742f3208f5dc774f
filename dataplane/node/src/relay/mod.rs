//! Relays: a broadcast pushed to RTMP destinations (YouTube, Twitch, any `rtmp://`).
//!
//! Each enabled destination of the channel gets its own task on the shard that admitted
//! the publish, and each task is one bus subscriber. The channel's destinations may
//! change while it is live: the broadcast's supervisor (`supervisor`) starts, stops and
//! reconnects relays to follow them ([`Registry::set_relays`]). Every relay is
//! independent: a destination that is slow, down
//! or refusing never slows the ingest, the viewers or the other destinations (its bus
//! queue is bounded and skips to the next key frame; a write that makes no progress
//! for [`RelayConfig::write_timeout`] cuts the connection). A lost connection is retried
//! with exponential back-off and jitter ([`policy::Backoff`]); internal addresses are
//! refused after DNS resolution on every attempt unless the operator allows them
//! ([`policy::AddressPolicy`]). The state of every relay goes to the control plane
//! ([`crate::StreamEvents::relay`]). Stream keys never reach logs or reports.
//!
//! - [`target`]: destinations and their `rtmp://` URLs;
//! - [`muxer`]: bus events → RTMP media messages (sans-IO), with frame bodies made
//!   once per broadcast and shard (`bodies`) and chunked once
//!   ([`weir_rtmp::SharedBody`]);
//! - [`policy`]: address policy and back-off (sans-IO);
//! - [`pacing`]: when a relay writes (audio rides with the next video frame);
//! - [`tls`]: TLS for `rtmps://` (rustls, sans-IO);
//! - `supervisor`: the relays of one broadcast, following the destination list;
//! - `task`: the driver (DNS, TCP, the RTMP client session, reports).

mod bodies;
pub mod muxer;
pub mod pacing;
pub mod policy;
mod supervisor;
mod target;
mod task;
pub mod tls;

use std::sync::Arc;
use std::time::Duration;

pub use supervisor::{MAX_RELAYS, RelaySlot};
pub use target::{Endpoint, RelayTarget};

use crate::registry::{Registry, Stream};

/// The default of [`RelayConfig::batch`], ms: destinations buffer seconds, and about
/// 17 writes a second instead of ~77 (30 fps + AAC) cost under half the CPU, for at
/// most 60 ms added (the bound is 100 ms; `bench outputs` has 40 and 80 too).
pub const DEFAULT_BATCH_MS: u64 = 60;

/// The default of [`RelayConfig::audio_hold`], ms: above one video frame interval at
/// 24 fps, so at common frame rates audio always rides with video.
pub const DEFAULT_AUDIO_HOLD_MS: u64 = 50;

/// How relays behave (node-wide).
#[derive(Debug, Clone, PartialEq)]
pub struct RelayConfig {
    /// Connect to loopback, private and link-local destinations (off by default: SSRF).
    pub allow_internal: bool,
    /// Longest wait for TCP connect, handshake and `NetStream.Publish.Start`.
    pub connect_timeout: Duration,
    /// A write that makes no progress this long cuts the connection (then it retries).
    pub write_timeout: Duration,
    /// First retry delay; it doubles per failure up to `max_backoff`.
    pub min_backoff: Duration,
    /// Longest retry delay.
    pub max_backoff: Duration,
    /// Most bytes of media queued for one destination before it skips to a key frame.
    pub max_queue_bytes: usize,
    /// Extra CA certificates (PEM) trusted for `rtmps://` besides Mozilla's roots.
    pub ca_file: Option<std::path::PathBuf>,
    /// While media flows, a relay writes what it has once per this long, on a grid
    /// shared by the node's relays (zero: each frame is written as it comes). Fewer
    /// sends and wake-ups cost less CPU and add up to this latency.
    pub batch: Duration,
    /// Audio waits up to this long to go out with the next video frame in one write
    /// (zero: each frame is written as it comes); see [`pacing`].
    pub audio_hold: Duration,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            allow_internal: false,
            connect_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(15),
            min_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
            max_queue_bytes: 8 << 20,
            ca_file: None,
            batch: Duration::from_millis(DEFAULT_BATCH_MS),
            audio_hold: Duration::from_millis(DEFAULT_AUDIO_HOLD_MS),
        }
    }
}

/// Starts the relays of a new broadcast (one task per destination, and the supervisor
/// that follows changes to the list), on the calling shard.
pub fn start(registry: &Arc<Registry>, stream: &Arc<Stream>, targets: Vec<RelayTarget>) {
    stream.relays.supervised(true);
    let supervisor = supervisor::run(registry.clone(), stream.clone(), targets);
    compio::runtime::spawn(supervisor).detach();
}

/// Changes to the destinations of live broadcasts, for the control plane (any thread).
#[derive(Clone)]
pub struct Relays(pub(crate) Arc<Registry>);

impl Relays {
    /// The live broadcast of control-plane channel `channel_id` now relays to exactly
    /// `targets`: new destinations start, removed ones stop (they are told, as at the
    /// end of a broadcast), changed ones reconnect. False when this node relays no live
    /// broadcast of that channel.
    pub fn set(&self, channel_id: &str, targets: Vec<RelayTarget>) -> bool {
        self.0.set_relays(channel_id, targets)
    }
}

impl std::fmt::Debug for Relays {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Relays")
    }
}
