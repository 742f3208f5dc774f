//! A real browser player: hls.js in Debian's headless Chromium (driven by playwright-core,
//! `tests/web/play.mjs`) plays weir's LL-HLS stream published by ffmpeg, and uses LL-HLS:
//! parts, blocking playlist reloads, a low live latency.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use weir_e2e::http::get;
use weir_e2e::{Node, ffmpeg_publish, wait_until};

/// How long ffmpeg publishes (the test stops it once the player is done).
const PUBLISH_SECONDS: u32 = 25;
/// How far the video must play.
const PLAY_SECONDS: f64 = 6.0;
/// play.mjs gives up after this long.
const PLAYER_TIMEOUT_SECONDS: u64 = 30;

const SETUP: &str =
    "run `cargo xtask setup --test` (installs chromium and runs `npm ci` in tests/web)";

/// Kills the child on drop, so a failed assertion leaves no ffmpeg behind.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn web_dir() -> PathBuf {
    Path::new(&std::env::var_os("CARGO_MANIFEST_DIR").expect("run by cargo test")).join("web")
}

fn chromium() -> PathBuf {
    std::env::var_os("CHROMIUM").map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from)
}

/// Fails (never skips) when the browser peer is not installed.
fn require_browser_peer() {
    let node_ok = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(node_ok, "node (Node.js) is not installed: {SETUP}");
    let chromium = chromium();
    assert!(
        chromium.exists(),
        "{} is not installed: {SETUP}",
        chromium.display()
    );
    let web = web_dir();
    for dep in [
        "node_modules/hls.js/dist/hls.js",
        "node_modules/playwright-core/package.json",
    ] {
        assert!(
            web.join(dep).exists(),
            "{} is missing: {SETUP}",
            web.join(dep).display()
        );
    }
}

/// Reads a pipe to the end on a thread.
fn drain(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_string(&mut s);
        }
        s
    })
}

/// Runs play.mjs on `url`; returns (exit success, stdout, stderr), killing it if it hangs.
fn play(url: &str) -> (bool, String, String) {
    let web = web_dir();
    let mut child = Command::new("node")
        .arg(web.join("play.mjs"))
        .arg(url)
        .arg(PLAYER_TIMEOUT_SECONDS.to_string())
        .arg(PLAY_SECONDS.to_string())
        .current_dir(&web)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run node: {e}: {SETUP}"));
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let deadline = Instant::now() + Duration::from_secs(PLAYER_TIMEOUT_SECONDS + 20);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for node") {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let out = out.join().unwrap_or_default();
    let mut err = err.join().unwrap_or_default();
    if status.is_none() {
        err.push_str("\n(play.mjs hung and was killed)");
    }
    (status.is_some_and(|s| s.success()), out, err)
}

#[test]
fn hlsjs_in_chromium_plays_ll_hls() {
    require_browser_peer();
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
