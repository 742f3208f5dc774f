//! Starting a node: bind listeners, spawn one shard per core, report what runs where.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

use crate::config::NodeConfig;
use crate::hooks::{PublishAuth, StreamEvents};
use crate::limits::ConnLimits;
use crate::registry::Registry;
use crate::rtmp_conn::RtmpContext;
use crate::shard::{self, ShardSpec};
use crate::shutdown::Shutdown;

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// A shard failed to start (e.g. io_uring forced but refused).
    #[error("{0}")]
    Shard(String),
    /// The configuration cannot be used.
    #[error("{0}")]
    Config(String),
}

/// The data-plane node.
#[derive(Debug)]
pub struct Node;

/// A running node.
#[derive(Debug)]
pub struct StartedNode {
    /// Where RTMP listens (port resolved).
    pub rtmp_addr: SocketAddr,
    /// Where HTTP listens (port resolved).
    pub http_addr: SocketAddr,
    /// Where SRT listens (UDP, port resolved).
    pub srt_addr: SocketAddr,
    /// Each shard's WebRTC UDP address, by shard index.
    pub webrtc_addrs: Vec<SocketAddr>,
    /// The addresses announced to WebRTC clients as candidates.
    pub webrtc_public_ips: Vec<std::net::IpAddr>,
    /// The I/O driver of each shard, by shard index.
    pub drivers: Vec<&'static str>,
    /// The transcode ladder's rungs (`720p 3000k`), empty when off.
    pub ladder: Vec<String>,
    /// The studio: composed programs (for the control plane's director).
    pub studio: crate::studio::StudioHub,
    /// Clips of the node's recordings (for the control plane's clip maker).
    pub clips: Arc<crate::clips::Clips>,
    /// Destination changes of live broadcasts (for the control plane).
    pub relays: crate::relay::Relays,
    /// Where `/metrics` is served when not on the origin (`metrics_listen`).
    pub metrics_addr: Option<SocketAddr>,
    threads: Vec<std::thread::JoinHandle<()>>,
    recorder: Option<Arc<crate::recorder::Recorder>>,
}

impl StartedNode {
    /// Waits for every shard to finish (after shutdown is triggered).
    pub fn join(self) {
        for t in self.threads {
            let _ = t.join();
        }
        // What the shards handed the writer (the last segments) reaches the disk.
        if let Some(r) = self.recorder {
            r.close();
        }
    }
}

fn listener(addr: SocketAddr) -> Result<std::net::TcpListener, NodeError> {
    let bind = |addr: SocketAddr| -> std::io::Result<std::net::TcpListener> {
        let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        s.set_reuse_address(true)?;
        s.set_reuse_port(true)?;
        s.set_nonblocking(true)?;
        s.bind(&addr.into())?;
        s.listen(1024)?;
        Ok(s.into())
    };
    bind(addr).map_err(|source| NodeError::Bind { addr, source })
}

/// Fails when another process already holds `addr`: SO_REUSEPORT would otherwise let a
/// second node bind the same port and take half of its connections (the kernel spreads
/// them over every socket of the group). A bind without SO_REUSEPORT is refused while
/// any socket holds the port, then is closed before the shards bind theirs.
fn ensure_port_free(addr: SocketAddr, kind: Type) -> Result<(), NodeError> {
    if addr.port() == 0 {
        return Ok(());
    }
    let probe = || -> std::io::Result<()> {
        let protocol = if kind == Type::STREAM {
            Protocol::TCP
        } else {
            Protocol::UDP
        };
        let s = Socket::new(Domain::for_address(addr), kind, Some(protocol))?;
        if kind == Type::STREAM {
            // Connections of an earlier run in TIME_WAIT do not make the port busy.
            s.set_reuse_address(true)?;
        }
        s.bind(&addr.into())
    };
    probe().map_err(|source| NodeError::Bind { addr, source })
}

