//! Harness for end-to-end tests: start the real `weir` binary on free loopback ports,
//! publish with ffmpeg, read over HTTP, inspect the node's log.
//!
//! The binary is `$WEIR_BIN`, or `weir` next to the test executable's target dir
//! (`cargo xtask test` builds it first).

#![allow(clippy::unwrap_used, missing_docs)]

pub mod browser;
pub mod chat;
pub mod cluster;
pub mod destinations;
pub mod etcd;
pub mod flv;
pub mod graphql;
pub mod http;
pub mod lossy;
pub mod nginx;
pub mod nginx_rtmp;
pub mod player;
pub mod process;
pub mod s3;
pub mod seccomp;
pub mod studio;
pub mod subs;

pub use process::Process;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Path of the weir binary under test.
pub fn weir_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("WEIR_BIN") {
        return PathBuf::from(p);
    }
    // target/<profile>/deps/<test-exe> → target/<profile>/weir
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let bin = dir.join("weir");
    assert!(
        bin.exists(),
        "{} not found: run `cargo build -p weir` first (cargo xtask test does)",
        bin.display()
    );
    bin
}

/// Fails the test with a clear message when a peer program is missing.
pub fn require(tool: &str) {
    let ok = Command::new(tool)
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    assert!(
        ok,
        "{tool} is not installed: run `cargo xtask setup --test`"
    );
}

