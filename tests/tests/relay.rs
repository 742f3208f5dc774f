//! Multistreaming end to end: a channel with two destinations, each a real nginx-rtmp
//! (Debian `libnginx-mod-rtmp`) started by the test. ffmpeg publishes OBS-like x264 to
//! weir; both nginx servers receive a stream ffmpeg decodes; one is stopped and
//! restarted mid-stream and the relay to it reconnects while the other destination and
//! the LL-HLS viewers go on; GraphQL shows each destination's state. A destination on
//! loopback is refused by default (SSRF), with the reason in GraphQL.

use std::process::Stdio;
use std::time::Duration;

use serde_json::json;
use weir_e2e::destinations::{add_destination, decode_frames, frames_read, relay_states, state_of};
use weir_e2e::graphql::{Account, gql_ok, owner_channel_key, poll};
use weir_e2e::http::get;
use weir_e2e::nginx_rtmp::RtmpServer;
use weir_e2e::{KillOnDrop, Node, NodeOptions, obs_like_publish, require, wait_until};

/// `testDestination`: (ok, message).
fn test_destination(node: &Node, owner: &Account, id: &str) -> (bool, String) {
    let d = gql_ok(
        node.api_port,
        Some(&owner.access_token),
        "mutation($d: ID!) { testDestination(id: $d) { ok message millis } }",
        json!({ "d": id }),
    );
    let t = &d["testDestination"];
    (
        t["ok"].as_bool().unwrap_or(false),
        t["message"].as_str().unwrap_or_default().to_owned(),
    )
}

#[test]
fn a_broadcast_is_relayed_to_two_destinations_and_survives_one_restarting() {
    require("ffmpeg");
    let a = RtmpServer::start();
    let mut b = RtmpServer::start();
    let node = Node::start_with(NodeOptions {
        extra_args: vec!["--relay-allow-internal".into(), "true".into()],
        ..NodeOptions::default()
    });
    let (owner, channel_id, key) = owner_channel_key(&node, "relayed");
    let id_a = add_destination(node.api_port, &owner, &channel_id, "A", &a.url(), "key-a");
    let id_b = add_destination(node.api_port, &owner, &channel_id, "B", &b.url(), "key-b");
    // "Test destination" before going live: handshake and publish, no media.
    let (ok, message) = test_destination(&node, &owner, &id_a);
    assert!(ok, "test of A: {message}");
    assert!(
        a.error_log().contains("name='key-a'"),
        "A saw the test publish:\n{}",
        a.error_log()
    );

    let mut ffmpeg = KillOnDrop(
        obs_like_publish(&node.rtmp_url(&key), 40, "854x480")
            .stderr(Stdio::null())
            .spawn()
            .expect("ffmpeg"),
    );
    let both_live = poll(Duration::from_secs(20), || {
        let s = relay_states(node.api_port, &owner, &channel_id);
        state_of(&s, &id_a) == "LIVE" && state_of(&s, &id_b) == "LIVE"
    });
    assert!(
        both_live,
        "relays not live: {:?}\n{}",
        relay_states(node.api_port, &owner, &channel_id),
        node.log()
    );

    // A reader on A spans B's restart: A must not hiccup.
    let reader_a = decode_frames(&a.play_url("key-a"), 14);
    std::thread::sleep(Duration::from_secs(3));
    b.stop();
    let retrying = poll(Duration::from_secs(10), || {
        state_of(&relay_states(node.api_port, &owner, &channel_id), &id_b) == "RETRYING"
    });
    assert!(
        retrying,
        "B's relay did not notice: {:?}",
        relay_states(node.api_port, &owner, &channel_id)
    );
    let reason = relay_states(node.api_port, &owner, &channel_id)
        .into_iter()
        .find(|s| s.0 == id_b)
        .map(|s| s.2)
        .unwrap_or_default();
    assert!(
        !reason.is_empty() && !reason.contains("key-b"),
        "reason: {reason:?}"
    );
    std::thread::sleep(Duration::from_secs(2));
    b.restart();
    let back = poll(Duration::from_secs(20), || {
        state_of(&relay_states(node.api_port, &owner, &channel_id), &id_b) == "LIVE"
    });
    assert!(
        back,
        "B's relay did not come back: {:?}\n{}",
        relay_states(node.api_port, &owner, &channel_id),
        node.log()
    );
    // B plays again after the restart.
    let (frames_b, err_b) = frames_read(decode_frames(&b.play_url("key-b"), 4));
    assert!(
        frames_b >= 30,
        "B after its restart: {frames_b} frames\n{err_b}"
    );
    // A decoded all along (30 fps for 14 s; ffmpeg starts at a key frame).
    let (frames_a, err_a) = frames_read(reader_a);
    assert!(
        frames_a >= 14 * 30 * 8 / 10,
        "A during B's restart: {frames_a} frames\n{err_a}"
    );
    // Viewers on LL-HLS still get the stream.
    let mv = get(node.http_port, "/live/relayed/index.m3u8").map_or(String::new(), |r| r.text());
    assert!(mv.contains("#EXT-X-STREAM-INF"), "{mv}");
    let live = relay_states(node.api_port, &owner, &channel_id);
    assert!(
        live.iter().all(|s| s.1 == "LIVE" && s.3 > 100_000),
        "bitrates while live: {live:?}"
    );
    // The publisher leaves: after the grace the broadcast ends and the relays stop.
    let _ = ffmpeg.0.kill();
    let stopped = poll(Duration::from_secs(30), || {
        relay_states(node.api_port, &owner, &channel_id)
            .iter()
            .all(|s| s.1 == "STOPPED")
    });
    assert!(
        stopped,
        "{:?}\n{}",
        relay_states(node.api_port, &owner, &channel_id),
        node.log()
    );
    assert!(
        a.error_log().contains("name='key-a'"),
        "nginx A did not log the publish:\n{}",
        a.error_log()
    );
}

