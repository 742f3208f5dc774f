//! One measured run each: the source media, weir with a ladder, the ffmpeg CLI doing the
//! same ladder.

use crate::flv::Media;
use crate::poller::{Object, Timeline};
use crate::publisher::{self, Publish};
use crate::servers::tail;
use crate::stats::{self};
use crate::weirproc::{Weir, follow};
use anyhow::{Context as _, bail};
use std::fmt::Write as _;
use std::io::BufRead as _;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::*;
use crate::sleep_until;

/// Encodes the 1080p30 source once: testsrc2 (moving), x264 veryfast ~6 Mbit/s, 2 B-frames
/// (as OBS sends), fixed 2 s GOP, AAC 128k stereo; 20 s.
pub(super) fn source_media(cfg: &Config) -> anyhow::Result<PathBuf> {
    if let Some(p) = &cfg.media {
        return Ok(p.clone());
    }
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
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
        .args(["-c:a", "aac", "-b:a", "128k", "-ac", "2", "-f", "flv"]);
    crate::media::cached("testsrc2-1080p30-x264-6000k-bf2-aac-20s.flv", cmd)
}

/// The config file of a weir ladder run.
pub(super) fn ladder_toml(passthrough_top: bool, per_title: bool) -> String {
    let mut t = format!(
        "[node.ladder]\nenabled = true\npassthrough_top = {passthrough_top}\nencoder = \"x264\"\n\
         shed_rungs_when_behind = false\nper_title = {per_title}\n"
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

/// Median of the lag of frames sent within `[from, to)`.
pub(super) fn lag_between(
    sends: &[(f64, Instant)],
    objects: &[Object],
    from: Instant,
    to: Instant,
) -> f64 {
    let part: Vec<(f64, Instant)> = sends
        .iter()
        .copied()
        .filter(|&(m, at)| m >= SKIP_S && at >= from && at < to)
        .collect();
    stats::latency(&part, objects, 0.0).map_or(f64::NAN, |l| l.p50)
}

/// One weir run: publish for warm-up + window + 1 s, follow the lowest rendition.
pub(super) fn weir_run(
    kind: RunKind,
    bin: &Path,
    work: &Path,
    media: &Arc<Media>,
    cfg: &Config,
    round: usize,
) -> anyhow::Result<Run> {
    let (tag, config, variant) = match kind {
        RunKind::WeirBase => ("base", None, None),
        RunKind::WeirLadder => ("ladder", Some(ladder_toml(false, false)), Some("/360p/")),
        RunKind::WeirPassthrough => (
            "passthrough",
            Some(ladder_toml(true, false)),
            Some("/360p/"),
        ),
        RunKind::WeirPerTitle => ("per-title", Some(ladder_toml(true, true)), Some("/360p/")),
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
pub(super) fn ffmpeg_run(
    kind: RunKind,
    source: &Path,
    work: &Path,
    cfg: &Config,
) -> anyhow::Result<Run> {
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
