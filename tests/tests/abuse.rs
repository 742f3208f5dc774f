//! Abuse as an attacker would try it, against the real binary with short deadlines:
//! HTTP heads and RTMP handshakes dribbled a byte a second, a viewer that stops reading,
//! more connections from one address than it may hold, an RTMP command larger than any
//! client sends. Each is cut off (at its deadline or at once) while real clients (a
//! `/healthz` poller, a playlist reader, an ffmpeg publish) carry on.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use weir_e2e::http::get;
use weir_e2e::{KillOnDrop, Node, NodeOptions, ffmpeg_publish, metric, variant_uri, wait_until};

fn node_with(args: &[&str]) -> Node {
    node_on(args, false)
}

/// A node with `args`; `epoll`: io_uring refused (seccomp), so the shards run on epoll.
fn node_on(args: &[&str], epoll: bool) -> Node {
    Node::start_with(NodeOptions {
        extra_args: args.iter().map(|s| (*s).to_owned()).collect(),
        deny_io_uring: epoll,
        ..NodeOptions::default()
    })
}

/// A TCP connection to 127.0.0.1:`port` from the loopback address `from`.
fn connect_from(from: [u8; 4], port: u16) -> TcpStream {
    let s =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    s.bind(&SocketAddr::from((from, 0)).into()).expect("bind");
    s.connect(&SocketAddr::from(([127, 0, 0, 1], port)).into())
        .expect("connect");
    s.into()
}

fn connect(port: u16) -> TcpStream {
    TcpStream::connect(("127.0.0.1", port)).expect("connect")
}

/// One connection that sends `message` a byte at a time; `closed` is when it saw the
/// node close it, `answer` what the node sent before.
struct Dribbler {
    socket: TcpStream,
    sent: usize,
    opened: Instant,
    closed: Option<Instant>,
    answer: Vec<u8>,
}

impl Dribbler {
    fn open(socket: TcpStream) -> Self {
        socket.set_nonblocking(true).expect("nonblocking");
        Self {
            socket,
            sent: 0,
            opened: Instant::now(),
            closed: None,
            answer: Vec::new(),
        }
    }

    /// Reads what is there; notes the close.
    fn poll(&mut self) {
        let mut buf = [0u8; 4096];
        while self.closed.is_none() {
            match self.socket.read(&mut buf) {
                Ok(0) => self.closed = Some(Instant::now()),
                Ok(n) => self.answer.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(_) => self.closed = Some(Instant::now()),
            }
        }
    }

    /// Sends the next byte of `message` (if still open).
    fn dribble(&mut self, message: &[u8]) {
        self.poll();
        if self.closed.is_none()
            && let Some(b) = message.get(self.sent)
        {
            match self.socket.write(std::slice::from_ref(b)) {
                Ok(_) => self.sent += 1,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(_) => self.closed = Some(Instant::now()),
            }
        }
    }

    fn lived(&self) -> Option<Duration> {
        self.closed.map(|c| c - self.opened)
    }
}

