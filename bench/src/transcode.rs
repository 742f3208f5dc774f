//! `weir-bench transcode`: CPU of weir's transcode ladder against the ffmpeg CLI doing
//! the same ladder, in the same run, at the same load (one 1080p30 source in real time).
//!
//! Runs, in this order each round, each on a fresh process:
//!
//! 1. `weir` without a ladder (the baseline: RTMP ingest + LL-HLS packaging of the source);
//! 2. `weir --ladder`, `passthrough_top = false`: 1080p/720p/480p/360p all encoded;
//! 3. `ffmpeg`: one decode, `split`, `scale`, 4 × libx264 at the same settings, null muxer;
//! 4. `weir --ladder`, `passthrough_top = true`: the 1080p source passed through + 3 encoded;
//! 5. `ffmpeg`: the same with the 1080p stream copied.
//!
//! weir gets the source from the bench's own real-time RTMP publisher (exact send times,
//! so the lag of the lowest rendition can be measured: ingest → part downloaded by a
//! client following it with blocking reloads); ffmpeg reads the same FLV with `-re`. CPU
//! is utime + stime of the measured process (all threads: weir's GStreamer threads are in
//! its process) over a window that starts after a warm-up. weir runs with
//! `shed_rungs_when_behind = false`, so that like ffmpeg it always encodes every rung: a
//! run that cannot keep up shows as lag growing, not as less work. See bench/README.md.

use std::fmt::Write as _;
use std::io::BufRead as _;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};

use crate::flv::Media;
use crate::poller::{Object, Timeline};
use crate::publisher::{self, Publish};
use crate::servers::tail;
use crate::stats::{self, Latency};
use crate::weirproc::{Weir, follow};
use crate::{procstat, progress};

/// The ladder of the brief: name, height, kbit/s (top first).
pub const RUNGS: [(&str, u16, u32); 4] = [
    ("1080p", 1080, 6000),
    ("720p", 720, 3000),
    ("480p", 480, 1200),
    ("360p", 360, 700),
];

/// x264enc's default VBV buffer (`vbv-buf-capacity`, ms) with `pass=cbr`: ffmpeg gets
/// `-maxrate` = bitrate and `-bufsize` = this much of it, as GStreamer sets up x264.
const VBV_MS: u32 = 600;

/// Source media time left out at the start of the lag figures (client start-up).
const SKIP_S: f64 = 2.0;

/// Channel published in every weir run.
const CHANNEL: &str = "tc";

/// Settings of a `transcode` run.
#[derive(Debug, Clone)]
pub struct Config {
    /// Short run.
    pub quick: bool,
    /// Measured seconds per run.
    pub secs: f64,
    /// Seconds of publishing before the window starts.
    pub warmup_secs: f64,
    /// Rounds of all runs (figures are means over rounds).
    pub rounds: usize,
    /// Pre-encoded FLV (1080p H.264 + AAC) instead of the generated one.
    pub media: Option<PathBuf>,
    /// Keep the scratch directory (logs).
    pub keep: bool,
    /// Write the results into bench/README.md (default: full runs only).
    pub readme: Option<bool>,
    /// Growth of the lag over the window beyond which a run has not kept real time.
    pub lag_limit_ms: f64,
    /// Before each run, wait until the rest of the machine uses at most this many cores…
    pub quiet_cores: f64,
    /// … for at most this long (0: do not wait).
    pub wait_quiet_secs: f64,
}

impl Config {
    fn parse(args: &[String]) -> anyhow::Result<Self> {
        let quick = args.iter().any(|a| a == "--quick");
        let mut c = Self {
            quick,
            secs: if quick { 8.0 } else { 20.0 },
            warmup_secs: if quick { 5.0 } else { 6.0 },
            rounds: if quick { 1 } else { 2 },
            media: None,
            keep: false,
            readme: None,
            lag_limit_ms: 500.0,
            quiet_cores: 0.3,
            wait_quiet_secs: if quick { 30.0 } else { 600.0 },
        };
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
            match flag.as_str() {
                "--quick" => {}
                "--keep" => c.keep = true,
                "--readme" => c.readme = Some(true),
                "--no-readme" => c.readme = Some(false),
                "--secs" => c.secs = value()?.parse()?,
                "--warmup-secs" => c.warmup_secs = value()?.parse()?,
                "--rounds" => c.rounds = value()?.parse()?,
                "--media" => c.media = Some(PathBuf::from(value()?)),
                "--lag-limit-ms" => c.lag_limit_ms = value()?.parse()?,
                "--quiet-cores" => c.quiet_cores = value()?.parse()?,
                "--wait-quiet-secs" => c.wait_quiet_secs = value()?.parse()?,
                other => bail!("unknown flag {other} (see the top of bench/src/main.rs)"),
            }
        }
        ensure!(c.secs >= 4.0, "--secs must be ≥ 4");
        ensure!(c.warmup_secs >= 3.0, "--warmup-secs must be ≥ 3");
        ensure!(c.rounds >= 1, "--rounds must be ≥ 1");
        Ok(c)
    }
}

