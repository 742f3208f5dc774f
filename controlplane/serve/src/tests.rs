//! The listener against real sockets: heads that dribble and idle connections are cut at
//! the deadline, caps refuse extra connections while earlier ones are served, handlers
//! see the client address, shutdown returns; a client that stops reading a response is
//! cut at the write deadline, and a body that stops arriving at the body deadline.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use axum::routing::{get, post};

use super::*;

/// A router answering `GET /` with the client's address, served with `limits`.
fn start(
    limits: Limits,
) -> (
    SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    std::thread::JoinHandle<()>,
) {
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            addr_tx
                .send(listener.local_addr().expect("addr"))
                .expect("send");
            let app = Router::new()
                .route(
                    "/",
                    get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move {
                        peer.ip().to_string()
                    }),
                )
                .route("/big", get(|| async { vec![b'x'; BIG] }))
                .route("/upgrade", get(upgrade_echo))
                .route(
                    "/echo",
                    post(|body: bytes::Bytes| async move { format!("{} bytes", body.len()) }),
                );
            serve(listener, app, limits, async move {
                let _ = stop_rx.await;
            })
            .await
            .expect("serve");
        });
    });
    (addr_rx.recv().expect("address"), stop_tx, thread)
}

/// Upgrades the connection (as a WebSocket handshake does) and echoes what comes.
async fn upgrade_echo(mut req: axum::extract::Request) -> axum::response::Response {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let on = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let Ok(upgraded) = on.await else { return };
        let mut io = TokioIo::new(upgraded);
        let mut buf = [0u8; 256];
        while let Ok(n) = io.read(&mut buf).await {
            if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
    });
    axum::response::Response::builder()
        .status(101)
        .header("connection", "upgrade")
        .header("upgrade", "echo")
        .body(axum::body::Body::empty())
        .expect("response")
}

/// The size of `GET /big`: far more than socket buffers hold.
const BIG: usize = 64 << 20;

fn limits(head_ms: u64, per_ip: u32, max: usize) -> Limits {
    Limits {
        head_timeout: Duration::from_millis(head_ms),
        body_timeout: Duration::from_millis(head_ms),
        write_timeout: Duration::from_millis(head_ms),
        per_ip,
        max,
        ..Limits::new("test")
    }
}

/// Reads until the peer closes (or `limit` passes); returns what came and when it closed.
fn read_to_close(s: &mut TcpStream, limit: Duration) -> (Vec<u8>, Option<Duration>) {
    let start = Instant::now();
    s.set_read_timeout(Some(Duration::from_millis(50)))
        .expect("timeout");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while start.elapsed() < limit {
        match s.read(&mut buf) {
            Ok(0) => return (got, Some(start.elapsed())),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return (got, Some(start.elapsed()));
            }
            Err(_) => {}
        }
    }
    (got, None)
}

#[test]
fn a_dribbled_head_is_cut_at_its_deadline_and_bytes_do_not_extend_it() {
    let (addr, stop, thread) = start(limits(400, 0, 100));
    let mut s = TcpStream::connect(addr).expect("connect");
    let start = Instant::now();
    s.write_all(b"GET / HTTP/1.1\r\n").expect("write");
    let mut closed = None;
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(100));
        if s.write_all(b"X").is_err() {
            closed = Some(start.elapsed());
            break;
        }
        let (_, c) = read_to_close(&mut s, Duration::from_millis(1));
        if c.is_some() {
            closed = Some(start.elapsed());
            break;
        }
    }
    let closed = closed.expect("the dribbling connection stayed open");
    assert!(
        closed >= Duration::from_millis(350) && closed < Duration::from_millis(1500),
        "closed after {closed:?}"
    );
    let _ = stop.send(());
    thread.join().expect("server");
}

#[test]
fn an_idle_keep_alive_connection_is_closed_and_a_request_is_answered_first() {
    let (addr, stop, thread) = start(limits(400, 0, 100));
    let mut s = TcpStream::connect(addr).expect("connect");
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("write");
    let (got, closed) = read_to_close(&mut s, Duration::from_secs(3));
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        text.ends_with("127.0.0.1"),
        "the handler saw no client address: {text}"
    );
    let closed = closed.expect("the idle connection stayed open");
    assert!(
        closed < Duration::from_millis(1500),
        "closed after {closed:?}"
    );
    let _ = stop.send(());
    thread.join().expect("server");
}

#[test]
fn connections_over_the_caps_are_refused_and_earlier_ones_are_served() {
    let (addr, stop, thread) = start(limits(5000, 2, 100));
    let mut a = TcpStream::connect(addr).expect("a");
    let mut b = TcpStream::connect(addr).expect("b");
    std::thread::sleep(Duration::from_millis(100));
    let mut c = TcpStream::connect(addr).expect("c");
    let (_, closed) = read_to_close(&mut c, Duration::from_secs(2));
    assert!(
        closed.is_some(),
        "a third connection from one address was kept"
    );
    for s in [&mut a, &mut b] {
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .expect("write");
        let (got, _) = read_to_close(s, Duration::from_secs(2));
        assert!(String::from_utf8_lossy(&got).starts_with("HTTP/1.1 200"));
    }
    // Their places are free again once they closed.
    std::thread::sleep(Duration::from_millis(100));
    let mut d = TcpStream::connect(addr).expect("d");
    d.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .expect("write");
    let (got, _) = read_to_close(&mut d, Duration::from_secs(2));
    assert!(String::from_utf8_lossy(&got).starts_with("HTTP/1.1 200"));
    let _ = stop.send(());
    thread.join().expect("server");
}

