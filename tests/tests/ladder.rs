//! The transcode ladder end to end: ffmpeg publishes OBS-like 720p30 x264 (B-frames,
//! 2 s keyint) with AAC over RTMP to a node started with `--ladder true` and the default
//! rungs (1080p/720p/480p/360p). The multivariant playlist must offer 720p (the source,
//! passed through), 480p and 360p (never 1080p: no upscaling) sharing one audio group;
//! every media playlist reports the other renditions; after the broadcast, segments
//! and parts line up across renditions, ffprobe finds each rendition's resolution and
//! the same key frame times in all of them, and ffmpeg decodes the whole multivariant
//! stream without errors. Over GraphQL, the live Stream lists the three renditions.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use weir_e2e::graphql::{gql_ok, owner_channel_key};
use weir_e2e::http::get;
use weir_e2e::{
    Node, NodeOptions, list_attr, obs_like_publish, output, require, stream_infs, wait_until,
};

/// Per segment: its `EXTINF` and its parts' durations.
fn segment_layout(playlist: &str) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    let mut parts = Vec::new();
    for l in playlist.lines() {
        if let Some(p) = l.strip_prefix("#EXT-X-PART:DURATION=") {
            parts.push(p.split(',').next().unwrap_or_default().to_owned());
        } else if let Some(d) = l.strip_prefix("#EXTINF:") {
            out.push((d.to_owned(), std::mem::take(&mut parts)));
        }
    }
    out
}

/// ffprobe: (width, height) and key frame presentation times of the video in `url`.
fn probe(url: &str) -> ((u32, u32), Vec<String>) {
    let (ok, dims, err) = output(Command::new("ffprobe").args([
        "-v",
        "error",
        "-select_streams",
        "v:0",
        "-show_entries",
        "stream=width,height",
        "-of",
        "csv=p=0",
        url,
    ]));
    assert!(ok, "ffprobe {url}: {err}");
    let mut wh = dims
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default()
        .split(',')
        .map(|n| n.trim().parse::<u32>().unwrap_or(0));
    let dims = (wh.next().unwrap_or(0), wh.next().unwrap_or(0));
    let (ok, packets, err) = output(Command::new("ffprobe").args([
        "-v",
        "error",
        "-select_streams",
        "v:0",
        "-show_entries",
        "packet=pts_time,flags",
        "-of",
        "compact=p=0:nk=0",
        url,
    ]));
    assert!(ok, "ffprobe {url}: {err}");
    let keys = packets
        .lines()
        .filter(|l| l.contains("flags=K"))
        .filter_map(|l| {
            l.split('|')
                .find_map(|kv| kv.strip_prefix("pts_time="))
                .map(str::to_owned)
        })
        .collect();
    (dims, keys)
}

