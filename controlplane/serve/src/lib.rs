//! Serving the control plane's axum routers (the GraphQL API, the chat gateway, a data-plane
//! node's control listener) on ports strangers can reach.
//!
//! `axum::serve` has no deadline of any kind: a connection that sends one byte of a
//! request head every few seconds stays open forever, and so do as many of them as an
//! attacker opens. [`serve`] runs the same router on hyper's HTTP/1.1 server with:
//!
//! - a deadline for each request head, which also bounds an idle keep-alive connection
//!   ([`Limits::head_timeout`]; hyper starts it whenever the connection waits for a head,
//!   and bytes of a partial head do not extend it);
//! - connection caps per client address (IPv6 grouped by /64, IPv4-mapped as IPv4) and
//!   in all ([`Limits::per_ip`], [`Limits::max`]): over a cap the connection is closed at
//!   accept, counted in `weir_connections_refused_total{listener, reason}` and logged at
//!   most every 10 s; an upgraded (WebSocket) connection counts until it closes;
//! - a deadline for each request body ([`Limits::body_timeout`]) and for each response
//!   write that makes no progress ([`Limits::write_timeout`]: a client that stops
//!   reading is cut and what it held is freed; WebSocket connections included), see
//!   [`deadline`];
//! - WebSocket upgrades (graphql-ws, chat) as `axum::serve` does them;
//! - the client address as `ConnectInfo<SocketAddr>` for per-IP rate limits;
//! - graceful shutdown: no new connections, in-flight requests finish, at most
//!   [`DRAIN`] for the rest.

pub mod deadline;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tower::ServiceExt as _;

/// Longest wait for open connections after shutdown began.
pub const DRAIN: Duration = Duration::from_secs(10);
/// Shortest time between two log lines about refused connections of one listener.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// The limits of one listener.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Metric and log label (`api`, `chat`, `node-control`).
    pub listener: &'static str,
    /// A complete request head must arrive within this, counted from when the
    /// connection starts waiting for it (so also the keep-alive idle time).
    pub head_timeout: Duration,
    /// A request body must arrive within this once its handler reads it.
    pub body_timeout: Duration,
    /// A response write (or a WebSocket message) that makes no progress for this long
    /// ends the connection.
    pub write_timeout: Duration,
    /// Most open connections per client address (IPv6: per /64); 0: no limit.
    pub per_ip: u32,
    /// Most open connections in all.
    pub max: usize,
}

impl Limits {
    /// Defaults far from what browsers, dashboards and integrations do: 10 s heads and
    /// bodies, 15 s without write progress, 256 connections per address (offices behind
    /// one NAT), 50 000 in all.
    pub fn new(listener: &'static str) -> Self {
        Self {
            listener,
            head_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(15),
            per_ip: 256,
            max: 50_000,
        }
    }
}

/// Serves `router` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let caps = Arc::new(Caps::new(&limits));
    // Dropping the receiver tells connections to finish; their `close_rx` clones tell
    // us when they have.
    let (signal_tx, signal_rx) = tokio::sync::watch::channel(());
    tokio::spawn(async move {
        shutdown.await;
        drop(signal_rx);
    });
    let (close_tx, close_rx) = tokio::sync::watch::channel(());
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors and the like: back off instead of spinning.
                    tracing::debug!(listener = limits.listener, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = signal_tx.closed() => break,
        };
        let permit = match caps.try_acquire(peer.ip()) {
            Ok(p) => p,
            Err(reason) => {
                caps.refused(peer, reason);
                continue; // dropping the stream closes it
            }
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let (signal_tx, close_rx, label) = (signal_tx.clone(), close_rx.clone(), limits.listener);
        let (head_timeout, body_timeout) = (limits.head_timeout, limits.body_timeout);
        let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            let mut req = req
                .map(|b| axum::body::Body::new(deadline::TimedBody::new(b, body_timeout, label)));
            req.extensions_mut().insert(ConnectInfo(peer));
            router.clone().oneshot(req)
        });
        let io = TokioIo::new(Counted {
            io: deadline::StallIo::new(stream, limits.write_timeout, label),
            _permit: permit,
        });
        tokio::spawn(async move {
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(head_timeout)
                .serve_connection(io, service)
                .with_upgrades();
            let mut conn = std::pin::pin!(conn);
            let mut stopping = std::pin::pin!(signal_tx.closed());
            let mut draining = false;
            loop {
                tokio::select! {
                    result = conn.as_mut() => {
                        if let Err(e) = result {
                            ended_badly(label, peer, &e);
                        }
                        break;
                    }
                    _ = &mut stopping, if !draining => {
                        draining = true;
                        conn.as_mut().graceful_shutdown();
                    }
                }
            }
            drop(close_rx);
        });
    }
    drop(close_rx);
    drop(listener);
    let _ = tokio::time::timeout(DRAIN, close_tx.closed()).await;
    Ok(())
}

