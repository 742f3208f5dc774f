//! hls.js switches level on weir's transcode ladder when its bandwidth drops.
//!
//! A node started with `--ladder true` transcodes an OBS-like 720p30 x264 broadcast (B-frames,
//! 2 s keyint, AAC, published by ffmpeg over RTMP) into 480p and 360p next to the source, so
//! `/live/<channel>/index.m3u8` is a multivariant LL-HLS playlist with three video
//! variants sharing one audio rendition. hls.js 1.7.4 in Debian's headless Chromium
//! (`tests/web/levels.mjs`, on `tests/web/player.html`, low-latency mode) plays it:
//!
//! 1. at the full loopback rate for a few seconds: it must be playing a level above 360p
//!    (it starts on the first listed, 720p, and stays there in our runs; should ABR be on
//!    360p at that point, levels.mjs pins the top level, then hands the choice back to ABR
//!    before the cap, and reports `pinned`);
//! 2. then the page's download rate is capped through the DevTools protocol
//!    (`Network.emulateNetworkConditions`) between the 360p and the 480p variants'
//!    `BANDWIDTH` ([`CAP_SHARE`] of the way, the figures as hls.js read them from the
//!    multivariant playlist), early in a video segment (levels.mjs explains why that
//!    matters to hls.js): hls.js's ABR — the script sets no level after the cap — must
//!    switch to the 360p level within [`SWITCH_TIMEOUT_SECONDS`];
//! 3. and keep playing, throttled, at 360p: `currentTime` advances at least
//!    [`AFTER_MIN_PLAYED`] s in [`AFTER_SECONDS`] s.
//!
//! It prints a digest of what hls.js did (level switches, the first playlist request on
//! each level it moved to, with the `_HLS_msn`/`_HLS_part` it took from the rendition
//! reports, segments buffered and loads abandoned, media events, a timeline).
//!
//! The test fails (never skips) when node, Chromium or the npm packages are missing.

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use weir_e2e::KillOnDrop;
use weir_e2e::browser::{require_browser_peer, run_script};
use weir_e2e::http::get;
use weir_e2e::{Node, NodeOptions, list_attr, obs_like_publish, stream_infs, wait_until};

/// How long ffmpeg publishes at most: the test stops it once the player is done, ~30 s in
/// (~40 s when the machine is busy); the slack keeps the stream live through a slow start.
const PUBLISH_SECONDS: u32 = 60;
/// How far the video plays unthrottled before the cap.
const WARM_SECONDS: u64 = 6;
/// How long after the cap hls.js has to switch down to 360p (6-12 s in our runs; 20 s and
/// more when hls.js first plays the rest of the top level's segment at the capped rate).
const SWITCH_TIMEOUT_SECONDS: u64 = 25;
/// How long the player keeps watching, throttled, after the switch.
const AFTER_SECONDS: u64 = 8;
/// … and how far `currentTime` must advance in that time (it still stalls now and then
/// while it refills its buffer at the capped rate).
const AFTER_MIN_PLAYED: f64 = 2.0;
/// Where the cap lies from the 360p variant's `BANDWIDTH` (0 %) to the 480p one's (100 %).
/// Well above 360p's: its `BANDWIDTH` counts its audio but not the LL-HLS playlist reloads
/// (a blocking reload of the video and of the audio playlist per 200 ms part, ~300 kbit/s
/// together), so at a cap near 360p's figure hls.js cannot keep up with the live edge even
/// at 360p. 480p stays out of reach all the same: hls.js measures well under the cap (many
/// small parallel requests) and wants headroom above a level's bitrate.
const CAP_SHARE: &str = "75%";

/// Runs levels.mjs on `url` with the download cap `cap` (kbit/s, or a share between 360p
/// and 480p); returns (exit success, stdout, stderr), killing it if it hangs.
fn run_levels_mjs(url: &str, cap: &str) -> (bool, String, String) {
    let args = [
        url.to_owned(),
        cap.to_owned(),
        WARM_SECONDS.to_string(),
        SWITCH_TIMEOUT_SECONDS.to_string(),
        AFTER_SECONDS.to_string(),
    ];
    // Warm-up (≤ 30 s more to start), a possible pin (≤ 23 s), the switch, the watch.
    let limit = WARM_SECONDS + 30 + 23 + SWITCH_TIMEOUT_SECONDS + AFTER_SECONDS + 30;
    run_script("levels.mjs", &args, Duration::from_secs(limit))
}

