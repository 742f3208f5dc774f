//! `weir-bench`: load generators and benchmark scenarios for weir, run side by side
//! with a peer server (nginx-rtmp). See bench/README.md for the method.
//!
//! ```text
//! weir-bench live [--quick] [--only latency,egress,publishers] [--latency-secs S]
//!                 [--viewers 200,500,1000] [--viewer-secs S] [--publishers-max K] [--ramp K1,K2,…]
//!                 [--step-secs S] [--part-target-ms MS] [--window-segments N] [--nginx-poll-ms MS]
//!                 [--viewer-poll-ms MS] [--lag-limit-ms MS] [--no-pin]
//!                 [--readme | --no-readme] [--media FILE] [--keep] [--servers weir,nginx]
//! weir-bench transcode [--quick] [--secs S] [--warmup-secs S] [--rounds N] [--media FILE]
//!                      [--lag-limit-ms MS] [--quiet-cores C] [--wait-quiet-secs S]
//!                      [--keep] [--readme | --no-readme]
//! weir-bench srt [--quick] [--secs S] [--loss 0,1,5] [--latency-ms MS] [--delay-ms MS]
//!                [--media FILE.ts] [--keep] [--readme | --no-readme]
//! weir-bench outputs [--quick] [--secs S] [--destinations 1,4,16,32] [--media FILE]
//!                    [--readme | --no-readme]
//! weir-bench chat [--quick] [--scenarios room,rooms,room-redis,rooms-redis] [--connections N]
//!                 [--rooms R] [--writers W] [--users U] [--deliveries D1,D2,…] [--step-secs S]
//!                 [--readme | --no-readme]
//! weir-bench studio [--quick] [--guests 2,4,9] [--secs S] [--idle-secs S] [--settle-secs S]
//!                   [--keep] [--readme | --no-readme]
//! weir-bench abuse [--quick] [--readme | --no-readme]
//! weir-bench sfu [--quick] [--subscribers 50,100,200,…] [--secs S] [--settle-secs S]
//!               [--servers weir,janus] [--janus-event-loops N] [--no-pin] [--keep]
//!               [--readme | --no-readme]
//! ```

mod abuse;
mod api;
mod chat;
mod egress;
mod flv;
mod http;
mod live;
mod media;
mod outputs;
mod playlist;
mod poller;
mod procstat;
mod publisher;
mod report;
mod servers;
mod sfu;
mod srt;
mod stats;
mod studio;
mod transcode;
mod viewers;
mod weirproc;

use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use anyhow::{Context as _, bail, ensure};

use crate::flv::Media;
use crate::servers::Setup;

/// When the run started (for progress lines).
fn started() -> Instant {
    static START: OnceLock<Instant> = OnceLock::new();
    *START.get_or_init(Instant::now)
}

/// Prints a progress line to stderr with the seconds since the start.
#[macro_export]
macro_rules! progress {
    ($($arg:tt)*) => {
        eprintln!("[{:>6.1}s] {}", $crate::started().elapsed().as_secs_f64(), format_args!($($arg)*))
    };
}

/// Sleeps until `at` (at once when it has passed).
pub fn sleep_until(at: Instant) {
    if let Some(d) = at.checked_duration_since(Instant::now()) {
        std::thread::sleep(d);
    }
}