/// Counts a connection that ended on an error (its head deadline, a protocol error).
fn ended_badly(listener: &'static str, peer: SocketAddr, e: &hyper::Error) {
    if e.is_timeout() {
        metrics::counter!("weir_connections_timed_out_total", "listener" => listener, "deadline" => "head")
            .increment(1);
        tracing::debug!(listener, %peer, "request head deadline missed: connection closed");
    } else {
        tracing::debug!(listener, %peer, error = %e, "connection ended on an error");
    }
}

/// Which connections count together: an IPv4 address, or an IPv6 /64.
fn group(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => u128::from(u32::from(v4)),
            None => (u128::from(v6) >> 64) << 64 | 1 << 32,
        },
    }
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    PerIp,
    Total,
}

struct Open {
    total: usize,
    by_group: HashMap<u128, u32>,
}

struct Caps {
    listener: &'static str,
    per_ip: u32,
    max: usize,
    open: Mutex<Open>,
    started: Instant,
    last_log_ms: AtomicU64,
    held_back: AtomicU64,
}

impl Caps {
    fn new(l: &Limits) -> Self {
        Self {
            listener: l.listener,
            per_ip: l.per_ip,
            max: l.max.max(1),
            open: Mutex::new(Open {
                total: 0,
                by_group: HashMap::new(),
            }),
            started: Instant::now(),
            last_log_ms: AtomicU64::new(0),
            held_back: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Open> {
        self.open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn try_acquire(self: &Arc<Self>, ip: IpAddr) -> Result<Permit, Refusal> {
        let g = group(ip);
        let mut open = self.lock();
        if open.total >= self.max {
            return Err(Refusal::Total);
        }
        let n = open.by_group.entry(g).or_insert(0);
        if self.per_ip > 0 && *n >= self.per_ip {
            if *n == 0 {
                open.by_group.remove(&g);
            }
            return Err(Refusal::PerIp);
        }
        *n += 1;
        open.total += 1;
        Ok(Permit {
            caps: self.clone(),
            group: g,
        })
    }

    fn release(&self, g: u128) {
        let mut open = self.lock();
        open.total = open.total.saturating_sub(1);
        if let Some(n) = open.by_group.get_mut(&g) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.by_group.remove(&g);
            }
        }
    }

    fn refused(&self, peer: SocketAddr, why: Refusal) {
        let reason = match why {
            Refusal::PerIp => "per_ip",
            Refusal::Total => "node",
        };
        metrics::counter!("weir_connections_refused_total", "listener" => self.listener, "reason" => reason)
            .increment(1);
        let now = (self.started.elapsed().as_millis() as u64).max(1);
        let last = self.last_log_ms.load(Ordering::Relaxed);
        let due = last == 0 || now.saturating_sub(last) >= LOG_EVERY.as_millis() as u64;
        if due
            && self
                .last_log_ms
                .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            let more = self.held_back.swap(0, Ordering::AcqRel);
            tracing::warn!(
                listener = self.listener,
                %peer,
                reason,
                refused_since_last_line = more,
                "connection refused"
            );
        } else {
            self.held_back.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// An open connection's place in the caps.
struct Permit {
    caps: Arc<Caps>,
    group: u128,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.caps.release(self.group);
    }
}

/// A connection's socket holding its place under the caps: the permit goes wherever the
/// socket goes — also into an upgraded (WebSocket) connection, which hyper hands out of
/// the HTTP task — and is released when the socket closes.
struct Counted<S> {
    io: S,
    _permit: Permit,
}

impl<S: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Counted<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<S: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Counted<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests;
