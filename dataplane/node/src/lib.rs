//! The data-plane node: thread-per-core shards and the thin drivers around the
//! sans-IO protocol cores.
//!
//! Owns: starting one shard per core (each a single-threaded compio runtime on io_uring,
//! falling back to epoll where io_uring is refused), the SO_REUSEPORT listeners, the RTMP
//! ingest driver (socket ⇄ [`weir_rtmp::ServerSession`] ⇄ [`weir_flv::FlvDemuxer`] ⇄
//! [`weir_hls::LiveStream`]), the stream registry shared by all shards, the HTTP origin
//! serving LL-HLS from memory, and graceful shutdown.
//!
//! Packaged media are immutable `Bytes`, so any shard answers any GET; a stream's
//! packager lives behind a mutex that the ingest shard holds for microseconds per frame,
//! and viewers blocked on a playlist reload wait on an `event_listener::Event`.

mod config;
mod gate;
mod hooks;
mod http;
mod metrics_setup;
mod node;
mod pacer;
mod registry;
mod rtmp_conn;
mod shard;
mod shutdown;
mod watchdog;

pub use config::{IoBackend, NodeConfig};
pub use hooks::{
    BroadcastInfo, LocalFuture, NoEvents, PlaybackAccess, PublishAuth, PublishGrant,
    PublishRefusal, StreamEvents,
};
pub use http::request::{Request, RequestError, RequestParser};
pub use metrics_setup::install_metrics;
pub use node::{Node, NodeError, StartedNode};
pub use shutdown::Shutdown;
