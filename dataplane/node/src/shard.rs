//! One shard: a thread with its own compio runtime, accepting on its own
//! SO_REUSEPORT listeners and running every connection it accepted.

use std::cell::Cell;
use std::collections::HashSet;
use std::pin::pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

use compio::driver::{DriverType, ProactorBuilder};
use compio::net::TcpListener;
use futures_util::future::{Either, select};

use crate::config::IoBackend;
use crate::hooks::PublishAuth;
use crate::http::conn::HttpTimeouts;
use crate::limits::{ConnLimits, Refusal};
use crate::pacer::{self, Pacer};
use crate::registry::Registry;
use crate::rtmp_conn::{self, RtmpContext};
use crate::shutdown::Shutdown;
use crate::webrtc::WebrtcShard;

/// Everything a shard thread is started with.
pub struct ShardSpec {
    /// Shard number (0 also runs the stream janitor).
    pub index: usize,
    /// Pin the thread to this CPU, if any.
    pub cpu: Option<usize>,
    /// Requested I/O driver.
    pub backend: IoBackend,
    /// This shard's RTMP listener (SO_REUSEPORT).
    pub rtmp: std::net::TcpListener,
    /// This shard's HTTP listener (SO_REUSEPORT).
    pub http: std::net::TcpListener,
    /// Shared RTMP context.
    pub rtmp_ctx: Arc<RtmpContext>,
    /// This shard's WebRTC UDP socket.
    pub webrtc_udp: std::net::UdpSocket,
    /// What WebRTC sessions are answered with (candidates, certificate, directory).
    pub webrtc: WebrtcSpec,
    /// This shard's SRT UDP socket (SO_REUSEPORT on the SRT port).
    pub srt_udp: std::net::UdpSocket,
    /// SRT listener settings.
    pub srt: weir_srt::SrtConfig,
    /// Per-address and node-wide SRT connection limits (shared by all shards).
    pub srt_limits: Arc<ConnLimits>,
    /// The node's streams.
    pub registry: Arc<Registry>,
    /// Node shutdown.
    pub shutdown: Shutdown,
    /// Most concurrent HTTP connections on this shard.
    pub max_http: usize,
    /// Per-address and node-wide HTTP connection limits (shared by all shards).
    pub http_limits: Arc<ConnLimits>,
    /// Deadlines of HTTP connections.
    pub http_timeouts: HttpTimeouts,
    /// Longest ingest read pause under load (see `pacer`).
    pub ingest_batch_max: Duration,
    /// Where the shard reports its driver (or why it could not start).
    pub ready: Sender<Result<(usize, &'static str), String>>,
}

/// Node-wide WebRTC settings handed to each shard.
#[derive(Clone)]
pub struct WebrtcSpec {
    /// Announced candidate IPs (the port is the shard's).
    pub public_ips: Vec<std::net::IpAddr>,
    /// Certificate and defaults.
    pub settings: weir_webrtc::RtcSettings,
    /// Sessions of the node.
    pub directory: Arc<crate::webrtc::SessionDirectory>,
    /// Per-address and node-wide session limits (shared by all shards).
    pub limits: Arc<ConnLimits>,
    /// STUN/TURN servers for clients (`Link` headers of answers).
    pub ice_servers: Arc<[crate::webrtc::ice_servers::IceServer]>,
}

/// Name of a driver type for logs.
pub fn driver_name(t: DriverType) -> &'static str {
    match t {
        DriverType::IoUring => "io_uring",
        DriverType::Poll => "epoll",
        _ => "other",
    }
}