/// The tests of this file transcode: one at a time, so two ladders and their publishers
/// do not share this machine's two cores (overload is not what they test).
static ONE_LADDER: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_ladder() -> std::sync::MutexGuard<'static, ()> {
    ONE_LADDER
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[test]
fn ladder_renditions_are_aligned_and_decodable() {
    require("ffprobe");
    let _one = one_ladder();
    // Rungs are never shed here: on a loaded 2-core CI machine the encoder may fall
    // behind for a moment, and this test is about alignment, not overload.
    let config = weir_e2e::TempDir::new("ladder-config");
    let toml = config.0.join("weir.toml");
    std::fs::write(
        &toml,
        "[node.ladder]\nenabled = true\nshed_rungs_when_behind = false\n",
    )
    .expect("config");
    let node = Node::start_with(NodeOptions {
        extra_args: vec![
            "--config".into(),
            toml.display().to_string(),
            "--reconnect-grace-ms".into(),
            "2000".into(),
        ],
        ..NodeOptions::default()
    });
    assert!(
        node.log()
            .contains("transcode ladder on: 1080p 6000k, 720p 3000k, 480p 1200k, 360p 700k"),
        "{}",
        node.log()
    );
    // The channel and its key over GraphQL, so the Stream's renditions can be read back.
    let (owner, channel_id, key) = owner_channel_key(&node, "ladder");
    let mut ffmpeg = obs_like_publish(&node.rtmp_url(&key), 16, "1280x720")
        .spawn()
        .expect("ffmpeg");

    // Live: the multivariant playlist lists the renditions once each has measured a segment.
    let mut mv = String::new();
    assert!(
        wait_until(Duration::from_secs(30), || {
            mv = get(node.http_port, "/live/ladder/index.m3u8").map_or(String::new(), |r| r.text());
            stream_infs(&mv).len() == 3 && !mv.contains("BANDWIDTH=0")
        }),
        "no multivariant playlist with three renditions:\n{mv}\n{}",
        node.log()
    );
    assert!(
        mv.contains("#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\"") && mv.contains("CHANNELS=\"2\""),
        "{mv}"
    );
    let vs = stream_infs(&mv);
    let resolutions: Vec<&str> = vs
        .iter()
        .filter_map(|(a, _)| list_attr(a, "RESOLUTION"))
        .collect();
    assert_eq!(resolutions, ["1280x720", "854x480", "640x360"], "{mv}");
    for (a, _) in &vs {
        assert!(
            a.contains("AUDIO=\"audio\"") && a.contains("mp4a.40.2"),
            "{a}"
        );
        assert!(
            list_attr(a, "FRAME-RATE").is_some() || !a.contains("FRAME"),
            "{a}"
        );
    }
    // Each media playlist reports the other renditions (LL-HLS level switching).
    let base = vs[0]
        .1
        .rsplit_once("/720p/")
        .map(|(b, _)| b.to_owned())
        .expect("rendition dir");
    let names = ["720p", "480p", "360p", "audio"];
    for name in names {
        let mut text = String::new();
        let reports_all = |text: &str| {
            names.iter().filter(|o| **o != name).all(|other| {
                text.contains(&format!(
                    "#EXT-X-RENDITION-REPORT:URI=\"../{other}/media.m3u8\",LAST-MSN="
                ))
            })
        };
        assert!(
            wait_until(Duration::from_secs(10), || {
                text = get(
                    node.http_port,
                    &format!("/live/ladder/{base}/{name}/media.m3u8"),
                )
                .map_or(String::new(), |r| r.text());
                reports_all(&text)
            }),
            "{name} does not report the other renditions:\n{text}"
        );
    }

    // GraphQL: the live Stream lists the renditions with their nominal bitrates.
    let mut renditions = Value::Null;
    assert!(
        wait_until(Duration::from_secs(10), || {
            let d = gql_ok(
                node.api_port,
                Some(&owner.access_token),
                "query($c: ID!) { streams(channelId: $c, first: 1) { nodes { state renditions { name width height bitrate } } } }",
                json!({ "c": channel_id }),
            );
            renditions = d["streams"]["nodes"][0]["renditions"].clone();
            renditions.as_array().is_some_and(|r| r.len() == 3)
        }),
        "the Stream does not list three renditions: {renditions}"
    );
    let r = renditions.as_array().expect("array");
    let summary: Vec<(String, u64, u64, u64)> = r
        .iter()
        .map(|x| {
            (
                x["name"]
                    .as_str()
                    .unwrap_or_default()
                    .split(' ')
                    .next()
                    .unwrap_or_default()
                    .to_owned(),
                x["width"].as_u64().unwrap_or(0),
                x["height"].as_u64().unwrap_or(0),
                x["bitrate"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("720p".to_owned(), 1280, 720, 3_000_000),
            ("480p".to_owned(), 854, 480, 1_200_000),
            ("360p".to_owned(), 640, 360, 700_000)
        ],
        "{renditions}"
    );
    // GraphQL: the transcoder says what it runs (x264, the source passed through on top).
    let d = gql_ok(
        node.api_port,
        Some(&owner.access_token),
        "query($c: ID!) { streams(channelId: $c, first: 1) { nodes { transcoder { encoder overloaded droppedRungs failure updatedAt rungs { name height bitrate passthrough dropped } } } } }",
        json!({ "c": channel_id }),
    );
    let t = &d["streams"]["nodes"][0]["transcoder"];
    assert_eq!(t["encoder"], "x264enc", "{d}");
    assert_eq!(t["failure"], Value::Null, "{d}");
    assert!(t["updatedAt"].as_i64().is_some_and(|v| v > 0), "{d}");
    let rungs: Vec<(String, bool, u64)> = t["rungs"]
        .as_array()
        .map(|r| {
            r.iter()
                .map(|x| {
                    (
                        x["name"].as_str().unwrap_or_default().to_owned(),
                        x["passthrough"].as_bool().unwrap_or(false),
                        x["bitrate"].as_u64().unwrap_or(0),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        rungs,
        [
            ("720p".to_owned(), true, 3_000_000),
            ("480p".to_owned(), false, 1_200_000),
            ("360p".to_owned(), false, 700_000)
        ],
        "{d}"
    );

    let (ok, _, err) = {
        let status = ffmpeg.wait().expect("ffmpeg");
        let mut err = String::new();
        if let Some(mut e) = ffmpeg.stderr.take() {
            use std::io::Read as _;
            let _ = e.read_to_string(&mut err);
        }
        (status.success(), (), err)
    };
    assert!(ok, "publisher failed: {err}");
    // The broadcast ends after the reconnect grace; the playlists are then complete.
    let video = ["720p", "480p", "360p"];
    let mut playlists = BTreeMap::new();
    assert!(
        wait_until(Duration::from_secs(30), || {
            playlists = video
                .iter()
                .map(|n| {
                    let p = format!("/live/ladder/{base}/{n}/media.m3u8");
                    (
                        *n,
                        get(node.http_port, &p).map_or(String::new(), |r| r.text()),
                    )
                })
                .collect();
            playlists.values().all(|t| t.contains("#EXT-X-ENDLIST"))
        }),
        "renditions did not end:\n{}",
        node.log()
    );
    let layouts: Vec<_> = video
        .iter()
        .map(|n| segment_layout(&playlists[n]))
        .collect();
    assert!(layouts[0].len() >= 5, "{}", playlists["720p"]);
    let segs =
        |l: &Vec<(String, Vec<String>)>| l.iter().map(|(d, _)| d.clone()).collect::<Vec<_>>();
    assert_eq!(
        segs(&layouts[0]),
        segs(&layouts[1]),
        "720p vs 480p segments"
    );
    assert_eq!(
        segs(&layouts[0]),
        segs(&layouts[2]),
        "720p vs 360p segments"
    );
    assert_eq!(layouts[1], layouts[2], "480p vs 360p parts");

    let mut keys = Vec::new();
    for (n, want) in video.iter().zip([(1280, 720), (854, 480), (640, 360)]) {
        let (dims, k) = probe(&node.http_url(&format!("/live/ladder/{base}/{n}/media.m3u8")));
        assert_eq!(dims, want, "{n}");
        assert!(k.len() >= 5, "{n}: key frames {k:?}");
        keys.push(k);
    }
    assert_eq!(keys[0], keys[1], "key frames 720p vs 480p");
    assert_eq!(keys[0], keys[2], "key frames 720p vs 360p");

    let (ok, _, err) = output(Command::new("ffmpeg").args([
        "-v",
        "error",
        "-i",
        &node.http_url("/live/ladder/index.m3u8"),
        "-map",
        "0",
        "-f",
        "null",
        "-",
    ]));
    assert!(ok && err.trim().is_empty(), "decoding the ladder: {err}");
}

/// A node without a node-wide ladder: a channel set to `ON` over GraphQL gets one from
/// its next publish (480p source: itself on top, 360p encoded); set back to
/// `NODE_DEFAULT`, its next broadcast is packaged as it comes (one variant, muxed).
#[test]
fn a_channel_setting_turns_the_ladder_on_and_off() {
    let _one = one_ladder();
    let node = Node::start_with(NodeOptions {
        extra_args: vec!["--reconnect-grace-ms".into(), "500".into()],
        ..NodeOptions::default()
    });
    assert!(
        node.log().contains("transcode ladder off"),
        "{}",
        node.log()
    );
    let (owner, channel_id, key) = owner_channel_key(&node, "switch");
    let set = |mode: &str| {
        let d = gql_ok(
            node.api_port,
            Some(&owner.access_token),
            "mutation($c: ID!, $t: Transcode!) { setChannelTranscode(channelId: $c, transcode: $t) { transcode } }",
            json!({ "c": channel_id, "t": mode }),
        );
        assert_eq!(d["setChannelTranscode"]["transcode"], mode, "{d}");
    };
    // The broadcast directory of a multivariant playlist's first variant.
    let broadcast_of = |mv: &str| {
        stream_infs(mv)
            .first()
            .and_then(|(_, uri)| uri.split('/').next().map(str::to_owned))
    };
    let variants_of_next_broadcast = |previous: Option<String>| {
        let mut ffmpeg = obs_like_publish(&node.rtmp_url(&key), 8, "854x480")
            .spawn()
            .expect("ffmpeg");
        let mut mv = String::new();
        // The ended broadcast stays readable until the new one replaces it.
        let seen = wait_until(Duration::from_secs(20), || {
            mv = get(node.http_port, "/live/switch/index.m3u8").map_or(String::new(), |r| r.text());
            broadcast_of(&mv).is_some() && broadcast_of(&mv) != previous
        });
        let _ = ffmpeg.wait();
        assert!(seen, "no multivariant playlist:\n{mv}\n{}", node.log());
        // This broadcast ends (grace over) before the next one starts.
        let ended = |log: String| log.matches("publisher did not come back").count();
        let started = node.log().matches("publishing started").count();
        assert!(
            wait_until(Duration::from_secs(20), || ended(node.log()) >= started),
            "{}",
            node.log()
        );
        mv
    };

    set("ON");
    let mv = variants_of_next_broadcast(None);
    let res: Vec<String> = stream_infs(&mv)
        .iter()
        .filter_map(|(a, _)| list_attr(a, "RESOLUTION").map(str::to_owned))
        .collect();
    assert_eq!(res, ["854x480", "640x360"], "{mv}");
    assert!(mv.contains("GROUP-ID=\"audio\""), "{mv}");

    set("NODE_DEFAULT");
    let mv = variants_of_next_broadcast(broadcast_of(&mv));
    assert_eq!(stream_infs(&mv).len(), 1, "{mv}");
    assert!(!mv.contains("EXT-X-MEDIA"), "muxed, not transcoded:\n{mv}");
}

/// A source the ladder cannot transcode (HEVC over SRT) is packaged as it came, and
/// GraphQL says why: `Stream.transcoder.failure`, no encoder.
#[test]
fn an_untranscodable_source_is_passed_through_and_graphql_says_why() {
    require("ffmpeg");
    let _one = one_ladder();
    let node = Node::start_with(NodeOptions {
        extra_args: vec!["--ladder".into(), "true".into()],
        ..NodeOptions::default()
    });
    let (owner, channel_id, key) = owner_channel_key(&node, "hevc");
    let url = format!("{}&latency=120000", node.srt_url(&key));
    let mut ffmpeg = weir_e2e::KillOnDrop(
        Command::new("ffmpeg")
            .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-re"])
            .args(["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30"])
            .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
            .args(["-t", "12", "-pix_fmt", "yuv420p", "-c:v", "libx265"])
            .args([
                "-preset",
                "ultrafast",
                "-x265-params",
                "keyint=60:log-level=error",
            ])
            .args(["-c:a", "aac", "-f", "mpegts", &url])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("ffmpeg"),
    );
    let mut d = Value::Null;
    let reported = wait_until(Duration::from_secs(25), || {
        d = gql_ok(
            node.api_port,
            Some(&owner.access_token),
            "query($c: ID!) { streams(channelId: $c, first: 1) { nodes { protocol transcoder { encoder failure } } } }",
            json!({ "c": channel_id }),
        );
        d["streams"]["nodes"][0]["transcoder"]["failure"].is_string()
    });
    assert!(
        reported,
        "no transcoder failure reported: {d}\n{}",
        node.log()
    );
    let node0 = &d["streams"]["nodes"][0];
    assert_eq!(node0["protocol"], "SRT", "{d}");
    assert_eq!(node0["transcoder"]["encoder"], Value::Null, "{d}");
    let why = node0["transcoder"]["failure"].as_str().unwrap_or_default();
    assert!(
        why.contains("H.264"),
        "the reason names what it needs: {why}"
    );
    // Passed through: one HEVC variant plays.
    let mut mv = String::new();
    assert!(
        wait_until(Duration::from_secs(15), || {
            mv = get(node.http_port, "/live/hevc/index.m3u8").map_or(String::new(), |r| r.text());
            stream_infs(&mv).len() == 1 && mv.contains("hvc1")
        }),
        "no HEVC variant:\n{mv}\n{}",
        node.log()
    );
    let _ = ffmpeg.0.kill();
}