/// Dribbles `message` on every connection, a byte per second, until all are closed or
/// `limit` passes, while `meanwhile` runs every 200 ms (a real client's requests).
fn dribble_all(
    dribblers: &mut [Dribbler],
    message: &[u8],
    limit: Duration,
    mut meanwhile: impl FnMut(),
) {
    let start = Instant::now();
    let mut last_byte = None::<Instant>;
    while start.elapsed() < limit && dribblers.iter().any(|d| d.closed.is_none()) {
        if last_byte.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
            last_byte = Some(Instant::now());
            dribblers.iter_mut().for_each(|d| d.dribble(message));
        } else {
            dribblers.iter_mut().for_each(Dribbler::poll);
        }
        meanwhile();
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn counter(node: &Node, name: &str, labels: &[(&str, &str)]) -> f64 {
    metric(node.http_port, name, labels).unwrap_or(0.0)
}

/// Waits for the live media playlist of `channel` and returns its path.
fn media_playlist(node: &Node, channel: &str) -> String {
    let mv = format!("/live/{channel}/index.m3u8");
    assert!(
        wait_until(Duration::from_secs(20), || get(node.http_port, &mv)
            .is_ok_and(|r| r.status == 200)),
        "no playlist: {}",
        node.log()
    );
    let text = get(node.http_port, &mv).expect("multivariant").text();
    let media = format!("/live/{channel}/{}", variant_uri(&text).expect("variant"));
    assert!(
        wait_until(Duration::from_secs(20), || {
            weir_e2e::fetch_playlist(node.http_port, &media)
                .segments
                .len()
                >= 2
        }),
        "no segments: {}",
        node.log()
    );
    media
}

#[test]
fn http_dribblers_and_a_stalled_reader_are_cut_while_viewers_carry_on() {
    http_abuse(false);
}

#[test]
fn http_dribblers_and_a_stalled_reader_are_cut_on_epoll_too() {
    http_abuse(true);
}

fn http_abuse(epoll: bool) {
    let node = node_on(
        &[
            "--http-head-timeout-ms",
            "2000",
            "--http-write-timeout-ms",
            "2000",
        ],
        epoll,
    );
    if epoll {
        assert!(node.log().contains("epoll"), "{}", node.log());
    }
    let (_, key) = node.issue_key("abuse");
    let _publisher = KillOnDrop(
        ffmpeg_publish(&node.rtmp_url(&key), 40)
            .spawn()
            .expect("ffmpeg"),
    );
    let media = media_playlist(&node, "abuse");

    // (a) 50 dribblers of a request head and one connection that never says anything.
    let head = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    let mut dribblers: Vec<Dribbler> = (0..50)
        .map(|_| Dribbler::open(connect(node.http_port)))
        .collect();
    let mut silent = Dribbler::open(connect(node.http_port));
    let mut viewer_ok = 0;
    let mut viewer_failed = Vec::new();
    dribble_all(&mut dribblers, head, Duration::from_secs(10), || {
        for path in ["/healthz", media.as_str()] {
            match get(node.http_port, path) {
                Ok(r) if r.status == 200 => viewer_ok += 1,
                other => viewer_failed.push(format!("{path}: {other:?}")),
            }
        }
        silent.poll();
    });
    for d in &dribblers {
        let lived = d.lived().expect("every dribbler is closed");
        assert!(
            lived >= Duration::from_millis(1800) && lived < Duration::from_millis(3500),
            "a dribbler lived {lived:?} (deadline 2 s) after sending {} bytes",
            d.sent
        );
        assert!(d.sent < head.len(), "the head completed: {}", d.sent);
        let answer = String::from_utf8_lossy(&d.answer);
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    }
    let lived = silent.lived().expect("the silent connection is closed");
    assert!(lived < Duration::from_millis(3500), "{lived:?}");
    assert!(
        silent.answer.is_empty(),
        "nothing is said to a silent connection"
    );
    assert!(viewer_failed.is_empty(), "{viewer_failed:?}");
    assert!(viewer_ok >= 20, "{viewer_ok}");
    assert!(
        counter(
            &node,
            "weir_connections_timed_out_total",
            &[("listener", "http"), ("deadline", "head")]
        ) >= 51.0
    );

    // (c) A viewer that asks for a lot and stops reading: pipelined GETs of the newest
    // segment on a socket with a tiny receive buffer.
    let playlist = get(node.http_port, &media).expect("playlist").text();
    let segment = playlist
        .lines()
        .rfind(|l| !l.starts_with('#') && !l.trim().is_empty())
        .expect("a segment")
        .to_owned();
    let base = media.rsplit_once('/').expect("dir").0;
    let seg_path = format!("{base}/{segment}");
    let seg_len = get(node.http_port, &seg_path).expect("segment").body.len();
    let stalled = connect(node.http_port);
    socket2::SockRef::from(&stalled)
        .set_recv_buffer_size(4096)
        .expect("rcvbuf");
    let copies = (32 << 20) / seg_len.max(1) + 1;
    let mut requests = Vec::new();
    for _ in 0..copies.min(2000) {
        requests.extend_from_slice(
            format!("GET {seg_path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").as_bytes(),
        );
    }
    let mut w = stalled.try_clone().expect("clone");
    let writer = std::thread::spawn(move || {
        let _ = w.write_all(&requests);
    });
    let before = counter(
        &node,
        "weir_connections_timed_out_total",
        &[("listener", "http"), ("deadline", "write")],
    );
    let t0 = Instant::now();
    assert!(
        wait_until(Duration::from_secs(8), || counter(
            &node,
            "weir_connections_timed_out_total",
            &[("listener", "http"), ("deadline", "write")]
        ) > before),
        "the stalled reader was not cut: {}",
        node.log()
    );
    let cut_after = t0.elapsed();
    // Its socket was reset: reading ends after what the buffers held.
    stalled
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut sink = vec![0u8; 1 << 20];
    let mut total = 0usize;
    let end = loop {
        match (&stalled).read(&mut sink) {
            Ok(0) => break "eof",
            Ok(n) => total += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::TimedOut => {
                break "open";
            }
            Err(_) => break "reset",
        }
    };
    assert_ne!(end, "open", "the stalled connection is still open");
    assert!(
        total < copies * seg_len,
        "all {copies} answers arrived ({total} bytes): nothing stalled"
    );
    let _ = writer.join();
    // Viewers are still served.
    assert_eq!(get(node.http_port, &media).expect("playlist").status, 200);
    eprintln!("stalled reader cut {cut_after:?} after the check began, {total} bytes read");
}

/// C0 + C1 + C2 of a simple handshake, as a client sends them (C2 may echo anything).
fn handshake_bytes() -> Vec<u8> {
    let mut b = vec![3u8];
    b.extend(std::iter::repeat_n(7u8, 1536 * 2));
    b
}

/// Completes a simple RTMP handshake as a client.
fn handshake(s: &mut TcpStream) {
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let all = handshake_bytes();
    s.write_all(&all[..1537]).expect("c0c1");
    let mut s0s1s2 = vec![0u8; 1 + 1536 * 2];
    s.read_exact(&mut s0s1s2).expect("s0s1s2");
    s.write_all(&s0s1s2[1..1537]).expect("c2");
}

/// Handshake, `connect` and `publish` with weir's own client; returns the socket once
/// the node said NetStream.Publish.Start.
fn publish_raw(port: u16, key: &str) -> TcpStream {
    use weir_rtmp::{ClientConfig, ClientEvent, ClientOutput, ClientSession};
    let mut s = connect(port);
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut session = ClientSession::new(ClientConfig {
        app: "live".into(),
        tc_url: format!("rtmp://127.0.0.1:{port}/live"),
        stream_name: key.to_owned(),
        out_chunk_size: 4096,
    });
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        while let Some(out) = session.poll_output() {
            match out {
                ClientOutput::Transmit(b) => s.write_all(&b).expect("write"),
                ClientOutput::Event(ClientEvent::Publishing { .. }) => return s,
                ClientOutput::Event(ClientEvent::Rejected { .. }) => panic!("publish refused"),
                ClientOutput::Event(_) => {}
            }
        }
        let n = s.read(&mut buf).expect("read");
        assert!(n > 0, "closed before publishing");
        session
            .handle_input(Instant::now(), &buf[..n])
            .expect("valid RTMP");
    }
}