/// Settings of a `live` run.
#[derive(Debug, Clone)]
pub struct Config {
    /// Short run (about 3 minutes).
    pub quick: bool,
    /// Scenarios to run: latency, egress, publishers.
    pub only: Vec<String>,
    /// Seconds of publishing for the latency scenario.
    pub latency_secs: f64,
    /// Viewer counts of the egress scenario.
    pub viewers: Vec<usize>,
    /// Measured seconds per viewer count.
    pub viewer_secs: f64,
    /// Largest publisher count of the ramp.
    pub publishers_max: usize,
    /// Explicit publisher counts to run instead of the ramp (`--ramp 512,768`).
    pub ramp: Option<Vec<usize>>,
    /// Seconds per ramp step.
    pub step_secs: f64,
    /// weir's LL-HLS part target.
    pub part_target_ms: u64,
    /// Segments in weir's sliding window.
    pub window_segments: usize,
    /// Playlist poll interval of the nginx-rtmp latency poller.
    pub nginx_poll_ms: u64,
    /// Playlist poll interval of the nginx-rtmp egress viewers.
    pub viewer_poll_ms: u64,
    /// A publisher later than this against real time has fallen behind.
    pub lag_limit_ms: u64,
    /// Pin servers to CPU 0 and the bench to the other CPUs.
    pub pin: bool,
    /// Write the results into bench/README.md (default: full runs only).
    pub readme: Option<bool>,
    /// Pre-encoded FLV to use instead of the generated one.
    pub media: Option<PathBuf>,
    /// Keep the scratch directory.
    pub keep: bool,
    /// Servers to measure (default both).
    pub servers: Vec<servers::Kind>,
}

impl Config {
    fn parse(args: &[String]) -> anyhow::Result<Self> {
        let quick = args.iter().any(|a| a == "--quick");
        let mut c = Self {
            quick,
            only: vec!["latency".into(), "egress".into(), "publishers".into()],
            latency_secs: if quick { 12.0 } else { 45.0 },
            viewers: if quick {
                vec![200]
            } else {
                vec![200, 500, 1000]
            },
            viewer_secs: if quick { 8.0 } else { 15.0 },
            publishers_max: if quick { 8 } else { 1536 },
            ramp: None,
            step_secs: if quick { 8.0 } else { 15.0 },
            part_target_ms: 200,
            window_segments: 6,
            nginx_poll_ms: 50,
            viewer_poll_ms: 500,
            lag_limit_ms: 500,
            pin: true,
            readme: None,
            media: None,
            keep: false,
            servers: vec![servers::Kind::Weir, servers::Kind::Nginx],
        };
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
            match flag.as_str() {
                "--quick" => {}
                "--no-pin" => c.pin = false,
                "--readme" => c.readme = Some(true),
                "--no-readme" => c.readme = Some(false),
                "--keep" => c.keep = true,
                "--only" => c.only = value()?.split(',').map(str::to_owned).collect(),
                "--latency-secs" => c.latency_secs = value()?.parse()?,
                "--viewers" => {
                    c.viewers = value()?
                        .split(',')
                        .map(str::parse)
                        .collect::<Result<_, _>>()?
                }
                "--viewer-secs" => c.viewer_secs = value()?.parse()?,
                "--publishers-max" => c.publishers_max = value()?.parse()?,
                "--ramp" => {
                    let list = value()?
                        .split(',')
                        .map(|k| k.trim().parse::<usize>())
                        .collect::<Result<Vec<_>, _>>()?;
                    ensure!(list.iter().all(|&k| k >= 1), "--ramp counts must be ≥ 1");
                    c.publishers_max = list.iter().copied().max().unwrap_or(1);
                    c.ramp = Some(list);
                }
                "--step-secs" => c.step_secs = value()?.parse()?,
                "--part-target-ms" => c.part_target_ms = value()?.parse()?,
                "--window-segments" => c.window_segments = value()?.parse()?,
                "--nginx-poll-ms" => c.nginx_poll_ms = value()?.parse()?,
                "--viewer-poll-ms" => c.viewer_poll_ms = value()?.parse()?,
                "--lag-limit-ms" => c.lag_limit_ms = value()?.parse()?,
                "--media" => c.media = Some(PathBuf::from(value()?)),
                "--servers" => {
                    c.servers = value()?
                        .split(',')
                        .map(|s| match s {
                            "weir" => Ok(servers::Kind::Weir),
                            "nginx" | "nginx-rtmp" => Ok(servers::Kind::Nginx),
                            other => Err(anyhow::anyhow!("unknown server {other} (weir, nginx)")),
                        })
                        .collect::<anyhow::Result<_>>()?
                }
                other => bail!("unknown flag {other} (see the top of bench/src/main.rs)"),
            }
        }
        for s in &c.only {
            ensure!(
                ["latency", "egress", "publishers"].contains(&s.as_str()),
                "unknown scenario {s} (latency, egress, publishers)"
            );
        }
        ensure!(
            c.latency_secs >= 5.0 && c.step_secs >= 5.0,
            "runs need at least 5 s"
        );
        ensure!(c.publishers_max >= 1, "--publishers-max must be ≥ 1");
        Ok(c)
    }

    fn runs(&self, scenario: &str) -> bool {
        self.only.iter().any(|s| s == scenario)
    }
}

