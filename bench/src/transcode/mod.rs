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
//! 6. `weir --ladder` as 4. with per-title bitrates: the complexity probe's cost (the
//!    trade: CPU for bitrates that follow the content).
//!
//! weir gets the source from the bench's own real-time RTMP publisher (exact send times,
//! so the lag of the lowest rendition can be measured: ingest → part downloaded by a
//! client following it with blocking reloads); ffmpeg reads the same FLV with `-re`. CPU
//! is utime + stime of the measured process (all threads: weir's GStreamer threads are in
//! its process) over a window that starts after a warm-up. weir runs with
//! `shed_rungs_when_behind = false`, so that like ffmpeg it always encodes every rung: a
//! run that cannot keep up shows as lag growing, not as less work. See bench/README.md.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};

use crate::flv::Media;
use crate::progress;
use crate::stats::Latency;

mod machine;
mod runs;
mod tables;
use machine::*;
use runs::*;
use tables::*;

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
    /// weir, 1080p passed through + 3 encoded, per-title bitrates (the probe's cost).
    WeirPerTitle,
}

impl RunKind {
    fn label(self) -> &'static str {
        match self {
            Self::WeirBase => "weir, no ladder (baseline)",
            Self::WeirLadder => "weir ladder, 4 encoded",
            Self::WeirPassthrough => "weir ladder, 1080p passthrough + 3 encoded",
            Self::Ffmpeg => "ffmpeg, 4 encoded",
            Self::FfmpegPassthrough => "ffmpeg, 1080p copy + 3 encoded",
            Self::WeirPerTitle => "weir ladder, passthrough + 3 encoded, per-title",
        }
    }

    fn is_weir(self) -> bool {
        matches!(
            self,
            Self::WeirBase | Self::WeirLadder | Self::WeirPassthrough | Self::WeirPerTitle
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
        "{} transcode run: source {} ({:.0} kbit/s, {:.1} s a loop); {} round(s) of 6 runs, \
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
        let section = format!(
            "`cargo xtask bench transcode`{} — {machine}; {} round(s), {:.0} s measured \
             after {:.0} s of warm-up per run; load average (1/5/15 min) {load_before} before, \
             {load_after} after.\n\n{tables}\n{notes}",
            if cfg.quick { " --quick" } else { "" },
            cfg.rounds,
            cfg.secs,
            cfg.warmup_secs,
        );
        if crate::report::replace_marked(&readme, README_BEGIN, README_END, &section)? {
            progress!("results written to {}", readme.display());
        } else {
            progress!(
                "{} has no transcode-results markers: results not written",
                readme.display()
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

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
        let t = ladder_toml(false, false);
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
