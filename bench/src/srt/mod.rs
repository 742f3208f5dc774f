//! `weir-bench srt`: SRT ingest into weir against srt-live-transmit relaying the same
//! stream, through the same lossy UDP relay (this kernel has no `sch_netem`).
//!
//! The bench paces an MPEG-TS file (720p30 x264 + AAC) in real time by its PCR, in 1316-byte
//! chunks (7 TS packets, one SRT payload), into the stdin of a libsrt caller
//! (`srt-live-transmit file://con srt://…`), and records when each video frame was sent
//! (the chunk holding the next frame's PES header: the frame is complete). The caller goes
//! through a relay that loses N % of datagrams each way (seeded) and delays each by 10 ms,
//! SRT latency 120 ms on both sides, to:
//!
//! - **weir** (`--srt-listen`): a client follows the LL-HLS with blocking reloads as in
//!   `live`; latency of a frame = its part downloaded − its send time. Frames delivered:
//!   ffprobe counts the video packets of the ended playlist.
//! - **srt-live-transmit** as the listener, writing the TS to stdout: the bench reads it and
//!   records when each frame's data arrived (same definition). This is SRT delivery
//!   alone — no packaging, no HTTP — the floor under any SRT → HLS server.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context as _, bail, ensure};

use crate::progress;
use crate::stats::Latency;

mod peers;
mod relay;
mod ts;
use peers::*;
use relay::*;
use ts::*;

/// Bytes of one SRT live payload: 7 TS packets.
const CHUNK: usize = 7 * 188;
/// Media time left out at the start (client start-up), as in `live`.
const SKIP_S: f64 = 2.0;
const CHANNEL: &str = "srtbench";

/// Settings of an `srt` run.
#[derive(Debug, Clone)]
pub struct Config {
    /// Short run.
    pub quick: bool,
    /// Seconds of media sent per run.
    pub secs: f64,
    /// Datagram loss levels in percent (each way).
    pub losses: Vec<u64>,
    /// SRT latency (TSBPD), both sides.
    pub latency_ms: u64,
    /// One-way delay of the relay.
    pub delay_ms: u64,
    /// MPEG-TS file instead of the generated one.
    pub media: Option<PathBuf>,
    /// Keep the scratch directory.
    pub keep: bool,
    /// Write the results into bench/README.md (default: full runs only).
    pub readme: Option<bool>,
}

impl Config {
    fn parse(args: &[String]) -> anyhow::Result<Self> {
        let quick = args.iter().any(|a| a == "--quick");
        let mut c = Self {
            quick,
            secs: if quick { 12.0 } else { 30.0 },
            losses: vec![0, 1, 5],
            latency_ms: 120,
            delay_ms: 10,
            media: None,
            keep: false,
            readme: None,
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
                "--loss" => {
                    c.losses = value()?
                        .split(',')
                        .map(|s| s.trim().parse())
                        .collect::<Result<_, _>>()?
                }
                "--latency-ms" => c.latency_ms = value()?.parse()?,
                "--delay-ms" => c.delay_ms = value()?.parse()?,
                "--media" => c.media = Some(PathBuf::from(value()?)),
                other => bail!("unknown flag {other} (see the top of bench/src/main.rs)"),
            }
        }
        ensure!(c.secs >= 5.0, "--secs must be ≥ 5");
        ensure!(
            c.losses.iter().all(|&l| l < 100),
            "--loss values are percentages below 100"
        );
        Ok(c)
    }
}

/// One run's figures.
#[derive(Debug, Clone, Default)]
pub struct Run {
    /// Loss each way, %.
    pub loss: u64,
    /// Frames sent (complete).
    pub frames_sent: usize,
    /// Frames the receiver delivered.
    pub frames_delivered: usize,
    /// weir: part downloaded − sent; peer: data out of the listener − sent.
    pub latency: Option<Latency>,
    /// SRT receiver: packets lost for good (not recovered in time, or dropped by the
    /// sender), and retransmitted.
    pub srt_dropped: Option<u64>,
    /// SRT receiver: packets that arrived after their place was released (second copies
    /// of a retransmission); libsrt calls them belated.
    pub srt_late: Option<u64>,
    /// See `srt_dropped`.
    pub srt_retransmitted: Option<u64>,
    /// Peer: TS continuity gaps seen at the listener's output.
    pub cc_gaps: Option<u64>,
    /// Relay: datagrams lost on purpose up / down, and relayed up.
    pub relay: (u64, u64, u64),
    /// Worst lateness of the sender.
    pub send_lag_ms: f64,
    /// What went wrong.
    pub error: Option<String>,
}

