//! Recordings in an object store, end to end, against a real S3-protocol server the test
//! starts (moto's server, `weir_e2e::s3`): `weir serve --record` with
//! `--record-store s3://<bucket>/<prefix>` and `--record-keep-local false`, ffmpeg
//! publishing OBS-like x264 + AAC. Once the broadcast ends, every file of the recording
//! (init, segments, poster, thumbnails, index) is in the bucket, only the index is left
//! on the local disk, and the VOD plays through the node from the store (frame count as
//! sent; a byte range answers 206); a clip can still be cut (its segments are fetched);
//! a restarted node still lists and plays it; `deleteRecording` removes its objects. A
//! store that is down at first (the server starts later) is caught up with.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use weir_e2e::graphql::{Account, gql_ok, owner_channel_key, poll};
use weir_e2e::http::{get, send};
use weir_e2e::s3::S3Server;
use weir_e2e::{KillOnDrop, Node, NodeOptions, count_frames, free_port, obs_like_publish, require};

const SECONDS: u32 = 8;
const FPS: u64 = 30;
const BUCKET: &str = "weir-recordings";
const PREFIX: &str = "vod";

fn options(endpoint: &str) -> NodeOptions {
    NodeOptions {
        extra_args: vec![
            "--record".into(),
            "--reconnect-grace-ms".into(),
            "1000".into(),
            "--record-store".into(),
            format!("s3://{BUCKET}/{PREFIX}"),
            "--record-store-endpoint".into(),
            endpoint.to_owned(),
            "--record-store-allow-http".into(),
            "--record-keep-local".into(),
            "false".into(),
        ],
        env: vec![
            ("AWS_ACCESS_KEY_ID".into(), "weir-test".into()),
            ("AWS_SECRET_ACCESS_KEY".into(), "weir-test-secret".into()),
            ("AWS_REGION".into(), "us-east-1".into()),
        ],
        ..NodeOptions::default()
    }
}

