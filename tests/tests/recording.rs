//! Recording → VOD end to end: `weir serve --record`, ffmpeg publishing OBS-like x264
//! (B-frames) + AAC. While live, `/vod/<id>/index.m3u8` is an EVENT playlist that grows;
//! after the grace period the recording is listed over GraphQL with its duration, size
//! and playback URL, its playlist is a VOD ffprobe plays whole (duration and frame
//! count as sent), segments are immutable and answer byte ranges. A node killed with
//! SIGKILL mid-recording finishes the recording from its index at its next start: it
//! is listed and plays up to its last complete segment. hls.js in headless Chromium plays
//! the VOD. A finished recording (also one finished by recovery) gets a poster and a
//! WebVTT thumbnail track, served beside its playlist and listed over GraphQL.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use weir_e2e::graphql::{
    Account, create_channel, gql_ok, issue_stream_key, owner_channel_key, poll,
};
use weir_e2e::http::{get, send};
use weir_e2e::{KillOnDrop, Node, NodeOptions, count_frames, obs_like_publish, output, require};

const SECONDS: u32 = 12;
const FPS: u64 = 30;

fn options() -> NodeOptions {
    NodeOptions {
        extra_args: vec![
            "--record".into(),
            "--reconnect-grace-ms".into(),
            "1500".into(),
        ],
        ..NodeOptions::default()
    }
}

