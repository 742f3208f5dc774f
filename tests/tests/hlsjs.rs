//! A real browser player: hls.js in Debian's headless Chromium (driven by playwright-core,
//! `tests/web/play.mjs`) plays weir's LL-HLS stream published by ffmpeg, and uses LL-HLS:
//! parts, blocking playlist reloads, a low live latency. A second test has the publisher's
//! video stop for 5 s while its audio goes on: the playlist keeps advancing (audio-only
//! parts) and hls.js keeps playing or recovers once the video is back.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use weir_e2e::KillOnDrop;
use weir_e2e::browser::{require_browser_peer, run_script};
use weir_e2e::flv::{Action, FlvPublisher, TagKind, make_flv, read_tags};
use weir_e2e::http::get;
use weir_e2e::{Node, TempDir, fetch_playlist, ffmpeg_publish, variant_uri, wait_until};

/// How long ffmpeg publishes (the test stops it once the player is done).
const PUBLISH_SECONDS: u32 = 25;
/// How far the video must play.
const PLAY_SECONDS: f64 = 6.0;
/// play.mjs gives up after this long.
const PLAYER_TIMEOUT_SECONDS: u64 = 30;

/// Runs play.mjs on `url` until the video has played [`PLAY_SECONDS`]; returns (exit
/// success, stdout, stderr), killing it if it hangs.
fn play(url: &str) -> (bool, String, String) {
    run_play_mjs(url, PLAYER_TIMEOUT_SECONDS, PLAY_SECONDS, 0)
}

/// Runs play.mjs with its arguments: timeout, seconds to play, watch seconds (0: off).
fn run_play_mjs(url: &str, timeout: u64, play_s: f64, watch_s: u64) -> (bool, String, String) {
    let args = [
        url.to_owned(),
        timeout.to_string(),
        play_s.to_string(),
        watch_s.to_string(),
    ];
    run_script(
        "play.mjs",
        &args,
        Duration::from_secs(timeout.max(watch_s) + 20),
    )
}

#[test]
fn hlsjs_in_chromium_plays_ll_hls() {
    require_browser_peer(&[
        "node_modules/hls.js/dist/hls.js",
        "node_modules/playwright-core/package.json",
    ]);
    let node = Node::start();
    let (_, key) = node.issue_key("chan");
    let _publisher = KillOnDrop(
        ffmpeg_publish(&node.rtmp_url(&key), PUBLISH_SECONDS)
            .stderr(Stdio::null())
            .spawn()
            .expect("ffmpeg"),
    );

    let mv_path = "/live/chan/index.m3u8";
    assert!(
        wait_until(Duration::from_secs(15), || get(node.http_port, mv_path)
            .is_ok_and(|r| r.status == 200)),
        "no multivariant playlist:\n{}",
        node.log()
    );

    let (ok, out, err) = play(&node.http_url(mv_path));
    let line = out.lines().rev().find(|l| l.starts_with('{'));
    let report: serde_json::Value = line
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("play.mjs printed no report (ok={ok}):\n{out}\n{err}"));
    eprintln!("hls.js report: {report}");
    let ctx = format!("report: {report}\nplay.mjs stderr:\n{err}");
    assert!(ok, "play.mjs failed\n{ctx}");

    let num = |k: &str| report[k].as_f64().unwrap_or(f64::NAN);
    let fatal: Vec<_> = report["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter(|e| e["fatal"].as_bool() != Some(false))
        .collect();
    assert!(fatal.is_empty(), "fatal hls.js errors: {fatal:?}\n{ctx}");
    assert_eq!(report["playing"], true, "never played\n{ctx}");
    assert!(
        num("currentTime") >= PLAY_SECONDS,
        "played too little\n{ctx}"
    );
    assert!(
        num("played") >= PLAY_SECONDS,
        "video.played is under {PLAY_SECONDS} s\n{ctx}"
    );
    assert!(
        num("partsLoaded") > 10.0,
        "hls.js loaded few LL-HLS parts\n{ctx}"
    );
    assert_eq!(
        report["canBlockReload"], true,
        "no CAN-BLOCK-RELOAD seen by hls.js\n{ctx}"
    );
    assert!(
        num("blockingReloads") > 0.0,
        "hls.js issued no blocking playlist reload (_HLS_msn)\n{ctx}"
    );
    assert!(
        num("latency") < 3.0,
        "live latency too high for LL-HLS\n{ctx}"
    );
}