#[test]
fn internal_destinations_are_refused_by_default() {
    require("ffmpeg");
    let node = Node::start_with(NodeOptions::default());
    let (owner, channel_id, key) = owner_channel_key(&node, "ssrf");
    let loopback = add_destination(
        node.api_port,
        &owner,
        &channel_id,
        "local",
        "rtmp://127.0.0.1:1935/live",
        "k",
    );
    let (ok, message) = test_destination(&node, &owner, &loopback);
    assert!(!ok && message.contains("loopback"), "{message}");
    let metadata = add_destination(
        node.api_port,
        &owner,
        &channel_id,
        "metadata",
        "rtmp://169.254.169.254/live",
        "k",
    );
    let _ffmpeg = KillOnDrop(
        obs_like_publish(&node.rtmp_url(&key), 10, "640x360")
            .stderr(Stdio::null())
            .spawn()
            .expect("ffmpeg"),
    );
    let mut states = Vec::new();
    let failed = poll(Duration::from_secs(20), || {
        states = relay_states(node.api_port, &owner, &channel_id);
        state_of(&states, &loopback) == "FAILED" && state_of(&states, &metadata) == "FAILED"
    });
    assert!(failed, "{states:?}\n{}", node.log());
    let reason = |id: &str| -> String {
        states
            .iter()
            .find(|s| s.0 == id)
            .map(|s| s.2.clone())
            .unwrap_or_default()
    };
    assert!(reason(&loopback).contains("loopback"), "{states:?}");
    assert!(reason(&metadata).contains("link-local"), "{states:?}");
    // The broadcast itself is unaffected.
    let mv = wait_until(Duration::from_secs(10), || {
        get(node.http_port, "/live/ssrf/index.m3u8")
            .is_ok_and(|r| r.text().contains("#EXT-X-STREAM-INF"))
    });
    assert!(mv, "{}", node.log());
}

