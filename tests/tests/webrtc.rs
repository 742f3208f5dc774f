//! WebRTC end to end with real peers: Debian's headless Chromium (fake camera and
//! microphone) publishes over WHIP from the node's own `web/whip.html`, two more pages
//! play it over WHEP (`web/whep.html`) and the test reads their `getStats()`; ffmpeg
//! decodes the same WHIP broadcast over LL-HLS (H.264 + Opus in CMAF). An RTMP stream
//! from ffmpeg plays over WHEP; one with B-frames is refused with a clear message; bad
//! offers get clear errors and leave the node serving.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use weir_e2e::KillOnDrop;
use weir_e2e::browser::{SETUP, web_dir};
use weir_e2e::http::{request, send};
use weir_e2e::{Node, ffmpeg_publish, output, require, wait_until};

/// One browser test at a time: two Chromium runs plus encoders on a 2-core machine starve
/// each other's decoders, and a starved decoder counts a freeze this test would blame on
/// the node.
static ONE_BROWSER: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_browser() -> std::sync::MutexGuard<'static, ()> {
    ONE_BROWSER
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn require_browser() {
    require("node");
    let chromium = std::env::var_os("CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    assert!(chromium.exists(), "{} missing: {SETUP}", chromium.display());
    assert!(
        web_dir()
            .join("node_modules/playwright-core/package.json")
            .exists(),
        "playwright-core missing: {SETUP}"
    );
}

/// Runs `tests/web/webrtc.mjs` on `pages`; returns its exit code and report.
fn browsers(pages: &[String], seconds: u32) -> (i32, Value, String) {
    let mut cmd = Command::new("node");
    cmd.arg(web_dir().join("webrtc.mjs")).args([
        "--seconds",
        &seconds.to_string(),
        "--timeout",
        "30",
    ]);
    for p in pages {
        cmd.args(["--page", p]);
    }
    let mut child = cmd
        .current_dir(web_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run node: {e}: {SETUP}"));
    let mut out_pipe = child.stdout.take().expect("stdout");
    let mut err_pipe = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out_pipe.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err_pipe.read_to_string(&mut s);
        s
    });
    let mut child = KillOnDrop(child);
    let deadline =
        Instant::now() + Duration::from_secs(u64::from(seconds) + 30 * pages.len() as u64 + 30);
    let code = loop {
        if let Some(s) = child.0.try_wait().expect("wait") {
            break s.code().unwrap_or(-1);
        }
        assert!(Instant::now() < deadline, "webrtc.mjs hung");
        std::thread::sleep(Duration::from_millis(200));
    };
    let out = out.join().unwrap_or_default();
    let err = err.join().unwrap_or_default();
    let report = out
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or(Value::Null);
    (code, report, err)
}

fn stat(v: &Value, key: &str) -> f64 {
    v["stats"][key].as_f64().unwrap_or(0.0)
}

/// A player page's samples after it connected: framesDecoded must keep rising (no
/// stall longer than `max_gap_s`) and the final state must be connected.
fn assert_played(page: &Value, min_frames: f64, max_gap_s: f64) {
    let samples = page["samples"].as_array().expect("samples");
    let fin = &page["final"];
    assert_eq!(fin["state"], "connected", "player ended as {fin}");
    assert!(
        stat(fin, "framesDecoded") >= min_frames,
        "decoded {} frames (want ≥ {min_frames}): {fin}",
        stat(fin, "framesDecoded")
    );
    assert_eq!(fin["stats"]["codec"], "video/H264", "{fin}");
    let (mut last_frames, mut last_change) = (0.0, None::<f64>);
    for s in samples.iter().filter(|s| s["state"] == "connected") {
        let t = s["t"].as_f64().unwrap_or(0.0) / 1000.0;
        let f = stat(s, "framesDecoded");
        if f > last_frames {
            if let Some(at) = last_change {
                assert!(t - at <= max_gap_s, "no new frame for {:.1} s", t - at);
            }
            last_frames = f;
            last_change = Some(t);
        }
    }
}

