//! The creator dashboard (`/studio/` on the node, web/dashboard.html) end to end in
//! headless Chromium (`tests/web/dashboard.mjs`) against the real `weir serve` (recording
//! on, loopback destinations allowed) and a real nginx-rtmp destination: the page signs
//! up, creates a channel, issues a stream key and reads it from the page (with the OBS
//! server URL), adds the nginx-rtmp destination; this side then publishes OBS-like x264
//! (B-frames) with exactly that server and key; the page shows Live, a viewer count above
//! zero while a viewer plays the watch page, and the destination live with a bitrate
//! (nginx really receives frames, read back with ffmpeg); after the publisher stops the
//! page shows Offline, the recording appears and plays in the page's video element, a clip
//! made from the page is ready and decodes (ffmpeg), and a key rotation revokes the first
//! key (checked over GraphQL too).

#![allow(clippy::unwrap_used, missing_docs)]

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use weir_e2e::browser::{require_browser_peer, run_script};
use weir_e2e::destinations::{decode_frames, frames_read};
use weir_e2e::graphql::{gql_ok, login};
use weir_e2e::nginx_rtmp::RtmpServer;
use weir_e2e::{
    KillOnDrop, Node, NodeOptions, TempDir, http, obs_like_publish, require, wait_until,
};

const USER: &str = "dashcreator";
const PASSWORD: &str = "correct horse battery staple";
const SLUG: &str = "dash-e2e";
const DEST_KEY: &str = "mirror-key";

/// Video frames ffmpeg decodes from `url` in `seconds` (0 when it cannot read it).
fn frames_from(url: &str, seconds: u32) -> (u64, String) {
    frames_read(decode_frames(url, seconds))
}