impl Run {
    fn missing(&self) -> i64 {
        self.frames_sent as i64 - self.frames_delivered as i64
    }
}

fn lat(l: Option<&Latency>) -> String {
    l.map_or_else(String::new, |l| {
        format!("{:.0} / {:.0} / {:.0}", l.p50, l.p95, l.max)
    })
}

fn opt(v: Option<u64>) -> String {
    v.map_or_else(|| "–".into(), |v| v.to_string())
}

/// The results table (markdown).
pub fn table(runs: &[(Run, Run)], cfg: &Config) -> String {
    let mut t = String::from(
        "| loss each way | weir: ingest → part downloaded p50 / p95 / max (ms) | weir frames missing / sent | \
         weir SRT lost / late / retransmitted | srt-live-transmit: ingest → TS out p50 / p95 / max (ms) | \
         srt-live-transmit frames missing / sent | its SRT lost / late / retransmitted, CC gaps | relay lost up / down |\n\
         |---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for (w, p) in runs {
        let _ = writeln!(
            t,
            "| {} % | {} | {} / {} | {} / {} / {} | {} | {} / {} | {} / {} / {}, {} | {} / {} |",
            w.loss,
            lat(w.latency.as_ref()),
            w.missing(),
            w.frames_sent,
            opt(w.srt_dropped),
            opt(w.srt_late),
            opt(w.srt_retransmitted),
            lat(p.latency.as_ref()),
            p.missing(),
            p.frames_sent,
            opt(p.srt_dropped),
            opt(p.srt_late),
            opt(p.srt_retransmitted),
            opt(p.cc_gaps),
            w.relay.0,
            w.relay.1,
        );
    }
    let _ = writeln!(
        t,
        "\nSRT latency {} ms both sides, relay delay {} ms each way; {:.0} s of media per run.",
        cfg.latency_ms, cfg.delay_ms, cfg.secs
    );
    t
}

const README_BEGIN: &str = "<!-- srt-results:begin (written by weir-bench srt) -->";
const README_END: &str = "<!-- srt-results:end -->";