/// A fresh temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("weir-e2e-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("temp dir");
        Self(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A free TCP port on loopback (bound then released).
pub fn free_port() -> u16 {
    fresh_port(|| {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port")
    })
}

/// A free UDP port on loopback (bound then released).
pub fn free_udp_port() -> u16 {
    fresh_port(|| {
        std::net::UdpSocket::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free UDP port")
    })
}

/// A port from `pick` that this process has not handed out before: the kernel may give
/// a released port again at once, and two listeners of one node must not get the same.
fn fresh_port(pick: impl Fn() -> u16) -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    loop {
        let port = pick();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// A running `weir serve`.
pub struct Node {
    proc: Process,
    pub rtmp_port: u16,
    pub http_port: u16,
    /// SRT ingest port (UDP, loopback).
    pub srt_port: u16,
    /// Port of the GraphQL API (passed as `WEIR_API_LISTEN`, so a binary without the
    /// API simply ignores it).
    pub api_port: u16,
    pub dir: TempDir,
}

/// Options for starting a node.
#[derive(Default, Clone)]
pub struct NodeOptions {
    pub extra_args: Vec<String>,
    pub deny_io_uring: bool,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
}

/// Environment variables of weir's that a test must not inherit from the caller.
pub const WEIR_ENV: &[&str] = &[
    "WEIR_CONFIG",
    "WEIR_API_LISTEN",
    "WEIR_ETCD_ENDPOINTS",
    "WEIR_NODE_TOKEN",
    "WEIR_STREAM_KEY_SECRET",
    "WEIR_STREAM_KEY_PUBLIC",
    "WEIR_BOOTSTRAP_ADMIN",
    "WEIR_CONTROL_PLANE",
    "WEIR_NODE_ID",
    "WEIR_DATA_DIR",
    "WEIR_RTMP_LISTEN",
    "WEIR_HTTP_LISTEN",
    "WEIR_WEBRTC_UDP_PORT",
    "WEIR_SRT_LISTEN",
    "WEIR_SRT_LATENCY_MS",
    "WEIR_WEBRTC_PUBLIC_IPS",
    "WEIR_LADDER",
    "WEIR_LADDER_RUNGS",
    "WEIR_RTMP_IDLE_TIMEOUT_MS",
    "WEIR_RTMP_PUBLISH_TIMEOUT_MS",
    "WEIR_RTMP_WRITE_TIMEOUT_MS",
    "WEIR_RTMP_MAX_COMMAND_BYTES",
    "WEIR_RTMP_MAX_CONNECTIONS_PER_IP",
    "WEIR_RTMP_MAX_CONNECTIONS_PER_NODE",
    "WEIR_HTTP_MAX_CONNECTIONS",
    "WEIR_HTTP_MAX_CONNECTIONS_PER_NODE",
    "WEIR_HTTP_MAX_CONNECTIONS_PER_IP",
    "WEIR_HTTP_HEAD_TIMEOUT_MS",
    "WEIR_HTTP_IDLE_TIMEOUT_MS",
    "WEIR_HTTP_WRITE_TIMEOUT_MS",
    "WEIR_CHAT_REDIS",
    "WEIR_CHAT_LISTEN",
    "WEIR_JWT_SECRET",
    "WEIR_SECRET_KEY",
    "WEIR_RELAY_ALLOW_INTERNAL",
    "WEIR_RELAY_CA_FILE",
    "WEIR_RECORD",
    "WEIR_RECORD_RETENTION_DAYS",
    "WEIR_RECORD_MAX_BYTES",
    "WEIR_RECORD_STORE",
    "WEIR_RECORD_STORE_ENDPOINT",
    "WEIR_RECORD_STORE_REGION",
    "WEIR_RECORD_STORE_ALLOW_HTTP",
    "WEIR_RECORD_KEEP_LOCAL",
];

/// A `weir` command with a clean environment and the tests' log filter.
pub fn weir_command() -> Command {
    let mut cmd = Command::new(weir_bin());
    for v in WEIR_ENV {
        cmd.env_remove(v);
    }
    cmd.env("WEIR_LOG", "info,weir_node=debug");
    cmd
}

impl Node {
    pub fn start() -> Self {
        Self::start_with(NodeOptions::default())
    }

    pub fn start_with(opts: NodeOptions) -> Self {
        let dir = TempDir::new("node");
        let ports = (free_port(), free_port(), free_udp_port(), free_port());
        Self::start_in(dir, ports, "weir.log", opts)
    }

    /// Stops the node (SIGTERM) and starts it again on the same data directory, on fresh
    /// ports (a restarted process may not get its old ports back at once).
    pub fn stop_and_restart(self, opts: NodeOptions) -> Self {
        let Node { mut proc, dir, .. } = self;
        let stopped = proc.terminate(Duration::from_secs(15));
        assert_eq!(
            stopped,
            Some(true),
            "node did not stop cleanly:\n{}",
            proc.log()
        );
        let ports = (free_port(), free_port(), free_udp_port(), free_port());
        Self::start_in(dir, ports, "weir.restarted.log", opts)
    }
    /// Kills this node (SIGKILL, like a crash) if it still runs, then starts a new one on
    /// the same data directory and ports (its log in `weir.restarted.log`). Tests run in
    /// parallel, so one of those ports may meanwhile be another connection's source
    /// port: then the new node gets fresh ports (log `weir.restarted-ports.log`).
    pub fn restart(self, opts: NodeOptions) -> Self {
        let Node {
            mut proc,
            rtmp_port,
            http_port,
            srt_port,
            api_port,
            dir,
        } = self;
        proc.kill();
        drop(proc);
        let ports = (rtmp_port, http_port, srt_port, api_port);
        let node = Self::launch(dir, ports, "weir.restarted.log", &opts);
        const TAKEN: &str = "Address already in use";
        wait_until(Duration::from_secs(20), || {
            let log = node.log();
            log.contains("HTTP origin listening") || log.contains(TAKEN)
        });
        let log = node.log();
        if log.contains("HTTP origin listening") {
            return node;
        }
        assert!(log.contains(TAKEN), "node did not restart:\n{log}");
        eprintln!("restart: one of the node's ports was taken meanwhile; fresh ports");
        let Node { proc, dir, .. } = node;
        drop(proc);
        let ports = (free_port(), free_port(), free_udp_port(), free_port());
        Self::start_in(dir, ports, "weir.restarted-ports.log", opts)
    }

    fn start_in(
        dir: TempDir,
        ports: (u16, u16, u16, u16),
        log_name: &str,
        opts: NodeOptions,
    ) -> Self {
        let node = Self::launch(dir, ports, log_name, &opts);
        assert!(
            node.wait_log("HTTP origin listening", Duration::from_secs(20)),
            "node did not start:\n{}",
            node.log()
        );
        node
    }

    /// Spawns `weir serve` without waiting for it.
    fn launch(
        dir: TempDir,
        (rtmp_port, http_port, srt_port, api_port): (u16, u16, u16, u16),
        log_name: &str,
        opts: &NodeOptions,
    ) -> Self {
        let log = dir.0.join(log_name);
        let mut cmd = weir_command();
        cmd.args(Self::common_args(&dir.0, rtmp_port, http_port))
            .args(["--srt-listen".to_owned(), format!("127.0.0.1:{srt_port}")])
            .arg("serve")
            .args(&opts.extra_args)
            .env("WEIR_API_LISTEN", format!("127.0.0.1:{api_port}"))
            .envs(opts.env.iter().map(|(k, v)| (k, v)));
        if opts.deny_io_uring {
            seccomp::deny_io_uring_in_child(&mut cmd);
        }
        let proc = Process::spawn("weir serve", cmd, log);
        Node {
            proc,
            rtmp_port,
            http_port,
            srt_port,
            api_port,
            dir,
        }
    }

    fn common_args(dir: &Path, rtmp: u16, http: u16) -> Vec<String> {
        vec![
            "--data-dir".into(),
            dir.join("data").display().to_string(),
            "--rtmp-listen".into(),
            format!("127.0.0.1:{rtmp}"),
            "--http-listen".into(),
            format!("127.0.0.1:{http}"),
            "--public-host".into(),
            "127.0.0.1".into(),
            // Tests run in parallel: any free UDP ports, announced on loopback.
            "--webrtc-udp-port".into(),
            "0".into(),
            "--webrtc-public-ips".into(),
            "127.0.0.1".into(),
        ]
    }

    /// The SRT URL publishing with `stream_id`.
    pub fn srt_url(&self, stream_id: &str) -> String {
        format!("srt://127.0.0.1:{}?streamid={stream_id}", self.srt_port)
    }

    /// Runs `weir key …` against this node's data dir and returns stdout.
    pub fn key_command(&self, args: &[&str]) -> (bool, String) {
        let out = weir_command()
            .args(Self::common_args(
                &self.dir.0,
                self.rtmp_port,
                self.http_port,
            ))
            .arg("key")
            .args(args)
            .output()
            .expect("weir key");
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.success(), text)
    }

    /// Issues a stream key for `channel` and returns (server url, key).
    pub fn issue_key(&self, channel: &str) -> (String, String) {
        let (ok, out) = self.key_command(&["issue", channel]);
        assert!(ok, "weir key issue failed: {out}");
        let field = |name: &str| {
            out.lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.trim().to_owned())
                .unwrap_or_else(|| panic!("no {name} in {out}"))
        };
        (field("Server:"), field("Stream key:"))
    }

    pub fn rtmp_url(&self, key: &str) -> String {
        format!("rtmp://127.0.0.1:{}/live/{key}", self.rtmp_port)
    }

    pub fn http_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.http_port)
    }

    pub fn log(&self) -> String {
        self.proc.log()
    }

    pub fn wait_log(&self, needle: &str, timeout: Duration) -> bool {
        wait_until(timeout, || self.log().contains(needle))
    }

    /// Sends SIGTERM and waits for the exit; returns the exit success.
    pub fn terminate(&mut self, timeout: Duration) -> Option<bool> {
        self.proc.terminate(timeout)
    }

    /// The process, e.g. to kill it.
    pub fn process(&mut self) -> &mut Process {
        &mut self.proc
    }
}

