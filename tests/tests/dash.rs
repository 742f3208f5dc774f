//! weir's low-latency DASH end to end. ffmpeg publishes OBS-like 720p30 x264 + AAC over
//! RTMP to a node started with `--ladder true` (the default rungs: 720p passed through,
//! 480p and 360p transcoded), which serves, besides LL-HLS, a dynamic MPD at
//! `/live/<channel>/manifest.mpd`: one video AdaptationSet with a Representation per
//! rendition and one audio AdaptationSet, `SegmentTemplate` `$Number$` + `SegmentTimeline`,
//! `availabilityTimeOffset` with `availabilityTimeComplete="false"` (the segment in
//! progress is sent with chunked transfer as its CMAF chunks are made), a
//! `ServiceDescription` latency target and `UTCTiming` at the node's `/time`.
//!
//! - `dashjs_plays_the_ladder_in_low_latency_mode`: dash.js 5 (npm `dashjs`) in Debian's
//!   headless Chromium (`tests/web/dash.mjs` + `dash.html`, driven by playwright-core)
//!   plays the MPD with live catch-up on and the latency target taken from the MPD's
//!   ServiceDescription. dash.js must switch itself to low-latency mode (it does so from
//!   `availabilityTimeComplete="false"`), load media with its fetch loader (the chunked
//!   CMAF one), play at least [`PLAY_SECONDS`] without a fatal error, and report a live
//!   latency (`getCurrentLiveLatency()`, against the node's clock) under
//!   [`MAX_LATENCY_SECONDS`]. The latency, the target, and whether segments were fetched
//!   while still being made (the node's `segment_in_progress` counter, and requests whose
//!   body kept coming long after its first byte) are printed, not asserted: dash.js only
//!   learns of a new segment when it reloads the MPD (every `minimumUpdatePeriod`), so
//!   whether it asks for a segment before it is complete depends on when those reloads
//!   fall within the segments.
//! - `ffmpeg_reads_the_mpd`: Debian's ffprobe lists one video stream per rendition (720p,
//!   480p, 360p) and the audio stream, and ffmpeg decodes 5 s of all of them from the live
//!   MPD without an error.
//! - `a_muxed_broadcast_is_served_over_dash_on_demand`: without a ladder, the first MPD
//!   request has the broadcast's tracks packaged one per playlist; ffprobe reads it.
//!
//! Both fail (never skip) when a peer is missing; they run one at a time (each runs a
//! transcode ladder, and the machine may have two cores).

use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;
use weir_e2e::KillOnDrop;
use weir_e2e::browser::{require_browser_peer, run_script};
use weir_e2e::http::get;
use weir_e2e::{Node, NodeOptions, metric, obs_like_publish, output, require, wait_until};

/// How long ffmpeg may publish (each test stops it once done).
const PUBLISH_SECONDS: u32 = 90;
/// How far dash.js must play (currentTime advanced, and video.played).
const PLAY_SECONDS: f64 = 8.0;
/// dash.mjs gives up after this long.
const PLAYER_TIMEOUT_SECONDS: u64 = 45;
/// A loose bound on dash.js's live latency (the MPD asks for about 2.6 s).
const MAX_LATENCY_SECONDS: f64 = 6.0;
/// The renditions of a 720p source with the default rungs, and their heights.
const VIDEO: [(&str, u32); 3] = [("720p", 720), ("480p", 480), ("360p", 360)];

/// One ladder at a time: the tests would otherwise share two cores between two
/// transcoders, two publishers and a browser.
static SERIAL: Mutex<()> = Mutex::new(());

/// A node with the default transcode ladder, and ffmpeg publishing 720p to `channel`.
fn start_ladder(channel: &str) -> (Node, KillOnDrop) {
    let node = Node::start_with(NodeOptions {
        extra_args: vec![
            "--ladder".into(),
            "true".into(),
            "--reconnect-grace-ms".into(),
            "2000".into(),
        ],
        ..NodeOptions::default()
    });
    let (_, key) = node.issue_key(channel);
    let publisher = KillOnDrop(
        obs_like_publish(&node.rtmp_url(&key), PUBLISH_SECONDS, "1280x720")
            .stderr(Stdio::null())
            .spawn()
            .expect("ffmpeg"),
    );
    (node, publisher)
}

/// The `id`s of the MPD's Representations, in order.
fn representation_ids(mpd: &str) -> Vec<String> {
    mpd.split("<Representation ")
        .skip(1)
        .filter_map(|r| {
            let rest = r.split_once("id=\"")?.1;
            Some(rest.split_once('"')?.0.to_owned())
        })
        .collect()
}

/// The first value of attribute `name` in the MPD ("?" when absent).
fn mpd_attr<'a>(mpd: &'a str, name: &str) -> &'a str {
    mpd.split_once(&format!(" {name}=\""))
        .and_then(|(_, rest)| rest.split_once('"'))
        .map_or("?", |(v, _)| v)
}