fn recordings(node: &Node, owner: &Account, channel_id: &str) -> Vec<Value> {
    let d = gql_ok(
        node.api_port,
        Some(&owner.access_token),
        "query($c: ID!) { recordings(channelId: $c) { nodes { id streamId location durationMs \
         sizeBytes segments playbackUrl endedAt createdAt posterUrl thumbnailsUrl } } }",
        json!({ "c": channel_id }),
    );
    d["recordings"]["nodes"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn playlist(node: &Node, id: &str) -> (String, Option<String>) {
    let r = get(node.http_port, &format!("/vod/{id}/index.m3u8")).expect("GET playlist");
    assert_eq!(r.status, 200, "{}", r.text());
    (r.text(), r.header("Cache-Control"))
}

fn segments(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| l.starts_with("seg-"))
        .map(str::to_owned)
        .collect()
}

/// ffprobe's duration of `url`, seconds.
fn duration(url: &str) -> f64 {
    let (ok, out, err) = output(Command::new("ffprobe").args([
        "-v",
        "error",
        "-show_entries",
        "format=duration",
        "-of",
        "csv=p=0",
        url,
    ]));
    assert!(ok, "ffprobe: {err}");
    out.trim()
        .parse()
        .unwrap_or_else(|_| panic!("ffprobe said {out:?}"))
}

/// ffmpeg decodes `url` whole without an error.
fn decodes_cleanly(url: &str) {
    let (ok, _, err) = output(Command::new("ffmpeg").args([
        "-hide_banner",
        "-nostdin",
        "-v",
        "error",
        "-i",
        url,
        "-f",
        "null",
        "-",
    ]));
    assert!(ok && err.trim().is_empty(), "ffmpeg decoding {url}: {err}");
}

#[test]
fn a_broadcast_is_recorded_and_becomes_a_vod() {
    require("ffmpeg");
    require("ffprobe");
    let node = Node::start_with(options());
    let (owner, channel_id, key) = owner_channel_key(&node, "recorded");
    let mut ffmpeg = KillOnDrop(
        obs_like_publish(&node.rtmp_url(&key), SECONDS, "640x360")
            .stderr(Stdio::null())
            .spawn()
            .expect("ffmpeg"),
    );

    // While live: listed without an end, and its EVENT playlist grows.
    let mut listed = Vec::new();
    assert!(
        poll(Duration::from_secs(15), || {
            listed = recordings(&node, &owner, &channel_id);
            !listed.is_empty()
        }),
        "no recording listed while live:\n{}",
        node.log()
    );
    let id = listed[0]["id"].as_str().expect("id").to_owned();
    assert!(listed[0]["endedAt"].is_null(), "{listed:?}");
    let mut first = 0;
    assert!(
        poll(Duration::from_secs(8), || {
            let (text, _) = playlist(&node, &id);
            first = segments(&text).len();
            first >= 1
        }),
        "no segment on disk while live"
    );
    std::thread::sleep(Duration::from_secs(4));
    let (live, cache) = playlist(&node, &id);
    assert!(live.contains("#EXT-X-PLAYLIST-TYPE:EVENT\n"), "{live}");
    assert!(!live.contains("#EXT-X-ENDLIST"), "{live}");
    assert_eq!(cache.as_deref(), Some("no-cache"));
    assert!(
        segments(&live).len() > first,
        "the EVENT playlist did not grow: {first} then\n{live}"
    );

    // The broadcast ends after the grace period: a finished recording.
    let _ = ffmpeg.0.wait();
    let mut rec = Value::Null;
    assert!(
        poll(Duration::from_secs(20), || {
            rec = recordings(&node, &owner, &channel_id)
                .into_iter()
                .next()
                .unwrap_or(Value::Null);
            !rec["endedAt"].is_null()
        }),
        "the recording was not finished: {rec}\n{}",
        node.log()
    );
    let duration_ms = rec["durationMs"].as_i64().unwrap_or(0);
    assert!(
        (duration_ms - i64::from(SECONDS) * 1000).abs() <= 1000,
        "durationMs {duration_ms}: {rec}"
    );
    assert!(rec["sizeBytes"].as_i64().unwrap_or(0) > 100_000, "{rec}");
    // Under the channel's playback token, which a public channel's recording ignores.
    let url = rec["playbackUrl"].as_str().unwrap_or_default().to_owned();
    assert_eq!(
        weir_e2e::without_token(&url),
        format!("http://127.0.0.1:{}/vod/{id}/index.m3u8", node.http_port),
        "{rec}"
    );

    let (vod, cache) = playlist(&node, &id);
    assert!(vod.contains("#EXT-X-PLAYLIST-TYPE:VOD\n"), "{vod}");
    assert!(vod.ends_with("#EXT-X-ENDLIST\n"), "{vod}");
    assert!(vod.contains("#EXT-X-PROGRAM-DATE-TIME:"), "{vod}");
    assert!(cache.is_some_and(|c| c.contains("max-age")));
    let segs = segments(&vod);
    assert_eq!(
        segs.len() as i64,
        rec["segments"].as_i64().unwrap_or(0),
        "{rec}"
    );
    assert!(vod.starts_with("#EXTM3U"));
    assert!(
        segments(&live).iter().all(|s| segs.contains(s)),
        "the VOD keeps what the EVENT playlist listed"
    );

    // Segments: immutable, whole or by byte range.
    let path = format!("/vod/{id}/{}", segs[1]);
    let whole = get(node.http_port, &path).expect("segment");
    assert_eq!(whole.status, 200);
    assert_eq!(
        whole.header("Cache-Control").as_deref(),
        Some("public, max-age=31536000, immutable")
    );
    assert_eq!(whole.header("Accept-Ranges").as_deref(), Some("bytes"));
    let part = send(
        node.http_port,
        "GET",
        &path,
        &[("Range", "bytes=100-199")],
        None,
        Duration::from_secs(5),
    )
    .expect("range");
    assert_eq!(part.status, 206);
    assert_eq!(part.body, whole.body[100..200]);
    assert_eq!(
        part.header("Content-Range"),
        Some(format!("bytes 100-199/{}", whole.body.len()))
    );
    assert_eq!(
        get(node.http_port, &format!("/vod/{id}/seg-9999.m4s"))
            .expect("missing")
            .status,
        404
    );
    assert_eq!(
        get(node.http_port, "/vod/nope/index.m3u8")
            .expect("nope")
            .status,
        404
    );

    // ffprobe plays it whole: duration and frames as sent.
    let media = node.http_url(&format!("/vod/{id}/index.m3u8"));
    let secs = duration(&media);
    assert!(
        (secs - f64::from(SECONDS)).abs() <= 1.0,
        "VOD duration {secs} s"
    );
    let frames = count_frames(&media, "v");
    let sent = u64::from(SECONDS) * FPS;
    assert!(
        frames.abs_diff(sent) <= 4,
        "VOD has {frames} video frames, {sent} were sent"
    );
    decodes_cleanly(&media);
    let log = node.log();
    if let Some(line) = log.lines().find(|l| l.contains("recording finished")) {
        println!("{line}");
    }

    // Its poster and thumbnail track, a moment after the end.
    let poster = format!("/vod/{id}/poster.jpg");
    assert!(
        poll(Duration::from_secs(20), || get(node.http_port, &poster)
            .is_ok_and(|r| r.status == 200)),
        "no poster:\n{}",
        node.log()
    );
    let jpeg = get(node.http_port, &poster).expect("poster");
    assert_eq!(jpeg.header("Content-Type").as_deref(), Some("image/jpeg"));
    assert!(jpeg.body.starts_with(&[0xff, 0xd8]), "not a JPEG");
    assert_eq!(picture_size(&node.http_url(&poster)), (640, 360));
    let vtt = get(node.http_port, &format!("/vod/{id}/thumbs.vtt")).expect("vtt");
    assert_eq!(vtt.status, 200);
    let text = vtt.text();
    assert!(text.starts_with("WEBVTT\n"), "{text}");
    // 12 s, one per 10 s: at 0 and at the first keyframe after 10 s (GOPs of 2 s).
    assert!(
        text.contains("00:00:00.000 --> 00:00:10.000\nthumb-0.jpg")
            && text.contains("00:00:10.000 --> ")
            && text.contains("thumb-1.jpg"),
        "{text}"
    );
    assert!(!text.contains("thumb-2.jpg"), "{text}");
    assert_eq!(
        picture_size(&node.http_url(&format!("/vod/{id}/thumb-1.jpg"))),
        (160, 90)
    );
    let rec = recordings(&node, &owner, &channel_id)
        .into_iter()
        .find(|r| r["id"] == id.as_str())
        .unwrap_or(Value::Null);
    let untokened = |v: &Value| weir_e2e::without_token(v.as_str().unwrap_or_default());
    assert_eq!(
        untokened(&rec["posterUrl"]),
        node.http_url(&poster),
        "{rec}"
    );
    assert_eq!(
        untokened(&rec["thumbnailsUrl"]),
        node.http_url(&format!("/vod/{id}/thumbs.vtt")),
        "{rec}"
    );
}

/// Width and height of the picture at `url` (ffprobe).
fn picture_size(url: &str) -> (u32, u32) {
    let (ok, out, err) = output(Command::new("ffprobe").args([
        "-v",
        "error",
        "-show_entries",
        "stream=width,height",
        "-of",
        "csv=p=0",
        url,
    ]));
    assert!(ok, "ffprobe {url}: {err}");
    let mut it = out.trim().split(',').map(|v| v.parse().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}

#[test]
fn a_recording_survives_a_killed_node() {
    require("ffmpeg");
    require("ffprobe");
    let node = Node::start_with(options());
    let (owner, channel_id, key) = owner_channel_key(&node, "crashy");
    let mut ffmpeg = KillOnDrop(
        obs_like_publish(&node.rtmp_url(&key), 60, "640x360")
            .stderr(Stdio::null())
            .spawn()
            .expect("ffmpeg"),
    );
    let mut id = String::new();
    assert!(
        poll(Duration::from_secs(15), || {
            id = recordings(&node, &owner, &channel_id)
                .first()
                .and_then(|r| r["id"].as_str())
                .unwrap_or_default()
                .to_owned();
            !id.is_empty()
        }),
        "no recording listed:\n{}",
        node.log()
    );
    let mut on_disk = 0;
    assert!(
        poll(Duration::from_secs(20), || {
            on_disk = segments(&playlist(&node, &id).0).len();
            on_disk >= 3
        }),
        "segments did not reach the disk"
    );
    // SIGKILL mid-segment, then a new node on the same data directory.
    let node = node.restart(options());
    let _ = ffmpeg.0.kill();
    assert!(
        node.wait_log("finished from its index", Duration::from_secs(30)),
        "{}",
        node.log()
    );
    let mut rec = Value::Null;
    assert!(
        poll(Duration::from_secs(15), || {
            rec = recordings(&node, &owner, &channel_id)
                .into_iter()
                .find(|r| r["id"] == id.as_str())
                .unwrap_or(Value::Null);
            !rec["endedAt"].is_null()
        }),
        "the recording was not finished after the restart: {rec}\n{}",
        node.log()
    );
    let (vod, _) = playlist(&node, &id);
    assert!(vod.ends_with("#EXT-X-ENDLIST\n"), "{vod}");
    let segs = segments(&vod).len();
    assert!(segs >= on_disk, "{segs} segments after, {on_disk} before");
    assert_eq!(rec["segments"].as_i64(), Some(segs as i64), "{rec}");
    let media = node.http_url(&format!("/vod/{id}/index.m3u8"));
    decodes_cleanly(&media);
    let frames = count_frames(&media, "v");
    assert!(
        frames >= on_disk as u64 * 50,
        "{frames} frames in {segs} segments"
    );
    assert!(
        (rec["durationMs"].as_i64().unwrap_or(0) - (frames * 1000 / FPS) as i64).abs() <= 1000,
        "{rec} vs {frames} frames"
    );
    // Finished by recovery, it gets its poster and thumbnails like any other.
    let poster = format!("/vod/{id}/poster.jpg");
    assert!(
        poll(Duration::from_secs(20), || get(node.http_port, &poster)
            .is_ok_and(|r| r.status == 200)),
        "no poster for the recovered recording:\n{}",
        node.log()
    );
    assert_eq!(
        get(node.http_port, &format!("/vod/{id}/thumbs.vtt"))
            .expect("vtt")
            .status,
        200
    );
}

#[test]
fn a_graceful_shutdown_finishes_the_recording() {
    require("ffmpeg");
    let node = Node::start_with(options());
    let (owner, channel_id, key) = owner_channel_key(&node, "stopped");
    let mut ffmpeg = KillOnDrop(
        obs_like_publish(&node.rtmp_url(&key), 60, "640x360")
            .stderr(Stdio::null())
            .spawn()
            .expect("ffmpeg"),
    );
    let mut id = String::new();
    assert!(
        poll(Duration::from_secs(20), || {
            id = recordings(&node, &owner, &channel_id)
                .first()
                .and_then(|r| r["id"].as_str())
                .unwrap_or_default()
                .to_owned();
            !id.is_empty() && segments(&playlist(&node, &id).0).len() >= 2
        }),
        "no recording on disk:\n{}",
        node.log()
    );
    let mut node = node;
    assert_eq!(node.terminate(Duration::from_secs(15)), Some(true));
    let _ = ffmpeg.0.kill();
    assert!(node.log().contains("recording finished"), "{}", node.log());
    let node = node.restart(options());
    let mut rec = Value::Null;
    assert!(
        poll(Duration::from_secs(15), || {
            rec = recordings(&node, &owner, &channel_id)
                .into_iter()
                .find(|r| r["id"] == id.as_str())
                .unwrap_or(Value::Null);
            !rec["endedAt"].is_null()
        }),
        "not finished: {rec}\n{}",
        node.log()
    );
    assert!(
        !node.log().contains("finished from its index"),
        "it was finished at shutdown, not recovered"
    );
    let (vod, _) = playlist(&node, &id);
    assert!(vod.ends_with("#EXT-X-ENDLIST\n"), "{vod}");
}

#[test]
fn retention_deletes_what_is_over_the_limit() {
    require("ffmpeg");
    let mut opts = options();
    opts.extra_args
        .extend(["--record-max-bytes".to_owned(), "1".to_owned()]);
    let node = Node::start_with(opts);
    let (owner, channel_id, key) = owner_channel_key(&node, "retained");
    let mut ffmpeg = KillOnDrop(
        obs_like_publish(&node.rtmp_url(&key), 5, "640x360")
            .stderr(Stdio::null())
            .spawn()
            .expect("ffmpeg"),
    );
    let mut id = String::new();
    assert!(
        poll(Duration::from_secs(15), || {
            id = recordings(&node, &owner, &channel_id)
                .first()
                .and_then(|r| r["id"].as_str())
                .unwrap_or_default()
                .to_owned();
            !id.is_empty()
        }),
        "no recording listed:\n{}",
        node.log()
    );
    // Being made: kept, however far over the limit.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(playlist(&node, &id).0.lines().next(), Some("#EXTM3U"));
    let _ = ffmpeg.0.wait();
    assert!(
        node.wait_log("retention: recording deleted", Duration::from_secs(15)),
        "{}",
        node.log()
    );
    assert_eq!(
        get(node.http_port, &format!("/vod/{id}/index.m3u8"))
            .expect("GET")
            .status,
        404
    );
    assert!(!node.dir.0.join("data/recordings").join(&id).exists());
    assert!(
        poll(Duration::from_secs(10), || recordings(
            &node,
            &owner,
            &channel_id
        )
        .is_empty()),
        "still listed"
    );
}

#[test]
fn a_channel_can_turn_recording_on() {
    require("ffmpeg");
    // The node does not record by default.
    let node = Node::start_with(NodeOptions {
        extra_args: vec!["--reconnect-grace-ms".into(), "1000".into()],
        ..NodeOptions::default()
    });
    let (owner, on_id, on_key) = owner_channel_key(&node, "wants-vod");
    let d = gql_ok(
        node.api_port,
        Some(&owner.access_token),
        "mutation($c: ID!) { setChannelRecord(channelId: $c, record: ON) { record } }",
        json!({ "c": on_id }),
    );
    assert_eq!(d["setChannelRecord"]["record"], "ON", "{d}");
    let off_id = create_channel(node.api_port, &owner.access_token, "no-vod");
    let (_, off_key) = issue_stream_key(node.api_port, &owner.access_token, &off_id);
    let publish = |key: &str| {
        KillOnDrop(
            obs_like_publish(&node.rtmp_url(key), 5, "640x360")
                .stderr(Stdio::null())
                .spawn()
                .expect("ffmpeg"),
        )
    };
    let (mut a, mut b) = (publish(&on_key), publish(&off_key));
    let _ = (a.0.wait(), b.0.wait());
    let mut rec = Value::Null;
    assert!(
        poll(Duration::from_secs(15), || {
            rec = recordings(&node, &owner, &on_id)
                .into_iter()
                .next()
                .unwrap_or(Value::Null);
            !rec["endedAt"].is_null()
        }),
        "the channel asking for recordings got none: {rec}\n{}",
        node.log()
    );
    assert!(rec["segments"].as_i64().unwrap_or(0) >= 2, "{rec}");
    assert!(
        recordings(&node, &owner, &off_id).is_empty(),
        "a channel on the node's default (off) was recorded"
    );
}

#[test]
fn hlsjs_in_chromium_plays_the_vod() {
    weir_e2e::browser::require_browser_peer(&[
        "node_modules/hls.js/dist/hls.js",
        "node_modules/playwright-core/package.json",
    ]);
    let node = Node::start_with(options());
    // A key issued offline: recorded, though no control-plane channel lists it.
    let (_, key) = node.issue_key("offline");
    let mut ffmpeg = KillOnDrop(
        obs_like_publish(&node.rtmp_url(&key), 8, "640x360")
            .stderr(Stdio::null())
            .spawn()
            .expect("ffmpeg"),
    );
    let _ = ffmpeg.0.wait();
    let root = node.dir.0.join("data/recordings");
    let mut id = String::new();
    assert!(
        weir_e2e::wait_until(Duration::from_secs(15), || {
            id = std::fs::read_dir(&root)
                .ok()
                .and_then(|mut d| d.next())
                .and_then(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .unwrap_or_default();
            !id.is_empty() && playlist(&node, &id).0.ends_with("#EXT-X-ENDLIST\n")
        }),
        "no finished recording:\n{}",
        node.log()
    );
    let url = node.http_url(&format!("/vod/{id}/index.m3u8"));
    let (ok, out, err) = weir_e2e::browser::run_script(
        "play.mjs",
        &[url, "40".into(), "6".into(), "0".into()],
        Duration::from_secs(60),
    );
    let report: Value = out
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("play.mjs printed no report (ok={ok}):\n{out}\n{err}"));
    assert!(ok, "hls.js did not play the VOD: {report}\n{err}");
    assert_eq!(report["playing"], true, "{report}");
    assert!(
        report["currentTime"].as_f64().unwrap_or(0.0) >= 6.0,
        "{report}"
    );
}