#[test]
fn rtmp_dribblers_and_an_oversized_command_are_cut_while_ffmpeg_publishes() {
    let node = node_with(&[
        "--rtmp-publish-timeout-ms",
        "2000",
        "--rtmp-idle-timeout-ms",
        "2000",
        "--rtmp-max-connections-per-ip",
        "50",
    ]);
    let (_, key) = node.issue_key("live1");
    let _publisher = KillOnDrop(
        ffmpeg_publish(&node.rtmp_url(&key), 40)
            .spawn()
            .expect("ffmpeg"),
    );
    let media = media_playlist(&node, "live1");

    // (b) 20 handshakes dribbled a byte a second, and one that completes the handshake
    // and then dribbles a chunk.
    let hs = handshake_bytes();
    let mut dribblers: Vec<Dribbler> = (0..20)
        .map(|_| Dribbler::open(connect(node.rtmp_port)))
        .collect();
    let mut after = connect(node.rtmp_port);
    handshake(&mut after);
    let mut chunky = Dribbler::open(after);
    // fmt 0, csid 4, a 1000-byte audio message: its bytes never complete it.
    let chunk: Vec<u8> = [4u8, 0, 0, 0, 0, 0x03, 0xe8, 8, 1, 0, 0, 0]
        .into_iter()
        .chain(std::iter::repeat_n(0xaf, 100))
        .collect();
    let mut playlist_ok = 0;
    dribble_all(&mut dribblers, &hs, Duration::from_secs(10), || {
        chunky.dribble(&chunk);
        if get(node.http_port, &media).is_ok_and(|r| r.status == 200) {
            playlist_ok += 1;
        }
    });
    for d in dribblers.iter().chain(std::iter::once(&chunky)) {
        let lived = d.lived().expect("every RTMP dribbler is closed");
        assert!(
            lived < Duration::from_millis(3500),
            "an RTMP dribbler lived {lived:?} (deadline 2 s)"
        );
    }
    assert!(
        counter(
            &node,
            "weir_connections_timed_out_total",
            &[("listener", "rtmp"), ("deadline", "publish")]
        ) >= 21.0
    );
    assert!(playlist_ok >= 5, "{playlist_ok}");

    // A publisher that goes on sending bytes that never complete a message is idle all
    // the same: closed 2 s after its last whole message.
    let (_, idler_key) = node.issue_key("idler");
    let idler = publish_raw(node.rtmp_port, &idler_key);
    let published = Instant::now();
    // fmt 0, csid 10, a 5000-byte audio message, then its bytes a few at a time.
    let mut partial = vec![10u8, 0, 0, 0, 0, 0x13, 0x88, 8, 1, 0, 0, 0];
    partial.extend(std::iter::repeat_n(0xaf, 200));
    idler.set_nonblocking(true).expect("nonblocking");
    let mut idle = Dribbler::open(idler);
    while idle.closed.is_none() && published.elapsed() < Duration::from_secs(8) {
        idle.dribble(&partial);
        std::thread::sleep(Duration::from_millis(100));
    }
    let lived = published.elapsed();
    assert!(idle.closed.is_some(), "a dribbling publisher stayed open");
    assert!(
        lived >= Duration::from_millis(1800) && lived < Duration::from_millis(3500),
        "closed after {lived:?} (idle time-out 2 s), {} bytes sent",
        idle.sent
    );
    assert!(idle.sent > 15, "bytes kept coming: {}", idle.sent);
    assert!(
        counter(
            &node,
            "weir_connections_timed_out_total",
            &[("listener", "rtmp"), ("deadline", "idle")]
        ) >= 1.0
    );

    // (e) A command announcing 100 000 bytes, right after the handshake: refused on its
    // header, before its bytes come.
    let mut big = connect(node.rtmp_port);
    handshake(&mut big);
    big.write_all(&[3, 0, 0, 0, 0x01, 0x86, 0xa0, 20, 0, 0, 0, 0])
        .expect("header");
    let mut sink = Vec::new();
    let _ = big.read_to_end(&mut sink);
    assert!(
        node.wait_log(
            "command or data message (type 20) of 100000 bytes exceeds the limit of 65536 bytes",
            Duration::from_secs(5)
        ),
        "{}",
        node.log()
    );
    // The publish carried on through all of it.
    let seq = |n: &Node| weir_e2e::fetch_playlist(n.http_port, &media).next_msn();
    let before = seq(&node);
    assert!(
        wait_until(Duration::from_secs(10), || seq(&node) >= before + 2),
        "the ffmpeg publish stalled: {}",
        node.log()
    );
}

