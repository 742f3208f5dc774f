//! Installs the Debian packages the project needs, only those missing, the web pages'
//! npm packages in web/ (the node embeds hls.js from there: `dataplane/node/build.rs`),
//! and (with the test peers) the browser test's npm packages in tests/web.

use std::path::Path;
use std::process::{Command, Stdio};

/// Needed to build and run the node.
/// (GStreamer is the codec engine of `dataplane/codec`: headers to build, plugins with
/// the decoders, scaler, encoders and mixers it loads at run time.)
const BUILD: &[&str] = &[
    "build-essential",
    "pkg-config",
    "protobuf-compiler",
    "libprotobuf-dev",
    "libgstreamer1.0-dev",
    "libgstreamer-plugins-base1.0-dev",
    "gstreamer1.0-plugins-base",
    "gstreamer1.0-plugins-good",
    "gstreamer1.0-plugins-ugly",
    "gstreamer1.0-plugins-bad",
    "gstreamer1.0-libav",
    // textoverlay (pango): the studio program's lower-third banners.
    "gstreamer1.0-x",
];
/// Test peers: real encoders, players and servers the tests start themselves
/// (Chromium runs hls.js in `tests/tests/hlsjs.rs`; nginx is the caching reverse proxy, a
/// stand-in CDN, in `tests/tests/cdn_proxy.rs`, and with libnginx-mod-rtmp the relay
/// destinations of `tests/tests/relay.rs` (libnginx-mod-stream terminates TLS for RTMPS,
/// with a test certificate openssl makes); srt-live-transmit is an SRT caller in
/// `tests/tests/srt.rs`; redis-server carries chat between gateways in `tests/tests/chat.rs`;
/// firefox-esr plays the watch page in `tests/tests/watch.rs`; coturn is the TURN relay
/// Chromium publishes and plays through in `tests/tests/webrtc.rs`).
const TEST: &[&str] = &[
    "ffmpeg",
    "etcd-server",
    "chromium",
    "firefox-esr",
    "nginx",
    "libnginx-mod-rtmp",
    "libnginx-mod-stream",
    "openssl",
    "srt-tools",
    "redis-server",
    "coturn",
    // venv + pip for moto's S3 server (`moto_server`), below.
    "python3-venv",
];
/// Node.js and npm install the web pages' packages (and run the browser test's driver);
/// installed from Debian only when they are not already on PATH (they may come from
/// elsewhere, e.g. NodeSource).
const NODE: &[(&str, &str)] = &[("node", "nodejs"), ("npm", "npm")];

fn installed(pkg: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", pkg])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        .unwrap_or(false)
}

/// Installs what is missing (needs root or sudo).
pub fn run(with_test_peers: bool) -> Result<(), String> {
    let mut pkgs: Vec<&str> = BUILD.to_vec();
    if with_test_peers {
        pkgs.extend(TEST);
    }
    pkgs.extend(
        NODE.iter()
            .filter(|(tool, _)| !on_path(tool))
            .map(|(_, pkg)| *pkg),
    );
    install(pkgs.iter())?;
    npm_ci("web")?;
    if with_test_peers {
        npm_ci("tests/web")?;
        moto()?;
    }
    Ok(())
}

/// The S3-protocol server `tests/tests/recording_s3.rs` starts: moto's server (PyPI
/// `moto[server]`), pip-installed into a venv at `~/.cache/weir-py` unless the system
/// `python3` has it already (Debian bookworm packages no moto).
pub fn moto() -> Result<(), String> {
    let has = |python: &Path| {
        Command::new(python)
            .args(["-c", "import moto.server, flask, flask_cors"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let home = std::env::var_os("HOME").ok_or("HOME is not set")?;
    let venv = Path::new(&home).join(".cache/weir-py");
    let python = venv.join("bin/python3");
    if has(Path::new("python3")) || has(&python) {
        return Ok(());
    }
    eprintln!("xtask: installing moto[server] into {}", venv.display());
    crate::run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
    crate::run(Command::new(&python).args(["-m", "pip", "install", "-q", "moto[server]"]))
}

/// Whether `tool --version` runs.
pub fn on_path(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Installs the given packages if any is missing.
pub fn install<'a>(pkgs: impl Iterator<Item = &'a &'a str>) -> Result<(), String> {
    let missing: Vec<&str> = pkgs.copied().filter(|p| !installed(p)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("xtask: installing Debian packages: {}", missing.join(" "));
    let sudo = !is_root();
    let apt = |args: &[&str]| {
        let mut c = if sudo {
            let mut c = Command::new("sudo");
            c.arg("apt-get");
            c
        } else {
            Command::new("apt-get")
        };
        c.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        c
    };
    crate::run(&mut apt(&["update", "-qq"]))?;
    let mut args = vec!["install", "-y", "-qq", "--no-install-recommends"];
    args.extend(missing.iter().copied());
    crate::run(&mut apt(&args))
}

/// `npm ci` in `dir` (web/, tests/web) when its node_modules is missing or older than its
/// package-lock.json.
pub fn npm_ci(dir: &str) -> Result<(), String> {
    let web = crate::root().join(dir);
    let lock = web.join("package-lock.json");
    // npm writes node_modules/.package-lock.json on every install.
    let installed = web.join("node_modules/.package-lock.json");
    let mtime = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let fresh = match (mtime(&installed), mtime(&lock)) {
        (Some(i), Some(l)) => i >= l,
        _ => false,
    };
    if fresh {
        return Ok(());
    }
    crate::run(
        Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--prefix"])
            .arg(&web),
    )
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}
