//! Split deployment: etcd, `weir controlplane` and `weir dataplane` as separate processes.
//! A creator sets up a channel and key over GraphQL and publishes with ffmpeg to the data
//! plane; a graphql-ws dashboard on the control plane sees the stream go live, the viewer
//! count move and the stream end; the operator (bootstrap admin) sees the node in `nodes`.
//! etcd is killed mid-stream: playback goes on; it comes back on the same data and ports:
//! the node re-registers and the state converges. The recording is listed, a clip of it is
//! cut on the node and deleted, then the recording is deleted, files included. Finally the key is revoked over GraphQL and the data
//! plane refuses it.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use weir_e2e::cluster::{ControlPlane, DataPlane, Secrets};
use weir_e2e::etcd::Etcd;
use weir_e2e::graphql::{
    WsClient, create_channel, error_code, gql, gql_ok, issue_stream_key, login, register_and_login,
    try_gql,
};
use weir_e2e::http::get;
use weir_e2e::player::Player;
use weir_e2e::subs::{describe, states, stream_events, subscribe_dashboard, viewer_counts};
use weir_e2e::{Process, fetch_playlist, ffmpeg_publish, variant_uri, wait_until};

const SECONDS: u32 = 25;
const PASSWORD: &str = "correct horse battery staple";
const ADMIN: &str = "operator";
const ADMIN_PASSWORD: &str = "operator-password-42";
const NODE_ID: &str = "e2e-node-1";
const SLUG: &str = "split-show";
const NODES: &str = "{ nodes { id address version streams viewers lastSeen } }";

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

/// This node's entry in the `nodes` query, if listed (`None` also when the query fails).
fn listed_node(api: u16, admin: &str) -> Option<Value> {
    let r = try_gql(api, Some(admin), NODES, json!({})).ok()?;
    r["data"]["nodes"]
        .as_array()?
        .iter()
        .find(|n| n["id"] == NODE_ID)
        .cloned()
}

