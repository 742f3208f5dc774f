//! The processes of the studio bench: `weir serve`, the guests' ffmpeg publishers (stream
//! copies of pre-encoded files), the program reader (ffmpeg on the program's LL-HLS) and
//! the peer (ffmpeg composing the same files itself).

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::servers::{free_port, tail};

/// A guest's picture: the sizes cycle across guests (360p, 480p, 720p).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestSize {
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
    /// Video bitrate of the file, kbit/s.
    pub kbps: u32,
}

/// The guest sizes, in the order guests take them.
pub const GUEST_SIZES: [GuestSize; 3] = [
    GuestSize {
        width: 640,
        height: 360,
        kbps: 800,
    },
    GuestSize {
        width: 854,
        height: 480,
        kbps: 1200,
    },
    GuestSize {
        width: 1280,
        height: 720,
        kbps: 2500,
    },
];

/// Guest `i`'s size.
pub fn guest_size(i: usize) -> GuestSize {
    GUEST_SIZES[i % GUEST_SIZES.len()]
}

/// Encodes (once, cached) the file guests of `size` publish: testsrc2 (moving, so the
/// decoders do real work) with a sine, OBS-like x264 veryfast (2 B-frames, 2 s GOP) and
/// AAC 48 kHz stereo, 20 s, FLV.
pub fn guest_media(size: GuestSize) -> anyhow::Result<PathBuf> {
    let GuestSize {
        width,
        height,
        kbps,
    } = size;
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-loglevel", "error", "-y"])
        .args([
            "-f",
            "lavfi",
            "-i",
            &format!("testsrc2=size={width}x{height}:rate=30"),
        ])
        .args([
            "-f",
            "lavfi",
            "-i",
            &format!("sine=frequency={}:sample_rate=48000", 220 + height),
        ])
        .args(["-t", "20", "-pix_fmt", "yuv420p", "-c:v", "libx264"])
        .args(["-preset", "veryfast", "-bf", "2", "-g", "60"])
        .args(["-b:v", &format!("{kbps}k"), "-maxrate", &format!("{kbps}k")])
        .args(["-bufsize", &format!("{}k", kbps * 2)])
        .args(["-c:a", "aac", "-b:a", "96k", "-ac", "2", "-f", "flv"]);
    crate::media::cached(
        &format!("studio-guest-{width}x{height}p30-x264-{kbps}k-aac-20s.flv"),
        cmd,
    )
}

/// A process the bench started; killed when dropped.
pub struct Proc {
    child: Child,
}

impl Proc {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running `weir serve`.
pub struct Node {
    proc: Proc,
    /// RTMP port.
    pub rtmp_port: u16,
    /// HTTP (LL-HLS) port.
    pub http_port: u16,
    /// GraphQL port.
    pub api_port: u16,
    /// Its log (stderr).
    pub log: PathBuf,
}

impl Node {
    /// Starts `weir serve` (one shard, defaults otherwise: the studio's 1280×720 30 fps
    /// program) with its data and log in `work`.
    pub fn start(weir_bin: &Path, work: &Path, tag: &str) -> anyhow::Result<Self> {
        let (rtmp_port, http_port, api_port) = (free_port()?, free_port()?, free_port()?);
        let data = work.join(format!("weir-{tag}"));
        std::fs::create_dir_all(&data)?;
        let log = work.join(format!("weir-{tag}.log"));
        let child = Command::new(weir_bin)
            .arg("--data-dir")
            .arg(&data)
            .args(["--rtmp-listen", &format!("127.0.0.1:{rtmp_port}")])
            .args(["--http-listen", &format!("127.0.0.1:{http_port}")])
            .args(["--api-listen", &format!("127.0.0.1:{api_port}")])
            .args(["--public-host", "127.0.0.1"])
            .args(["--webrtc-udp-port", "0", "--webrtc-public-ips", "127.0.0.1"])
            .args(["--srt-listen", "127.0.0.1:0", "--shards", "1"])
            .args(["--api-rate-per-ip", "1e9", "--api-rate-per-user", "1e9"])
            .arg("serve")
            .env("WEIR_LOG", "warn,weir=info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .with_context(|| format!("starting {}", weir_bin.display()))?;
        let mut node = Self {
            proc: Proc { child },
            rtmp_port,
            http_port,
            api_port,
            log,
        };
        node.wait_log("GraphQL API listening", Duration::from_secs(30))?;
        node.wait_log("HTTP origin listening", Duration::from_secs(10))?;
        Ok(node)
    }

    /// Waits until the log contains `needle`.
    pub fn wait_log(&mut self, needle: &str, within: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if self.log_text().contains(needle) {
                return Ok(());
            }
            if !self.proc.running() {
                bail!("weir exited: {}", tail(&self.log));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!("timed out waiting for {needle:?}: {}", tail(&self.log))
    }

    /// The whole log.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    /// The RTMP publish URL of `key`.
    pub fn rtmp_url(&self, key: &str) -> String {
        format!("rtmp://127.0.0.1:{}/live/{key}", self.rtmp_port)
    }

    /// The URL of `path` on the HTTP port.
    pub fn http_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.http_port)
    }
}

/// Starts ffmpeg publishing `file` in a loop at its own rate, stream copy (no decoding,
/// no encoding: a publisher costs almost nothing).
pub fn publisher(file: &Path, url: &str) -> anyhow::Result<Proc> {
    let child = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-loglevel", "error"])
        .args(["-stream_loop", "-1", "-re", "-i"])
        .arg(file)
        .args(["-c", "copy", "-f", "flv", url])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting ffmpeg (install it: cargo xtask setup --test)")?;
    Ok(Proc { child })
}

/// One video packet the reader saw: when it arrived and its presentation time (s).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Packet {
    /// Arrival at the reader.
    pub at: Instant,
    /// Presentation time, seconds.
    pub pts: f64,
}