/// What one run measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunKind {
    /// weir, no ladder.
    WeirBase,
    /// weir, 4 rungs encoded.
    WeirLadder,
    /// weir, 1080p passed through + 3 encoded.
    WeirPassthrough,
    /// ffmpeg, 4 rungs encoded.
    Ffmpeg,
    /// ffmpeg, 1080p copied + 3 encoded.
    FfmpegPassthrough,
}

impl RunKind {
    fn label(self) -> &'static str {
        match self {
            Self::WeirBase => "weir, no ladder (baseline)",
            Self::WeirLadder => "weir ladder, 4 encoded",
            Self::WeirPassthrough => "weir ladder, 1080p passthrough + 3 encoded",
            Self::Ffmpeg => "ffmpeg, 4 encoded",
            Self::FfmpegPassthrough => "ffmpeg, 1080p copy + 3 encoded",
        }
    }

    fn is_weir(self) -> bool {
        matches!(
            self,
            Self::WeirBase | Self::WeirLadder | Self::WeirPassthrough
        )
    }
}

/// One measured run.
#[derive(Debug, Clone)]
pub struct Run {
    /// What ran.
    pub kind: RunKind,
    /// Round (0-based).
    pub round: usize,
    /// CPU of the measured process over the window, in cores.
    pub cores: f64,
    /// This benchmark's own CPU (publisher, follower) over the window.
    pub bench_cores: f64,
    /// Busy CPU of the whole machine over the window, in cores.
    pub machine_cores: f64,
    /// weir: ingest → available of the lowest rendition (the source without a ladder).
    pub lag: Option<Latency>,
    /// Median lag over the first and the last quarter of the window, ms (weir: per
    /// frame as above; ffmpeg: wall clock since start − its output time).
    pub lag_early_ms: f64,
    /// See `lag_early_ms`.
    pub lag_late_ms: f64,
    /// Media seconds made available per wall second over the window.
    pub rate: f64,
    /// weir: `weir_ladder_overloads_total` (rungs dropped) at the end.
    pub overloads: u64,
    /// weir: `weir_ladder_input_dropped_total` at the end.
    pub input_dropped: u64,
    /// weir: WARN lines of its log about the ladder.
    pub warnings: Vec<String>,
    /// weir: worst publisher lateness against real time.
    pub publisher_lag_ms: f64,
    /// What went wrong, if anything.
    pub error: Option<String>,
}

impl Run {
    fn new(kind: RunKind) -> Self {
        Self {
            kind,
            round: 0,
            cores: f64::NAN,
            bench_cores: f64::NAN,
            machine_cores: f64::NAN,
            lag: None,
            lag_early_ms: f64::NAN,
            lag_late_ms: f64::NAN,
            rate: f64::NAN,
            overloads: 0,
            input_dropped: 0,
            warnings: Vec::new(),
            publisher_lag_ms: 0.0,
            error: None,
        }
    }

    /// Kept real time: the lag did not grow by more than the limit over the window, the
    /// media advanced at ≥ 97 % of real time, and weir dropped no rung.
    pub fn real_time(&self, limit_ms: f64) -> bool {
        self.error.is_none()
            && self.lag_late_ms - self.lag_early_ms <= limit_ms
            && self.rate >= 0.97
            && self.overloads == 0
            && self.input_dropped == 0
            && self.publisher_lag_ms <= limit_ms
    }

    /// Others' CPU on the machine during the window (busy − measured − bench).
    pub fn others_cores(&self) -> f64 {
        (self.machine_cores - self.cores - self.bench_cores).max(0.0)
    }

    /// CPU per second of media processed (cores / media s per s): what a run that fell
    /// behind would have needed to keep up, to a first approximation.
    pub fn cores_per_media_s(&self) -> f64 {
        if self.rate > 0.0 {
            self.cores / self.rate
        } else {
            f64::NAN
        }
    }

    /// Kept real time with the rest of the machine nearly idle (others ≤ quiet + 0.2 cores).
    pub fn clean(&self, cfg: &Config) -> bool {
        self.real_time(cfg.lag_limit_ms) && self.others_cores() <= cfg.quiet_cores + 0.2
    }
}

/// Busy and total jiffies of all CPUs (`/proc/stat`).
fn machine_ticks() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = text.lines().find(|l| l.starts_with("cpu ")) else {
        return (0, 0);
    };
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest is inside user).
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    (total.saturating_sub(idle), total)
}

fn cpus() -> f64 {
    std::thread::available_parallelism().map_or(1, |n| n.get()) as f64
}