/// Upgraded connections (WebSockets) keep their places under the per-address cap until
/// they close: before, the place was freed at the upgrade, so one address could hold
/// any number of chat or graphql-ws sockets.
#[test]
fn upgraded_connections_count_until_they_close() {
    let (addr, stop, thread) = start(limits(5000, 2, 100));
    let upgrade = || {
        let mut s = TcpStream::connect(addr).expect("connect");
        s.write_all(
            b"GET /upgrade HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\n",
        )
        .expect("write");
        s.set_read_timeout(Some(Duration::from_secs(2)))
            .expect("timeout");
        let mut got = Vec::new();
        let mut buf = [0u8; 512];
        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = s.read(&mut buf).expect("101");
            assert!(n > 0, "closed before the upgrade");
            got.extend_from_slice(&buf[..n]);
        }
        assert!(String::from_utf8_lossy(&got).starts_with("HTTP/1.1 101"));
        s.write_all(b"ping").expect("write");
        let mut echo = [0u8; 4];
        s.read_exact(&mut echo).expect("echo");
        assert_eq!(&echo, b"ping");
        s
    };
    let a = upgrade();
    let _b = upgrade();
    std::thread::sleep(Duration::from_millis(100));
    let mut c = TcpStream::connect(addr).expect("c");
    let (_, closed) = read_to_close(&mut c, Duration::from_secs(2));
    assert!(
        closed.is_some(),
        "a third connection was kept beside two upgraded ones"
    );
    drop(a);
    std::thread::sleep(Duration::from_millis(200));
    let mut d = upgrade();
    d.write_all(b"pong").expect("write");
    let mut echo = [0u8; 4];
    d.read_exact(&mut echo)
        .expect("echo after a place was freed");
    let _ = stop.send(());
    thread.join().expect("server");
}

#[test]
fn the_total_cap_counts_every_address() {
    let (addr, stop, thread) = start(limits(5000, 0, 1));
    let _a = TcpStream::connect(addr).expect("a");
    std::thread::sleep(Duration::from_millis(100));
    let mut b = TcpStream::connect(addr).expect("b");
    let (_, closed) = read_to_close(&mut b, Duration::from_secs(2));
    assert!(closed.is_some(), "a connection over the total was kept");
    let _ = stop.send(());
    thread.join().expect("server");
}

#[test]
fn ipv6_addresses_count_by_their_64_and_mapped_ipv4_as_ipv4() {
    let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
    assert_eq!(group(ip("2001:db8::1")), group(ip("2001:db8::ffff:2")));
    assert_ne!(group(ip("2001:db8::1")), group(ip("2001:db8:0:1::1")));
    assert_eq!(group(ip("::ffff:10.0.0.1")), group(ip("10.0.0.1")));
    assert_ne!(group(ip("10.0.0.1")), group(ip("10.0.0.2")));
}

#[test]
fn a_client_that_stops_reading_is_cut_at_the_write_deadline() {
    let (addr, stop, thread) = start(limits(400, 0, 100));
    let mut s = TcpStream::connect(addr).expect("connect");
    s.write_all(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("write");
    // Not reading: the server's writes stall once the socket buffers are full.
    std::thread::sleep(Duration::from_millis(1500));
    let (got, closed) = read_to_close(&mut s, Duration::from_secs(3));
    assert!(closed.is_some(), "the stalled response was never cut");
    assert!(
        got.len() < BIG / 2,
        "{} bytes of {BIG} came: not cut",
        got.len()
    );
    // A reader that keeps reading gets all of it, even though it takes longer than
    // the deadline to stall: progress re-arms it.
    let mut r = TcpStream::connect(addr).expect("connect");
    r.write_all(b"GET /big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .expect("write");
    let (got, _) = read_to_close(&mut r, Duration::from_secs(20));
    assert!(got.len() > BIG, "{} bytes for a reading client", got.len());
    let _ = stop.send(());
    thread.join().expect("server");
}

#[test]
fn a_body_that_stops_arriving_is_refused_at_its_deadline() {
    let (addr, stop, thread) = start(limits(400, 0, 100));
    let mut s = TcpStream::connect(addr).expect("connect");
    let start = Instant::now();
    s.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
        .expect("write");
    let (got, closed) = read_to_close(&mut s, Duration::from_secs(3));
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 4"), "{text}");
    let closed = closed.expect("the connection stayed open");
    assert!(
        start.elapsed() >= Duration::from_millis(350) && closed < Duration::from_millis(2000),
        "answered after {closed:?}"
    );
    // A whole body is read as usual.
    let mut ok = TcpStream::connect(addr).expect("connect");
    ok.write_all(
        b"POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 3\r\n\r\nabc",
    )
    .expect("write");
    let (got, _) = read_to_close(&mut ok, Duration::from_secs(3));
    assert!(String::from_utf8_lossy(&got).ends_with("3 bytes"));
    let _ = stop.send(());
    thread.join().expect("server");
}