/// ffmpeg reading the program's LL-HLS from the live edge, stream copy of the video to
/// `framecrc` (one line per packet on stdout, parsed as they come).
pub struct Reader {
    proc: Proc,
    packets: Arc<Mutex<Vec<Packet>>>,
}

impl Reader {
    /// Starts reading `url` (ffmpeg's warnings go to `log`).
    pub fn start(url: &str, log: &Path) -> anyhow::Result<Self> {
        let mut child = Command::new("ffmpeg")
            .args(["-hide_banner", "-nostdin", "-loglevel", "warning"])
            .args(["-live_start_index", "-3", "-i", url])
            .args(["-map", "0:v:0", "-c", "copy", "-flush_packets", "1"])
            .args(["-f", "framecrc", "-"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log)?)
            .spawn()
            .context("starting ffmpeg (the program reader)")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let packets = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&packets);
        std::thread::spawn(move || {
            let mut timebase = None;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                match super::report::parse_framecrc(&line, &mut timebase) {
                    Some(pts) => {
                        if let Ok(mut p) = sink.lock() {
                            p.push(Packet {
                                at: Instant::now(),
                                pts,
                            });
                        }
                    }
                    None => continue,
                }
            }
        });
        Ok(Self {
            proc: Proc { child },
            packets,
        })
    }

    /// The process id (for its CPU).
    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    /// The packets seen so far.
    pub fn packets(&self) -> Vec<Packet> {
        self.packets.lock().map(|p| p.clone()).unwrap_or_default()
    }
}

/// The peer: ffmpeg decoding the same `files` (looping, at their own rate), scaling them
/// into the same grid, mixing their audio, encoding a 1280×720 30 fps program with the
/// compositor's x264 settings and AAC, into a null sink; `progress` receives its frame
/// counter.
pub fn peer(files: &[PathBuf], progress: &Path) -> anyhow::Result<Proc> {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-nostdin", "-loglevel", "error", "-y"]);
    for f in files {
        cmd.args(["-stream_loop", "-1", "-re", "-i"]).arg(f);
    }
    let graph = super::report::peer_filter(files.len(), 1280, 720, 30);
    cmd.args(["-filter_complex", &graph])
        .args(["-map", "[v]", "-map", "[a]"])
        .args(super::report::PEER_X264)
        .args(["-c:a", "aac", "-b:a", "128k", "-ar", "48000", "-ac", "2"])
        .args(["-progress"])
        .arg(progress)
        .args(["-stats_period", "0.5", "-f", "null", "-"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let child = cmd.spawn().context("starting ffmpeg (the peer)")?;
    Ok(Proc { child })
}

/// The last `frame=` of an ffmpeg `-progress` file (0 before the first report).
pub fn progress_frames(progress: &Path) -> u64 {
    std::fs::read_to_string(progress)
        .unwrap_or_default()
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("frame=")?.trim().parse().ok())
        .unwrap_or(0)
}