/// Waits for the MPD to list every rendition (each has made a segment), and returns it.
fn wait_for_mpd(node: &Node, path: &str) -> String {
    let mut mpd = String::new();
    let want: Vec<&str> = VIDEO.iter().map(|(n, _)| *n).chain(["audio"]).collect();
    assert!(
        wait_until(Duration::from_secs(30), || {
            mpd = get(node.http_port, path)
                .ok()
                .filter(|r| r.status == 200)
                .map_or(String::new(), |r| r.text());
            representation_ids(&mpd) == want
        }),
        "no MPD listing {want:?} at {path}:\n{mpd}\n{}",
        node.log()
    );
    for needle in [
        "type=\"dynamic\"",
        "availabilityTimeComplete=\"false\"",
        "<ServiceDescription",
        "urn:mpeg:dash:utc:http-iso:2014",
        "contentType=\"video\"",
        "contentType=\"audio\"",
    ] {
        assert!(mpd.contains(needle), "the MPD has no {needle}:\n{mpd}");
    }
    mpd
}

/// What the node logged about its transcoder falling behind (a dropped rung leaves a
/// Representation whose segments stop), for failure messages.
fn ladder_trouble(node: &Node) -> String {
    let lines: Vec<String> = node
        .log()
        .lines()
        .filter(|l| l.contains("cannot keep up") || l.contains("keeps up again"))
        .map(str::to_owned)
        .collect();
    if lines.is_empty() {
        "the ladder kept up (no rung dropped)".to_owned()
    } else {
        format!(
            "the ladder dropped rungs while the test ran:\n{}",
            lines.join("\n")
        )
    }
}

/// Runs dash.mjs on `url` until the video has played [`PLAY_SECONDS`]; returns (exit
/// success, stdout, stderr), killing it if it hangs.
fn run_dash_mjs(url: &str) -> (bool, String, String) {
    let args = [
        url.to_owned(),
        PLAYER_TIMEOUT_SECONDS.to_string(),
        PLAY_SECONDS.to_string(),
    ];
    run_script(
        "dash.mjs",
        &args,
        Duration::from_secs(PLAYER_TIMEOUT_SECONDS + 20),
    )
}