/// CPU counters at one instant.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    process: f64,
    bench: f64,
    machine: (u64, u64),
}

impl Sample {
    fn take(pid: u32) -> anyhow::Result<Self> {
        Ok(Self {
            at: Instant::now(),
            process: procstat::cpu_secs(pid)?,
            bench: procstat::cpu_secs(std::process::id())?,
            machine: machine_ticks(),
        })
    }

    /// (process, bench, machine) cores from `self` to `later`.
    fn cores(&self, later: &Self) -> (f64, f64, f64) {
        let secs = later.at.duration_since(self.at).as_secs_f64().max(1e-3);
        let (busy, total) = (
            later.machine.0.saturating_sub(self.machine.0),
            later.machine.1.saturating_sub(self.machine.1),
        );
        let machine = if total == 0 {
            f64::NAN
        } else {
            busy as f64 / total as f64 * cpus()
        };
        (
            (later.process - self.process) / secs,
            (later.bench - self.bench) / secs,
            machine,
        )
    }
}

/// The machine is shared (builds of other work): waits, up to `--wait-quiet-secs`, until
/// the CPU used by everything but this bench stays at or under `--quiet-cores` for 2 s.
fn wait_quiet(cfg: &Config) {
    let deadline = Instant::now() + Duration::from_secs_f64(cfg.wait_quiet_secs);
    let mut said = false;
    loop {
        let (b0, m0) = (
            procstat::cpu_secs(std::process::id()).unwrap_or(0.0),
            machine_ticks(),
        );
        std::thread::sleep(Duration::from_secs(2));
        let (b1, m1) = (
            procstat::cpu_secs(std::process::id()).unwrap_or(0.0),
            machine_ticks(),
        );
        let total = m1.1.saturating_sub(m0.1).max(1) as f64;
        let busy = m1.0.saturating_sub(m0.0) as f64 / total * cpus();
        let others = (busy - (b1 - b0) / 2.0).max(0.0);
        if others <= cfg.quiet_cores {
            if said {
                progress!("  the machine is quiet ({others:.2} cores used by others)");
            }
            return;
        }
        if Instant::now() >= deadline {
            if cfg.wait_quiet_secs > 0.0 {
                progress!(
                    "  still {others:.2} cores used by others after {:.0} s: running anyway",
                    cfg.wait_quiet_secs
                );
            }
            return;
        }
        if !said {
            progress!(
                "  waiting for the machine to be quiet: {others:.2} cores used by others (≤ {:.2} wanted)",
                cfg.quiet_cores
            );
            said = true;
        }
    }
}

/// Where the cached test media lives (next to the build output, as `live`'s).
fn cache_dir() -> PathBuf {
    std::env::var_os("WEIR_BENCH_CACHE")
        .map(PathBuf::from)
        .or_else(|| {
            let exe = std::env::current_exe().ok()?;
            Some(exe.parent()?.parent()?.join("weir-bench-cache"))
        })
        .unwrap_or_else(|| std::env::temp_dir().join("weir-bench-cache"))
}