/// The stall test's publisher: video stops at this file time (ms) …
const STALL_FROM_MS: u32 = 10_000;
/// … and comes back at the first key frame from this file time on.
const STALL_UNTIL_MS: u32 = 15_000;
/// Length of the FLV file replayed (the publisher is stopped once the browser is done).
const STALL_FLV_SECONDS: u32 = 34;
/// How long the browser watches (from its start, ~2 s after the publisher's).
const STALL_WATCH_SECONDS: u64 = 27;

/// When each part (msn, index) first appeared, and every playlist text seen.
type Sampled = (BTreeMap<(u64, u64), Instant>, Vec<(Instant, String)>);

/// Records when each part first appeared in the media playlist (straight from the origin).
fn sample_parts(
    port: u16,
    media_path: String,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Sampled> {
    std::thread::spawn(move || {
        let mut seen = BTreeMap::new();
        let mut texts = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            let pl = fetch_playlist(port, &media_path);
            let now = Instant::now();
            for (msn, idx, _) in pl.indexed_parts() {
                seen.entry((msn, idx)).or_insert(now);
            }
            texts.push((now, pl.text));
            std::thread::sleep(Duration::from_millis(100));
        }
        (seen, texts)
    })
}

/// The timeline sample nearest `unix_ms` at or after it, and the last one at or before
/// `unix_ms + span`.
fn samples_around(timeline: &[Value], unix_ms: f64, span: f64) -> Option<(&Value, &Value)> {
    let t = |v: &Value| v["t"].as_f64().unwrap_or(f64::NAN);
    let first = timeline.iter().find(|v| t(v) >= unix_ms)?;
    let last = timeline.iter().rev().find(|v| t(v) <= unix_ms + span)?;
    Some((first, last))
}