/// The runtime of a shard. With io_uring, the ring belongs to this thread alone
/// (`SINGLE_ISSUER`) and completion work is deferred until the shard asks for events
/// (`DEFER_TASKRUN`): the kernel runs a whole batch of receives when the shard is ready
/// for them instead of interrupting it for each one. Kernels without those flags get a
/// plain ring.
pub(crate) fn runtime(
    backend: IoBackend,
    cpu: Option<usize>,
) -> std::io::Result<compio::runtime::Runtime> {
    let build = |tuned: bool| {
        let mut proactor = ProactorBuilder::new();
        match backend {
            IoBackend::Auto => {}
            IoBackend::IoUring => {
                proactor.driver_type(DriverType::IoUring);
            }
            IoBackend::Epoll => {
                proactor.driver_type(DriverType::Poll);
            }
        }
        if tuned {
            proactor
                .single_issuer(true)
                .defer_taskrun(true)
                .coop_taskrun(true)
                .taskrun_flag(true);
        }
        let mut builder = compio::runtime::RuntimeBuilder::new();
        builder.with_proactor(proactor);
        if let Some(cpu) = cpu {
            builder.thread_affinity(HashSet::from([cpu]));
        }
        builder.build()
    };
    build(backend != IoBackend::Epoll).or_else(|e| {
        tracing::debug!(error = %e, "io_uring with deferred task work unavailable");
        build(false)
    })
}

/// Runs a shard on the current thread until shutdown.
pub fn run(spec: ShardSpec) {
    let rt = match runtime(spec.backend, spec.cpu) {
        Ok(rt) => rt,
        Err(e) => {
            let _ = spec.ready.send(Err(format!(
                "shard {}: cannot start runtime: {e}",
                spec.index
            )));
            return;
        }
    };
    let driver = driver_name(rt.driver_type());
    rt.block_on(async move {
        let (rtmp, http, udp, srt_udp) = match (
            TcpListener::from_std(spec.rtmp),
            TcpListener::from_std(spec.http),
            compio::net::UdpSocket::from_std(spec.webrtc_udp),
            compio::net::UdpSocket::from_std(spec.srt_udp),
        ) {
            (Ok(r), Ok(h), Ok(u), Ok(s)) => (r, h, u, s),
            (Err(e), _, _, _) | (_, Err(e), _, _) | (_, _, Err(e), _) | (_, _, _, Err(e)) => {
                let _ = spec
                    .ready
                    .send(Err(format!("shard {}: listener: {e}", spec.index)));
                return;
            }
        };
        let rtc = match WebrtcShard::new(
            udp,
            &spec.webrtc.public_ips,
            spec.webrtc.directory.clone(),
            spec.webrtc.limits.clone(),
            spec.rtmp_ctx.clone(),
            &spec.webrtc.settings,
            spec.webrtc.ice_servers.clone(),
        ) {
            Ok(r) => r,
            Err(e) => {
                let _ = spec
                    .ready
                    .send(Err(format!("shard {}: WebRTC socket: {e}", spec.index)));
                return;
            }
        };
        compio::runtime::spawn(crate::webrtc::receive(rtc.clone(), spec.shutdown.clone())).detach();
        let srt = crate::srt::SrtShard::new(
            srt_udp,
            spec.srt.clone(),
            spec.srt_limits.clone(),
            spec.rtmp_ctx.clone(),
        );
        compio::runtime::spawn(crate::srt::run(srt, spec.shutdown.clone())).detach();
        let _ = spec.ready.send(Ok((spec.index, driver)));
        tracing::debug!(shard = spec.index, driver, "shard running");

        let pacer = Rc::new(Pacer::new(spec.ingest_batch_max));
        compio::runtime::spawn(pacer::run(pacer.clone(), spec.shutdown.clone())).detach();
        compio::runtime::spawn(accept_rtmp(rtmp, spec.rtmp_ctx.clone(), pacer)).detach();
        compio::runtime::spawn(accept_http(
            http,
            HttpShard {
                registry: spec.registry.clone(),
                auth: spec.rtmp_ctx.auth.clone(),
                rtc,
                shutdown: spec.shutdown.clone(),
                max_connections: spec.max_http,
                limits: spec.http_limits.clone(),
                timeouts: spec.http_timeouts,
            },
        ))
        .detach();
        if spec.index == 0 {
            compio::runtime::spawn(janitor(spec.registry.clone(), spec.shutdown.clone())).detach();
        }
        spec.shutdown.wait().await;
        if spec.index == 0 {
            spec.registry.end_all(Instant::now());
        }
        // Let connections see the shutdown, flush their last bytes and close.
        compio::time::sleep(Duration::from_millis(300)).await;
    });
}