/// Encodes the 1080p30 source once: testsrc2 (moving), x264 veryfast ~6 Mbit/s, 2 B-frames
/// (as OBS sends), fixed 2 s GOP, AAC 128k stereo; 20 s.
fn source_media(cfg: &Config) -> anyhow::Result<PathBuf> {
    if let Some(p) = &cfg.media {
        return Ok(p.clone());
    }
    let cache = cache_dir();
    std::fs::create_dir_all(&cache)?;
    let path = cache.join("testsrc2-1080p30-x264-6000k-bf2-aac-20s.flv");
    if path.exists() {
        return Ok(path);
    }
    progress!(
        "encoding the 1080p30 source with ffmpeg → {} (once)",
        path.display()
    );
    let tmp = cache.join("encoding-1080p.flv");
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=30"])
        .args([
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000",
            "-t",
            "20",
        ])
        .args([
            "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-bf", "2",
        ])
        .args([
            "-b:v",
            "6000k",
            "-maxrate",
            "6000k",
            "-bufsize",
            "12000k",
            "-g",
            "60",
            "-keyint_min",
            "60",
            "-sc_threshold",
            "0",
        ])
        .args(["-c:a", "aac", "-b:a", "128k", "-ac", "2", "-f", "flv"])
        .arg(&tmp)
        .stdin(Stdio::null())
        .status()
        .context("running ffmpeg (install it: cargo xtask setup --test)")?;
    ensure!(status.success(), "ffmpeg failed: {status}");
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

/// The config file of a weir ladder run.
fn ladder_toml(passthrough_top: bool) -> String {
    let mut t = format!(
        "[node.ladder]\nenabled = true\npassthrough_top = {passthrough_top}\nencoder = \"x264\"\n\
         shed_rungs_when_behind = false\n"
    );
    for (name, height, kbps) in RUNGS {
        let _ = write!(
            t,
            "\n[[node.ladder.rungs]]\nname = \"{name}\"\nheight = {height}\nvideo_kbps = {kbps}\n"
        );
    }
    t
}

/// ffmpeg's arguments for the ladder: one decode, `split`, bilinear `scale` (GStreamer's
/// default), libx264 veryfast zerolatency, no B-frames, scene-cut off, keyframes at the
/// source's (as weir's x264enc rungs), CBR-style VBV, audio copied, null muxer, `-re`
/// input looped for `secs`. With `passthrough_top`, the top rung is the source copied.
pub fn ffmpeg_ladder_args(source: &Path, secs: f64, passthrough_top: bool) -> Vec<String> {
    let mut a: Vec<String> = [
        "-hide_banner",
        "-nostdin",
        "-loglevel",
        "error",
        "-progress",
        "pipe:1",
        "-stats_period",
        "0.25",
        "-re",
        "-stream_loop",
        "-1",
        "-i",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    a.push(source.display().to_string());
    a.extend(["-t".to_owned(), format!("{secs:.1}")]);
    let encoded: &[(&str, u16, u32)] = if passthrough_top { &RUNGS[1..] } else { &RUNGS };
    let mut graph = format!("[0:v]split={}", encoded.len());
    for (name, ..) in encoded {
        let _ = write!(graph, "[s{name}]");
    }
    for (i, (name, height, _)) in encoded.iter().enumerate() {
        if i == 0 && !passthrough_top {
            // The top rung is at the source's height: no scaler (weir's is a no-op there).
            let _ = write!(graph, ";[s{name}]null[v{name}]");
        } else {
            let _ = write!(graph, ";[s{name}]scale=-2:{height}:flags=bilinear[v{name}]");
        }
    }
    a.extend(["-filter_complex".to_owned(), graph]);
    let mut out = 0;
    if passthrough_top {
        a.extend(["-map".into(), "0:v".into(), "-c:v:0".into(), "copy".into()]);
        out = 1;
    }
    for (name, _, kbps) in encoded {
        let s = format!("v:{out}");
        a.extend(["-map".to_owned(), format!("[v{name}]")]);
        a.extend([format!("-c:{s}"), "libx264".into()]);
        a.extend([format!("-preset:{s}"), "veryfast".into()]);
        a.extend([format!("-tune:{s}"), "zerolatency".into()]);
        a.extend([format!("-bf:{s}"), "0".into()]);
        a.extend([format!("-sc_threshold:{s}"), "0".into()]);
        a.extend([format!("-force_key_frames:{s}"), "source".into()]);
        a.extend([format!("-b:{s}"), format!("{kbps}k")]);
        a.extend([format!("-maxrate:{s}"), format!("{kbps}k")]);
        a.extend([
            format!("-bufsize:{s}"),
            format!("{}k", kbps * VBV_MS / 1000),
        ]);
        out += 1;
    }
    a.extend(
        ["-map", "0:a", "-c:a", "copy", "-f", "null", "-"]
            .iter()
            .map(|s| (*s).to_owned()),
    );
    a
}

/// Sleeps until `at`.
pub fn sleep_until(at: Instant) {
    if let Some(d) = at.checked_duration_since(Instant::now()) {
        std::thread::sleep(d);
    }
}

/// Median of the lag of frames sent within `[from, to)`.
fn lag_between(sends: &[(f64, Instant)], objects: &[Object], from: Instant, to: Instant) -> f64 {
    let part: Vec<(f64, Instant)> = sends
        .iter()
        .copied()
        .filter(|&(m, at)| m >= SKIP_S && at >= from && at < to)
        .collect();
    stats::latency(&part, objects, 0.0).map_or(f64::NAN, |l| l.p50)
}

/// One weir run: publish for warm-up + window + 1 s, follow the lowest rendition.
fn weir_run(
    kind: RunKind,
    bin: &Path,
    work: &Path,
    media: &Arc<Media>,
    cfg: &Config,
    round: usize,
) -> anyhow::Result<Run> {
    let (tag, config, variant) = match kind {
        RunKind::WeirBase => ("base", None, None),
        RunKind::WeirLadder => ("ladder", Some(ladder_toml(false)), Some("/360p/")),
        RunKind::WeirPassthrough => ("passthrough", Some(ladder_toml(true)), Some("/360p/")),
        _ => bail!("not a weir run"),
    };
    let tag = format!("{tag}-r{round}");
    let weir = Weir::start(bin, work, &tag, config.as_deref(), &[])?;
    let key = weir.key(CHANNEL)?;
    let stop = Arc::new(AtomicBool::new(false));
    let timeline = Timeline::default();
    let follower = {
        let (stop, timeline, http) = (stop.clone(), timeline.clone(), weir.http);
        let path = format!("/live/{CHANNEL}/index.m3u8");
        std::thread::spawn(move || follow(http, &path, variant, &stop, &timeline))
    };
    let start_at = Instant::now() + Duration::from_millis(200);
    let publish = Publish {
        rtmp: weir.rtmp,
        app: "live".into(),
        stream_name: key,
        start_at,
        duration: Duration::from_secs_f64(cfg.warmup_secs + cfg.secs + 1.0),
        stop: stop.clone(),
    };
    let publisher = {
        let media = media.clone();
        std::thread::spawn(move || publisher::run(&publish, &media))
    };
    let w0 = start_at + Duration::from_secs_f64(cfg.warmup_secs);
    let w1 = w0 + Duration::from_secs_f64(cfg.secs);
    sleep_until(w0);
    let pid = weir.child.id();
    let s0 = Sample::take(pid)?;
    sleep_until(w1);
    let s1 = Sample::take(pid)?;
    let mut run = Run::new(kind);
    (run.cores, run.bench_cores, run.machine_cores) = s0.cores(&s1);
    let report = publisher
        .join()
        .map_err(|_| anyhow::anyhow!("publisher panicked"))?;
    // The follower gets a moment for the last parts, then is left to end by itself.
    std::thread::sleep(Duration::from_millis(1500));
    stop.store(true, Ordering::Relaxed);
    if follower.is_finished()
        && let Ok(Err(e)) = follower.join()
    {
        run.error.get_or_insert(format!("follower: {e:#}"));
    }
    run.overloads = weir.counter("weir_ladder_overloads_total");
    run.input_dropped = weir.counter("weir_ladder_input_dropped_total");
    let failures = weir.counter("weir_ladder_failures_total");
    run.warnings = weir.warnings();
    if failures > 0 {
        run.error
            .get_or_insert(format!("{failures} ladder failure(s): {}", tail(&weir.log)));
    }
    weir.stop();
    let report = match report {
        Ok(r) => r,
        Err(e) => {
            run.error.get_or_insert(format!("publisher: {e:#}"));
            return Ok(run);
        }
    };
    run.publisher_lag_ms = report.max_lag.as_secs_f64() * 1000.0;
    let objects = timeline
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .clone();
    match stats::latency(&report.sends, &objects, SKIP_S) {
        Ok(l) => run.lag = Some(l),
        Err(e) => {
            run.error.get_or_insert(format!("lag: {e:#}"));
        }
    }
    let q = Duration::from_secs_f64(cfg.secs / 4.0);
    run.lag_early_ms = lag_between(&report.sends, &objects, w0, w0 + q);
    run.lag_late_ms = lag_between(&report.sends, &objects, w1 - q, w1);
    let media_s: f64 = objects
        .iter()
        .filter(|o| o.done >= w0 && o.done < w1)
        .map(|o| o.duration)
        .sum();
    run.rate = media_s / cfg.secs;
    Ok(run)
}

/// One ffmpeg run: its CPU over the window and its output time against the wall clock.
fn ffmpeg_run(kind: RunKind, source: &Path, work: &Path, cfg: &Config) -> anyhow::Result<Run> {
    let passthrough = kind == RunKind::FfmpegPassthrough;
    let total = cfg.warmup_secs + cfg.secs + 1.0;
    let args = ffmpeg_ladder_args(source, total, passthrough);
    let log = work.join(format!(
        "ffmpeg-{}.log",
        if passthrough { "passthrough" } else { "ladder" }
    ));
    let started = Instant::now();
    let mut child = Command::new("ffmpeg")
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log)?)
        .spawn()
        .context("starting ffmpeg")?;
    let stdout = child.stdout.take().context("no stdout")?;
    // (wall, ffmpeg's output time in s) from its -progress lines.
    let progress: Arc<Mutex<Vec<(Instant, f64)>>> = Arc::default();
    let reader = {
        let progress = progress.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(us) = line
                    .strip_prefix("out_time_us=")
                    .and_then(|v| v.trim().parse::<i64>().ok())
                    && let Ok(mut p) = progress.lock()
                {
                    p.push((Instant::now(), us.max(0) as f64 / 1e6));
                }
            }
        })
    };
    let w0 = started + Duration::from_secs_f64(cfg.warmup_secs);
    let w1 = w0 + Duration::from_secs_f64(cfg.secs);
    sleep_until(w0);
    let pid = child.id();
    let mut run = Run::new(kind);
    let s0 = Sample::take(pid);
    sleep_until(w1);
    let s1 = Sample::take(pid);
    match (s0, s1) {
        (Ok(s0), Ok(s1)) => (run.cores, run.bench_cores, run.machine_cores) = s0.cores(&s1),
        _ => run.error = Some(format!("ffmpeg exited early: {}", tail(&log))),
    }
    let status = child.wait()?;
    let _ = reader.join();
    if !status.success() && run.error.is_none() {
        run.error = Some(format!("ffmpeg failed ({status}): {}", tail(&log)));
    }
    let p = progress.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
    let lag = |from: Instant, to: Instant| {
        let mut v: Vec<f64> = p
            .iter()
            .filter(|(at, _)| *at >= from && *at < to)
            .map(|(at, out)| (at.duration_since(started).as_secs_f64() - out) * 1000.0)
            .collect();
        v.sort_by(f64::total_cmp);
        stats::percentile(&v, 50.0)
    };
    let q = Duration::from_secs_f64(cfg.secs / 4.0);
    run.lag_early_ms = lag(w0, w0 + q);
    run.lag_late_ms = lag(w1 - q, w1);
    let inside: Vec<&(Instant, f64)> = p.iter().filter(|(at, _)| *at >= w0 && *at < w1).collect();
    if let (Some(a), Some(b)) = (inside.first(), inside.last())
        && b.0 > a.0
    {
        run.rate = (b.1 - a.1) / b.0.duration_since(a.0).as_secs_f64();
    }
    Ok(run)
}