fn recordings(node: &Node, owner: &Account, channel_id: &str) -> Vec<Value> {
    let d = gql_ok(
        node.api_port,
        Some(&owner.access_token),
        "query($c: ID!) { recordings(channelId: $c) { nodes { id endedAt playbackUrl segments } } }",
        json!({ "c": channel_id }),
    );
    d["recordings"]["nodes"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Publishes `SECONDS` and waits for the finished recording: its id and segment count.
fn record_one(node: &Node, slug: &str) -> (Account, String, String, i64) {
    let (owner, channel_id, key) = owner_channel_key(node, slug);
    let mut ffmpeg = KillOnDrop(
        obs_like_publish(&node.rtmp_url(&key), SECONDS, "640x360")
            .stderr(Stdio::null())
            .spawn()
            .expect("ffmpeg"),
    );
    let _ = ffmpeg.0.wait();
    let mut rec = Value::Null;
    assert!(
        poll(Duration::from_secs(25), || {
            rec = recordings(node, &owner, &channel_id)
                .into_iter()
                .next()
                .unwrap_or(Value::Null);
            !rec["endedAt"].is_null()
        }),
        "the recording was not finished: {rec}\n{}",
        node.log()
    );
    let id = rec["id"].as_str().expect("id").to_owned();
    let segments = rec["segments"].as_i64().unwrap_or(0);
    assert!(segments >= 2, "{rec}");
    (owner, channel_id, id, segments)
}

/// The file names of recording `id` in the bucket.
fn stored(s3: &S3Server, id: &str) -> Vec<String> {
    let prefix = format!("{PREFIX}/{id}/");
    let mut names: Vec<String> = s3
        .list(BUCKET, &prefix)
        .into_iter()
        .filter_map(|o| o.key.strip_prefix(&prefix).map(str::to_owned))
        .collect();
    names.sort();
    names
}

fn local_files(node: &Node, id: &str) -> Vec<String> {
    let dir = node.dir.0.join("data/recordings").join(id);
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Waits until the recording is uploaded whole and its local media is gone.
fn wait_uploaded(node: &Node, s3: &S3Server, id: &str, segments: i64, timeout: Duration) {
    let mut names = Vec::new();
    // Local first, then the store: listing the store before the last upload landed
    // would miss it (the pictures go up last).
    let done = poll(timeout, || {
        local_files(node, id) == ["index.txt", "uploaded"] && {
            names = stored(s3, id);
            true
        }
    });
    assert!(
        done,
        "not uploaded: store has {names:?}, local has {:?}\n{}",
        local_files(node, id),
        node.log()
    );
    let segs = names.iter().filter(|n| n.starts_with("seg-")).count();
    assert_eq!(segs as i64, segments, "{names:?}");
    for f in [
        "index.txt",
        "init-0.mp4",
        "poster.jpg",
        "thumbs.vtt",
        "thumb-0.jpg",
    ] {
        assert!(
            names.iter().any(|n| n == f),
            "{f} not in the store: {names:?}"
        );
    }
}

fn plays_whole(node: &Node, id: &str) {
    let media = node.http_url(&format!("/vod/{id}/index.m3u8"));
    let frames = count_frames(&media, "v");
    let sent = u64::from(SECONDS) * FPS;
    assert!(
        frames.abs_diff(sent) <= 6,
        "VOD from the store has {frames} video frames, {sent} were sent\n{}",
        node.log()
    );
}

#[test]
fn recordings_go_to_the_store_and_play_from_it() {
    require("ffmpeg");
    require("ffprobe");
    let s3 = S3Server::start();
    s3.create_bucket(BUCKET);
    let opts = options(&s3.url());
    let node = Node::start_with(opts.clone());
    assert!(
        node.log().contains("then to the object store"),
        "{}",
        node.log()
    );
    let (owner, channel_id, id, segments) = record_one(&node, "stored");
    wait_uploaded(&node, &s3, &id, segments, Duration::from_secs(30));
    plays_whole(&node, &id);

    // Byte ranges of a segment read from the store.
    let seg = format!("/vod/{id}/seg-1.m4s");
    let whole = get(node.http_port, &seg).expect("segment");
    assert_eq!(whole.status, 200);
    let ranged = send(
        node.http_port,
        "GET",
        &seg,
        &[("Range", "bytes=100-1099")],
        None,
        Duration::from_secs(10),
    )
    .expect("ranged");
    assert_eq!(ranged.status, 206, "{}", ranged.head);
    assert_eq!(ranged.body, whole.body[100..1100]);
    assert_eq!(
        ranged.header("Content-Range"),
        Some(format!("bytes 100-1099/{}", whole.body.len()))
    );
    let poster = get(node.http_port, &format!("/vod/{id}/poster.jpg")).expect("poster");
    assert_eq!(poster.status, 200);
    assert!(poster.body.starts_with(&[0xff, 0xd8]), "not a JPEG");
    // DASH of it, split from the files in the store.
    let mpd = node.http_url(&format!("/vod/{id}/manifest.mpd"));
    let dash_frames = count_frames(&mpd, "v");
    let sent = u64::from(SECONDS) * FPS;
    assert!(
        dash_frames.abs_diff(sent) <= 6,
        "DASH from the store has {dash_frames} video frames, {sent} were sent\n{}",
        node.log()
    );

    // A clip of a recording only in the store: its segments are fetched.
    let r = weir_e2e::graphql::gql(
        node.api_port,
        Some(&owner.access_token),
        "mutation($r: ID!) { createClip(recordingId: $r, startMs: 2500, endMs: 4500, \
         title: \"from the store\") { id status error } }",
        json!({ "r": id }),
    );
    assert_eq!(
        r["data"]["createClip"]["status"],
        "READY",
        "{r:#}\n{}",
        node.log()
    );

    // A restarted node lists and plays it (from the store: only the index is local).
    let node = node.stop_and_restart(opts);
    assert!(
        poll(Duration::from_secs(15), || recordings(
            &node,
            &owner,
            &channel_id
        )
        .iter()
        .any(|r| r["id"] == id.as_str())),
        "not listed after the restart\n{}",
        node.log()
    );
    assert_eq!(local_files(&node, &id), ["index.txt", "uploaded"]);
    plays_whole(&node, &id);

    // deleteRecording removes its objects too.
    gql_ok(
        node.api_port,
        Some(&owner.access_token),
        "mutation($id: ID!) { deleteRecording(id: $id) }",
        json!({ "id": id }),
    );
    assert!(
        poll(Duration::from_secs(15), || stored(&s3, &id).is_empty()),
        "objects left after deleteRecording: {:?}\n{}",
        stored(&s3, &id),
        node.log()
    );
    assert!(!node.dir.0.join("data/recordings").join(&id).exists());
}

#[test]
fn the_upload_catches_up_when_the_store_comes_back() {
    require("ffmpeg");
    require("ffprobe");
    let port = free_port();
    let opts = options(&format!("http://127.0.0.1:{port}"));
    let node = Node::start_with(opts);
    let (_owner, _channel, id, segments) = record_one(&node, "catchup");
    assert!(
        node.wait_log("record store unavailable", Duration::from_secs(10)),
        "{}",
        node.log()
    );
    // Still served from the local disk meanwhile.
    let media = get(node.http_port, &format!("/vod/{id}/seg-0.m4s")).expect("segment");
    assert_eq!(media.status, 200);
    let s3 = S3Server::start_on(port);
    s3.create_bucket(BUCKET);
    wait_uploaded(&node, &s3, &id, segments, Duration::from_secs(40));
    plays_whole(&node, &id);
}