/// The last `n` lines of `text`.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[test]
fn dashjs_plays_the_ladder_in_low_latency_mode() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_browser_peer(&[
        "node_modules/dashjs/dist/modern/umd/dash.all.debug.js",
        "node_modules/playwright-core/package.json",
        "dash.mjs",
        "dash.html",
    ]);
    let (node, _publisher) = start_ladder("dashjs");
    let mpd_path = "/live/dashjs/manifest.mpd";
    let mpd = wait_for_mpd(&node, mpd_path);
    eprintln!(
        "MPD when the player started: timeShiftBufferDepth {}, minimumUpdatePeriod {}, \
         availabilityTimeOffset {}, Latency target {} ms",
        mpd_attr(&mpd, "timeShiftBufferDepth"),
        mpd_attr(&mpd, "minimumUpdatePeriod"),
        mpd_attr(&mpd, "availabilityTimeOffset"),
        mpd_attr(&mpd, "target"),
    );

    let (ok, out, err) = run_dash_mjs(&node.http_url(mpd_path));
    let in_progress = metric(
        node.http_port,
        "weir_http_objects_total",
        &[("kind", "segment_in_progress")],
    )
    .unwrap_or(0.0);
    let line = out.lines().rev().find(|l| l.starts_with('{'));
    let report: Value = line
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("dash.mjs printed no report (ok={ok}):\n{out}\n{err}"));
    let num = |k: &str| report[k].as_f64().unwrap_or(f64::NAN);
    let net = &report["network"];
    let latencies: Vec<String> = report["latencies"]
        .as_array()
        .map(|v| {
            v.iter()
                .map(|s| format!("{:.2}", s["latency"].as_f64().unwrap_or(f64::NAN)))
                .collect()
        })
        .unwrap_or_default();
    eprintln!(
        "dash.js {}: live latency {:.2} s (target {} s, low-latency mode {}), played {:.1} s \
         from {:.1} s, rate {:.3}, video {} (switches {}), DVR window {}",
        report["dashVersion"],
        num("latency"),
        report["targetLatency"],
        report["lowLatencyMode"],
        num("played"),
        num("startTime"),
        num("playbackRate"),
        report["currentVideo"],
        report["videoSwitches"],
        report["dvrWindow"],
    );
    eprintln!("dash.js latency once a second: [{}]", latencies.join(", "));
    eprintln!(
        "media requests by loader {}; CMAF chunks handed on {}; MPD loads {}, /time {}, \
         segments {} ({} sent while being made, as the browser saw them); the node sent \
         {in_progress} segments in progress",
        report["requests"],
        report["chunkProgress"],
        net["mpd"],
        net["time"],
        net["segments"],
        net["streamedSegments"],
    );
    let events: Vec<String> = report["events"]
        .as_array()
        .map(|evs| {
            evs.iter()
                .map(|e| {
                    format!(
                        "{} {} @{:.2}",
                        e["type"].as_str().unwrap_or(""),
                        e["details"].as_str().unwrap_or(""),
                        e["currentTime"].as_f64().unwrap_or(f64::NAN)
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    eprintln!("dash.js events: {events:?}");
    let ctx = format!(
        "errors: {}\nevents: {events:#?}\nfailed requests: {}\n{}\nMPD when the player \
         started:\n{mpd}\nMPD now:\n{}\ndash.mjs stderr:\n{}",
        report["errors"],
        net["failed"],
        ladder_trouble(&node),
        get(node.http_port, mpd_path).map_or(String::new(), |r| r.text()),
        tail(&err, 60),
    );

    let fatal: Vec<&Value> = report["errors"]
        .as_array()
        .map(|e| e.iter().filter(|e| e["fatal"] != false).collect())
        .unwrap_or_default();
    assert!(fatal.is_empty(), "fatal dash.js errors: {fatal:?}\n{ctx}");
    assert!(ok, "dash.mjs failed (timed out or crashed)\n{ctx}");
    assert_eq!(report["playing"], true, "dash.js never played\n{ctx}");
    assert!(
        num("advanced") >= PLAY_SECONDS && num("played") >= PLAY_SECONDS,
        "dash.js played too little\n{ctx}"
    );
    assert_eq!(
        report["lowLatencyMode"], true,
        "dash.js did not switch to low-latency mode (availabilityTimeComplete=\"false\")\n{ctx}"
    );
    assert!(
        report["requests"]["fetch_loader"].as_f64().unwrap_or(0.0) > 0.0,
        "dash.js never used its low-latency (fetch, chunked CMAF) loader\n{ctx}"
    );
    assert!(
        report["timeSync"]["offsetMs"].is_number() && net["time"].as_f64().unwrap_or(0.0) > 0.0,
        "dash.js did not sync its clock to the node's UTCTiming (/time)\n{ctx}"
    );
    let latency = num("latency");
    assert!(
        latency.is_finite() && latency > 0.0 && latency < MAX_LATENCY_SECONDS,
        "dash.js live latency {latency:.2} s is not under {MAX_LATENCY_SECONDS} s\n{ctx}"
    );
}

#[test]
fn ffmpeg_reads_the_mpd() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require("ffprobe");
    let (node, _publisher) = start_ladder("dashff");
    let mpd_path = "/live/dashff/manifest.mpd";
    let mpd = wait_for_mpd(&node, mpd_path);
    let url = node.http_url(mpd_path);

    // One stream per Representation: the renditions' heights, then the audio.
    let (ok, probed, err) = output(Command::new("ffprobe").args([
        "-v",
        "error",
        "-show_entries",
        "stream=codec_type,codec_name,height,sample_rate,channels",
        "-of",
        "json",
        &url,
    ]));
    assert!(ok && err.trim().is_empty(), "ffprobe {url}: {err}\n{mpd}");
    let probed: Value = serde_json::from_str(&probed).expect("ffprobe JSON");
    let streams = probed["streams"].as_array().cloned().unwrap_or_default();
    let of_type =
        |t: &str| -> Vec<&Value> { streams.iter().filter(|s| s["codec_type"] == t).collect() };
    let heights: Vec<u64> = of_type("video")
        .iter()
        .filter_map(|s| s["height"].as_u64())
        .collect();
    assert_eq!(
        heights,
        VIDEO.iter().map(|(_, h)| u64::from(*h)).collect::<Vec<_>>(),
        "video streams of the MPD: {probed}"
    );
    let audio = of_type("audio");
    assert!(
        audio.len() == 1
            && audio[0]["codec_name"] == "aac"
            && audio[0]["sample_rate"] == "48000"
            && audio[0]["channels"] == 2,
        "audio streams of the MPD: {probed}"
    );

    // 5 s of every stream, decoded; framecrc writes one line per decoded frame. The log
    // is verbose (to show what ffmpeg fetched) with each line's level, so that it can be
    // held to what `-v error` would print: nothing.
    let (ok, frames, log) = output(Command::new("ffmpeg").args([
        "-hide_banner",
        "-nostdin",
        "-loglevel",
        "level+verbose",
        "-i",
        &url,
        "-map",
        "0",
        "-t",
        "5",
        "-f",
        "framecrc",
        "-",
    ]));
    let errors: Vec<&str> = log
        .lines()
        .filter(|l| {
            ["[error]", "[fatal]", "[panic]"]
                .iter()
                .any(|t| l.contains(t))
        })
        .collect();
    let fetched: Vec<&str> = log
        .lines()
        .filter_map(|l| l.split_once("DASH request for url '")?.1.split_once('\''))
        .map(|(u, _)| u.rsplit_once("/live/").map_or(u, |(_, p)| p))
        .collect();
    // Per stream: frames, and the first and last timestamps (its time base).
    let per_stream = |i: usize| {
        let ts: Vec<i64> = frames
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let mut f = l.split(',').map(str::trim);
                (f.next()? == i.to_string()).then(|| f.next()?.parse().ok())?
            })
            .collect();
        (ts.len(), ts.first().copied(), ts.last().copied())
    };
    let streams: Vec<_> = (0..=VIDEO.len()).map(per_stream).collect();
    let counts: Vec<usize> = streams.iter().map(|s| s.0).collect();
    eprintln!("ffmpeg decoded from the MPD (720p, 480p, 360p, audio frames): {counts:?}");
    let ctx = format!(
        "frames, first and last dts per stream: {streams:?}\nffmpeg fetched: {fetched:?}\n{}\n\
         MPD:\n{}",
        ladder_trouble(&node),
        get(node.http_port, mpd_path).map_or(String::new(), |r| r.text())
    );
    assert!(
        ok && errors.is_empty(),
        "ffmpeg decoding the MPD failed: {errors:#?}\n{}\n{ctx}",
        tail(&log, 30)
    );
    // 5 s at 30 fps (and 48 kHz / 1024 for the audio), with some slack.
    for (i, (name, _)) in VIDEO.iter().enumerate() {
        assert!(
            counts[i] >= 120,
            "ffmpeg decoded {} frames of {name} in 5 s\n{ctx}",
            counts[i]
        );
    }
    assert!(
        counts[VIDEO.len()] >= 180,
        "ffmpeg decoded {} audio frames in 5 s\n{ctx}",
        counts[VIDEO.len()]
    );
}

/// A broadcast without a ladder (one muxed LL-HLS playlist) is DASH too: the first MPD
/// request has its tracks packaged one per playlist (and waits for the first MPD, or
/// answers 503 with `Retry-After`); ffprobe finds its video and audio in the MPD; HLS
/// viewers keep the muxed playlist.
#[test]
fn a_muxed_broadcast_is_served_over_dash_on_demand() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require("ffprobe");
    let node = Node::start();
    let (_, key) = node.issue_key("dashmux");
    let _publisher = KillOnDrop(
        obs_like_publish(&node.rtmp_url(&key), 30, "640x360")
            .stderr(Stdio::null())
            .spawn()
            .expect("ffmpeg"),
    );
    let hls = "/live/dashmux/index.m3u8";
    assert!(
        wait_until(Duration::from_secs(20), || get(node.http_port, hls)
            .is_ok_and(|r| r.status == 200)),
        "no LL-HLS:\n{}",
        node.log()
    );
    let mpd_path = "/live/dashmux/manifest.mpd";
    let mut first = None;
    let mut mpd = String::new();
    assert!(
        wait_until(Duration::from_secs(20), || {
            let r = get(node.http_port, mpd_path).expect("GET the MPD");
            first.get_or_insert(r.status);
            assert!(
                r.status == 200 || r.status == 503,
                "MPD: {} {}",
                r.status,
                r.text()
            );
            mpd = r.text();
            r.status == 200 && representation_ids(&mpd) == ["360p", "audio"]
        }),
        "no MPD with the video and audio:\n{mpd}\n{}",
        node.log()
    );
    eprintln!("first MPD request answered {first:?}");
    assert!(
        mpd.contains("type=\"dynamic\"") && mpd.contains("availabilityTimeComplete=\"false\""),
        "{mpd}"
    );
    let (ok, probed, err) = output(Command::new("ffprobe").args([
        "-v",
        "error",
        "-show_entries",
        "stream=codec_type,height",
        "-of",
        "json",
        &node.http_url(mpd_path),
    ]));
    assert!(ok && err.trim().is_empty(), "ffprobe the MPD: {err}\n{mpd}");
    let probed: Value = serde_json::from_str(&probed).expect("ffprobe JSON");
    let kinds: Vec<String> = probed["streams"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|s| {
            format!(
                "{}{}",
                s["codec_type"],
                s["height"]
                    .as_u64()
                    .map_or(String::new(), |h| format!(" {h}"))
            )
        })
        .collect();
    assert_eq!(kinds, ["\"video\" 360", "\"audio\""], "{probed}");
    let multivariant = get(node.http_port, hls).expect("GET").text();
    assert!(
        !multivariant.contains("EXT-X-MEDIA") && multivariant.contains("mp4a.40.2"),
        "HLS stays one muxed playlist:\n{multivariant}"
    );
}