#[test]
fn per_address_caps_refuse_extra_connections_and_keep_earlier_ones() {
    let node = node_with(&[
        "--http-max-connections-per-ip",
        "5",
        "--rtmp-max-connections-per-ip",
        "2",
    ]);
    let port = node.http_port;
    // (d) Five keep-alive connections from 127.0.0.3, each answered once.
    let from = [127, 0, 0, 3];
    let ask = |s: &mut TcpStream| -> String {
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .expect("request");
        let mut buf = [0u8; 1024];
        let n = s.read(&mut buf).unwrap_or(0);
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let mut held: Vec<TcpStream> = (0..5)
        .map(|_| {
            let s = connect_from(from, port);
            s.set_read_timeout(Some(Duration::from_secs(5)))
                .expect("timeout");
            s
        })
        .collect();
    for s in &mut held {
        let a = ask(s);
        assert!(a.starts_with("HTTP/1.1 200"), "{a}");
    }
    // The sixth is refused at once: 503 with Retry-After, then closed.
    let mut extra = connect_from(from, port);
    extra
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut refusal = String::new();
    let _ = extra.read_to_string(&mut refusal);
    assert!(refusal.starts_with("HTTP/1.1 503"), "{refusal:?}");
    assert!(refusal.contains("Retry-After:"), "{refusal}");
    // The earlier ones still work; another address is not affected.
    let a = ask(&mut held[0]);
    assert!(a.starts_with("HTTP/1.1 200"), "{a}");
    let mut other = connect_from([127, 0, 0, 4], port);
    other
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let a = ask(&mut other);
    assert!(a.starts_with("HTTP/1.1 200"), "{a}");
    // A closed connection gives its place back.
    drop(held.pop());
    assert!(wait_until(Duration::from_secs(5), || {
        let mut s = connect_from(from, port);
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        ask(&mut s).starts_with("HTTP/1.1 200")
    }));

    // RTMP: two connections from one address; the third is closed before any answer.
    let rtmp = node.rtmp_port;
    let mut first = connect_from(from, rtmp);
    let _second = connect_from(from, rtmp);
    std::thread::sleep(Duration::from_millis(200));
    let mut third = connect_from(from, rtmp);
    third
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let _ = third.write_all(&handshake_bytes()[..1537]);
    let mut got = Vec::new();
    let r = third.read_to_end(&mut got);
    assert!(
        got.is_empty(),
        "the third RTMP connection was answered: {r:?}"
    );
    handshake(&mut first); // the first still works

    drop(held);
    assert!(wait_until(Duration::from_secs(5), || {
        counter(
            &node,
            "weir_connections_refused_total",
            &[("listener", "http"), ("reason", "per_ip")],
        ) >= 1.0
            && counter(
                &node,
                "weir_connections_refused_total",
                &[("listener", "rtmp"), ("reason", "per_ip")],
            ) >= 1.0
    }));
    assert!(
        node.log().contains("connection refused"),
        "no log line: {}",
        node.log()
    );
}

/// An ffmpeg publish with `key` is refused at the memory budget: the log line and the
/// metric say so.
fn refused_at_the_budget(node: &Node, key: &str) {
    let (ok, _, err) = weir_e2e::output(&mut ffmpeg_publish(&node.rtmp_url(key), 2));
    assert!(!ok, "a publisher was admitted over the memory budget");
    assert!(
        node.log().contains("node memory budget reached"),
        "no log line for the refusal: {err}\n{}",
        node.log()
    );
    assert!(
        counter(
            node,
            "weir_publish_refused_total",
            &[("reason", "memory_budget")]
        ) >= 1.0
    );
}

/// A node at its memory budget refuses new publishers with a reason and a metric while the
/// live broadcast plays on; once that broadcast ends, its media is shed early (ended first,
/// never a live one) and publishing works again.
#[test]
fn a_node_at_its_memory_budget_refuses_new_publishers_and_sheds_ended_media() {
    let node = node_with(&["--memory-budget-mb", "1", "--reconnect-grace-ms", "500"]);
    assert!(
        node.wait_log(
            "memory budget for media and connection buffers: 1 MiB",
            Duration::from_secs(10)
        ),
        "{}",
        node.log()
    );
    let (_, first) = node.issue_key("first");
    let (_, second) = node.issue_key("second");
    let mut a = KillOnDrop(
        ffmpeg_publish(&node.rtmp_url(&first), 60)
            .spawn()
            .expect("ffmpeg"),
    );
    let media = media_playlist(&node, "first");
    let used = || counter(&node, "weir_memory_budget_used_bytes", &[]);
    assert!(
        wait_until(Duration::from_secs(30), || used() >= f64::from(1u32 << 20)),
        "the first broadcast never filled 1 MiB: {} bytes",
        used()
    );

    // Over the budget: a second broadcast is refused, clearly.
    refused_at_the_budget(&node, &second);
    // The live one plays on.
    let before = weir_e2e::fetch_playlist(node.http_port, &media).next_msn();
    assert!(
        wait_until(Duration::from_secs(10), || {
            weir_e2e::fetch_playlist(node.http_port, &media).next_msn() > before + 1
        }),
        "the live broadcast stalled at the budget"
    );

    // It ends: its media is the oldest ended, dropped early (retention is 60 s), and a
    // new publisher is admitted.
    let _ = a.0.kill();
    let _ = a.0.wait();
    assert!(
        node.wait_log(
            "memory budget: ended broadcast dropped early",
            Duration::from_secs(15)
        ),
        "{}",
        node.log()
    );
    assert!(counter(&node, "weir_memory_budget_shed_total", &[]) >= 1.0);
    let _b = KillOnDrop(
        ffmpeg_publish(&node.rtmp_url(&second), 30)
            .spawn()
            .expect("ffmpeg"),
    );
    media_playlist(&node, "second");
}

/// Connection buffers are charged to the memory budget: HTTP connections each holding a
/// WHIP request head with a near-maximal `Content-Length` and part of its body fill the
/// budget on their own (no broadcast live), so a publisher is refused; once they close, the
/// charge falls back and publishing works again.
#[test]
fn connection_buffers_alone_fill_the_memory_budget_and_are_released_on_close() {
    let node = node_with(&[
        "--memory-budget-mb",
        "2",
        // The requests stay incomplete for the whole test: no 408 meanwhile.
        "--http-head-timeout-ms",
        "120000",
    ]);
    assert!(
        node.wait_log(
            "memory budget for media and connection buffers: 2 MiB",
            Duration::from_secs(10)
        ),
        "{}",
        node.log()
    );
    let conns = || counter(&node, "weir_memory_budget_connection_bytes", &[]);
    assert!(
        wait_until(Duration::from_secs(5), || conns() > 0.0),
        "no connection charge reported"
    );
    let idle = conns();
    assert!(
        idle < f64::from(256u32 << 10),
        "idle node charges {idle} bytes"
    );

    // 40 requests announcing a 64 KiB body (the request cap) and sending 1 KiB of it: each
    // connection reserves room for the whole body, about 70 KiB with its read buffer.
    let head = format!(
        "POST /whip/x HTTP/1.1\r\nHost: x\r\nContent-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n",
        64 * 1024
    );
    let mut held: Vec<TcpStream> = (0..40)
        .map(|i| {
            let mut s = connect_from([127, 0, 0, 2 + i / 20], node.http_port);
            s.write_all(head.as_bytes()).expect("head");
            s.write_all(&[b'v'; 1024]).expect("part of the body");
            s
        })
        .collect();
    assert!(
        wait_until(Duration::from_secs(15), || conns() >= f64::from(2u32 << 20)),
        "40 pending 64 KiB requests charged only {} bytes",
        conns()
    );
    assert!(counter(&node, "weir_memory_budget_used_bytes", &[]) >= f64::from(2u32 << 20));

    // At the budget on connection buffers alone: a publisher is refused, clearly.
    let (_, key) = node.issue_key("conns");
    refused_at_the_budget(&node, &key);

    // They close: the charge is released, and a publisher is admitted.
    held.clear();
    assert!(
        wait_until(Duration::from_secs(10), || conns()
            < f64::from(512u32 << 10)),
        "closed connections still charged: {} bytes",
        conns()
    );
    let _p = KillOnDrop(
        ffmpeg_publish(&node.rtmp_url(&key), 30)
            .spawn()
            .expect("ffmpeg"),
    );
    media_playlist(&node, "conns");
}

/// A publisher over the bitrate cap is cut (log, metric) while one under it on the same
/// node keeps publishing.
#[test]
fn a_publisher_over_the_bitrate_cap_is_cut_and_one_under_it_is_not() {
    let node = node_with(&["--max-publish-kbps", "300"]);
    let (_, heavy) = node.issue_key("heavy");
    let (_, light) = node.issue_key("light");
    // About 100 kbit/s: small pictures at a fixed low bitrate, mono audio.
    let mut small = std::process::Command::new("ffmpeg");
    small
        .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-re"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=160x90:rate=10"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", "40", "-pix_fmt", "yuv420p", "-c:v", "libx264"])
        .args([
            "-preset",
            "ultrafast",
            "-b:v",
            "40k",
            "-maxrate",
            "60k",
            "-bufsize",
            "60k",
        ])
        .args([
            "-g", "20", "-c:a", "aac", "-ac", "1", "-b:a", "32k", "-f", "flv",
        ])
        .arg(node.rtmp_url(&light))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null());
    let _light = KillOnDrop(small.spawn().expect("ffmpeg"));
    let light_media = media_playlist(&node, "light");
    // About 1-2 Mbit/s (640x360 testsrc2, ultrafast): over the cap.
    let t0 = Instant::now();
    let mut big = KillOnDrop(
        ffmpeg_publish(&node.rtmp_url(&heavy), 60)
            .spawn()
            .expect("ffmpeg"),
    );
    assert!(
        node.wait_log("publisher over the bitrate cap", Duration::from_secs(20)),
        "the heavy publisher was not cut:\n{}",
        node.log()
    );
    assert!(
        wait_until(Duration::from_secs(10), || big
            .0
            .try_wait()
            .is_ok_and(|s| s.is_some())),
        "ffmpeg kept publishing after the cut"
    );
    eprintln!("heavy publisher cut after {:?}", t0.elapsed());
    assert!(counter(&node, "weir_publish_cut_total", &[("reason", "bitrate")]) >= 1.0);
    let log = node.log();
    let cut = log
        .lines()
        .find(|l| l.contains("publisher over the bitrate cap"))
        .unwrap_or_default();
    assert!(cut.contains("channel=heavy"), "{cut}");
    // The light one plays on.
    let before = weir_e2e::fetch_playlist(node.http_port, &light_media).next_msn();
    assert!(
        wait_until(Duration::from_secs(10), || {
            weir_e2e::fetch_playlist(node.http_port, &light_media).next_msn() > before + 1
        }),
        "the publisher under the cap stalled"
    );
    assert!(
        !node.log().contains("channel=light kbps"),
        "the light publisher was cut"
    );
}

/// `--metrics-listen` moves `/metrics` off the public origin.
#[test]
fn metrics_can_be_served_on_a_private_address_only() {
    let port = weir_e2e::free_port();
    let addr = format!("127.0.0.1:{port}");
    let node = node_with(&["--metrics-listen", &addr]);
    assert!(
        node.wait_log(
            &format!("metrics: http://{addr}/metrics only"),
            Duration::from_secs(10)
        ),
        "{}",
        node.log()
    );
    assert_eq!(get(node.http_port, "/metrics").expect("origin").status, 404);
    let r = get(port, "/metrics").expect("metrics listener");
    assert_eq!(r.status, 200);
    assert!(r.text().contains("weir_"), "{}", r.text());
    assert_eq!(get(port, "/live/x/index.m3u8").expect("other").status, 404);
}