fn describe(run: &Run, cfg: &Config) -> String {
    let mut s = format!(
        "{}: {:.2} cores (bench {:.2}, others {:.2}); lag {:.0} → {:.0} ms, {:.3} s/s",
        run.kind.label(),
        run.cores,
        run.bench_cores,
        run.others_cores(),
        run.lag_early_ms,
        run.lag_late_ms,
        run.rate
    );
    if let Some(l) = &run.lag {
        let _ = write!(
            s,
            "; ingest → available p50 {:.0} / p95 {:.0} / max {:.0} ms",
            l.p50, l.p95, l.max
        );
    }
    if run.kind.is_weir() && run.kind != RunKind::WeirBase {
        let _ = write!(
            s,
            "; overloads {}, input dropped {}",
            run.overloads, run.input_dropped
        );
    }
    let _ = write!(
        s,
        " → {}",
        if run.real_time(cfg.lag_limit_ms) {
            "real time"
        } else {
            "NOT real time"
        }
    );
    if let Some(e) = &run.error {
        let _ = write!(s, "; error: {e}");
    }
    s
}

const ORDER: [RunKind; 5] = [
    RunKind::WeirBase,
    RunKind::WeirLadder,
    RunKind::Ffmpeg,
    RunKind::WeirPassthrough,
    RunKind::FfmpegPassthrough,
];

