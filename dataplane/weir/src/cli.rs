//! Command-line interface.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// weir — a live-streaming server: RTMP in, LL-HLS out, on a thread-per-core node.
///
/// Quick start:
///   weir serve                          # start the all-in-one node
///   weir key issue my-channel           # get the server URL and stream key for OBS/ffmpeg
///   ffmpeg -re -i in.mp4 -c:v libx264 -c:a aac -f flv rtmp://localhost:1935/live/<key>
///   open http://localhost:8080/live/my-channel/index.m3u8
///   open http://localhost:8090/graphql                # GraphQL API and GraphiQL
///   ws://localhost:8090/v1/chat/my-channel            # chat (JSON over WebSocket)
///
/// Settings: defaults < TOML file (--config) < WEIR_* environment < flags.
#[derive(Debug, Parser)]
#[command(name = "weir", version, about, long_about, verbatim_doc_comment)]
pub struct Cli {
    /// TOML configuration file (see deploy/weir.toml).
    #[arg(long, short, global = true, env = "WEIR_CONFIG")]
    pub config: Option<PathBuf>,

    /// Log filter, e.g. `info`, `debug`, `weir_node=trace`.
    #[arg(long, global = true)]
    pub log: Option<String>,

    /// Node settings that override the config file.
    #[command(flatten)]
    pub node: NodeArgs,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the all-in-one node: ingest, packaging, HTTP origin, GraphQL API, embedded storage.
    Serve,
    /// Run a data-plane node (ingest, packaging, HTTP origin); with --control-plane it
    /// registers there, asks it about keys and reports streams and viewers.
    Dataplane,
    /// Run the control plane (GraphQL API) on etcd, for data-plane nodes.
    Controlplane,
    /// Run only the chat gateway (WS /v1/chat/<channel>) on --chat-listen, against the
    /// control plane's etcd and a Redis shared with the other gateways (--chat-redis).
    Chat,
    /// Issue or revoke stream keys.
    #[command(subcommand)]
    Key(KeyCommand),
}

/// `weir key …`
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Issue a new stream key for a channel and print what OBS needs.
    Issue {
        /// Channel name: 1-64 of A-Z a-z 0-9 _ -.
        channel: String,
    },
    /// Revoke a stream key (give the full key or its id, the middle part).
    Revoke {
        /// The key or key id.
        key: String,
    },
    /// Print the public key that checks this node's keys: give it to data-plane nodes
    /// as `WEIR_STREAM_KEY_PUBLIC` (they check keys with it but cannot mint them).
    Public,
    /// Check a stream key: prints its channel, or why it is refused.
    Verify {
        /// The key.
        key: String,
    },
}