/// Encodes the test media once (cached next to the build output).
fn test_media(cfg: &Config, cpus: Option<&str>) -> anyhow::Result<PathBuf> {
    live_media(cfg.media.as_deref(), cpus)
}

/// The live scenario's media (720p30 x264 2.5 Mb/s + AAC, 30 s), or `given`.
pub(crate) fn live_media(
    given: Option<&std::path::Path>,
    cpus: Option<&str>,
) -> anyhow::Result<PathBuf> {
    if let Some(p) = given {
        return Ok(p.to_owned());
    }
    let mut cmd = match cpus {
        Some(list) => {
            let mut c = Command::new("taskset");
            c.args(["-c", list, "ffmpeg"]);
            c
        }
        None => Command::new("ffmpeg"),
    };
    cmd.args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30"])
        .args(["-f", "lavfi", "-i", "sine", "-t", "30"])
        .args([
            "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
        ])
        .args([
            "-b:v", "2500k", "-maxrate", "2500k", "-bufsize", "5000k", "-g", "60",
        ])
        .args(["-c:a", "aac", "-f", "flv"]);
    media::cached("testsrc2-720p30-x264-2500k-aac-30s.flv", cmd)
}

/// CPUs this process may run on (after pinning).
fn bench_cpus() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let list = s
                .lines()
                .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))?;
            Some(
                list.trim()
                    .split(',')
                    .map(|r| match r.split_once('-') {
                        Some((a, b)) => (b.parse::<usize>().unwrap_or(0) + 1)
                            .saturating_sub(a.parse::<usize>().unwrap_or(0)),
                        None => 1,
                    })
                    .sum(),
            )
        })
        .unwrap_or(1)
}

/// Pins this process to CPUs 1.. and returns the CPU for the servers (0).
fn pin() -> Option<usize> {
    let n = std::thread::available_parallelism().map_or(1, |n| n.get());
    if n < 2 {
        return None;
    }
    let ok = Command::new("taskset")
        .args([
            "-a",
            "-p",
            "-c",
            &format!("1-{}", n - 1),
            &std::process::id().to_string(),
        ])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    ok.then_some(0)
}