/// Binds `n` SO_REUSEPORT listeners on one address (port 0 resolves once, for all),
/// after checking that no other process holds it.
fn listeners(
    addr: SocketAddr,
    n: usize,
) -> Result<(SocketAddr, Vec<std::net::TcpListener>), NodeError> {
    ensure_port_free(addr, Type::STREAM)?;
    let first = listener(addr)?;
    let actual = first
        .local_addr()
        .map_err(|source| NodeError::Bind { addr, source })?;
    let mut all = vec![first];
    for _ in 1..n {
        all.push(listener(actual)?);
    }
    Ok((actual, all))
}

/// Binds shard `i`'s WebRTC socket: `port + i`, or any free port with port 0.
fn udp_socket(ip: std::net::IpAddr, port: u16, i: usize) -> Result<std::net::UdpSocket, NodeError> {
    let port = if port == 0 {
        0
    } else {
        port.saturating_add(u16::try_from(i).unwrap_or(u16::MAX))
    };
    let addr = SocketAddr::new(ip, port);
    let bind = || -> std::io::Result<std::net::UdpSocket> {
        let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
        s.set_nonblocking(true)?;
        // Room for bursts: a key frame for many viewers leaves at once.
        let _ = s.set_send_buffer_size(4 << 20);
        let _ = s.set_recv_buffer_size(4 << 20);
        s.bind(&addr.into())?;
        Ok(s.into())
    };
    bind().map_err(|source| NodeError::Bind { addr, source })
}

/// Binds `n` SO_REUSEPORT UDP sockets on one address for SRT (port 0 resolves once).
/// The kernel hashes each caller's address to one socket, so a connection stays on one
/// shard.
fn srt_sockets(
    addr: SocketAddr,
    n: usize,
) -> Result<(SocketAddr, Vec<std::net::UdpSocket>), NodeError> {
    let bind = |addr: SocketAddr| -> std::io::Result<std::net::UdpSocket> {
        let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
        s.set_reuse_port(true)?;
        s.set_nonblocking(true)?;
        let _ = s.set_recv_buffer_size(4 << 20);
        s.bind(&addr.into())?;
        Ok(s.into())
    };
    ensure_port_free(addr, Type::DGRAM)?;
    let first = bind(addr).map_err(|source| NodeError::Bind { addr, source })?;
    let actual = first
        .local_addr()
        .map_err(|source| NodeError::Bind { addr, source })?;
    let mut all = vec![first];
    for _ in 1..n {
        all.push(bind(actual).map_err(|source| NodeError::Bind {
            addr: actual,
            source,
        })?);
    }
    Ok((actual, all))
}

/// The addresses WebRTC clients are told to reach: configured, the bind address, or the
/// source address of the default route (found without sending anything), else loopback.
fn announced_ips(config: &NodeConfig) -> Vec<std::net::IpAddr> {
    if !config.webrtc_public_ips.is_empty() {
        return config.webrtc_public_ips.clone();
    }
    if !config.webrtc_bind_ip.is_unspecified() {
        return vec![config.webrtc_bind_ip];
    }
    let routed = std::net::UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| s.connect("192.0.2.1:9").map(|_| s))
        .and_then(|s| s.local_addr())
        .map(|a| a.ip())
        .ok()
        .filter(|ip| !ip.is_unspecified());
    vec![routed.unwrap_or(std::net::IpAddr::from([127, 0, 0, 1]))]
}

