//! The SFU scenario's numbers: one step of the ramp, and the Markdown written to the
//! console and into bench/README.md.

use std::fmt::Write as _;

use super::client::Counts;
use super::media::TestMedia;
use super::{Config, LOSS_LIMIT, Server, ServerRun};

/// One measured window of the ramp.
#[derive(Debug, Clone)]
pub struct Step {
    /// Subscribers joined.
    pub n: usize,
    /// Of them, connected (ICE + DTLS up).
    pub connected: usize,
    /// Peers that failed so far.
    pub failed: u64,
    /// Seconds the joins of this step took (signalling, sequential).
    pub join_secs: f64,
    /// Length of the window, seconds.
    pub secs: f64,
    /// Counter differences over the window.
    pub counts: Counts,
    /// Server CPU over the window (cores).
    pub server_cores: f64,
    /// Load client CPU over the window (cores; publisher and subscribers).
    pub client_cores: f64,
    /// Added latency per video frame, p50, ms.
    pub p50_ms: f64,
    /// Added latency per video frame, p99, ms.
    pub p99_ms: f64,
    /// Latency samples.
    pub samples: usize,
    /// Video frames received whose hash the publisher never sent (total so far).
    pub unmatched: u64,
    /// Server RSS at the end of the window, bytes.
    pub rss: u64,
    /// (RSS − RSS with no subscriber) / N, KiB.
    pub kib_per_sub: f64,
}

impl Step {
    /// Share of video frames lost (expected = sent × N).
    pub fn video_loss(&self) -> f64 {
        loss(self.counts.video_recv, self.counts.video_sent, self.n)
    }

    /// Share of Opus packets lost.
    pub fn audio_loss(&self) -> f64 {
        loss(self.counts.audio_recv, self.counts.audio_sent, self.n)
    }

    /// The larger of the two.
    pub fn loss(&self) -> f64 {
        self.video_loss().max(self.audio_loss())
    }

    /// RTP packets delivered to subscribers per second.
    pub fn packets_per_sec(&self) -> f64 {
        self.counts.packets_recv as f64 / self.secs
    }

    /// Packets per second per server core.
    pub fn packets_per_core_sec(&self) -> f64 {
        self.packets_per_sec() / self.server_cores.max(1e-9)
    }

    /// Subscribers one core would hold at this step's CPU per subscriber.
    pub fn subs_per_core(&self) -> f64 {
        self.n as f64 / self.server_cores.max(1e-9)
    }

    /// A progress line.
    pub fn line(&self) -> String {
        format!(
            "N={} connected {} failed {} · {:.0} pkt/s · server {:.2} cores ({:.0} pkt per core-s) · client {:.2} cores · \
             latency p50 {:.2} / p99 {:.2} ms ({} samples, {} unmatched) · loss video {:.2} % audio {:.2} % · RSS {:.1} MiB, {:.1} KiB/sub · joins {:.1} s",
            self.n,
            self.connected,
            self.failed,
            self.packets_per_sec(),
            self.server_cores,
            self.packets_per_core_sec(),
            self.client_cores,
            self.p50_ms,
            self.p99_ms,
            self.samples,
            self.unmatched,
            100.0 * self.video_loss(),
            100.0 * self.audio_loss(),
            self.rss as f64 / 1048576.0,
            self.kib_per_sub,
            self.join_secs
        )
    }
}

fn loss(recv: u64, sent: u64, n: usize) -> f64 {
    let expected = sent as f64 * n as f64;
    if expected <= 0.0 {
        return 1.0;
    }
    (1.0 - recv as f64 / expected).max(0.0)
}

/// The 1/5/15-minute load averages.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// The largest N whose step lost < 1 % with every subscriber connected.
fn largest_ok(run: &ServerRun) -> Option<&Step> {
    run.steps
        .iter()
        .filter(|s| s.connected == s.n && s.loss() < LOSS_LIMIT)
        .max_by_key(|s| s.n)
}