#[test]
fn whip_from_chromium_plays_over_whep_and_ll_hls() {
    let _one = one_browser();
    require_browser();
    require("ffmpeg");
    let node = Node::start();
    let (_, key) = node.issue_key("cam");
    let base = node.http_url("/web");
    let publish = format!("{base}/whip.html?key={key}&autostart=1");
    let play = format!("{base}/whep.html?channel=cam&autostart=1&retry=10");

    // ffmpeg reads the same broadcast over LL-HLS while the browsers run.
    let hls_url = node.http_url("/live/cam/index.m3u8");
    let hls = std::thread::spawn(move || {
        let ok = wait_until(Duration::from_secs(40), || {
            request(url_port(&hls_url), "GET", "/live/cam/index.m3u8")
                .is_ok_and(|r| r.status == 200)
        });
        assert!(ok, "the WHIP broadcast never got an LL-HLS playlist");
        // The browsers publish for 20 s: give ffmpeg a few tries inside that window (a
        // loaded machine may take a while to have whole segments).
        let mut last = (false, String::new(), String::new());
        for _ in 0..3 {
            std::thread::sleep(Duration::from_secs(3));
            let mut cmd = Command::new("ffmpeg");
            cmd.args([
                "-hide_banner",
                "-nostdin",
                "-loglevel",
                "error",
                "-i",
                &hls_url,
            ])
            .args(["-t", "4", "-f", "null", "-", "-progress", "pipe:1"]);
            last = output(&mut cmd);
            if last.0 {
                break;
            }
        }
        last
    });

    let (code, report, err) = browsers(&[publish, play.clone(), play], 20);
    assert_eq!(code, 0, "browsers: {report}\n{err}\n{}", node.log());
    let pages = report["pages"].as_array().expect("pages");
    let publisher = &pages[0]["final"];
    assert!(stat(publisher, "framesEncoded") > 300.0, "{publisher}");
    for viewer in &pages[1..] {
        // 20 s at the fake camera's 30 fps, minus start-up.
        assert_played(viewer, 300.0, 2.0);
        assert!(
            stat(&viewer["final"], "audioBytesReceived") > 10_000.0,
            "Opus audio arrives"
        );
        assert_eq!(
            stat(&viewer["final"], "freezeCount"),
            0.0,
            "no freeze: {}",
            viewer["final"]
        );
    }
    let (ok, progress, stderr) = hls.join().expect("ffmpeg thread");
    assert!(
        ok,
        "ffmpeg could not decode the WHIP stream over LL-HLS: {stderr}"
    );
    let frames: u64 = progress
        .lines()
        .filter_map(|l| l.strip_prefix("frame="))
        .filter_map(|v| v.trim().parse().ok())
        .max()
        .unwrap_or(0);
    assert!(
        frames >= 60,
        "ffmpeg decoded {frames} frames over LL-HLS: {stderr}"
    );
    let log = node.log();
    assert!(
        log.contains("WHIP connected") && log.contains("WHEP viewer connected"),
        "{log}"
    );
}

fn url_port(url: &str) -> u16 {
    url.split(':')
        .nth(2)
        .and_then(|p| p.split('/').next())
        .and_then(|p| p.parse().ok())
        .expect("port in URL")
}

#[test]
fn rtmp_plays_over_whep_and_b_frames_are_refused_clearly() {
    let _one = one_browser();
    require_browser();
    let node = Node::start();
    let (_, key) = node.issue_key("tv");
    // ffmpeg with -tune zerolatency: no B-frames.
    let mut ff = KillOnDrop(
        ffmpeg_publish(&node.rtmp_url(&key), 60)
            .spawn()
            .expect("ffmpeg"),
    );
    let play = node.http_url("/web/whep.html?channel=tv&autostart=1&retry=10");
    let (code, report, err) = browsers(&[play], 10);
    assert_eq!(code, 0, "{report}\n{err}\n{}", node.log());
    // 10 s of 30 fps video; AAC is not sent (WebRTC has no AAC).
    assert_played(&report["pages"][0], 200.0, 2.0);
    let _ = ff.0.kill();

    // OBS-like x264 with B-frames: WHEP says why it cannot play.
    let (_, key) = node.issue_key("obs");
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-nostdin", "-loglevel", "error", "-re"])
        .args([
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=640x360:rate=30",
            "-t",
            "30",
        ])
        .args([
            "-pix_fmt", "yuv420p", "-c:v", "libx264", "-preset", "veryfast", "-bf", "3",
        ])
        .args(["-g", "60", "-f", "flv", &node.rtmp_url(&key)])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let _obs = KillOnDrop(cmd.spawn().expect("ffmpeg"));
    let sdp = [("Content-Type", "application/sdp")];
    let mut last = None;
    let refused = wait_until(Duration::from_secs(20), || {
        let r = send(
            node.http_port,
            "POST",
            "/whep/obs",
            &sdp,
            Some("v=0\r\n"),
            Duration::from_secs(5),
        );
        let done = r.as_ref().is_ok_and(|r| r.status == 422);
        last = r.ok().map(|r| (r.status, r.text()));
        done
    });
    assert!(refused, "B-frame stream not refused: {last:?}");
    let (_, text) = last.expect("reply");
    assert!(text.contains("B-frames"), "{text}");
}