fn mean(v: impl Iterator<Item = f64>) -> f64 {
    let v: Vec<f64> = v.filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        f64::NAN
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

fn spread(runs: &[&Run]) -> String {
    let v: Vec<f64> = runs
        .iter()
        .map(|r| r.cores)
        .filter(|x| x.is_finite())
        .collect();
    if v.len() < 2 {
        return String::new();
    }
    let (lo, hi) = v
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
            (a.min(x), b.max(x))
        });
    format!(" ({lo:.2}–{hi:.2})")
}

/// The result tables (markdown).
pub fn tables(runs: &[Run], cfg: &Config) -> String {
    let of = |k: RunKind| runs.iter().filter(|r| r.kind == k).collect::<Vec<_>>();
    let cores = |k: RunKind| mean(of(k).iter().map(|r| r.cores));
    let base = cores(RunKind::WeirBase);
    let mut t = String::new();
    t.push_str(
        "| run | CPU (cores) | net of baseline | lag early → late (ms) | media s/s | \
         360p ingest → available p50 / p95 / max (ms) | others' CPU | real time |\n\
         |---|---:|---:|---:|---:|---:|---:|---|\n",
    );
    for k in ORDER {
        let rs = of(k);
        if rs.is_empty() {
            continue;
        }
        let c = cores(k);
        let net = if k.is_weir() && k != RunKind::WeirBase {
            format!("{:.2}", c - base)
        } else {
            String::new()
        };
        let lag = {
            let ls: Vec<&Latency> = rs.iter().filter_map(|r| r.lag.as_ref()).collect();
            if ls.is_empty() {
                String::new()
            } else {
                format!(
                    "{:.0} / {:.0} / {:.0}",
                    mean(ls.iter().map(|l| l.p50)),
                    mean(ls.iter().map(|l| l.p95)),
                    ls.iter().map(|l| l.max).fold(f64::NAN, f64::max)
                )
            }
        };
        let _ = writeln!(
            t,
            "| {}{} | {c:.2}{} | {net} | {:.0} → {:.0} | {:.3} | {lag} | {:.2} | {} |",
            k.label(),
            if k == RunKind::WeirBase {
                " (source only)"
            } else {
                ""
            },
            spread(&rs),
            mean(rs.iter().map(|r| r.lag_early_ms)),
            mean(rs.iter().map(|r| r.lag_late_ms)),
            mean(rs.iter().map(|r| r.rate)),
            mean(rs.iter().map(|r| r.others_cores())),
            if rs.iter().all(|r| r.real_time(cfg.lag_limit_ms)) {
                "yes"
            } else {
                "**no**"
            }
        );
    }
    t.push_str(
        "\nEvery run (CPU per media s = cores ÷ media s per s; clean = real time with others ≤ \
         quiet + 0.2 cores):\n\n\
         | round | run | CPU (cores) | CPU per media s | others' CPU | lag early → late (ms) | \
         media s/s | real time | clean |\n|---:|---|---:|---:|---:|---:|---:|---|---|\n",
    );
    for r in runs {
        let _ = writeln!(
            t,
            "| {} | {} | {:.2} | {:.2} | {:.2} | {:.0} → {:.0} | {:.3} | {} | {} |",
            r.round + 1,
            r.kind.label(),
            r.cores,
            r.cores_per_media_s(),
            r.others_cores(),
            r.lag_early_ms,
            r.lag_late_ms,
            r.rate,
            if r.real_time(cfg.lag_limit_ms) {
                "yes"
            } else {
                "no"
            },
            if r.clean(cfg) { "yes" } else { "no" }
        );
    }
    t.push_str(
        "\n| ladder | basis | weir net (cores) | weir gross | ffmpeg | ffmpeg / weir net | \
         ffmpeg / weir gross |\n|---|---|---:|---:|---:|---:|---:|\n",
    );
    for (name, w, f) in [
        (
            "1080/720/480/360 all encoded",
            RunKind::WeirLadder,
            RunKind::Ffmpeg,
        ),
        (
            "1080 passthrough + 720/480/360",
            RunKind::WeirPassthrough,
            RunKind::FfmpegPassthrough,
        ),
    ] {
        let clean = |k: RunKind| {
            of(k)
                .into_iter()
                .filter(|r| r.clean(cfg))
                .collect::<Vec<_>>()
        };
        let (cw, cf) = (clean(w), clean(f));
        let (ws, fs, basis) = if !cw.is_empty() && !cf.is_empty() {
            let basis = format!("clean runs ({} weir, {} ffmpeg)", cw.len(), cf.len());
            (cw, cf, basis)
        } else {
            (
                of(w),
                of(f),
                "all runs, per media s (**contended**: no clean pair)".to_owned(),
            )
        };
        let wg = mean(ws.iter().map(|r| r.cores_per_media_s()));
        let fc = mean(fs.iter().map(|r| r.cores_per_media_s()));
        let wn = wg - base;
        let _ = writeln!(
            t,
            "| {name} | {basis} | {wn:.2} | {wg:.2} | {fc:.2} | {:.2}× | {:.2}× |",
            fc / wn,
            fc / wg
        );
    }
    t
}