/// `url` without its playback token segment (`/t.<exp>.<sig>/`), as the control plane
/// hands recording and clip URLs out.
pub fn without_token(url: &str) -> String {
    url.split('/')
        .filter(|seg| !is_token_segment(seg))
        .collect::<Vec<_>>()
        .join("/")
}

/// Whether a path segment is a playback token `t.<exp>.<sig>`.
pub fn is_token_segment(seg: &str) -> bool {
    seg.strip_prefix("t.")
        .and_then(|t| t.split_once('.'))
        .is_some_and(|(exp, sig)| exp.parse::<u64>().is_ok() && !sig.is_empty())
}

/// Polls `f` every 50 ms until it is true or the timeout passes.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

/// ffmpeg publishing a synthetic 30 fps H.264 + 48 kHz AAC stream for `seconds`,
/// keyframe every 2 s, in real time.
pub fn ffmpeg_publish(url: &str, seconds: u32) -> Command {
    require("ffmpeg");
    let mut c = Command::new("ffmpeg");
    c.args(["-hide_banner", "-nostdin", "-loglevel", "error", "-re"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", &seconds.to_string()])
        .args([
            "-pix_fmt",
            "yuv420p",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
        ])
        .args(["-tune", "zerolatency", "-g", "60", "-keyint_min", "60"])
        .args(["-c:a", "aac", "-b:a", "96k", "-f", "flv", url])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

/// Kills the child on drop, so a failed assertion leaves no publisher behind.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// ffmpeg publishing OBS-like x264 at `size` (e.g. `1280x720`) over RTMP: 30 fps,
/// B-frames, fixed 2 s GOP, 2.5 Mb/s, AAC 48 kHz stereo, in real time for `seconds`.
/// Its stderr is piped (set it to null if it is not read).
pub fn obs_like_publish(url: &str, seconds: u32, size: &str) -> Command {
    require("ffmpeg");
    let mut c = Command::new("ffmpeg");
    let source = format!("testsrc2=size={size}:rate=30");
    c.args(["-hide_banner", "-nostdin", "-loglevel", "error", "-re"])
        .args(["-f", "lavfi", "-i", &source])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", &seconds.to_string(), "-pix_fmt", "yuv420p"])
        .args(["-c:v", "libx264", "-preset", "superfast", "-bf", "2"])
        .args(["-g", "60", "-b:v", "2500k", "-c:a", "aac", "-ac", "2"])
        .args(["-b:a", "128k", "-f", "flv", url])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

/// `(attributes, uri)` of each `EXT-X-STREAM-INF` of a multivariant playlist.
pub fn stream_infs(multivariant: &str) -> Vec<(String, String)> {
    let lines: Vec<&str> = multivariant.lines().collect();
    lines
        .windows(2)
        .filter_map(|w| {
            let attrs = w[0].strip_prefix("#EXT-X-STREAM-INF:")?;
            Some((attrs.to_owned(), w[1].trim().to_owned()))
        })
        .collect()
}

/// The value of attribute `name` in an attribute list (`A=1,B=2`), unquoted values only.
pub fn list_attr<'a>(attrs: &'a str, name: &str) -> Option<&'a str> {
    attrs
        .split(',')
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
}

/// Runs a command to completion and returns (success, stdout, stderr).
pub fn output(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd.output().expect("run command");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A parsed LL-HLS media playlist (just what the tests look at).
#[derive(Debug, Default, Clone)]
pub struct MediaPlaylist {
    pub text: String,
    pub media_sequence: u64,
    /// (msn, uri, duration) of full segments.
    pub segments: Vec<(u64, String, f64)>,
    /// (msn, uri, duration, independent) of parts.
    pub parts: Vec<(u64, String, f64, bool)>,
    pub preload_hint: Option<String>,
    pub ended: bool,
    pub discontinuities: usize,
    /// `#EXT-X-TARGETDURATION`.
    pub target_duration: Option<u64>,
    /// The `#EXT-X-MAP` URI (the last one listed).
    pub map_uri: Option<String>,
}

fn attr<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let i = line.find(&format!("{name}="))?;
    let v = &line[i + name.len() + 1..];
    if let Some(q) = v.strip_prefix('"') {
        q.split('"').next()
    } else {
        v.split(',').next()
    }
}

impl MediaPlaylist {
    pub fn parse(text: &str) -> Self {
        let mut p = MediaPlaylist {
            text: text.to_owned(),
            ..Default::default()
        };
        let mut msn = 0;
        let mut dur = 0.0;
        for line in text.lines() {
            if let Some(v) = line.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
                p.media_sequence = v.trim().parse().unwrap_or(0);
                msn = p.media_sequence;
            } else if let Some(v) = line.strip_prefix("#EXT-X-SKIP:") {
                msn += attr(v, "SKIPPED-SEGMENTS")
                    .and_then(|s| s.parse::<u64>().ok())
                    .unwrap_or(0);
            } else if let Some(v) = line.strip_prefix("#EXTINF:") {
                dur = v
                    .split(',')
                    .next()
                    .and_then(|d| d.parse().ok())
                    .unwrap_or(0.0);
            } else if let Some(v) = line.strip_prefix("#EXT-X-PART:") {
                p.parts.push((
                    msn,
                    attr(v, "URI").unwrap_or_default().to_owned(),
                    attr(v, "DURATION")
                        .and_then(|d| d.parse().ok())
                        .unwrap_or(0.0),
                    attr(v, "INDEPENDENT") == Some("YES"),
                ));
            } else if let Some(v) = line.strip_prefix("#EXT-X-TARGETDURATION:") {
                p.target_duration = v.trim().parse().ok();
            } else if let Some(v) = line.strip_prefix("#EXT-X-MAP:") {
                p.map_uri = attr(v, "URI").map(str::to_owned);
            } else if let Some(v) = line.strip_prefix("#EXT-X-PRELOAD-HINT:") {
                p.preload_hint = attr(v, "URI").map(str::to_owned);
            } else if line.starts_with("#EXT-X-ENDLIST") {
                p.ended = true;
            } else if line.starts_with("#EXT-X-DISCONTINUITY") && !line.contains("SEQUENCE") {
                p.discontinuities += 1;
            } else if !line.starts_with('#') && !line.trim().is_empty() {
                p.segments.push((msn, line.trim().to_owned(), dur));
                msn += 1;
            }
        }
        p
    }

    /// The parts listed, each with its index in its segment: (msn, index, uri).
    pub fn indexed_parts(&self) -> Vec<(u64, u64, String)> {
        let mut out: Vec<(u64, u64, String)> = Vec::with_capacity(self.parts.len());
        for p in &self.parts {
            let idx = match out.last() {
                Some(last) if last.0 == p.0 => last.1 + 1,
                _ => 0,
            };
            out.push((p.0, idx, p.1.clone()));
        }
        out
    }

    /// Media sequence number of the segment being built (or the next one).
    pub fn next_msn(&self) -> u64 {
        self.segments
            .last()
            .map_or(self.media_sequence, |s| s.0 + 1)
    }
}

/// GETs and parses a media playlist; an error status gives an empty playlist.
pub fn fetch_playlist(port: u16, path: &str) -> MediaPlaylist {
    match http::get(port, path) {
        Ok(r) if r.status == 200 => MediaPlaylist::parse(&r.text()),
        _ => MediaPlaylist::default(),
    }
}

/// The variant URI of a multivariant playlist.
pub fn variant_uri(multivariant: &str) -> Option<String> {
    let mut lines = multivariant.lines();
    while let Some(l) = lines.next() {
        if l.starts_with("#EXT-X-STREAM-INF") {
            return lines.next().map(|s| s.trim().to_owned());
        }
    }
    None
}

/// ffprobe's count of decoded frames of one stream type (`v` or `a`) in `url`.
pub fn count_frames(url: &str, stream: &str) -> u64 {
    require("ffprobe");
    let (ok, out, err) = output(Command::new("ffprobe").args([
        "-v",
        "error",
        "-count_frames",
        "-select_streams",
        stream,
        "-show_entries",
        "stream=nb_read_frames",
        "-of",
        "csv=p=0",
        url,
    ]));
    assert!(ok, "ffprobe failed on {url}: {err}");
    // ffprobe may repeat the stream under a program section: take the first value.
    out.lines()
        .find(|l| !l.trim().is_empty())
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("ffprobe said {out:?} / {err}"))
}