#[test]
fn split_deployment_streams_survives_etcd_loss_and_converges() {
    let t0 = Instant::now();
    let mut etcd = Etcd::start();
    let secrets = Secrets::generate();
    let bootstrap = format!("{ADMIN}:{ADMIN}@example.com:{ADMIN_PASSWORD}");
    let cp = ControlPlane::start(
        &[etcd.url()],
        &secrets,
        &[("WEIR_BOOTSTRAP_ADMIN", bootstrap.as_str())],
    );
    let api = cp.api_port;
    let mut dp = DataPlane::start(
        &cp.url(),
        NODE_ID,
        &secrets,
        &["--reconnect-grace-ms", "1500", "--record"],
    );
    assert!(
        dp.proc
            .wait_log("registered with the control plane", Duration::from_secs(15)),
        "the data plane did not register with the control plane within 15 s"
    );

    // The operator sees the node; a creator may not list nodes.
    let admin = login(api, ADMIN, ADMIN_PASSWORD);
    let mut node = None;
    assert!(
        wait_until(Duration::from_secs(10), || {
            node = listed_node(api, &admin.access_token);
            node.is_some()
        }),
        "the nodes query does not list {NODE_ID}: {}",
        gql(api, Some(&admin.access_token), NODES, json!({}))
    );
    eprintln!("node listed: {}", node.unwrap_or_default());

    // A creator: account, channel and key over GraphQL.
    let owner = register_and_login(api, "creator", PASSWORD);
    let r = gql(api, Some(&owner.access_token), NODES, json!({}));
    assert_eq!(error_code(&r).as_deref(), Some("FORBIDDEN"), "{r}");
    let ch = create_channel(api, &owner.access_token, SLUG);
    let (key_id, secret) = issue_stream_key(api, &owner.access_token, &ch);

    let ws = WsClient::connect(api, &owner.access_token);
    subscribe_dashboard(&ws, &ch);
    assert!(
        ws.wait_for(Duration::from_secs(10), |_| !viewer_counts(&ws).is_empty()),
        "the viewerCount subscription did not send the current value: {}",
        describe(&ws)
    );

    // Publish to the data plane: the control plane authorizes the key and sees it go live.
    let mut ffmpeg = Process::spawn(
        "ffmpeg",
        ffmpeg_publish(&dp.rtmp_url(&secret), SECONDS),
        dp.dir.0.join("ffmpeg.log"),
    );
    assert!(
        ws.wait_for(Duration::from_secs(20), |_| {
            states(&ws).iter().any(|s| s == "LIVE")
        }),
        "the subscription did not see the stream go live: {}",
        describe(&ws)
    );
    assert_eq!(
        states(&ws)[..2],
        ["STARTING".to_owned(), "LIVE".to_owned()],
        "{}",
        describe(&ws)
    );
    let events = stream_events(&ws);
    let stream_id = events[0]["id"].clone();
    assert_eq!(events[1]["id"], stream_id, "{events:?}");
    assert_eq!(events[0]["nodeId"], NODE_ID, "{events:?}");
    eprintln!("live at {:?}", t0.elapsed());

    // A player: the viewer count moves (counted on the node, aggregated by the control plane).
    let player = Player::start(dp.http_port, SLUG, Duration::from_secs(30));
    assert!(
        ws.wait_for(Duration::from_secs(15), |_| {
            viewer_counts(&ws).iter().any(|&c| c >= 1)
        }),
        "viewer count did not move with a player: {}",
        describe(&ws)
    );
    eprintln!("viewer counted at {:?}", t0.elapsed());
    // The node's heartbeats carry its load.
    let mut loaded = None;
    assert!(
        wait_until(Duration::from_secs(10), || {
            loaded = listed_node(api, &admin.access_token);
            loaded.as_ref().is_some_and(|n| {
                n["streams"].as_i64() >= Some(1) && n["viewers"].as_i64() >= Some(1)
            })
        }),
        "the nodes query does not show the node's stream and viewer: {loaded:?}"
    );

    // Kill etcd mid-stream: the stream keeps flowing for players.
    let mv = get(dp.http_port, &format!("/live/{SLUG}/index.m3u8")).expect("multivariant");
    assert_eq!(mv.status, 200);
    let media = format!("/live/{SLUG}/{}", variant_uri(&mv.text()).expect("variant"));
    let mut before = fetch_playlist(dp.http_port, &media);
    assert!(
        wait_until(Duration::from_secs(15), || {
            before = fetch_playlist(dp.http_port, &media);
            before.segments.len() >= 2 && player.playlists_ok() >= 3
        }),
        "no playback before the etcd kill (player: {} playlists):\n{}",
        player.playlists_ok(),
        before.text
    );
    assert!(
        !before.ended && before.preload_hint.is_some(),
        "{}",
        before.text
    );
    etcd.kill();
    let killed = Instant::now();
    let mut last_hint = before.preload_hint.clone();
    let mut last_change = Duration::ZERO;
    let mut after = before.clone();
    while killed.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(250));
        let pl = fetch_playlist(dp.http_port, &media);
        if pl.preload_hint.is_some() && pl.preload_hint != last_hint {
            last_hint = pl.preload_hint.clone();
            last_change = killed.elapsed();
        }
        if !pl.text.is_empty() {
            after = pl;
        }
    }
    assert!(
        after.next_msn() >= before.next_msn() + 2 && last_change >= Duration::from_secs(4),
        "playback stalled without etcd: next msn {} → {}, hint last moved {last_change:?} \
         after the kill; playlist now:\n{}",
        before.next_msn(),
        after.next_msn(),
        after.text
    );
    assert!(
        !after.ended,
        "the stream ended when etcd went away:\n{}",
        after.text
    );
    let played = player.stop();
    assert!(
        played.errors.is_empty() && played.playlists_ok >= 10,
        "the player had trouble while etcd was down: {played:#?}"
    );
    let lost = dp.proc.log().contains("lost the control plane");
    eprintln!(
        "etcd down for {:?}; msn {} → {}; node logged \"lost the control plane\": {lost}",
        killed.elapsed(),
        before.next_msn(),
        after.next_msn()
    );

    // etcd returns on the same data and ports: the node re-registers.
    etcd.restart();
    let restarted_ms = now_ms();
    let mut how = "";
    let back = wait_until(Duration::from_secs(20), || {
        if dp
            .proc
            .log()
            .contains("re-registered with the control plane")
        {
            how = "the node logged it";
            return true;
        }
        if listed_node(api, &admin.access_token)
            .is_some_and(|n| n["lastSeen"].as_i64().is_some_and(|t| t > restarted_ms))
        {
            how = "nodes lists it with a fresh heartbeat";
            return true;
        }
        false
    });
    assert!(
        back,
        "the node did not re-register within 20 s of etcd's return (nodes: {})",
        gql(api, Some(&admin.access_token), NODES, json!({}))
    );
    eprintln!("re-registered ({how}) at {:?}", t0.elapsed());

    // The publisher ends: the dashboard sees the stream end; the state converged.
    let status = ffmpeg.wait_exit(Duration::from_secs(u64::from(SECONDS) + 30));
    assert!(
        status.is_some_and(|s| s.success()),
        "ffmpeg did not publish to the end ({status:?}):\n{}",
        ffmpeg.log()
    );
    assert!(
        ws.wait_for(Duration::from_secs(20), |_| {
            states(&ws).iter().any(|s| s == "ENDED")
        }),
        "the subscription did not see the stream end: {}",
        describe(&ws)
    );
    let ended = stream_events(&ws)
        .into_iter()
        .find(|e| e["state"] == "ENDED")
        .expect("ended");
    assert_eq!(ended["id"], stream_id, "the same stream ended");
    let d = gql_ok(
        api,
        Some(&owner.access_token),
        "query($c: ID!) { currentStream(channelId: $c) { id state } \
         streams(channelId: $c, first: 5) { nodes { id state nodeId peakViewers } } }",
        json!({ "c": ch }),
    );
    assert!(d["currentStream"].is_null(), "{d}");
    let s = &d["streams"]["nodes"][0];
    assert_eq!(
        (&s["id"], &s["state"]),
        (&stream_id, &json!("ENDED")),
        "{d}"
    );
    assert!(
        s["peakViewers"].as_i64() >= Some(1),
        "peak viewers not recorded: {d}"
    );
    assert!(
        listed_node(api, &admin.access_token).is_some(),
        "the node is no longer listed after etcd's return"
    );

    // The node recorded the broadcast (its events queued through etcd's loss): the
    // recording is listed, finished, with the node's playback URL, and it plays.
    let mut rec = Value::Null;
    assert!(
        wait_until(Duration::from_secs(20), || {
            let d = gql_ok(
                api,
                Some(&owner.access_token),
                "query($c: ID!) { recordings(channelId: $c) { nodes { id streamId durationMs \
                 segments playbackUrl endedAt } } }",
                json!({ "c": ch }),
            );
            rec = d["recordings"]["nodes"][0].clone();
            !rec["endedAt"].is_null()
        }),
        "no finished recording: {rec}"
    );
    assert_eq!(rec["streamId"], stream_id, "{rec}");
    let duration_ms = rec["durationMs"].as_i64().unwrap_or(0);
    assert!(
        (duration_ms - i64::from(SECONDS) * 1000).abs() <= 1500,
        "{rec}"
    );
    let url = rec["playbackUrl"].as_str().unwrap_or_default();
    let path = url
        .strip_prefix(&format!("http://127.0.0.1:{}", dp.http_port))
        .unwrap_or_else(|| panic!("playback URL not on the node: {rec}"));
    let vod = get(dp.http_port, path).expect("VOD playlist");
    assert!(vod.text().ends_with("#EXT-X-ENDLIST\n"), "{}", vod.text());

    // A clip of it is cut on the node (the control plane calls its control listener)
    // and served there; deleting it removes the node's files.
    let d = gql_ok(
        api,
        Some(&owner.access_token),
        "mutation($r: ID!) { createClip(recordingId: $r, startMs: 2500, endMs: 6500) { id \
         status error durationMs mp4Url } }",
        json!({ "r": rec["id"] }),
    );
    let clip = &d["createClip"];
    assert_eq!(clip["status"], "READY", "{d}\n{}", dp.proc.log());
    let mp4 = clip["mp4Url"].as_str().unwrap_or_default();
    let mp4 = mp4
        .strip_prefix(&format!("http://127.0.0.1:{}", dp.http_port))
        .unwrap_or_else(|| panic!("clip not on the node: {clip}"));
    let got = get(dp.http_port, mp4).expect("clip MP4");
    assert_eq!(got.status, 200, "{clip}");
    assert!(got.body.len() > 10_000, "a {} byte clip", got.body.len());
    gql_ok(
        api,
        Some(&owner.access_token),
        "mutation($id: ID!) { deleteClip(id: $id) }",
        json!({ "id": clip["id"] }),
    );
    assert_eq!(get(dp.http_port, mp4).expect("deleted clip").status, 404);
    // Deleting the recording removes its files on the node too.
    gql_ok(
        api,
        Some(&owner.access_token),
        "mutation($id: ID!) { deleteRecording(id: $id) }",
        json!({ "id": rec["id"] }),
    );
    assert!(
        wait_until(Duration::from_secs(5), || get(dp.http_port, path)
            .is_ok_and(|r| r.status == 404)),
        "the node still serves a deleted recording"
    );

    // Publish authorization goes through the control plane: a revoked key is refused.
    let d = gql_ok(
        api,
        Some(&owner.access_token),
        "mutation($k: ID!) { revokeStreamKey(keyId: $k) { revokedAt } }",
        json!({ "k": key_id }),
    );
    assert!(!d["revokeStreamKey"]["revokedAt"].is_null(), "{d}");
    let mut refused = Process::spawn(
        "ffmpeg (revoked key)",
        ffmpeg_publish(&dp.rtmp_url(&secret), 4),
        dp.dir.0.join("ffmpeg-revoked.log"),
    );
    let status = refused.wait_exit(Duration::from_secs(25));
    assert!(
        status.is_some_and(|s| !s.success()),
        "the data plane accepted a key revoked on the control plane ({status:?})"
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        states(&ws).iter().filter(|s| *s == "STARTING").count(),
        1,
        "a stream started with a revoked key: {}",
        describe(&ws)
    );
    assert!(cp.proc.log().contains("GraphQL API listening on"));
    eprintln!("{}; done in {:?}", describe(&ws), t0.elapsed());
}
