//! The data-plane node: thread-per-core shards and the thin drivers around the
//! sans-IO protocol cores.
//!
//! Owns: starting one shard per core (each a single-threaded compio runtime on io_uring,
//! falling back to epoll where io_uring is refused), the SO_REUSEPORT listeners, the RTMP
//! ingest driver (socket ⇄ [`weir_rtmp::ServerSession`] ⇄ [`weir_flv::FlvDemuxer`] ⇄
//! [`weir_bus::Publisher`]), the SRT ingest driver (UDP ⇄ [`weir_srt::SrtListener`] ⇄
//! [`weir_ts::TsDemuxer`] ⇄ bus), the WebRTC driver (WHIP/WHEP over [`weir_webrtc`]), the stream registry shared by all shards (admission,
//! takeover, reconnect grace, lifecycle events), the LL-HLS packager task (a bus
//! subscriber owning its [`weir_hls::LiveStream`]), the HTTP origin serving LL-HLS from
//! memory, and graceful shutdown.
//!
//! Ingest drivers only publish to the bus; outputs only subscribe. The packager renders a
//! [`weir_hls::Snapshot`] once per part; any shard answers any GET from the current
//! snapshot (immutable `Bytes` and ropes) without touching the packager, and a blocked
//! reload is woken only when the part it waits for exists.

mod affinity;
mod budget;
pub mod clips;
mod config;
mod delivery;
#[doc(hidden)]
pub mod fuzzing;
mod gate;
mod hls_task;
mod hooks;
mod http;
mod ingest_cap;
mod ladder_task;
mod limits;
mod metrics_setup;
mod node;
mod pacer;
mod recorder;
mod registry;
mod relay;
mod renditions;
mod renditions_task;
mod rtmp_conn;
mod shard;
mod shutdown;
mod srt;
mod studio;
mod watchdog;
mod webrtc;

pub use clips::{ClipError, ClipMade, Clips};
pub use config::{IoBackend, LadderEncoder, LadderSettings, NodeConfig, RungSetting};
pub use hooks::{
    BroadcastInfo, LocalFuture, NoEvents, PlaybackAccess, PublishAuth, PublishGrant,
    PublishRefusal, RecordingReport, RecordingStart, RelayReport, RelayState, RelayTarget,
    RenditionInfo, StreamEvents, TranscoderReport, TranscoderRung,
};
pub use http::request::{Request, RequestError, RequestParser};
pub use metrics_setup::{install_metrics, render as render_metrics};
pub use node::{Node, NodeError, StartedNode};
pub use relay::policy::AddressPolicy;
pub use relay::tls::{TlsLayer, client_config as relay_tls_config};
pub use relay::{Endpoint, MAX_RELAYS, RelayConfig, RelaySlot, Relays};
pub use shutdown::Shutdown;
pub use studio::{StudioError, StudioHub};
pub use weir_webrtc::Bwe;
