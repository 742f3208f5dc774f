//! Clips end to end: `weir serve --record`, ffmpeg publishing OBS-like x264 (B-frames,
//! 2 s GOPs) + AAC; after the broadcast, `createClip` over GraphQL with a start in the
//! middle of a GOP. The clip is `READY` with HLS and MP4 addresses; its first frame is
//! the source frame asked for (compared pixel by pixel with every decoded frame of the
//! recording), its frame count and duration are the window's; ffmpeg decodes the HLS
//! playlist and the MP4 without an error; the MP4 answers byte ranges (206). Bad
//! windows are refused, another account cannot clip or see the recording, `deleteClip`
//! removes the files, and `deleteRecording` removes the recording's and its clips'.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use weir_e2e::graphql::{
    Account, create_channel, gql, gql_ok, issue_stream_key, register_and_login,
};
use weir_e2e::http::{get, send};
use weir_e2e::{KillOnDrop, Node, NodeOptions, count_frames, obs_like_publish, output, require};

const SECONDS: u32 = 10;
const FPS: i64 = 30;
/// Small gray frames: enough to tell testsrc2's frames apart, cheap to compare.
const W: usize = 96;
const H: usize = 54;

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

/// A finished recording of an OBS-like broadcast: (owner, channel id, recording).
fn recorded(node: &Node) -> (Account, String, Value) {
    assert!(
        node.wait_log("GraphQL API listening on", Duration::from_secs(20)),
        "{}",
        node.log()
    );
    let owner = register_and_login(node.api_port, "clipper", "correct horse battery staple");
    let channel = create_channel(node.api_port, &owner.access_token, "clipped");
    let (_, key) = issue_stream_key(node.api_port, &owner.access_token, &channel);
    let mut ffmpeg = KillOnDrop(
        obs_like_publish(&node.rtmp_url(&key), SECONDS, "640x360")
            .stderr(Stdio::null())
            .spawn()
            .expect("ffmpeg"),
    );
    let _ = ffmpeg.0.wait();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let d = gql_ok(
            node.api_port,
            Some(&owner.access_token),
            "query($c: ID!) { recordings(channelId: $c) { nodes { id durationMs endedAt \
             playbackUrl } } }",
            json!({ "c": channel }),
        );
        let rec = d["recordings"]["nodes"][0].clone();
        if !rec["endedAt"].is_null() {
            return (owner, channel, rec);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the recording did not finish: {d}\n{}",
            node.log()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Every frame of `url`, decoded and scaled to `W`×`H` gray.
fn gray_frames(url: &str) -> Vec<Vec<u8>> {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-v", "error", "-i", url])
        .args([
            "-map",
            "0:v:0",
            // Every decoded frame once: no frames duplicated or dropped to a constant rate.
            "-fps_mode",
            "passthrough",
            "-vf",
            &format!("scale={W}:{H}"),
            "-pix_fmt",
            "gray",
        ])
        .args(["-f", "rawvideo", "-"])
        .output()
        .expect("ffmpeg");
    assert!(
        out.status.success(),
        "decoding {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout.chunks_exact(W * H).map(<[u8]>::to_vec).collect()
}

/// Mean absolute difference of two gray frames.
fn diff(a: &[u8], b: &[u8]) -> f64 {
    let sum: u64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| u64::from(x.abs_diff(*y)))
        .sum();
    sum as f64 / a.len() as f64
}

/// ffmpeg decodes `url` whole without an error.
fn decodes_cleanly(url: &str) {
    let (ok, _, err) = output(
        Command::new("ffmpeg")
            .args(["-hide_banner", "-nostdin", "-v", "error", "-i", url])
            .args(["-f", "null", "-"]),
    );
    assert!(ok && err.trim().is_empty(), "ffmpeg decoding {url}: {err}");
}

fn create_clip(node: &Node, who: &Account, rec: &str, start: i64, end: i64) -> Value {
    gql(
        node.api_port,
        Some(&who.access_token),
        "mutation($r: ID!, $s: Int!, $e: Int!) { createClip(recordingId: $r, startMs: $s, \
         endMs: $e, title: \"the goal\") { id status error hlsUrl mp4Url durationMs title } }",
        json!({ "r": rec, "s": start, "e": end }),
    )
}

fn error_code(r: &Value) -> &str {
    r["errors"][0]["extensions"]["code"].as_str().unwrap_or("")
}

#[test]
fn a_clip_starts_on_the_frame_asked_for_and_plays_as_hls_and_mp4() {
    require("ffmpeg");
    require("ffprobe");
    let node = Node::start_with(options());
    let (owner, channel, rec) = recorded(&node);
    let rec_id = rec["id"].as_str().expect("id").to_owned();

    // 3.52 s is mid-GOP (keyframes every 2 s): frame 106 (at 3.533 s) is the first
    // presented at or after it, and the head up to the keyframe at 4 s is re-encoded.
    let (start, end) = (3520, 7020);
    let r = create_clip(&node, &owner, &rec_id, start, end);
    let clip = r["data"]["createClip"].clone();
    assert_eq!(clip["status"], "READY", "{r:#}\n{}", node.log());
    assert_eq!(clip["title"], "the goal");
    let id = clip["id"].as_str().expect("clip id").to_owned();
    assert_eq!(id.len(), 32, "{clip}");
    let origin = format!("http://127.0.0.1:{}", node.http_port);
    // Handed out under the channel's playback token (ignored: this channel is public).
    let untokened = |v: &Value| weir_e2e::without_token(v.as_str().unwrap_or_default());
    assert_eq!(
        untokened(&clip["hlsUrl"]),
        format!("{origin}/clips/{id}/index.m3u8")
    );
    assert_eq!(
        untokened(&clip["mp4Url"]),
        format!("{origin}/clips/{id}/clip.mp4")
    );
    let asked_frames = (end - start) * FPS / 1000;
    let duration_ms = clip["durationMs"].as_i64().unwrap_or(0);
    assert!(
        (duration_ms - (end - start)).abs() <= 3 * 1000 / FPS,
        "clip duration {duration_ms} ms for a {} ms window",
        end - start
    );

    // Its first frame is the recording's frame 106, not a neighbour.
    let source = gray_frames(rec["playbackUrl"].as_str().expect("playbackUrl"));
    let mp4 = clip["mp4Url"].as_str().expect("mp4Url").to_owned();
    let frames = gray_frames(&mp4);
    let first_asked = ((start * FPS) as f64 / 1000.0).ceil() as usize;
    let nearest = (0..source.len())
        .min_by(|&a, &b| diff(&source[a], &frames[0]).total_cmp(&diff(&source[b], &frames[0])))
        .expect("source frames");
    assert_eq!(
        nearest,
        first_asked,
        "the clip starts on source frame {nearest}, {first_asked} was asked (differences: {:?})",
        (first_asked - 2..=first_asked + 2)
            .map(|i| diff(&source[i], &frames[0]))
            .collect::<Vec<_>>()
    );
    // And the copied part is the source, frame for frame (up to a B-run before the end).
    assert!(
        (frames.len() as i64 - asked_frames).abs() <= 3,
        "{} frames for {asked_frames} asked",
        frames.len()
    );
    let last = frames.len() - 1;
    assert!(
        diff(&source[first_asked + last], &frames[last]) < 1.0,
        "the last frame is not the source's"
    );

    // Both forms decode cleanly; the playlist has the same frames.
    let hls = clip["hlsUrl"].as_str().expect("hlsUrl").to_owned();
    decodes_cleanly(&hls);
    decodes_cleanly(&mp4);
    assert_eq!(count_frames(&hls, "v"), frames.len() as u64);
    let playlist = get(node.http_port, &format!("/clips/{id}/index.m3u8")).expect("playlist");
    assert!(
        playlist.text().contains("#EXT-X-ENDLIST"),
        "{}",
        playlist.text()
    );

    // Progressive download with byte ranges.
    let whole = get(node.http_port, &format!("/clips/{id}/clip.mp4")).expect("mp4");
    assert_eq!(whole.status, 200);
    assert_eq!(whole.header("Accept-Ranges").as_deref(), Some("bytes"));
    let part = send(
        node.http_port,
        "GET",
        &format!("/clips/{id}/clip.mp4"),
        &[("Range", "bytes=8-1007")],
        None,
        Duration::from_secs(5),
    )
    .expect("range");
    assert_eq!(part.status, 206);
    assert_eq!(part.body, whole.body[8..1008]);
    assert_eq!(
        part.header("Content-Range"),
        Some(format!("bytes 8-1007/{}", whole.body.len()))
    );

    // Listed under the recording.
    let d = gql_ok(
        node.api_port,
        Some(&owner.access_token),
        "query($c: ID!) { recordings(channelId: $c) { nodes { id clips { id status } } } }",
        json!({ "c": channel }),
    );
    assert_eq!(
        d["recordings"]["nodes"][0]["clips"][0]["id"],
        id.as_str(),
        "{d}"
    );

    // Windows that cannot be cut are refused before anything is made.
    for (s, e) in [
        (5000, 5000),
        (-1, 1000),
        (0, 11 * 60 * 1000),
        (60_000, 61_000),
    ] {
        let r = create_clip(&node, &owner, &rec_id, s, e);
        assert_eq!(error_code(&r), "BAD_USER_INPUT", "[{s}, {e}): {r}");
    }
    // Another account sees no recording to clip.
    let stranger = register_and_login(node.api_port, "stranger", "correct horse battery staple");
    let r = create_clip(&node, &stranger, &rec_id, 0, 1000);
    assert_eq!(error_code(&r), "NOT_FOUND", "{r}");

    // Deleted: gone from the node.
    gql_ok(
        node.api_port,
        Some(&owner.access_token),
        "mutation($id: ID!) { deleteClip(id: $id) }",
        json!({ "id": id }),
    );
    assert_eq!(
        get(node.http_port, &format!("/clips/{id}/clip.mp4"))
            .expect("deleted")
            .status,
        404
    );

    // Deleting the recording removes its files on the node (and its other clips).
    let second = create_clip(&node, &owner, &rec_id, 1000, 2000);
    let second = second["data"]["createClip"]["id"]
        .as_str()
        .expect("second clip")
        .to_owned();
    gql_ok(
        node.api_port,
        Some(&owner.access_token),
        "mutation($id: ID!) { deleteRecording(id: $id) }",
        json!({ "id": rec_id }),
    );
    let vod = format!("/vod/{rec_id}/index.m3u8");
    assert!(
        weir_e2e::wait_until(Duration::from_secs(5), || get(node.http_port, &vod)
            .is_ok_and(|r| r.status == 404)),
        "the recording is still served after deleteRecording"
    );
    assert_eq!(
        get(node.http_port, &format!("/clips/{second}/clip.mp4"))
            .expect("its clip")
            .status,
        404
    );
    // The playlist is gone as soon as the catalog forgets it; the files just after.
    assert!(
        weir_e2e::wait_until(Duration::from_secs(5), || node
            .log()
            .contains("recording deleted by its owner")),
        "{}",
        node.log()
    );
}
