//! The browser peer: Node.js scripts in `tests/web` driving Debian's headless Chromium
//! through playwright-core (hls.js, dash.js, the WebRTC pages). Tests fail, never skip,
//! when it is missing.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How to install the browser peer.
pub const SETUP: &str =
    "run `cargo xtask setup --test` (installs chromium and runs `npm ci` in tests/web)";

/// `tests/web`: the scripts, pages and `node_modules`.
///
/// Found from `CARGO_MANIFEST_DIR` at run time (cargo sets it for tests), so a test binary
/// reused from a warm target dir built in another checkout still finds this checkout's files.
pub fn web_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
        .join("web")
}

/// The Chromium binary (`CHROMIUM`, default Debian's).
pub fn chromium() -> PathBuf {
    std::env::var_os("CHROMIUM").map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from)
}

/// Fails (never skips) when node, Chromium or any of `files` (relative to `tests/web`,
/// e.g. `node_modules/hls.js/dist/hls.js`) is missing.
pub fn require_browser_peer(files: &[&str]) {
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
    for f in files {
        assert!(
            web.join(f).exists(),
            "{} is missing: {SETUP}",
            web.join(f).display()
        );
    }
}

/// Reads a pipe to the end on a thread.
pub fn drain(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_string(&mut s);
        }
        s
    })
}

/// Runs `node tests/web/<script> <args…>` in `tests/web`; returns (exit success, stdout,
/// stderr), killing it when it is still running after `limit`.
pub fn run_script(script: &str, args: &[String], limit: Duration) -> (bool, String, String) {
    let web = web_dir();
    let mut child = Command::new("node")
        .arg(web.join(script))
        .args(args)
        .current_dir(&web)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run node: {e}: {SETUP}"));
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let deadline = Instant::now() + limit;
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
        err.push_str(&format!("\n({script} hung and was killed)"));
    }
    (status.is_some_and(|s| s.success()), out, err)
}