#[test]
fn hlsjs_switches_down_the_ladder_when_bandwidth_is_capped() {
    require_browser_peer(&[
        "node_modules/hls.js/dist/hls.js",
        "node_modules/playwright-core/package.json",
    ]);
    let node = Node::start_with(NodeOptions {
        extra_args: vec![
            "--ladder".into(),
            "true".into(),
            "--reconnect-grace-ms".into(),
            "2000".into(),
        ],
        ..NodeOptions::default()
    });
    let (_, key) = node.issue_key("levels");
    let published = Instant::now();
    let _publisher = KillOnDrop(
        obs_like_publish(&node.rtmp_url(&key), PUBLISH_SECONDS, "1280x720")
            .stderr(Stdio::null())
            .spawn()
            .expect("ffmpeg"),
    );

    // The multivariant playlist lists the three renditions (nominal bitrates until measured).
    let mv_path = "/live/levels/index.m3u8";
    let mut mv = String::new();
    assert!(
        wait_until(Duration::from_secs(30), || {
            mv = get(node.http_port, mv_path).map_or(String::new(), |r| r.text());
            stream_infs(&mv).len() == 3 && !mv.contains("BANDWIDTH=0")
        }),
        "no multivariant playlist with three renditions:\n{mv}\n{}",
        node.log()
    );
    let vs = stream_infs(&mv);
    let resolutions: Vec<&str> = vs
        .iter()
        .filter_map(|(a, _)| list_attr(a, "RESOLUTION"))
        .collect();
    assert_eq!(resolutions, ["1280x720", "854x480", "640x360"], "{mv}");
    eprintln!(
        "multivariant after {:.1} s:\n{mv}",
        published.elapsed().as_secs_f64()
    );

    let started = Instant::now();
    let (ok, out, err) = run_levels_mjs(&node.http_url(mv_path), CAP_SHARE);
    eprintln!(
        "levels.mjs ran {:.1} s (publisher at {:.1} s of {PUBLISH_SECONDS} s)",
        started.elapsed().as_secs_f64(),
        published.elapsed().as_secs_f64()
    );
    let line = out.lines().rev().find(|l| l.starts_with('{'));
    let report: Value = line
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("levels.mjs printed no report (ok={ok}):\n{out}\n{err}"));

    // A readable digest of what hls.js did.
    let t0 = report["throttledAt"].as_f64().unwrap_or(f64::NAN);
    let rel = |v: &Value| (v["t"].as_f64().unwrap_or(f64::NAN) - t0) / 1000.0;
    let switches: Vec<String> = report["hls"]["switches"]
        .as_array()
        .map(|s| {
            s.iter()
                .map(|s| {
                    format!(
                        "{:+.1}s → level {} ({}p, auto {}) @{:.2} bwe {}",
                        rel(s),
                        s["level"],
                        s["height"],
                        s["auto"],
                        s["currentTime"].as_f64().unwrap_or(f64::NAN),
                        s["bandwidthEstimate"]
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let timeline: Vec<String> = report["timeline"]
        .as_array()
        .map(|tl| {
            tl.iter()
                .step_by(4)
                .map(|v| {
                    format!(
                        "{:+.1}s {} ct={:.2} {}p load={} bwe={} rs={} buf={}",
                        rel(v),
                        v["phase"].as_str().unwrap_or(""),
                        v["currentTime"].as_f64().unwrap_or(f64::NAN),
                        v["height"],
                        v["loadLevel"],
                        v["bwe"],
                        v["readyState"],
                        v["buffered"]
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let events: Vec<String> = report["events"]
        .as_array()
        .map(|evs| {
            evs.iter()
                .map(|e| {
                    format!(
                        "{:+.1}s {} {} @{:.2}",
                        rel(e),
                        e["type"].as_str().unwrap_or(""),
                        e["details"].as_str().unwrap_or(""),
                        e["currentTime"].as_f64().unwrap_or(f64::NAN)
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    // The first playlist request of each level hls.js moves to: `_HLS_msn`/`_HLS_part`
    // there come from the previous playlist's EXT-X-RENDITION-REPORT.
    let mut last_level = None;
    let level_moves: Vec<String> = report["hls"]["loads"]
        .as_array()
        .map(|loads| {
            loads
                .iter()
                .filter(|l| {
                    let moved = last_level != Some(&l["level"]);
                    last_level = Some(&l["level"]);
                    moved
                })
                .map(|l| {
                    let url = l["url"].as_str().unwrap_or("");
                    let tail = url.rsplit_once('/').map_or(url, |(dir, file)| {
                        let name = dir.rsplit('/').next().unwrap_or("");
                        &url[url.len() - file.len() - name.len() - 1..]
                    });
                    format!("{:+.1}s level {}: {tail}", rel(l), l["level"])
                })
                .collect()
        })
        .unwrap_or_default();
    // Video segments buffered (hls.js buffers a segment's parts together) and loads
    // abandoned, from 1 s before the cap on.
    let buffered: Vec<String> = report["hls"]["frags"]
        .as_array()
        .map(|b| {
            b.iter()
                .filter(|f| rel(f) >= -1.0 && f["ev"] != "loading" && f["ev"] != "loaded")
                .take(40)
                .map(|f| {
                    format!(
                        "{:+.1}s {} level {} sn {} part {} {} B ttfb {} ms load {} ms bwe {}",
                        rel(f),
                        f["ev"].as_str().unwrap_or(""),
                        f["level"],
                        f["sn"],
                        f["part"],
                        f["bytes"],
                        f["ttfb"],
                        f["load"],
                        f["bwe"]
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    eprintln!(
        "hls.js {} levels {}\nbefore the cap: {}\ncapped at {} kbit/s after part {}\n\
         switched down: {}\nafter: {}\npinned: {}, throttle via {}\nrendition reports per level playlist: {}\nlevel switches (s since the \
         cap):\n  {}\nfirst playlist load of each level moved to:\n  {}\nvideo buffered:\n  {}\n\
         events:\n  {}\ntimeline (every 1 s):\n  {}",
        report["hlsVersion"],
        report["hls"]["manifestLevels"],
        report["before"],
        report["throttleKbps"],
        report["hls"]["capAfter"],
        report["switchedDown"],
        report["after"],
        report["pinned"],
        report["throttleMethod"],
        report["hls"]["renditionReports"],
        switches.join("\n  "),
        level_moves.join("\n  "),
        buffered.join("\n  "),
        events.join("\n  "),
        timeline.join("\n  "),
    );
    let ctx = format!(
        "switches: {switches:#?}\nevents: {events:#?}\ntimeline: {timeline:#?}\nerrors: {}\nwhy: {}\n\
         levels.mjs stderr:\n{err}",
        report["errors"], report["why"]
    );

    let fatal: Vec<_> = report["errors"]
        .as_array()
        .map(|e| {
            e.iter()
                .filter(|e| e["fatal"].as_bool() != Some(false))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    assert!(fatal.is_empty(), "fatal hls.js errors: {fatal:?}\n{ctx}");
    let heights: Vec<u64> = report["hls"]["manifestLevels"]
        .as_array()
        .map(|l| l.iter().filter_map(|l| l["height"].as_u64()).collect())
        .unwrap_or_default();
    assert_eq!(heights, [360, 480, 720], "hls.js's levels\n{ctx}");
    let max_bitrate = |i: usize| {
        report["hls"]["manifestLevels"][i]["maxBitrate"]
            .as_f64()
            .unwrap_or(f64::NAN)
    };
    let cap = report["throttleKbps"].as_f64().unwrap_or(f64::NAN) * 1000.0;
    assert!(
        max_bitrate(0) < cap && cap < max_bitrate(1),
        "the cap {cap} bit/s is not between 360p's and 480p's BANDWIDTH\n{ctx}"
    );
    assert_eq!(report["playing"], true, "never played\n{ctx}");

    // 1. Above 360p at the full rate (by ABR, or pinned there and handed back to ABR).
    let before = &report["before"];
    assert!(
        before["height"].as_u64().is_some_and(|h| h > 360),
        "not above 360p before the cap: {before}\n{ctx}"
    );
    assert_eq!(
        before["auto"], true,
        "ABR was not in charge before the cap\n{ctx}"
    );
    // 2. ABR switched down to 360p once capped.
    assert!(ok, "levels.mjs failed: {}\n{ctx}", report["why"]);
    let down = &report["switchedDown"];
    assert_eq!(down["height"], 360, "no switch down to 360p\n{ctx}");
    assert_eq!(
        down["auto"], true,
        "the switch down was not hls.js's ABR's\n{ctx}"
    );
    let since = down["sinceThrottleMs"].as_f64().unwrap_or(f64::NAN);
    assert!(
        since <= (SWITCH_TIMEOUT_SECONDS * 1000) as f64,
        "switched down {since} ms after the cap\n{ctx}"
    );
    // 3. Still playing, throttled.
    let after = &report["after"];
    let advanced = after["advanced"].as_f64().unwrap_or(f64::NAN);
    assert!(
        advanced >= AFTER_MIN_PLAYED,
        "currentTime advanced only {advanced:.2} s in the {AFTER_SECONDS} s after the switch\n{ctx}"
    );
}