fn live(args: &[String]) -> anyhow::Result<()> {
    let cfg = Config::parse(args)?;
    let weir_bin = std::env::var_os("WEIR_BIN")
        .map(PathBuf::from)
        .or_else(|| Some(std::env::current_exe().ok()?.parent()?.join("weir")))
        .context("set WEIR_BIN to the weir binary")?;
    ensure!(
        weir_bin.exists() || !cfg.servers.contains(&servers::Kind::Weir),
        "{} does not exist: build weir or set WEIR_BIN",
        weir_bin.display()
    );
    let server_cpu = if cfg.pin { pin() } else { None };
    let n = std::thread::available_parallelism().map_or(1, |n| n.get());
    let all_cpus = format!("0-{}", n - 1);
    let media_path = test_media(&cfg, server_cpu.map(|_| all_cpus.as_str()))?;
    let media = Arc::new(Media::load(&media_path)?);
    progress!(
        "{} run; media {} ({} frames, {:.0} kbit/s, {:.1} s a loop); servers {}",
        if cfg.quick { "quick" } else { "full" },
        media_path.display(),
        media.frames.len(),
        media.bitrate() as f64 / 1000.0,
        f64::from(media.loop_ms) / 1000.0,
        match server_cpu {
            Some(c) => format!("pinned to CPU {c}, bench on the others"),
            None => "not pinned".into(),
        }
    );
    let work = std::env::temp_dir().join(format!("weir-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let setup = Setup {
        weir_bin,
        work: work.clone(),
        part_target_ms: cfg.part_target_ms,
        window_segments: cfg.window_segments,
        server_cpu,
    };
    let mut results = report::Results::default();
    let outcome = (|| -> anyhow::Result<()> {
        if cfg.runs("latency") {
            results.latency = live::latency(&setup, &media, &cfg)?;
        }
        if cfg.runs("egress") {
            results.egress = egress::run(&setup, &media, &cfg)?;
        }
        if cfg.runs("publishers") {
            results.capacity = live::capacity(&setup, &media, &cfg)?;
        }
        Ok(())
    })();
    if cfg.keep || outcome.is_err() {
        progress!("scratch directory (logs) kept: {}", work.display());
    } else {
        let _ = std::fs::remove_dir_all(&work);
    }
    outcome?;

    let machine = report::machine();
    let table = report::table(&results, &cfg);
    let details = report::details(&results);
    println!(
        "\nweir-bench live ({}) — {machine}\n",
        if cfg.quick { "quick" } else { "full" }
    );
    println!("{table}\n{details}");
    if cfg.readme.unwrap_or(!cfg.quick) {
        let readme = bench_dir().join("README.md");
        let section = format!(
            "## Results\n\n{} run, {machine}.\nweir `--shards 1 --part-target-ms {} --window-segments {}`; nginx-rtmp `worker_processes 1`; \
             servers pinned to CPU 0: {}. Viewers per level: {:?} for {:.0} s; nginx-rtmp viewers poll every {} ms; \
             publisher ramp up to {} for {:.0} s a step.\n\n{table}\n{details}",
            if cfg.quick { "Quick" } else { "Full" },
            cfg.part_target_ms,
            cfg.window_segments,
            if server_cpu.is_some() { "yes" } else { "no" },
            cfg.viewers,
            cfg.viewer_secs,
            cfg.viewer_poll_ms,
            cfg.publishers_max,
            cfg.step_secs,
        );
        report::write_readme(&readme, &section)?;
        progress!("results written to {}", readme.display());
    }
    Ok(())
}

/// `weir-bench api`: GraphQL and publish-authorisation numbers, written to the README.
fn api_bench(args: &[String]) -> anyhow::Result<()> {
    let table = api::run(args)?;
    if args.iter().any(|a| a == "--no-readme") {
        return Ok(());
    }
    let readme = bench_dir().join("README.md");
    let text = std::fs::read_to_string(&readme)?;
    let (begin, end) = ("<!-- api-results:begin -->", "<!-- api-results:end -->");
    let section = format!(
        "{begin}\n## API results\n\n{} (`cargo xtask bench api`{}).\n\n{table}{end}",
        report::machine(),
        if args.iter().any(|a| a == "--quick") {
            " --quick"
        } else {
            ""
        },
    );
    let text = match (text.find(begin), text.find(end)) {
        (Some(a), Some(b)) if a < b => format!("{}{section}{}", &text[..a], &text[b + end.len()..]),
        _ => format!("{text}\n{section}\n"),
    };
    std::fs::write(&readme, text)?;
    progress!("API results written to {}", readme.display());
    Ok(())
}

fn main() -> ExitCode {
    started();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("live") => live(&args[1..]),
        Some("api") => api_bench(&args[1..]),
        Some("transcode") => transcode::run(&args[1..]),
        Some("srt") => srt::run(&args[1..]),
        Some("outputs") => outputs::run(&args[1..]),
        Some("chat") => chat::run(&args[1..]),
        Some("studio") => studio::run(&args[1..]),
        Some("abuse") => abuse::run(&args[1..]),
        Some("sfu") => sfu::run(&args[1..]),
        _ => {
            eprintln!(
                "usage: weir-bench live [--quick] [flags…] | weir-bench api [--quick] [--clients N] | weir-bench transcode|srt|outputs|chat|studio|abuse|sfu [--quick] [flags…]  (see bench/README.md)"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("weir-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// This crate's directory: from `cargo xtask bench` (which passes `WEIR_BENCH_DIR`), else
/// where the binary was built.
fn bench_dir() -> PathBuf {
    std::env::var_os("WEIR_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}
