//! The listeners beside RTMP and the origin, against the real binary: SRT callers and
//! WebRTC sessions (WHIP publishers, WHEP viewers) beyond `srt_max_connections_per_ip` /
//! `webrtc_max_sessions_per_ip` are refused at once (SRT reject 2402; HTTP 503 with
//! Retry-After), counted in `weir_connections_refused_total{listener}` and logged, while
//! the sessions admitted earlier carry on; a closed session gives its place back. The
//! control plane's port (GraphQL, chat) cuts a dribbled request head at its deadline and
//! refuses connections over its per-address cap while another address is served.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use weir_e2e::http::{request, send};
use weir_e2e::{KillOnDrop, Node, NodeOptions, metric, output, require, variant_uri, wait_until};

fn node_with(args: &[&str]) -> Node {
    Node::start_with(NodeOptions {
        extra_args: args.iter().map(|s| (*s).to_owned()).collect(),
        ..NodeOptions::default()
    })
}

fn refused(node: &Node, listener: &str) -> f64 {
    metric(
        node.http_port,
        "weir_connections_refused_total",
        &[("listener", listener), ("reason", "per_ip")],
    )
    .unwrap_or(0.0)
}

/// ffmpeg sending x264 (B-frames) + AAC in MPEG-TS over SRT to `url` for `seconds`.
fn srt_publish(url: &str, seconds: u32) -> Command {
    require("ffmpeg");
    let mut c = Command::new("timeout");
    c.arg((seconds + 10).to_string())
        .args([
            "ffmpeg",
            "-hide_banner",
            "-nostdin",
            "-loglevel",
            "error",
            "-re",
        ])
        .args(["-f", "lavfi", "-i", "testsrc2=size=320x180:rate=30"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", &seconds.to_string(), "-pix_fmt", "yuv420p"])
        .args([
            "-c:v", "libx264", "-preset", "veryfast", "-bf", "2", "-g", "60",
        ])
        .args(["-c:a", "aac", "-f", "mpegts", url])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

/// The media playlist of `channel` once it is live, or `None` after `timeout`.
fn live_playlist(node: &Node, channel: &str, timeout: Duration) -> Option<String> {
    let path = format!("/live/{channel}/index.m3u8");
    let mut media = None;
    wait_until(timeout, || {
        media = request(node.http_port, "GET", &path)
            .ok()
            .filter(|r| r.status == 200)
            .and_then(|r| variant_uri(&r.text()));
        media.is_some()
    });
    media.map(|m| format!("/live/{channel}/{m}"))
}

#[test]
fn srt_callers_over_the_per_address_cap_get_2402_and_the_first_keeps_publishing() {
    let node = node_with(&["--srt-max-connections-per-ip", "1"]);
    let (_, first_key) = node.issue_key("srt-first");
    let (_, second_key) = node.issue_key("srt-second");
    let mut first = KillOnDrop(
        srt_publish(&node.srt_url(&first_key), 14)
            .spawn()
            .expect("ffmpeg"),
    );
    let media = live_playlist(&node, "srt-first", Duration::from_secs(15))
        .unwrap_or_else(|| panic!("the first SRT publish is not live:\n{}", node.log()));

    // A second caller from the same address: refused with 2402, at once.
    let started = std::time::Instant::now();
    let (ok, _, err) = output(&mut srt_publish(&node.srt_url(&second_key), 3));
    assert!(
        !ok,
        "a second SRT caller from one address was admitted: {err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "refusing took {:?}",
        started.elapsed()
    );
    assert!(refused(&node, "srt") >= 1.0, "{}", node.log());
    assert!(
        node.log()
            .lines()
            .any(|l| l.contains("connection refused") && l.contains("srt")),
        "no log line:\n{}",
        node.log()
    );

    // The first one kept publishing: its playlist still grows.
    let before = request(node.http_port, "GET", &media)
        .expect("playlist")
        .text();
    std::thread::sleep(Duration::from_secs(2));
    let after = request(node.http_port, "GET", &media)
        .expect("playlist")
        .text();
    assert_ne!(before, after, "the admitted SRT publish stalled");

    // Once it has left, its place is free again.
    let _ = first.0.wait();
    assert!(
        wait_until(Duration::from_secs(15), || node
            .log()
            .contains("SRT publisher left")),
        "{}",
        node.log()
    );
    let _second = KillOnDrop(
        srt_publish(&node.srt_url(&second_key), 8)
            .spawn()
            .expect("ffmpeg"),
    );
    assert!(
        live_playlist(&node, "srt-second", Duration::from_secs(15)).is_some(),
        "the address got no place back after its caller left:\n{}",
        node.log()
    );
}

/// A browser-like WHIP offer (H.264 + Opus, BUNDLE, DTLS actpass); it never connects,
/// so its session holds a place until it is deleted or its connect timeout ends it.
const OFFER: &str = "v=0\r\n\
o=- 4611731400430051336 2 IN IP4 127.0.0.1\r\n\
s=-\r\n\
t=0 0\r\n\
a=group:BUNDLE 0 1\r\n\
a=msid-semantic: WMS\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 102\r\n\
c=IN IP4 0.0.0.0\r\n\
a=rtcp:9 IN IP4 0.0.0.0\r\n\
a=ice-ufrag:wEiR\r\n\
a=ice-pwd:aaaabbbbccccddddeeeeffff\r\n\
a=ice-options:trickle\r\n\
a=fingerprint:sha-256 2A:1B:9C:3D:4E:5F:60:71:82:93:A4:B5:C6:D7:E8:F9:0A:1B:2C:3D:4E:5F:60:71:82:93:A4:B5:C6:D7:E8:F9\r\n\
a=setup:actpass\r\n\
a=mid:0\r\n\
a=sendonly\r\n\
a=msid:- v0\r\n\
a=rtcp-mux\r\n\
a=rtcp-rsize\r\n\
a=rtpmap:102 H264/90000\r\n\
a=rtcp-fb:102 nack\r\n\
a=rtcp-fb:102 nack pli\r\n\
a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n\
a=ssrc:11111111 cname:weir\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
c=IN IP4 0.0.0.0\r\n\
a=rtcp:9 IN IP4 0.0.0.0\r\n\
a=ice-ufrag:wEiR\r\n\
a=ice-pwd:aaaabbbbccccddddeeeeffff\r\n\
a=ice-options:trickle\r\n\
a=fingerprint:sha-256 2A:1B:9C:3D:4E:5F:60:71:82:93:A4:B5:C6:D7:E8:F9:0A:1B:2C:3D:4E:5F:60:71:82:93:A4:B5:C6:D7:E8:F9\r\n\
a=setup:actpass\r\n\
a=mid:1\r\n\
a=sendonly\r\n\
a=msid:- a0\r\n\
a=rtcp-mux\r\n\
a=rtpmap:111 opus/48000/2\r\n\
a=fmtp:111 minptime=10;useinbandfec=1\r\n\
a=ssrc:22222222 cname:weir\r\n";

#[test]
fn webrtc_sessions_over_the_per_address_cap_get_503_and_a_deleted_one_frees_its_place() {
    let node = node_with(&["--webrtc-max-sessions-per-ip", "2"]);
    let keys: Vec<String> = (0..3)
        .map(|i| node.issue_key(&format!("rtc-{i}")).1)
        .collect();
    let offer = |key: &str| {
        send(
            node.http_port,
            "POST",
            &format!("/whip/{key}"),
            &[("Content-Type", "application/sdp")],
            Some(OFFER),
            Duration::from_secs(10),
        )
        .expect("WHIP reply")
    };
    let a = offer(&keys[0]);
    assert_eq!(a.status, 201, "{}\n{}", a.text(), node.log());
    let b = offer(&keys[1]);
    assert_eq!(b.status, 201, "{}", b.text());

    // The third session from this address is refused before any work is done.
    let c = offer(&keys[2]);
    assert_eq!(c.status, 503, "{}", c.text());
    assert_eq!(c.header("Retry-After").as_deref(), Some("10"));
    assert!(
        c.text().contains("too many WebRTC sessions"),
        "{}",
        c.text()
    );
    assert!(refused(&node, "webrtc") >= 1.0);
    // Viewers count too: a WHEP offer is refused the same way.
    let w = send(
        node.http_port,
        "POST",
        "/whep/rtc-0",
        &[("Content-Type", "application/sdp")],
        Some(OFFER),
        Duration::from_secs(10),
    )
    .expect("WHEP reply");
    assert_eq!(w.status, 503, "{}", w.text());

    // Ending one gives its place back.
    let location = a.header("Location").expect("Location");
    let d = request(node.http_port, "DELETE", &location).expect("DELETE");
    assert_eq!(d.status, 200, "{}", d.text());
    let mut again = None;
    assert!(
        wait_until(Duration::from_secs(5), || {
            let r = offer(&keys[2]);
            let admitted = r.status == 201;
            again = Some(r);
            admitted
        }),
        "no place after DELETE: {:?}",
        again.map(|r| (r.status, r.text()))
    );
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

/// Whether the server closed `s` within `limit` (reads until EOF or reset).
fn closed_within(s: &mut TcpStream, limit: Duration) -> bool {
    let start = Instant::now();
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let mut buf = [0u8; 1024];
    while start.elapsed() < limit {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            _ => {}
        }
    }
    false
}

/// A GraphQL query over a fresh connection from `from`: the status line.
fn query_from(from: [u8; 4], port: u16) -> String {
    let mut s = connect_from(from, port);
    let body = r#"{"query":"{ __typename }"}"#;
    let req = format!(
        "POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).expect("write");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut got = String::new();
    let _ = s.read_to_string(&mut got);
    got.lines().next().unwrap_or_default().to_owned()
}

#[test]
fn the_control_plane_port_cuts_dribbled_heads_and_caps_connections_per_address() {
    let node = node_with(&[
        "--api-head-timeout-ms",
        "1500",
        "--api-max-connections-per-ip",
        "4",
    ]);
    assert!(
        node.wait_log("GraphQL API listening on", Duration::from_secs(20)),
        "{}",
        node.log()
    );
    let api = node.api_port;
    // A head dribbled a byte every 300 ms is cut at its 1.5 s deadline.
    let mut slow = connect_from([127, 0, 0, 2], api);
    let started = Instant::now();
    slow.write_all(b"POST /graphql HTTP/1.1\r\n")
        .expect("write");
    let mut cut = None;
    while started.elapsed() < Duration::from_secs(6) {
        std::thread::sleep(Duration::from_millis(300));
        if slow.write_all(b"X").is_err() || closed_within(&mut slow, Duration::from_millis(1)) {
            cut = Some(started.elapsed());
            break;
        }
    }
    let cut = cut.expect("a dribbled head was never cut");
    assert!(
        cut >= Duration::from_millis(1400) && cut < Duration::from_secs(4),
        "cut after {cut:?}"
    );
    assert!(
        metric(
            node.http_port,
            "weir_connections_timed_out_total",
            &[("listener", "api"), ("deadline", "head")]
        )
        .unwrap_or(0.0)
            >= 1.0
    );

    // Four idle connections from one address hold its places; a fifth is closed at once,
    // while another address is answered.
    let _held: Vec<TcpStream> = (0..4).map(|_| connect_from([127, 0, 0, 3], api)).collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut fifth = connect_from([127, 0, 0, 3], api);
    assert!(
        closed_within(&mut fifth, Duration::from_secs(1)),
        "a fifth connection from one address was kept"
    );
    assert!(refused(&node, "api") >= 1.0);
    assert_eq!(query_from([127, 0, 0, 4], api), "HTTP/1.1 200 OK");
    // The idle ones are closed at the deadline too, and the address is served again.
    std::thread::sleep(Duration::from_millis(1800));
    assert_eq!(query_from([127, 0, 0, 3], api), "HTTP/1.1 200 OK");
}

#[test]
fn the_control_plane_port_cuts_readers_that_stop_reading_and_bodies_that_stop_arriving() {
    // The head deadline is longer than the write deadline: hyper also runs it while a
    // kept-alive connection's answers are stuck, and it must not be the one that cuts.
    let node = node_with(&[
        "--api-head-timeout-ms",
        "4000",
        "--api-write-timeout-ms",
        "1500",
    ]);
    assert!(
        node.wait_log("GraphQL API listening on", Duration::from_secs(20)),
        "{}",
        node.log()
    );
    let api = node.api_port;
    let timed_out = |deadline: &str| {
        metric(
            node.http_port,
            "weir_connections_timed_out_total",
            &[("listener", "api"), ("deadline", deadline)],
        )
        .unwrap_or(0.0)
    };
    // Pipelined introspection queries whose answers (tens of MB) are never read: the
    // node's writes stall once the socket buffers are full, and it cuts the connection.
    let body = r#"{"query":"{ __schema { types { name description fields { name description args { name description } } } } }"}"#;
    let one = format!(
        "POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut reader = connect_from([127, 0, 0, 5], api);
    reader
        .set_write_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut sent = 0;
    for _ in 0..400 {
        if reader.write_all(one.as_bytes()).is_err() {
            break;
        }
        sent += 1;
    }
    std::thread::sleep(Duration::from_secs(3));
    let mut got = 0usize;
    reader
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let mut buf = vec![0u8; 1 << 16];
    let deadline = Instant::now() + Duration::from_secs(10);
    let closed = loop {
        match reader.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break true,
            Err(_) if Instant::now() > deadline => break false,
            Err(_) => {}
        }
    };
    assert!(closed, "a reader that stopped reading was never cut");
    let answered = String::from_utf8_lossy(&buf)
        .matches("HTTP/1.1 200")
        .count();
    assert!(
        timed_out("write") >= 1.0,
        "{sent} requests sent, {got} bytes read back ({answered}+ answers in the last read)"
    );

    // A body that stops arriving: refused (4xx) at the deadline, the connection closed.
    let mut slow = connect_from([127, 0, 0, 6], api);
    let started = Instant::now();
    slow.write_all(
        b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
          Content-Length: 100\r\n\r\n{\"query\":",
    )
    .expect("write");
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut answer = String::new();
    let _ = slow.read_to_string(&mut answer);
    let took = started.elapsed();
    assert!(answer.starts_with("HTTP/1.1 4"), "{answer}");
    // The body gets as long as a head.
    assert!(
        took >= Duration::from_millis(3900) && took < Duration::from_secs(8),
        "answered after {took:?}"
    );
    assert!(timed_out("body") >= 1.0);
    // The API still answers.
    assert_eq!(query_from([127, 0, 0, 7], api), "HTTP/1.1 200 OK");
}