#[test]
fn bad_offers_get_clear_errors_and_the_node_keeps_serving() {
    let node = Node::start();
    let (_, key) = node.issue_key("bad");
    let sdp = [("Content-Type", "application/sdp")];
    let post = |path: &str, headers: &[(&str, &str)], body: &str| {
        send(
            node.http_port,
            "POST",
            path,
            headers,
            Some(body),
            Duration::from_secs(5),
        )
        .expect("reply")
    };
    let r = post(&format!("/whip/{key}"), &sdp, "this is not SDP");
    assert_eq!(r.status, 400, "{}", r.text());
    let r = post(&format!("/whip/{key}"), &[], "v=0\r\n");
    assert_eq!(r.status, 415, "{}", r.text());
    let r = post("/whip/not-a-key", &sdp, "v=0\r\n");
    assert_eq!(r.status, 403, "{}", r.text());
    let r = post("/whip", &sdp, "v=0\r\n");
    assert_eq!(r.status, 401, "{}", r.text());
    // The key may come as a bearer token (OBS's WHIP output); the body is still bad.
    let bearer = format!("Bearer {key}");
    let r = post("/whip", &[sdp[0], ("Authorization", &bearer)], "garbage");
    assert_eq!(r.status, 400, "{}", r.text());
    let r = post("/whep/nobody", &sdp, "v=0\r\n");
    assert_eq!(r.status, 404, "{}", r.text());
    let r = request(node.http_port, "DELETE", "/whip/session/0123").expect("reply");
    assert_eq!(r.status, 404);
    // Random UDP at every WebRTC port: counted and dropped.
    let ports: Vec<u16> = node
        .log()
        .lines()
        .find_map(|l| l.split("WebRTC on UDP ").nth(1))
        .and_then(|r| r.split_whitespace().next())
        .map(|p| p.split(',').filter_map(|x| x.parse().ok()).collect())
        .unwrap_or_default();
    assert!(
        !ports.is_empty(),
        "no WebRTC ports in the log:\n{}",
        node.log()
    );
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp");
    for (i, p) in ports.iter().enumerate() {
        for n in 0..200u32 {
            let junk: Vec<u8> = (0..(n % 300))
                .map(|b| (b * 31 + n + i as u32) as u8)
                .collect();
            let _ = udp.send_to(&junk, ("127.0.0.1", *p));
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    let metrics = request(node.http_port, "GET", "/metrics")
        .expect("metrics")
        .text();
    assert!(
        metrics.contains("weir_webrtc_dropped_datagrams_total"),
        "{metrics}"
    );
    assert_eq!(
        request(node.http_port, "GET", "/healthz")
            .expect("health")
            .status,
        200
    );
}

/// A TURN relay (Debian's coturn) with the TURN REST API's shared secret, on loopback.
struct Turn {
    port: u16,
    log: PathBuf,
    _child: KillOnDrop,
}

impl Turn {
    fn start(secret: &str) -> Self {
        // `require` runs `-version`, which coturn does not know (it would start a server).
        let installed = Command::new("turnserver")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(installed, "turnserver (coturn) is not installed: {SETUP}");
        let port = weir_e2e::free_udp_port();
        let dir = std::env::temp_dir().join(format!("weir-turn-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("turn dir");
        let log = dir.join("turn.log");
        let relay = 40_000 + (port % 20_000);
        let child = Command::new("turnserver")
            .args(["-n", "--no-cli", "--no-tls", "--no-dtls", "--fingerprint"])
            .args(["--listening-ip", "127.0.0.1", "--relay-ip", "127.0.0.1"])
            .args(["--listening-port", &port.to_string()])
            .args(["--min-port", &relay.to_string()])
            .args(["--max-port", &(relay + 50).to_string()])
            .args(["--use-auth-secret", "--static-auth-secret", secret])
            .args(["--realm", "weir.test", "--allow-loopback-peers"])
            .args(["--simple-log", "--log-file"])
            .arg(&log)
            .arg("--verbose")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("turnserver");
        std::thread::sleep(Duration::from_millis(500));
        Self {
            port,
            log,
            _child: KillOnDrop(child),
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// The node hands out a TURN server with short-lived credentials made from coturn's
/// shared secret (`Link` headers on OPTIONS and on answers); Chromium, allowed to use
/// relays only, publishes over WHIP and plays over WHEP through coturn, so media flows
/// only if those credentials are right.
#[test]
fn chromium_publishes_and_plays_through_a_turn_relay_the_node_hands_out() {
    let _one = one_browser();
    require_browser();
    let turn = Turn::start("north wind");
    let server = format!(
        "turn:127.0.0.1:{}?transport=udp;secret=north wind",
        turn.port
    );
    let node = Node::start_with(weir_e2e::NodeOptions {
        extra_args: vec!["--webrtc-ice-server".into(), server],
        ..weir_e2e::NodeOptions::default()
    });
    // OPTIONS answers with the server and fresh credentials.
    let r = send(
        node.http_port,
        "OPTIONS",
        "/whep/cam",
        &[],
        None,
        Duration::from_secs(5),
    )
    .expect("OPTIONS");
    assert_eq!(r.status, 204);
    let link = r.header("link").unwrap_or_default().to_owned();
    assert!(
        link.contains(&format!("<turn:127.0.0.1:{}?transport=udp>", turn.port))
            && link.contains("rel=\"ice-server\"")
            && link.contains(":weir\"; credential=\""),
        "{link}"
    );
    assert!(
        !link.contains("north"),
        "the secret itself went out: {link}"
    );

    let (_, key) = node.issue_key("cam");
    let base = node.http_url("/web");
    let publish = format!("{base}/whip.html?key={key}&autostart=1&relay=1");
    let play = format!("{base}/whep.html?channel=cam&autostart=1&retry=10&relay=1");
    let (code, report, err) = browsers(&[publish, play], 10);
    assert_eq!(code, 0, "{report}\n{err}\n{}\n{}", node.log(), turn.log());
    let pages = report["pages"].as_array().expect("pages");
    for page in pages {
        assert_eq!(
            page["final"]["stats"]["candidateType"], "relay",
            "not through the relay: {}",
            page["final"]
        );
    }
    assert_played(&pages[1], 150.0, 2.0);
    let log = turn.log();
    assert!(
        log.contains("ALLOCATE") || log.contains("allocation"),
        "coturn saw no allocation:\n{log}"
    );
}

/// A WHEP viewer of a signed channel plays under its token and stops getting video once
/// the token expires: the node ends the session at expiry, so a revoked entitlement (no
/// new token) ends WebRTC playback within the TTL, as it does for LL-HLS.
#[test]
fn a_whep_session_under_a_playback_token_ends_when_the_token_expires() {
    let _one = one_browser();
    require_browser();
    require("ffmpeg");
    let node = Node::start();
    let (owner, channel, key) = weir_e2e::graphql::owner_channel_key(&node, "expiring");
    weir_e2e::graphql::gql_ok(
        node.api_port,
        Some(&owner.access_token),
        "mutation($c:ID!){setEntitlement(channelId:$c,input:{access:PUBLIC,signedUrls:true,signedUrlTtlSecs:8}){signedUrls}}",
        serde_json::json!({ "c": channel }),
    );
    let _ff = KillOnDrop(
        ffmpeg_publish(&node.rtmp_url(&key), 60)
            .spawn()
            .expect("ffmpeg"),
    );
    let url = weir_e2e::graphql::gql_ok(
        node.api_port,
        Some(&owner.access_token),
        "query($c:ID!){playbackUrl(channelId:$c){url expiresAt}}",
        serde_json::json!({ "c": channel }),
    )["playbackUrl"]
        .clone();
    let expires_ms = url["expiresAt"].as_f64().expect("expiresAt") * 1000.0;
    let token = url["url"]
        .as_str()
        .and_then(|u| u.split('/').find(|s| s.starts_with("t.")))
        .expect("a token")
        .to_owned();
    let play = node.http_url(&format!(
        "/web/whep.html?channel=expiring&token={token}&autostart=1&retry=10"
    ));
    let (_, report, err) = browsers(&[play], 16);
    let page = &report["pages"][0];
    let samples = page["samples"].as_array().cloned().unwrap_or_default();
    let frames_at = |t: f64| {
        samples
            .iter()
            .filter(|s| s["t"].as_f64().unwrap_or(0.0) <= t)
            .map(|s| stat(s, "framesDecoded"))
            .fold(0.0, f64::max)
    };
    let before = frames_at(expires_ms);
    assert!(
        before > 30.0,
        "it did not play before the expiry: {before} frames\n{page}\n{err}"
    );
    let last_t = samples
        .iter()
        .filter_map(|s| s["t"].as_f64())
        .fold(0.0, f64::max);
    assert!(
        last_t > expires_ms + 4000.0,
        "the page was not watched long after the expiry\n{page}"
    );
    // A second after the expiry, nothing new is decoded.
    let after = frames_at(expires_ms + 1500.0);
    let end = frames_at(last_t);
    assert!(
        end - after <= 5.0,
        "video went on after the token expired: {after} → {end} frames\n{}",
        node.log()
    );
}