#[test]
fn hlsjs_keeps_playing_through_a_video_stall_with_audio_going_on() {
    require_browser_peer(&[
        "node_modules/hls.js/dist/hls.js",
        "node_modules/playwright-core/package.json",
    ]);
    let node = Node::start();
    let (_, key) = node.issue_key("stall");
    let tmp = TempDir::new("stall");
    // Key frames every second (30 frames), so the video can resume soon after the stall.
    let tags = read_tags(&make_flv(&tmp.0, "stall.flv", STALL_FLV_SECONDS, 30));
    let first = tags
        .iter()
        .filter(|t| !t.is_config())
        .map(|t| t.ts)
        .min()
        .expect("frames");
    let resume_ms = tags
        .iter()
        .filter(|t| t.is_keyframe() && t.ts - first >= STALL_UNTIL_MS)
        .map(|t| t.ts - first)
        .min()
        .expect("a key frame after the stall");
    let publisher = FlvPublisher::start(node.rtmp_port, &key, tags, move |t| {
        let at = t.ts - first;
        if t.kind == TagKind::Video && (STALL_FROM_MS..resume_ms).contains(&at) {
            Action::Skip
        } else {
            Action::At(t.ts)
        }
    });

    let mv_path = "/live/stall/index.m3u8";
    assert!(
        wait_until(Duration::from_secs(15), || get(node.http_port, mv_path)
            .is_ok_and(|r| r.status == 200)),
        "no multivariant playlist:\n{}",
        node.log()
    );
    let variant = variant_uri(&get(node.http_port, mv_path).expect("mv").text()).expect("variant");
    let media_path = format!(
        "/live/stall/{}",
        variant.split('?').next().unwrap_or(&variant)
    );
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = sample_parts(node.http_port, media_path, stop.clone());

    let (ok, out, err) = run_play_mjs(
        &node.http_url(mv_path),
        STALL_WATCH_SECONDS,
        0.0,
        STALL_WATCH_SECONDS,
    );
    let sent = publisher.join(true);
    stop.store(true, Ordering::Relaxed);
    let (parts, texts) = sampler.join().expect("sampler");

    assert!(sent.error.is_none(), "publisher failed: {:?}", sent.error);
    let (stopped, resumed) = sent
        .gap(TagKind::Video)
        .expect("the publisher skipped video and resumed it");
    let start = sent.sent.first().expect("sent").clone();
    eprintln!(
        "video stopped at {:.1} s, resumed at {:.1} s (file time {} → {} ms)",
        stopped.at.duration_since(start.at).as_secs_f64(),
        resumed.at.duration_since(start.at).as_secs_f64(),
        stopped.file_ts - first,
        resumed.file_ts - first
    );

    // The media playlist kept advancing while only audio came in.
    let from = stopped.at + Duration::from_millis(300);
    let during: Vec<_> = parts
        .iter()
        .filter(|(_, t)| **t > from && **t <= resumed.at)
        .map(|(k, _)| *k)
        .collect();
    let mid = texts
        .iter()
        .rev()
        .find(|(t, _)| *t <= resumed.at)
        .map(|(_, text)| text.as_str())
        .unwrap_or_default();
    eprintln!(
        "parts that appeared during the {:.1} s without video: {} ({:?} … {:?})",
        resumed.at.duration_since(stopped.at).as_secs_f64(),
        during.len(),
        during.first(),
        during.last()
    );

    // What hls.js did.
    let line = out.lines().rev().find(|l| l.starts_with('{'));
    let report: Value = line
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("play.mjs printed no report (ok={ok}):\n{out}\n{err}"));
    let timeline = report["timeline"].as_array().cloned().unwrap_or_default();
    let rel = |ms: f64| (ms - start.unix_ms) / 1000.0;
    let events: Vec<String> = report["events"]
        .as_array()
        .map(|evs| {
            evs.iter()
                .map(|e| {
                    format!(
                        "{:.1}s {} {} @{:.2}",
                        rel(e["t"].as_f64().unwrap_or(0.0)),
                        e["type"].as_str().unwrap_or(""),
                        e["details"].as_str().unwrap_or(""),
                        e["currentTime"].as_f64().unwrap_or(f64::NAN)
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let condensed: Vec<String> = timeline
        .iter()
        .step_by(4)
        .map(|v| {
            format!(
                "{:.1}s ct={:.2} rs={} buf={}",
                rel(v["t"].as_f64().unwrap_or(0.0)),
                v["currentTime"].as_f64().unwrap_or(f64::NAN),
                v["readyState"],
                v["buffered"]
            )
        })
        .collect();
    eprintln!(
        "hls.js events (s since publish start):\n  {}",
        events.join("\n  ")
    );
    eprintln!("hls.js timeline (every 1 s):\n  {}", condensed.join("\n  "));
    let ctx = format!(
        "events: {events:#?}\ntimeline: {condensed:#?}\nerrors: {}\nplay.mjs stderr:\n{err}",
        report["errors"]
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
    let (a, b) = samples_around(&timeline, resumed.unix_ms, 10_000.0)
        .unwrap_or_else(|| panic!("no browser samples after the video resumed\n{ctx}"));
    let span = (b["t"].as_f64().unwrap_or(0.0) - a["t"].as_f64().unwrap_or(0.0)) / 1000.0;
    let advanced =
        b["currentTime"].as_f64().unwrap_or(f64::NAN) - a["currentTime"].as_f64().unwrap_or(0.0);
    eprintln!("after the video resumed, currentTime advanced {advanced:.2} s in {span:.1} s");

    assert!(
        during.len() >= 15,
        "only {} new parts during the 5 s the video stalled (audio went on): the playlist \
         must keep advancing (node log below)\nplaylist just before the video resumed:\n{mid}",
        during.len(),
    );
    assert!(fatal.is_empty(), "fatal hls.js errors: {fatal:?}\n{ctx}");
    assert!(ok, "play.mjs failed\n{ctx}");
    assert_eq!(report["playing"], true, "never played\n{ctx}");
    assert!(
        span >= 9.0,
        "the browser watched only {span:.1} s after the video resumed\n{ctx}"
    );
    assert!(
        advanced >= 5.0,
        "hls.js played only {advanced:.2} s in the {span:.1} s after the video came back\n{ctx}"
    );
}