impl Node {
    /// Binds the listeners and starts the shards; returns once every shard runs.
    pub fn start(
        config: &NodeConfig,
        auth: Arc<dyn PublishAuth>,
        events: Arc<dyn StreamEvents>,
        shutdown: Shutdown,
    ) -> Result<StartedNode, NodeError> {
        let n = config.shard_count();
        let (rtmp_addr, rtmp) = listeners(config.rtmp_listen, n)?;
        let (http_addr, http) = listeners(config.http_listen, n)?;
        let metrics_addr = match config.metrics_listen {
            Some(addr) => {
                let l = std::net::TcpListener::bind(addr).map_err(|e| {
                    NodeError::Config(format!("metrics_listen {addr}: cannot listen: {e}"))
                })?;
                let local = l.local_addr().ok();
                crate::metrics_setup::serve_separately(l)
                    .map_err(|e| NodeError::Config(format!("metrics listener thread: {e}")))?;
                local
            }
            None => None,
        };
        let (srt_addr, srt) = srt_sockets(config.srt_listen, n)?;
        let mut registry = Registry::new(
            config.hls(),
            Duration::from_millis(config.reconnect_grace_ms),
            Duration::from_millis(config.ended_retention_ms),
            config.publisher_takeover,
            events.clone(),
        );
        let budget = crate::budget::MemoryBudget::from_mb(config.memory_budget_mb);
        tracing::info!(
            "memory budget for media and connection buffers: {} MiB ([node] memory_budget_mb; at it new publishers are refused)",
            budget.limit() >> 20
        );
        registry.set_memory_budget(budget);
        registry.set_publish_cap(config.max_publish_kbps);
        registry.set_relay(config.relay());
        registry.set_watch_api(config.watch_api.clone());
        registry.set_ingest(format!(":{}", rtmp_addr.port()));
        // Always open: a channel may ask for recording on a node that does not record
        // by default, and recordings of earlier runs are served and finished.
        let recorder = crate::recorder::Recorder::open(config.recording(), events)
            .map_err(|e| NodeError::Config(format!("[node] record: {e}")))?;
        registry.set_recorder(recorder.clone(), config.record);
        let clips = crate::clips::Clips::new(
            config.recording().root.with_file_name("clips"),
            recorder.clone(),
            config.clip_max_ms,
        );
        registry.set_clips(clips.clone());
        let ladder_config = config
            .ladder
            .codec_config()
            .map_err(|e| NodeError::Config(format!("[node.ladder]: {e}")))?;
        let ladder = if config.ladder.enabled {
            weir_codec::cpu_ladder_available().map_err(|e| {
                NodeError::Config(format!(
                    "[node.ladder] is enabled but the codec engine is not usable: {e} \
                     (install gstreamer1.0-plugins-base/good/bad/ugly and gstreamer1.0-libav)"
                ))
            })?;
            ladder_config
                .rungs
                .iter()
                .map(|r| format!("{} {}k", r.name, r.video_bitrate_kbps))
                .collect()
        } else {
            Vec::new()
        };
        registry.set_ladder(ladder_config, config.ladder.enabled);
        let registry = Arc::new(registry);
        let rtmp_ctx = Arc::new(RtmpContext {
            registry: registry.clone(),
            auth,
            app: config.rtmp_app.clone(),
            idle_timeout: Duration::from_millis(config.rtmp_idle_timeout_ms.max(1000)),
            publish_timeout: Duration::from_millis(config.rtmp_publish_timeout_ms.max(100)),
            write_timeout: Duration::from_millis(config.rtmp_write_timeout_ms.max(100)),
            // Room for a `connect` with a long tcUrl and flash-era properties.
            max_command_bytes: config.rtmp_max_command_bytes.max(4096),
            limits: ConnLimits::new(
                "rtmp",
                config.rtmp_max_connections_per_ip,
                config.rtmp_max_connections_per_node,
            ),
            shutdown: shutdown.clone(),
        });
        let mut udp = Vec::with_capacity(n);
        for i in 0..n {
            udp.push(udp_socket(
                config.webrtc_bind_ip,
                config.webrtc_udp_port,
                i,
            )?);
        }
        let webrtc_addrs = udp
            .iter()
            .map(|s| s.local_addr())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| NodeError::Shard(format!("WebRTC socket: {e}")))?;
        let webrtc_public_ips = announced_ips(config);
        let ice_servers = config
            .webrtc_ice_servers
            .iter()
            .map(|s| s.parse::<crate::webrtc::ice_servers::IceServer>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| NodeError::Config(e.to_string()))?;
        let webrtc = crate::shard::WebrtcSpec {
            ice_servers: ice_servers.into(),
            public_ips: webrtc_public_ips.clone(),
            settings: weir_webrtc::RtcSettings {
                bandwidth_estimation: config.webrtc_bwe,
                ..weir_webrtc::RtcSettings::new(Vec::new())
            },
            directory: Arc::default(),
            limits: ConnLimits::new(
                "webrtc",
                config.webrtc_max_sessions_per_ip,
                config.webrtc_max_sessions,
            ),
        };
        let srt_limits = ConnLimits::new(
            "srt",
            config.srt_max_connections_per_ip,
            config.srt_max_connections.saturating_mul(n),
        );
        let http_limits = ConnLimits::new(
            "http",
            config.http_max_connections_per_ip,
            config.http_max_connections_per_node,
        );
        let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
        let (tx, rx) = mpsc::channel();
        let mut threads = Vec::with_capacity(n);
        let listeners = rtmp.into_iter().zip(http).zip(udp).zip(srt);
        for (index, (((rtmp, http), webrtc_udp), srt_udp)) in listeners.enumerate() {
            let spec = ShardSpec {
                index,
                cpu: (n <= cores).then_some(index),
                backend: config.io_backend,
                rtmp,
                http,
                rtmp_ctx: rtmp_ctx.clone(),
                webrtc_udp,
                webrtc: webrtc.clone(),
                srt_udp,
                srt: config.srt(),
                srt_limits: srt_limits.clone(),
                registry: registry.clone(),
                shutdown: shutdown.clone(),
                max_http: config.http_max_connections.max(1),
                http_limits: http_limits.clone(),
                http_timeouts: config.http_timeouts(),
                ingest_batch_max: Duration::from_millis(config.ingest_batch_max_ms.min(200)),
                ready: tx.clone(),
            };
            let t = std::thread::Builder::new()
                .name(format!("weir-shard-{index}"))
                .spawn(move || shard::run(spec))
                .map_err(|e| NodeError::Shard(format!("cannot spawn shard thread: {e}")))?;
            threads.push(t);
        }
        drop(tx);
        let mut drivers = vec![""; n];
        for _ in 0..n {
            match rx.recv() {
                Ok(Ok((i, d))) => drivers[i] = d,
                Ok(Err(e)) => {
                    shutdown.trigger();
                    return Err(NodeError::Shard(e));
                }
                Err(_) => {
                    shutdown.trigger();
                    return Err(NodeError::Shard("a shard exited during start".into()));
                }
            }
        }
        let (studio, studio_thread) = crate::studio::StudioHub::start(
            registry.clone(),
            config.studio(),
            config.io_backend,
            shutdown.clone(),
        )
        .map_err(|e| NodeError::Shard(format!("cannot start the studio thread: {e}")))?;
        threads.push(studio_thread);
        Ok(StartedNode {
            rtmp_addr,
            http_addr,
            srt_addr,
            webrtc_addrs,
            webrtc_public_ips,
            drivers,
            ladder,
            studio,
            clips,
            relays: crate::relay::Relays(registry.clone()),
            metrics_addr,
            threads,
            recorder: Some(recorder),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_held_by_another_reuseport_group_is_refused() {
        // Another node (same user): a SO_REUSEPORT listener and an SRT socket.
        let (tcp, _held) = listeners(SocketAddr::from(([127, 0, 0, 1], 0)), 1).expect("bind");
        let err = listeners(tcp, 2).expect_err("second node on a busy TCP port");
        assert!(err.to_string().contains("cannot listen on"), "{err}");
        let (udp, _held_udp) =
            srt_sockets(SocketAddr::from(([127, 0, 0, 1], 0)), 1).expect("bind udp");
        assert!(
            srt_sockets(udp, 2).is_err(),
            "second node on a busy SRT port"
        );
        // A free port still binds, for every shard.
        drop(_held);
        let (again, all) = listeners(tcp, 2).expect("port free again");
        assert_eq!((again, all.len()), (tcp, 2));
    }
}