/// Notes under the tables: warnings seen, errors.
fn notes(runs: &[Run]) -> String {
    let mut s = String::new();
    for r in runs {
        if let Some(e) = &r.error {
            let _ = writeln!(s, "- {}: error: {e}", r.kind.label());
        }
        if r.overloads > 0 || r.input_dropped > 0 {
            let _ = writeln!(
                s,
                "- {}: {} overload(s) (rungs dropped), {} input frames dropped: its CPU \
                 figure understates a full ladder",
                r.kind.label(),
                r.overloads,
                r.input_dropped
            );
        }
        for w in r.warnings.iter().take(3) {
            let _ = writeln!(s, "- {}: log: `{}`", r.kind.label(), w.trim());
        }
    }
    s
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

const README_BEGIN: &str = "<!-- transcode-results:begin (written by weir-bench transcode) -->";
const README_END: &str = "<!-- transcode-results:end -->";

/// `weir-bench transcode [--quick] [--secs S] [--warmup-secs S] [--rounds N] [--media FILE]
/// [--lag-limit-ms MS] [--quiet-cores C] [--wait-quiet-secs S] [--keep] [--readme | --no-readme]`.
pub fn run(args: &[String]) -> anyhow::Result<()> {
    let cfg = Config::parse(args)?;
    let source = source_media(&cfg)?;
    let weir_bin = std::env::var_os("WEIR_BIN")
        .map(PathBuf::from)
        .or_else(|| Some(std::env::current_exe().ok()?.parent()?.join("weir")))
        .context("set WEIR_BIN to the weir binary")?;
    ensure!(
        weir_bin.exists(),
        "{} does not exist: build weir or set WEIR_BIN",
        weir_bin.display()
    );
    let media = Arc::new(Media::load(&source)?);
    let load_before = loadavg();
    progress!(
        "{} transcode run: source {} ({:.0} kbit/s, {:.1} s a loop); {} round(s) of 5 runs, \
         {:.0} s warm-up + {:.0} s measured each; servers not pinned ({} CPUs); load {load_before}",
        if cfg.quick { "quick" } else { "full" },
        source.display(),
        media.bitrate() as f64 / 1000.0,
        f64::from(media.loop_ms) / 1000.0,
        cfg.rounds,
        cfg.warmup_secs,
        cfg.secs,
        cpus(),
    );
    let work = std::env::temp_dir().join(format!("weir-bench-transcode-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let mut runs = Vec::new();
    let outcome = (|| -> anyhow::Result<()> {
        for round in 0..cfg.rounds {
            for kind in ORDER {
                wait_quiet(&cfg);
                progress!("round {}/{}: {} …", round + 1, cfg.rounds, kind.label());
                let mut run = if kind.is_weir() {
                    weir_run(kind, &weir_bin, &work, &media, &cfg, round)?
                } else {
                    ffmpeg_run(kind, &source, &work, &cfg)?
                };
                run.round = round;
                progress!("  {}", describe(&run, &cfg));
                runs.push(run);
                std::thread::sleep(Duration::from_secs(2));
            }
        }
        Ok(())
    })();
    if cfg.keep || outcome.is_err() {
        progress!("scratch directory (logs) kept: {}", work.display());
    } else {
        let _ = std::fs::remove_dir_all(&work);
    }
    outcome?;
    let load_after = loadavg();
    let machine = crate::report::machine();
    let tables = tables(&runs, &cfg);
    let notes = notes(&runs);
    println!(
        "\nweir-bench transcode ({}) — {machine}; load average {load_before} before, {load_after} after\n",
        if cfg.quick { "quick" } else { "full" }
    );
    println!("{tables}\n{notes}");
    if cfg.readme.unwrap_or(!cfg.quick) {
        let readme = crate::bench_dir().join("README.md");
        let text = std::fs::read_to_string(&readme)?;
        let block = format!(
            "{README_BEGIN}\n`cargo xtask bench transcode`{} — {machine}; {} round(s), {:.0} s measured \
             after {:.0} s of warm-up per run; load average (1/5/15 min) {load_before} before, \
             {load_after} after.\n\n{tables}\n{notes}{README_END}",
            if cfg.quick { " --quick" } else { "" },
            cfg.rounds,
            cfg.secs,
            cfg.warmup_secs,
        );
        match (text.find(README_BEGIN), text.find(README_END)) {
            (Some(a), Some(b)) if a < b => {
                let new = format!("{}{block}{}", &text[..a], &text[b + README_END.len()..]);
                std::fs::write(&readme, new)?;
                progress!("results written to {}", readme.display());
            }
            _ => progress!(
                "{} has no transcode-results markers: results not written",
                readme.display()
            ),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ffmpeg_args_build_the_same_ladder() {
        let a = ffmpeg_ladder_args(Path::new("/s.flv"), 10.0, false).join(" ");
        assert!(a.contains(
            "[0:v]split=4[s1080p][s720p][s480p][s360p];[s1080p]null[v1080p];\
             [s720p]scale=-2:720:flags=bilinear[v720p]"
        ));
        assert!(a.contains("-b:v:0 6000k -maxrate:v:0 6000k -bufsize:v:0 3600k"));
        assert!(a.contains("-b:v:3 700k"));
        assert!(a.contains("-force_key_frames:v:2 source"));
        assert!(a.contains("-re -stream_loop -1 -i /s.flv -t 10.0"));
        let p = ffmpeg_ladder_args(Path::new("/s.flv"), 10.0, true).join(" ");
        assert!(p.contains("[0:v]split=3[s720p][s480p][s360p];[s720p]scale=-2:720"));
        assert!(p.contains("-map 0:v -c:v:0 copy -map [v720p] -c:v:1 libx264"));
        assert!(p.contains("-b:v:3 700k"));
        assert!(!p.contains("6000k"));
    }

    #[test]
    fn ladder_toml_parses_as_the_rungs() {
        let t = ladder_toml(false);
        assert!(t.starts_with("[node.ladder]\nenabled = true\npassthrough_top = false\n"));
        assert_eq!(t.matches("[[node.ladder.rungs]]").count(), 4);
        assert!(t.contains("name = \"360p\"\nheight = 360\nvideo_kbps = 700\n"));
    }

    #[test]
    fn real_time_needs_a_flat_lag() {
        let mut r = Run::new(RunKind::Ffmpeg);
        r.lag_early_ms = 100.0;
        r.lag_late_ms = 300.0;
        r.rate = 1.0;
        assert!(r.real_time(500.0));
        r.lag_late_ms = 900.0;
        assert!(!r.real_time(500.0));
        r.lag_late_ms = 300.0;
        r.overloads = 1;
        assert!(!r.real_time(500.0));
    }
}