async fn accept_rtmp(listener: TcpListener, ctx: Arc<RtmpContext>, pacer: Rc<Pacer>) {
    loop {
        let accept = pin!(listener.accept());
        let stop = pin!(ctx.shutdown.wait());
        match select(accept, stop).await {
            Either::Left((Ok((socket, peer)), _)) => {
                let permit = match ctx.limits.try_acquire(peer.ip()) {
                    Ok(p) => p,
                    Err(why) => {
                        ctx.limits.refused(peer, why);
                        continue; // dropping the socket closes it
                    }
                };
                let conn = rtmp_conn::serve(socket, peer, ctx.clone(), pacer.clone());
                compio::runtime::spawn(async move {
                    conn.await;
                    drop(permit);
                })
                .detach();
            }
            Either::Left((Err(e), _)) => {
                tracing::warn!(error = %e, "RTMP accept failed");
                compio::time::sleep(Duration::from_millis(50)).await;
            }
            Either::Right(_) => return,
        }
    }
}

/// What a shard's HTTP accept loop hands its connections.
struct HttpShard {
    registry: Arc<Registry>,
    auth: Arc<dyn PublishAuth>,
    rtc: Rc<WebrtcShard>,
    shutdown: Shutdown,
    max_connections: usize,
    limits: Arc<ConnLimits>,
    timeouts: HttpTimeouts,
}

/// A refusal to an HTTP client, if it fits in the socket at once: 503 and when to retry.
const REFUSED_RESPONSE: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 10\r\n\
Content-Length: 0\r\nConnection: close\r\nCache-Control: no-store\r\n\r\n";

/// Answers a refused HTTP connection without waiting for anything: what the client
/// already sent is read (so the close is not a reset that discards the answer), the 503
/// is sent if the socket takes it now, and the socket is closed.
fn refuse_http(socket: &compio::net::TcpStream) {
    let sock = socket2::SockRef::from(socket);
    let mut sink = [std::mem::MaybeUninit::<u8>::uninit(); 2048];
    let _ = sock.recv_with_flags(&mut sink, libc::MSG_DONTWAIT);
    let _ = sock.send_with_flags(REFUSED_RESPONSE, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL);
    let _ = sock.shutdown(std::net::Shutdown::Write);
}

async fn accept_http(listener: TcpListener, shard: HttpShard) {
    let open = Rc::new(Cell::new(0usize));
    let shard = Rc::new(shard);
    loop {
        let accept = pin!(listener.accept());
        let stop = pin!(shard.shutdown.wait());
        match select(accept, stop).await {
            Either::Left((Ok((socket, peer)), _)) => {
                let admitted = if open.get() >= shard.max_connections {
                    metrics::counter!("weir_http_rejected_connections_total").increment(1);
                    Err(Refusal::Shard)
                } else {
                    shard.limits.try_acquire(peer.ip())
                };
                let permit = match admitted {
                    Ok(p) => p,
                    Err(why) => {
                        shard.limits.refused(peer, why);
                        refuse_http(&socket);
                        continue; // dropping the socket closes it
                    }
                };
                let _ = socket.set_nodelay(true);
                // The kernel queues at most this much not yet sent (see the constant).
                let _ = socket2::SockRef::from(&socket)
                    .set_tcp_notsent_lowat(crate::http::conn::NOTSENT_LOWAT);
                open.set(open.get() + 1);
                let open = open.clone();
                let shard = shard.clone();
                compio::runtime::spawn(async move {
                    crate::http::conn::serve(
                        socket,
                        shard.registry.clone(),
                        shard.auth.clone(),
                        shard.rtc.clone(),
                        shard.shutdown.clone(),
                        shard.timeouts,
                    )
                    .await;
                    drop(permit);
                    open.set(open.get() - 1);
                })
                .detach();
            }
            Either::Left((Err(e), _)) => {
                tracing::warn!(error = %e, "HTTP accept failed");
                compio::time::sleep(Duration::from_millis(50)).await;
            }
            Either::Right(_) => return,
        }
    }
}

async fn janitor(registry: Arc<Registry>, shutdown: Shutdown) {
    while !shutdown.is_triggered() {
        let tick = pin!(compio::time::sleep(Duration::from_millis(250)));
        let stop = pin!(shutdown.wait());
        if let Either::Right(_) = select(tick, stop).await {
            return;
        }
        registry.tick(Instant::now());
    }
}