#[test]
fn the_dashboard_takes_a_creator_from_sign_up_to_a_recording_in_chromium() {
    require_browser_peer(&["node_modules/playwright-core/package.json"]);
    require("ffmpeg");
    let dest = RtmpServer::start();
    let node = Node::start_with(NodeOptions {
        extra_args: vec![
            "--record".into(),
            "--reconnect-grace-ms".into(),
            "1500".into(),
            "--relay-allow-internal".into(),
            "true".into(),
        ],
        ..NodeOptions::default()
    });
    assert!(
        node.wait_log("GraphQL API listening on", Duration::from_secs(20)),
        "{}",
        node.log()
    );

    // Served by the node: the page names the API and the node's RTMP port; its assets too.
    let page = http::get(node.http_port, "/studio/").expect("dashboard");
    assert_eq!(page.status, 200);
    assert!(page.header("content-security-policy").is_some());
    let html = page.text();
    assert!(
        html.contains(&format!("name=\"weir-api\" content=\":{}\"", node.api_port)),
        "{html}"
    );
    assert!(
        html.contains(&format!(
            "name=\"weir-rtmp\" content=\":{}\"",
            node.rtmp_port
        )),
        "{html}"
    );
    for asset in ["/web/dashboard.js", "/web/dashboard.css"] {
        assert_eq!(
            http::get(node.http_port, asset).unwrap().status,
            200,
            "{asset}"
        );
    }
    let moved = http::get(node.http_port, "/studio").unwrap();
    assert_eq!(moved.status, 301);
    assert_eq!(moved.header("location").as_deref(), Some("/studio/"));

    let tmp = TempDir::new("dashboard");
    let dir = tmp.0.clone();
    let args: Vec<String> = [
        "--base",
        &format!("http://127.0.0.1:{}", node.http_port),
        "--user",
        USER,
        "--password",
        PASSWORD,
        "--slug",
        SLUG,
        "--dest-url",
        &dest.url(),
        "--dest-key",
        DEST_KEY,
        "--dir",
        &dir.display().to_string(),
        "--shots",
        "/tmp/dashboard",
        "--timeout",
        "220",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let browser =
        std::thread::spawn(move || run_script("dashboard.mjs", &args, Duration::from_secs(260)));

    // The page wrote the key a user would copy, then `ready` once the destination exists.
    let ready = wait_until(Duration::from_secs(90), || {
        dir.join("ready").exists() || browser.is_finished()
    }) && dir.join("ready").exists();
    let mut publisher = None;
    let mut relayed = (0, String::new());
    if ready {
        let k: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("key.json")).unwrap()).unwrap();
        let server = k["server"].as_str().unwrap();
        assert_eq!(
            server,
            format!("rtmp://127.0.0.1:{}/live", node.rtmp_port),
            "the OBS server URL the page shows"
        );
        let url = format!("{server}/{}", k["key"].as_str().unwrap());
        let mut cmd = obs_like_publish(&url, 150, "640x360");
        cmd.stderr(Stdio::null());
        publisher = Some(KillOnDrop(cmd.spawn().expect("ffmpeg publisher")));
        // The page saw Live, viewers and the destination live: nginx gets the media.
        wait_until(Duration::from_secs(150), || {
            dir.join("live").exists() || browser.is_finished()
        });
        if dir.join("live").exists() {
            relayed = frames_from(&dest.play_url(DEST_KEY), 3);
        }
    }
    drop(publisher);
    std::fs::write(tmp.0.join("stopped"), "").unwrap();
    let (ok, out, err) = browser.join().expect("browser thread");
    let v: Value = serde_json::from_str(out.trim().lines().last().unwrap_or("{}"))
        .unwrap_or_else(|_| json!({ "raw": out }));
    for s in v["steps"].as_array().into_iter().flatten() {
        eprintln!(
            "dashboard.mjs: {:>6} ms  {}  {}",
            s["ms"],
            s["name"].as_str().unwrap_or(""),
            s["error"].as_str().unwrap_or("")
        );
    }
    assert!(
        ready && ok,
        "dashboard.mjs failed:\n{v:#}\n{err}\nnginx:\n{}\nnode:\n{}",
        dest.error_log(),
        node.log()
    );
    assert_eq!(v["steps"].as_array().map(Vec::len), Some(10), "{v:#}");
    assert!(
        v["errors"].as_array().is_some_and(Vec::is_empty),
        "page errors: {v:#}"
    );
    assert!(
        relayed.0 >= 30,
        "the destination got {} frames: {}\n{}",
        relayed.0,
        relayed.1,
        dest.error_log()
    );

    // The server agrees with what the page showed.
    let owner = login(node.api_port, USER, PASSWORD);
    let channel = v["final"]["channel"]["id"].as_str().unwrap().to_owned();
    let d = gql_ok(
        node.api_port,
        Some(&owner.access_token),
        "query($c: ID!) { streamKeys(channelId: $c) { revokedAt } \
         recordings(channelId: $c) { nodes { endedAt durationMs } } \
         destinations(channelId: $c) { streamKeyHint status { state } } \
         streams(channelId: $c) { nodes { peakViewers } } }",
        json!({ "c": channel }),
    );
    let keys = d["streamKeys"].as_array().unwrap();
    assert_eq!(keys.len(), 2, "{d}");
    assert_eq!(
        keys.iter().filter(|k| k["revokedAt"].is_null()).count(),
        1,
        "{d}"
    );
    let recs = d["recordings"]["nodes"].as_array().unwrap();
    assert!(
        recs.iter()
            .any(|r| !r["endedAt"].is_null() && r["durationMs"].as_i64() > Some(3000)),
        "{d}"
    );
    assert_eq!(
        d["destinations"][0]["streamKeyHint"],
        format!("…{}", &DEST_KEY[DEST_KEY.len() - 4..]),
        "{d}"
    );
    assert!(
        d["streams"]["nodes"][0]["peakViewers"].as_i64() > Some(0),
        "{d}"
    );

    // The clip made from the page: a 2 s MP4 (0.5 s to 2.5 s) ffmpeg decodes.
    let clip: Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.0.join("clip")).unwrap()).unwrap();
    let url = clip["mp4"].as_str().unwrap();
    let (frames, err) = frames_from(url, 10);
    assert!(
        (55..=61).contains(&frames),
        "the clip {url} has {frames} frames: {err}"
    );
}