/// The Markdown of a run: header, one table of every step of both servers, the
/// comparison at equal N and the summary against the targets.
pub fn render(
    runs: &[ServerRun],
    cfg: &Config,
    media: &TestMedia,
    pinned: bool,
    load_before: &str,
) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "`cargo xtask bench sfu{}` — {}; load average {} before, {} after. Media {:.0} kbit/s \
         (H.264 baseline 720p30 + Opus); windows of {:.0} s after {:.0} s of settling; servers pinned to CPU 0: {}; \
         weir viewers' bandwidth estimation (`--webrtc-bwe`): {}.\n",
        if cfg.quick { " --quick" } else { "" },
        crate::report::machine(),
        load_before,
        loadavg(),
        media.bitrate() / 1000.0,
        cfg.secs,
        cfg.settle_secs,
        if pinned {
            "yes, client on the other CPU"
        } else {
            "no"
        },
        cfg.weir_bwe,
    );
    let _ = writeln!(
        t,
        "| server | N | connected | packets/s out | server cores | packets per core-s | subscribers per core (from CPU) | latency p50 / p99 ms | video / audio loss | KiB per subscriber | client cores |"
    );
    let _ = writeln!(t, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in runs {
        for s in &r.steps {
            let _ = writeln!(
                t,
                "| {} | {} | {} | {:.0} | {:.3} | {:.0} | {:.0} | {:.2} / {:.2} | {:.2} % / {:.2} % | {:.1} | {:.2} |",
                r.server.name(),
                s.n,
                s.connected,
                s.packets_per_sec(),
                s.server_cores,
                s.packets_per_core_sec(),
                s.subs_per_core(),
                s.p50_ms,
                s.p99_ms,
                100.0 * s.video_loss(),
                100.0 * s.audio_loss(),
                s.kib_per_sub,
                s.client_cores,
            );
        }
    }
    let weir = runs.iter().find(|r| r.server == Server::Weir);
    let janus = runs.iter().find(|r| r.server == Server::Janus);
    if let (Some(w), Some(j)) = (weir, janus) {
        let _ = writeln!(
            t,
            "\nAt equal N (weir vs Janus; above 1 means weir is better):\n\n\
             | N | packets per core-s weir / Janus | ratio | server cores weir / Janus | p99 ms weir / Janus |\n|---:|---:|---:|---:|---:|"
        );
        for ws in &w.steps {
            if let Some(js) = j.steps.iter().find(|s| s.n == ws.n) {
                let _ = writeln!(
                    t,
                    "| {} | {:.0} / {:.0} | {:.2}× | {:.3} / {:.3} | {:.2} / {:.2} |",
                    ws.n,
                    ws.packets_per_core_sec(),
                    js.packets_per_core_sec(),
                    ws.packets_per_core_sec() / js.packets_per_core_sec().max(1e-9),
                    ws.server_cores,
                    js.server_cores,
                    ws.p99_ms,
                    js.p99_ms,
                );
            }
        }
    }
    let _ = writeln!(t);
    for r in runs {
        let best = largest_ok(r);
        let client_bound = r
            .steps
            .last()
            .is_some_and(|s| s.client_cores >= 0.85 * client_cpus() as f64);
        let _ = writeln!(
            t,
            "- **{}**: publisher only {:.3} cores, {:.1} MiB. Largest N with < 1 % loss: {}{}; {}{}.",
            r.server.name(),
            r.idle_cores,
            r.idle_rss as f64 / 1048576.0,
            best.map_or("none".to_owned(), |s| s.n.to_string()),
            best.map_or(String::new(), |s| format!(
                " (server {:.3} cores there → ≈ {:.0} subscribers per core from CPU, p99 {:.2} ms)",
                s.server_cores,
                s.subs_per_core(),
                s.p99_ms
            )),
            r.ended,
            if client_bound {
                " — the last step had the load client at its own CPU limit"
            } else {
                ""
            },
        );
    }
    t
}

/// CPUs the load client may use.
fn client_cpus() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .saturating_sub(1)
        .max(1)
}