/// Overrides of the `[node]` config table.
#[derive(Debug, Args, Default, Clone)]
pub struct NodeArgs {
    /// RTMP listen address.
    #[arg(long, global = true, env = "WEIR_RTMP_LISTEN")]
    pub rtmp_listen: Option<SocketAddr>,
    /// HTTP listen address.
    #[arg(long, global = true, env = "WEIR_HTTP_LISTEN")]
    pub http_listen: Option<SocketAddr>,
    /// Serve `/metrics` on this address only (e.g. a private one), not on the origin.
    #[arg(long, global = true, env = "WEIR_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Shards (0 = one per core).
    #[arg(long, global = true, env = "WEIR_SHARDS")]
    pub shards: Option<usize>,
    /// I/O backend.
    #[arg(long, global = true, env = "WEIR_IO_BACKEND", value_enum)]
    pub io_backend: Option<Backend>,
    /// State directory (stream key secret, revocations).
    #[arg(long, global = true, env = "WEIR_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Host name used in printed URLs.
    #[arg(long, global = true, env = "WEIR_PUBLIC_HOST")]
    pub public_host: Option<String>,
    /// LL-HLS part target in ms.
    #[arg(long, global = true, env = "WEIR_PART_TARGET_MS")]
    pub part_target_ms: Option<u64>,
    /// Segment target in ms.
    #[arg(long, global = true, env = "WEIR_SEGMENT_TARGET_MS")]
    pub segment_target_ms: Option<u64>,
    /// EXT-X-TARGETDURATION in ms (rounded up to whole seconds, fixed per broadcast);
    /// encoders whose key frames are further apart get segments cut at this length.
    #[arg(long, global = true, env = "WEIR_TARGET_DURATION_MS")]
    pub target_duration_ms: Option<u64>,
    /// Complete segments kept in each playlist's sliding window (memory per stream grows
    /// with it: about window × segment target × bitrate).
    #[arg(long, global = true, env = "WEIR_WINDOW_SEGMENTS")]
    pub window_segments: Option<usize>,
    /// Longest wait (ms) of a publisher's next read while its shard is busy, so reads
    /// carry several frames (0: always read at once).
    #[arg(long, global = true, env = "WEIR_INGEST_BATCH_MAX_MS")]
    pub ingest_batch_max_ms: Option<u64>,
    /// First WebRTC (WHIP/WHEP) UDP port: shard i uses this + i (0: any free ports).
    #[arg(long, global = true, env = "WEIR_WEBRTC_UDP_PORT")]
    pub webrtc_udp_port: Option<u16>,
    /// IPs announced to WebRTC clients as ICE candidates, comma-separated (behind 1:1
    /// NAT: the public IPs; default: the default route's address).
    #[arg(
        long,
        global = true,
        env = "WEIR_WEBRTC_PUBLIC_IPS",
        value_delimiter = ','
    )]
    pub webrtc_public_ips: Option<Vec<std::net::IpAddr>>,
    /// STUN/TURN servers handed to WebRTC clients (Link headers of WHIP/WHEP answers),
    /// comma-separated or repeated: `stun:host:3478`,
    /// `turn:host:3478?transport=udp;username=U;credential=P`, or with coturn's shared
    /// secret `turns:host:5349?transport=tcp;secret=S` (short-lived credentials).
    #[arg(
        long = "webrtc-ice-server",
        global = true,
        env = "WEIR_WEBRTC_ICE_SERVERS",
        value_delimiter = ','
    )]
    pub webrtc_ice_servers: Option<Vec<String>>,
    /// When WHEP viewers estimate their bandwidth (TWCC) and switch simulcast layers by
    /// it: auto (default: only when the source has several layers), on, off. Without
    /// it there is no pacing: a key frame goes out at once (per-frame p99 ~35 → 7–17 ms
    /// in `bench sfu`).
    #[arg(long, global = true, env = "WEIR_WEBRTC_BWE")]
    pub webrtc_bwe: Option<weir_node::Bwe>,
    /// Where the watch page (/watch/<channel>) finds the control plane's API and chat:
    /// a base URL (https://api.example.com) or :PORT on the page's host (default: the
    /// API port of `weir serve`, else :8090).
    #[arg(long, global = true, env = "WEIR_WATCH_API")]
    pub watch_api: Option<String>,
    /// SRT ingest listen address (UDP): `ffmpeg … -f mpegts "srt://HOST:PORT?streamid=<key>"`.
    #[arg(long, global = true, env = "WEIR_SRT_LISTEN")]
    pub srt_listen: Option<std::net::SocketAddr>,
    /// SRT receiver latency in ms that the node asks callers for (the larger of this and
    /// the caller's own wins); more latency recovers more loss.
    #[arg(long, global = true, env = "WEIR_SRT_LATENCY_MS")]
    pub srt_latency_ms: Option<u64>,
    /// Transcode every broadcast into the ladder of `[node.ladder]` (default 1080p/720p/
    /// 480p/360p, never above the source; the source itself on top): viewers get a
    /// multivariant LL-HLS playlist and switch renditions. Needs GStreamer with x264
    /// (or NVENC, chosen at run time).
    #[arg(long, global = true, env = "WEIR_LADDER")]
    pub ladder: Option<bool>,
    /// Rungs of the ladder as `NAME:HEIGHT:KBPS`, comma-separated (e.g.
    /// `720p:720:3000,360p:360:700`); replaces `[node.ladder] rungs`.
    #[arg(long, global = true, env = "WEIR_LADDER_RUNGS", value_delimiter = ',')]
    pub ladder_rungs: Option<Vec<String>>,
    /// Per-title bitrates: each rung's bitrate follows the content's measured
    /// complexity (a still picture gets as little as 0.3 × the rung's KBPS, grain or
    /// sport up to 1.5 ×), re-measured while live; `[node.ladder] per_title`.
    #[arg(long, global = true, env = "WEIR_LADDER_PER_TITLE")]
    pub ladder_per_title: Option<bool>,
    /// RTMP: ms a publishing connection may go without a complete message (bytes that
    /// complete none do not count) before it is closed.
    #[arg(long, global = true, env = "WEIR_RTMP_IDLE_TIMEOUT_MS")]
    pub rtmp_idle_timeout_ms: Option<u64>,
    /// RTMP: ms from accept to an accepted publish (handshake, connect, publish; the
    /// key check's own wait excluded).
    #[arg(long, global = true, env = "WEIR_RTMP_PUBLISH_TIMEOUT_MS")]
    pub rtmp_publish_timeout_ms: Option<u64>,
    /// RTMP: ms a write to the peer may make no progress before the connection is reset.
    #[arg(long, global = true, env = "WEIR_RTMP_WRITE_TIMEOUT_MS")]
    pub rtmp_write_timeout_ms: Option<u64>,
    /// RTMP: largest command or data message in bytes (and, before publishing, any
    /// message); larger ones are refused from their chunk header and close the connection.
    #[arg(long, global = true, env = "WEIR_RTMP_MAX_COMMAND_BYTES")]
    pub rtmp_max_command_bytes: Option<usize>,
    /// RTMP: most concurrent connections per client address (IPv6: per /64); 0: no limit.
    #[arg(long, global = true, env = "WEIR_RTMP_MAX_CONNECTIONS_PER_IP")]
    pub rtmp_max_connections_per_ip: Option<u32>,
    /// RTMP: most concurrent connections on the node.
    #[arg(long, global = true, env = "WEIR_RTMP_MAX_CONNECTIONS_PER_NODE")]
    pub rtmp_max_connections_per_node: Option<usize>,
    /// SRT: most concurrent connections per client address (IPv6: per /64), node-wide;
    /// 0: no limit. Further callers are refused with code 2402.
    #[arg(long, global = true, env = "WEIR_SRT_MAX_CONNECTIONS_PER_IP")]
    pub srt_max_connections_per_ip: Option<u32>,
    /// WebRTC: most concurrent sessions (WHIP and WHEP) per client address (IPv6: per
    /// /64); 0: no limit. Further offers get 503 + Retry-After.
    #[arg(long, global = true, env = "WEIR_WEBRTC_MAX_SESSIONS_PER_IP")]
    pub webrtc_max_sessions_per_ip: Option<u32>,
    /// WebRTC: most concurrent sessions on the node.
    #[arg(long, global = true, env = "WEIR_WEBRTC_MAX_SESSIONS")]
    pub webrtc_max_sessions: Option<usize>,
    /// HTTP: most concurrent connections per shard.
    #[arg(long, global = true, env = "WEIR_HTTP_MAX_CONNECTIONS")]
    pub http_max_connections: Option<usize>,
    /// HTTP: most concurrent connections on the node; more get 503 + Retry-After.
    #[arg(long, global = true, env = "WEIR_HTTP_MAX_CONNECTIONS_PER_NODE")]
    pub http_max_connections_per_node: Option<usize>,
    /// HTTP: most concurrent connections per client address (IPv6: per /64), 0: no
    /// limit; more get 503 + Retry-After. Behind a CDN or reverse proxy raise it or use 0.
    #[arg(long, global = true, env = "WEIR_HTTP_MAX_CONNECTIONS_PER_IP")]
    pub http_max_connections_per_ip: Option<u32>,
    /// HTTP: ms to receive a complete request head and body (from accept, then from a
    /// request's first byte); dribbled bytes do not extend it; late requests get 408.
    #[arg(long, global = true, env = "WEIR_HTTP_HEAD_TIMEOUT_MS")]
    pub http_head_timeout_ms: Option<u64>,
    /// HTTP: ms a keep-alive connection may wait for its next request.
    #[arg(long, global = true, env = "WEIR_HTTP_IDLE_TIMEOUT_MS")]
    pub http_idle_timeout_ms: Option<u64>,
    /// HTTP: ms a response write may make no progress (the viewer stopped reading)
    /// before the connection is reset and its buffers freed.
    #[arg(long, global = true, env = "WEIR_HTTP_WRITE_TIMEOUT_MS")]
    pub http_write_timeout_ms: Option<u64>,
    /// Grace period for a publisher to reconnect, in ms.
    #[arg(long, global = true, env = "WEIR_RECONNECT_GRACE_MS")]
    pub reconnect_grace_ms: Option<u64>,
    /// Memory budget for media in MiB (packaged LL-HLS windows, GOP caches, subscriber
    /// queues): at it, ended broadcasts are dropped early and new publishers refused
    /// (0: half the machine's memory).
    #[arg(long, global = true, env = "WEIR_MEMORY_BUDGET_MB")]
    pub memory_budget_mb: Option<u64>,
    /// Per-publisher bitrate cap in kbit/s, averaged over 5 s, for every ingest
    /// protocol: a publisher over it is disconnected (default 80000; 0: no cap).
    #[arg(long, global = true, env = "WEIR_MAX_PUBLISH_KBPS")]
    pub max_publish_kbps: Option<u64>,
    /// Let a second publisher take a live channel over.
    #[arg(long, global = true, env = "WEIR_PUBLISHER_TAKEOVER")]
    pub publisher_takeover: Option<bool>,
    /// Let relays (multistreaming) connect to loopback, private and link-local
    /// destinations; off by default, since destination URLs come from users
    /// (`[node] relay_allow_internal`).
    #[arg(long, global = true, env = "WEIR_RELAY_ALLOW_INTERNAL")]
    pub relay_allow_internal: Option<bool>,
    /// While media flows, each relay writes once per this many ms (on a grid shared by
    /// the node's relays, so they wake together): less CPU, up to this much more
    /// latency; 0: write each frame as it comes (`[node] relay_batch_ms`, default 60).
    #[arg(long, global = true, env = "WEIR_RELAY_BATCH_MS")]
    pub relay_batch_ms: Option<u64>,
    /// A relay write that makes no progress this many ms cuts the destination, which is
    /// then retried (`[node] relay_write_timeout_ms`, default 15000, at least 1000).
    #[arg(long, global = true, env = "WEIR_RELAY_WRITE_TIMEOUT_MS")]
    pub relay_write_timeout_ms: Option<u64>,
    /// Relays hold audio up to this many ms so it goes out with the next video frame in
    /// one write (fewer sends; video never waits); 0: write every frame at once
    /// (`[node] relay_audio_hold_ms`, default 50).
    #[arg(long, global = true, env = "WEIR_RELAY_AUDIO_HOLD_MS")]
    pub relay_audio_hold_ms: Option<u64>,
    /// Extra CA certificates (PEM) trusted for `rtmps://` destinations besides
    /// Mozilla's roots (`[node] relay_ca_file`).
    #[arg(long, global = true, env = "WEIR_RELAY_CA_FILE")]
    pub relay_ca_file: Option<std::path::PathBuf>,
    /// Record every broadcast to `<data_dir>/recordings/` and serve it as VOD at
    /// `/vod/<recording id>/index.m3u8` (`--record` alone means true).
    #[arg(long, global = true, env = "WEIR_RECORD", num_args = 0..=1, default_missing_value = "true")]
    pub record: Option<bool>,
    /// Delete finished recordings that ended more than this many days ago (0: keep them).
    #[arg(long, global = true, env = "WEIR_RECORD_RETENTION_DAYS")]
    pub record_retention_days: Option<u32>,
    /// Delete the oldest finished recordings while all recordings take more than this
    /// many bytes (0: no limit).
    #[arg(long, global = true, env = "WEIR_RECORD_MAX_BYTES")]
    pub record_max_bytes: Option<u64>,
    /// Copy recordings to this object store, `s3://<bucket>[/<prefix>]` (empty: the local
    /// disk only); credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY.
    #[arg(long, global = true, env = "WEIR_RECORD_STORE")]
    pub record_store: Option<String>,
    /// Endpoint of an S3-compatible server for `--record-store` (empty: AWS).
    #[arg(long, global = true, env = "WEIR_RECORD_STORE_ENDPOINT")]
    pub record_store_endpoint: Option<String>,
    /// Region of the `--record-store` bucket (empty: AWS_REGION, else us-east-1).
    #[arg(long, global = true, env = "WEIR_RECORD_STORE_REGION")]
    pub record_store_region: Option<String>,
    /// Allow a plain-HTTP `--record-store-endpoint` (`--record-store-allow-http` alone
    /// means true).
    #[arg(long, global = true, env = "WEIR_RECORD_STORE_ALLOW_HTTP", num_args = 0..=1, default_missing_value = "true")]
    pub record_store_allow_http: Option<bool>,
    /// Keep recordings' media on the local disk once in the store (default true); false
    /// serves finished, uploaded recordings from the store.
    #[arg(long, global = true, env = "WEIR_RECORD_KEEP_LOCAL")]
    pub record_keep_local: Option<bool>,
    /// GraphQL API listen address (serve, controlplane).
    #[arg(long, global = true, env = "WEIR_API_LISTEN")]
    pub api_listen: Option<SocketAddr>,
    /// etcd endpoints, comma-separated (controlplane).
    #[arg(
        long,
        global = true,
        env = "WEIR_ETCD_ENDPOINTS",
        value_delimiter = ','
    )]
    pub etcd_endpoints: Option<Vec<String>>,
    /// Control plane URL, http://HOST:PORT (dataplane).
    #[arg(long, global = true, env = "WEIR_CONTROL_PLANE")]
    pub control_plane: Option<String>,
    /// GraphQL requests per second allowed per client IP (burst 4×).
    #[arg(long, global = true, env = "WEIR_API_RATE_PER_IP")]
    pub api_rate_per_ip: Option<f64>,
    /// GraphQL requests per second allowed per signed-in user (burst 4×).
    #[arg(long, global = true, env = "WEIR_API_RATE_PER_USER")]
    pub api_rate_per_user: Option<f64>,
    /// Control-plane listeners (API, chat, a node's control listener): most open
    /// connections per client address (IPv6: per /64); 0: no limit.
    #[arg(long, global = true, env = "WEIR_API_MAX_CONNECTIONS_PER_IP")]
    pub api_max_connections_per_ip: Option<u32>,
    /// Control-plane listeners: a request head (and a keep-alive connection's next one),
    /// then its body, must arrive within this many ms, else the connection is closed.
    #[arg(long, global = true, env = "WEIR_API_HEAD_TIMEOUT_MS")]
    pub api_head_timeout_ms: Option<u64>,
    /// Control-plane listeners: a response (or WebSocket message) write that makes no
    /// progress for this many ms ends the connection (a client that stopped reading).
    #[arg(long, global = true, env = "WEIR_API_WRITE_TIMEOUT_MS")]
    pub api_write_timeout_ms: Option<u64>,
    /// Redis through which chat gateways share rooms (serve, controlplane, chat):
    /// `host:port` or `redis://[[user]:password@]host[:port][/db]` (password
    /// percent-encoded; never logged); without it a process's chat rooms are its own.
    #[arg(long, global = true, env = "WEIR_CHAT_REDIS")]
    pub chat_redis: Option<String>,
    /// Listen address of `weir chat`.
    #[arg(long, global = true, env = "WEIR_CHAT_LISTEN")]
    pub chat_listen: Option<SocketAddr>,
    /// Chat messages per second allowed per user, across rooms (burst 5×; default 1).
    #[arg(long, global = true, env = "WEIR_CHAT_RATE_PER_USER")]
    pub chat_rate_per_user: Option<f64>,
    /// Chat messages per second allowed per client IP, across rooms (burst 4×; default 5).
    #[arg(long, global = true, env = "WEIR_CHAT_RATE_PER_IP")]
    pub chat_rate_per_ip: Option<f64>,
    /// Chat websocket connections (and `auth`/`moderate` messages) per second allowed per
    /// client IP (burst 15×; default 2).
    #[arg(long, global = true, env = "WEIR_CHAT_CONNECT_RATE_PER_IP")]
    pub chat_connect_rate_per_ip: Option<f64>,
    /// This node's id in the control plane (dataplane).
    #[arg(long, global = true, env = "WEIR_NODE_ID")]
    pub node_id: Option<String>,
    /// Where a data-plane node takes its control plane's studio calls (compose the
    /// program, go live, end; default 0.0.0.0:8092, port 0 picks one).
    #[arg(long, global = true, env = "WEIR_STUDIO_LISTEN")]
    pub studio_listen: Option<SocketAddr>,
    /// A data-plane node whose control plane is unreachable: `open` lets correctly signed
    /// keys publish (default), `closed` refuses every key until it answers.
    #[arg(long, global = true, env = "WEIR_UNREACHABLE_KEYS")]
    pub unreachable_keys: Option<crate::config::UnreachableKeys>,
}

/// I/O backends selectable on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Backend {
    /// io_uring with automatic epoll fallback.
    Auto,
    /// io_uring only.
    IoUring,
    /// epoll only.
    Epoll,
}
