//! A finished recording is also a DASH VOD: `weir serve --record`, ffmpeg publishing
//! OBS-like x264 (B-frames, 2 s GOPs) + AAC; GraphQL lists `dashUrl`; the static MPD has
//! one Representation per track; ffprobe decodes every video frame that was sent from
//! it, with the audio; dash.js (which refuses muxed Representations) plays it in Debian's
//! headless Chromium; a recording still being made has no MPD yet.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use weir_e2e::browser::{require_browser_peer, run_script};
use weir_e2e::graphql::{gql_ok, owner_channel_key};
use weir_e2e::http::get;
use weir_e2e::{KillOnDrop, Node, NodeOptions, obs_like_publish, output, without_token};

const SECONDS: u32 = 8;

/// ffprobe's `nb_read_frames` of the first stream of `kind` in `url`.
fn frames(url: &str, kind: &str) -> u64 {
    let (ok, out, err) = output(
        Command::new("ffprobe")
            .args(["-v", "error", "-count_frames", "-select_streams", kind])
            .args([
                "-show_entries",
                "stream=nb_read_frames",
                "-of",
                "csv=p=0",
                url,
            ]),
    );
    assert!(ok, "ffprobe {url}: {err}");
    out.split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("ffprobe {url}: {out} {err}"))
}

#[test]
fn a_finished_recording_plays_as_dash_in_ffprobe_and_dashjs() {
    require_browser_peer(&[
        "node_modules/dashjs/dist/modern/umd/dash.all.debug.js",
        "node_modules/playwright-core/package.json",
        "dash.mjs",
        "dash.html",
    ]);
    let node = Node::start_with(NodeOptions {
        extra_args: vec![
            "--record".into(),
            "--reconnect-grace-ms".into(),
            "1000".into(),
        ],
        ..NodeOptions::default()
    });
    let (owner, channel, key) = owner_channel_key(&node, "dash-vod");
    let list = || {
        gql_ok(
            node.api_port,
            Some(&owner.access_token),
            "query($c: ID!) { recordings(channelId: $c) { nodes { id endedAt playbackUrl \
             dashUrl } } }",
            json!({ "c": channel }),
        )["recordings"]["nodes"][0]
            .clone()
    };
    let mut ffmpeg = KillOnDrop(
        obs_like_publish(&node.rtmp_url(&key), SECONDS, "640x360")
            .stderr(Stdio::null())
            .spawn()
            .expect("ffmpeg"),
    );
    // While it is being made: HLS (EVENT) only.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut rec = Value::Null;
    while Instant::now() < deadline && rec["id"].is_null() {
        std::thread::sleep(Duration::from_millis(300));
        rec = list();
    }
    let id = rec["id"]
        .as_str()
        .expect("a recording while live")
        .to_owned();
    assert!(rec["dashUrl"].is_null(), "{rec}");
    let live = get(node.http_port, &format!("/vod/{id}/manifest.mpd")).expect("get");
    assert_eq!(live.status, 404, "{}", live.text());
    assert!(live.text().contains("once the recording is finished"));
    let _ = ffmpeg.0.wait();

    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline && rec["dashUrl"].is_null() {
        std::thread::sleep(Duration::from_millis(500));
        rec = list();
    }
    let url = rec["dashUrl"]
        .as_str()
        .expect("dashUrl once finished")
        .to_owned();
    assert_eq!(
        without_token(&url),
        node.http_url(&format!("/vod/{id}/manifest.mpd"))
    );
    let path = url
        .strip_prefix(&node.http_url(""))
        .expect("on the node")
        .to_owned();
    let mpd = get(node.http_port, &path).expect("MPD");
    assert_eq!(mpd.status, 200);
    let text = mpd.text();
    assert!(text.contains("type=\"static\""), "{text}");
    assert_eq!(text.matches("<Representation ").count(), 2, "{text}");
    assert!(text.contains("codecs=\"avc1.") && text.contains("codecs=\"mp4a.40.2\""));

    // Every frame sent, from the MPD (OBS-like: 30 fps).
    let video = frames(&url, "v:0");
    let sent = u64::from(SECONDS) * 30;
    assert!(
        video.abs_diff(sent) <= 4,
        "{video} video frames from the MPD, {sent} sent"
    );
    assert!(frames(&url, "a:0") > 300, "no audio from the MPD");
    // A split object carries one track.
    let init = get(
        node.http_port,
        &path.replace("manifest.mpd", "dash/a/init-0.mp4"),
    )
    .expect("audio init");
    assert_eq!(init.status, 200);
    assert!(!init.body.windows(4).any(|w| w == b"avc1" || w == b"avc3"));

    // dash.js plays it to 5 s.
    let args = [url, "60".into(), "5".into(), "0".into(), "vod".into()];
    let (ok, out, err) = run_script("dash.mjs", &args, Duration::from_secs(90));
    assert!(ok, "dash.js did not play the recording:\n{out}\n{err}");
}