/// Fails the test with a clear message when nginx is missing.
pub fn require_nginx() {
    let ok = Command::new("nginx")
        .arg("-v")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "nginx is not installed: run `cargo xtask setup --test` (Debian package nginx)"
    );
}

/// The sum of the Prometheus samples of `name` on the node's `/metrics` whose labels
/// contain every `label="value"` pair in `labels`; `None` when the node exports no such
/// metric (or `/metrics` cannot be read).
pub fn metric(port: u16, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let r = http::get(port, "/metrics")
        .ok()
        .filter(|r| r.status == 200)?;
    sum_metric(&r.text(), name, labels)
}

/// [`metric`] on a scraped text.
pub fn sum_metric(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut found = None;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        let (label_text, value) = if let Some(r) = rest.strip_prefix('{') {
            match r.split_once('}') {
                Some((l, v)) => (l, v),
                None => continue,
            }
        } else if rest.starts_with(' ') {
            ("", rest)
        } else {
            continue; // a longer metric name
        };
        if !labels
            .iter()
            .all(|(k, v)| label_text.contains(&format!("{k}=\"{v}\"")))
        {
            continue;
        }
        if let Some(v) = value
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<f64>().ok())
        {
            *found.get_or_insert(0.0) += v;
        }
    }
    found
}

/// Downloads `init` and `media` (paths on 127.0.0.1:`port`) into one file under `dir`,
/// for ffprobe: a CMAF segment or part is only playable after its init segment.
pub fn fetch_with_init(port: u16, init: &str, media: &str, dir: &Path, name: &str) -> PathBuf {
    let mut bytes = Vec::new();
    for p in [init, media] {
        let r = http::get(port, p).unwrap_or_else(|e| panic!("GET {p}: {e}"));
        assert_eq!(r.status, 200, "GET {p}: {}", r.text());
        bytes.extend_from_slice(&r.body);
    }
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write media file");
    path
}