/// `rtmps://`: TLS to the destination (nginx `stream` terminating TLS in front of
/// nginx-rtmp, a self-signed certificate the node is told to trust).
#[test]
fn an_rtmps_destination_gets_the_stream_over_tls() {
    require("ffmpeg");
    let dest = RtmpServer::start_tls();
    let node = Node::start_with(NodeOptions {
        extra_args: vec![
            "--relay-allow-internal".into(),
            "true".into(),
            "--relay-ca-file".into(),
            dest.cert_path().display().to_string(),
        ],
        ..NodeOptions::default()
    });
    let (owner, channel_id, key) = owner_channel_key(&node, "secure");
    let url = dest.tls_url().expect("TLS server");
    let id = add_destination(node.api_port, &owner, &channel_id, "TLS", &url, "key-tls");
    let _ffmpeg = KillOnDrop(
        obs_like_publish(&node.rtmp_url(&key), 20, "640x360")
            .stderr(Stdio::null())
            .spawn()
            .expect("ffmpeg"),
    );
    let mut states = Vec::new();
    let live = poll(Duration::from_secs(20), || {
        states = relay_states(node.api_port, &owner, &channel_id);
        state_of(&states, &id) == "LIVE"
    });
    assert!(live, "{states:?}\n{}", node.log());
    // Read back in the clear from nginx-rtmp behind the TLS terminator.
    let (frames, err) = frames_read(decode_frames(&dest.play_url("key-tls"), 4));
    assert!(frames >= 30, "over RTMPS: {frames} frames\n{err}");
}

/// The resident memory of process `pid`, KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// A destination that accepted the stream and then stopped reading (nginx frozen with
/// SIGSTOP) is cut after the write timeout, and the node's memory does not grow while it
/// stalls (its queue is bounded and skips to key frames); the other destination decodes
/// all along; once the stalled one reads again, its relay comes back.
#[test]
fn a_destination_that_stops_reading_is_cut_without_growing_memory() {
    require("ffmpeg");
    let stalled = RtmpServer::start();
    let healthy = RtmpServer::start();
    let mut node = Node::start_with(NodeOptions {
        extra_args: [
            "--relay-allow-internal",
            "true",
            "--relay-write-timeout-ms",
            "3000",
        ]
        .map(String::from)
        .to_vec(),
        ..NodeOptions::default()
    });
    let api = node.api_port;
    let (owner, channel_id, key) = owner_channel_key(&node, "stalling");
    let id_s = add_destination(api, &owner, &channel_id, "S", &stalled.url(), "key-s");
    let id_h = add_destination(api, &owner, &channel_id, "H", &healthy.url(), "key-h");
    let _ffmpeg = KillOnDrop(
        obs_like_publish(&node.rtmp_url(&key), 50, "854x480")
            .stderr(Stdio::null())
            .spawn()
            .expect("ffmpeg"),
    );
    let both_live = poll(Duration::from_secs(20), || {
        let s = relay_states(api, &owner, &channel_id);
        state_of(&s, &id_s) == "LIVE" && state_of(&s, &id_h) == "LIVE"
    });
    assert!(
        both_live,
        "{:?}\n{}",
        relay_states(api, &owner, &channel_id),
        node.log()
    );
    std::thread::sleep(Duration::from_secs(2));
    let pid = node.process().pid().expect("weir runs");
    let rss_before = rss_kib(pid);

    let reader = decode_frames(&healthy.play_url("key-h"), 14);
    stalled.pause();
    let mut reason = String::new();
    let cut = poll(Duration::from_secs(30), || {
        let s = relay_states(api, &owner, &channel_id);
        reason = s
            .iter()
            .find(|r| r.0 == id_s)
            .map(|r| r.2.clone())
            .unwrap_or_default();
        state_of(&s, &id_s) == "RETRYING" && reason.contains("read nothing")
    });
    assert!(
        cut,
        "the stalled destination was not cut: {reason:?}\n{}",
        node.log()
    );
    // Stalled a while longer (its retries cannot complete a handshake either).
    let mut rss_peak = rss_kib(pid);
    for _ in 0..6 {
        std::thread::sleep(Duration::from_secs(1));
        rss_peak = rss_peak.max(rss_kib(pid));
    }
    assert!(
        rss_peak < rss_before + 16 * 1024,
        "memory grew while a destination stalled: {rss_before} → {rss_peak} KiB"
    );
    let (frames, err) = frames_read(reader);
    assert!(
        frames >= 14 * 30 * 8 / 10,
        "the healthy destination while the other stalled: {frames} frames\n{err}"
    );
    assert_eq!(
        state_of(&relay_states(api, &owner, &channel_id), &id_h),
        "LIVE"
    );

    stalled.resume();
    let back = poll(Duration::from_secs(40), || {
        state_of(&relay_states(api, &owner, &channel_id), &id_s) == "LIVE"
    });
    assert!(
        back,
        "{:?}\n{}",
        relay_states(api, &owner, &channel_id),
        node.log()
    );
}