/// `weir-bench srt [--quick] [--secs S] [--loss 0,1,5] [--latency-ms MS] [--delay-ms MS]
/// [--media FILE.ts] [--keep] [--readme | --no-readme]`.
pub fn run(args: &[String]) -> anyhow::Result<()> {
    let cfg = Config::parse(args)?;
    let media = ts_media(&cfg)?;
    let weir_bin = std::env::var_os("WEIR_BIN")
        .map(PathBuf::from)
        .or_else(|| Some(std::env::current_exe().ok()?.parent()?.join("weir")))
        .context("set WEIR_BIN to the weir binary")?;
    ensure!(
        weir_bin.exists(),
        "{} does not exist: build weir or set WEIR_BIN",
        weir_bin.display()
    );
    let ts = TsMedia::parse(std::fs::read(&media).with_context(|| media.display().to_string())?)?;
    progress!(
        "{} srt run: media {} ({} frames, {:.1} s); loss {:?} % each way; {:.0} s per run",
        if cfg.quick { "quick" } else { "full" },
        media.display(),
        ts.frames.len(),
        ts.due.last().copied().unwrap_or(0.0),
        cfg.losses,
        cfg.secs
    );
    let work = std::env::temp_dir().join(format!("weir-bench-srt-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let mut runs = Vec::new();
    let outcome = (|| -> anyhow::Result<()> {
        for &loss in &cfg.losses {
            progress!("{loss} % loss: weir …");
            let w = weir_run(&weir_bin, &work, &ts, &cfg, loss)?;
            progress!(
                "  weir: latency {} ms, frames missing {} of {}, SRT lost {} / late {} / \
                 retransmitted {}, relay lost {} / {} of {}, send lag {:.0} ms{}",
                lat(w.latency.as_ref()),
                w.missing(),
                w.frames_sent,
                opt(w.srt_dropped),
                opt(w.srt_late),
                opt(w.srt_retransmitted),
                w.relay.0,
                w.relay.1,
                w.relay.2,
                w.send_lag_ms,
                w.error
                    .as_ref()
                    .map_or_else(String::new, |e| format!("; error: {e}"))
            );
            progress!("{loss} % loss: srt-live-transmit …");
            let p = peer_run(&work, &ts, &cfg, loss)?;
            progress!(
                "  srt-live-transmit: latency {} ms, frames missing {} of {}, SRT lost {} / late {} / \
                 retransmitted {}, CC gaps {}, relay lost {} / {} of {}",
                lat(p.latency.as_ref()),
                p.missing(),
                p.frames_sent,
                opt(p.srt_dropped),
                opt(p.srt_late),
                opt(p.srt_retransmitted),
                opt(p.cc_gaps),
                p.relay.0,
                p.relay.1,
                p.relay.2
            );
            runs.push((w, p));
        }
        Ok(())
    })();
    if cfg.keep || outcome.is_err() {
        progress!("scratch directory (logs) kept: {}", work.display());
    } else {
        let _ = std::fs::remove_dir_all(&work);
    }
    outcome?;
    let machine = crate::report::machine();
    let table = table(&runs, &cfg);
    println!(
        "\nweir-bench srt ({}) — {machine}\n\n{table}",
        if cfg.quick { "quick" } else { "full" }
    );
    if cfg.readme.unwrap_or(!cfg.quick) {
        let readme = crate::bench_dir().join("README.md");
        let section = format!(
            "`cargo xtask bench srt`{} — {machine}.\n\n{table}",
            if cfg.quick { " --quick" } else { "" }
        );
        if crate::report::replace_marked(&readme, README_BEGIN, README_END, &section)? {
            progress!("results written to {}", readme.display());
        } else {
            progress!(
                "{} has no srt-results markers: results not written",
                readme.display()
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A TS packet on `pid` with an optional PCR and an optional video PES header.
    fn packet(pid: u16, cc: u8, pcr_ticks: Option<u64>, dts: Option<u64>) -> Vec<u8> {
        let mut p = vec![0xffu8; 188];
        p[0] = 0x47;
        p[1] = ((pid >> 8) as u8 & 0x1f) | if dts.is_some() { 0x40 } else { 0 };
        p[2] = pid as u8;
        let mut at = 4;
        if let Some(t) = pcr_ticks {
            p[3] = 0x30 | cc;
            p[4] = 7;
            p[5] = 0x10;
            p[6] = (t >> 25) as u8;
            p[7] = (t >> 17) as u8;
            p[8] = (t >> 9) as u8;
            p[9] = (t >> 1) as u8;
            p[10] = ((t & 1) << 7) as u8 | 0x7e;
            p[11] = 0;
            at = 12;
        } else {
            p[3] = 0x10 | cc;
        }
        if let Some(d) = dts {
            let ts = |prefix: u8, v: u64| {
                [
                    (prefix << 4) | (((v >> 30) as u8 & 7) << 1) | 1,
                    (v >> 22) as u8,
                    (((v >> 15) as u8) << 1) | 1,
                    (v >> 7) as u8,
                    ((v as u8) << 1) | 1,
                ]
            };
            let mut h = vec![0, 0, 1, 0xe0, 0, 0, 0x80, 0xc0, 10];
            h.extend(ts(3, d + 3000));
            h.extend(ts(1, d));
            p[at..at + h.len()].copy_from_slice(&h);
        }
        p
    }

    #[test]
    fn paces_by_pcr_and_finds_frames() {
        let mut data = Vec::new();
        // 3 frames of 7 packets at 30 fps, a PCR on each frame start.
        for f in 0..3u64 {
            for i in 0..7u8 {
                let start = i == 0;
                data.extend(packet(
                    0x100,
                    (f as u8 * 7 + i) & 0x0f,
                    start.then_some(f * 3000),
                    start.then_some(90_000 + f * 3000),
                ));
            }
        }
        let ts = TsMedia::parse(data.clone()).expect("parse");
        assert_eq!(ts.due.len(), 3);
        // A chunk is due with its last packet: linear between PCRs, held after the last.
        assert!(
            (ts.due[1] - (1.0 + 6.0 / 7.0) / 30.0).abs() < 1e-6,
            "{:?}",
            ts.due
        );
        assert!((ts.due[2] - 2.0 / 30.0).abs() < 1e-6, "{:?}", ts.due);
        assert_eq!(ts.frames, vec![(90_000, 1), (93_000, 2)]);
        assert!((ts.media_s(93_000) - 1.0 / 30.0).abs() < 1e-9);
        let got = receive(&data[..]);
        assert_eq!(got.cc_gaps, 0);
        // The last frame counts once the stream ends.
        assert_eq!(got.frames.len(), 3);
        // A lost packet shows as a continuity gap.
        let mut lossy = data.clone();
        lossy.drain(188 * 3..188 * 4);
        assert_eq!(receive(&lossy[..]).cc_gaps, 1);
    }

    #[test]
    fn dice_loses_about_the_share_asked() {
        let mut d = Dice(0x1234_5678_9abc_def1);
        let lost = (0..100_000).filter(|_| d.lose(5)).count();
        assert!((4_500..5_500).contains(&lost), "{lost}");
        let mut d = Dice(1);
        assert_eq!((0..1000).filter(|_| d.lose(0)).count(), 0);
    }
}
