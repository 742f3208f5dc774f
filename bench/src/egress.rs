//! Scenario 2: HLS egress. One stream publishing; V viewers following it; the server's
//! CPU time and memory from /proc while they do.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::Config;
use crate::flv::Media;
use anyhow::Context as _;

use crate::http::Client;
use crate::playlist::{dir_of, first_variant, parse_media};
use crate::poller::Mode;
use crate::publisher::{self, Publish};
use crate::servers::{Kind, Server, Setup};
use crate::viewers::{self, Counters};

/// Time the viewers take to join.
const RAMP: Duration = Duration::from_secs(2);

/// One viewer level on one server.
#[derive(Debug, Clone, Default)]
pub struct Level {
    /// Viewers started.
    pub viewers: usize,
    /// Viewers following at the end of the window.
    pub active: u64,
    /// Media objects (parts or segments) per second.
    pub media_per_s: f64,
    /// All responses (playlists too) per second.
    pub responses_per_s: f64,
    /// Body bytes per second.
    pub bytes_per_s: f64,
    /// Server CPU: core-seconds per second.
    pub cpu_cores: f64,
    /// Resident memory of the server with the viewers connected.
    pub rss: u64,
    /// Memory per viewer: (RSS with V − RSS with 0) / V.
    pub bytes_per_viewer: f64,
    /// Failed requests.
    pub errors: u64,
    /// weir: "part available → answer written to a viewer that waited for it", p50 and p99
    /// in ms, as the upper bounds of the server's histogram buckets over this window.
    pub wake_ms: Option<(f64, f64)>,
}

impl Level {
    /// Media objects per CPU-second.
    pub fn media_per_core_s(&self) -> f64 {
        self.media_per_s / self.cpu_cores.max(1e-9)
    }
    /// Responses per CPU-second.
    pub fn responses_per_core_s(&self) -> f64 {
        self.responses_per_s / self.cpu_cores.max(1e-9)
    }
    /// Body MB per CPU-second.
    pub fn mb_per_core_s(&self) -> f64 {
        self.bytes_per_s / 1e6 / self.cpu_cores.max(1e-9)
    }
}

/// The server's "wake → delivery" histogram: (upper bound in s, cumulative count) per
/// bucket, from its Prometheus text (weir only; None elsewhere).
fn wake_histogram(server: &Server) -> Option<Vec<(f64, u64)>> {
    let mut client = Client::new(server.http, Duration::from_secs(10));
    let text = client.get("/metrics").ok()?.text();
    let buckets: Vec<(f64, u64)> = text
        .lines()
        .filter_map(|l| l.strip_prefix("weir_hls_wake_to_delivery_seconds_bucket{le=\""))
        .filter_map(|rest| {
            let (le, count) = rest.split_once("\"} ")?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((le, count.trim().parse().ok()?))
        })
        .collect();
    (!buckets.is_empty()).then_some(buckets)
}

/// p50 and p99 (ms, bucket upper bounds) of what was recorded between two scrapes.
fn quantiles(before: &[(f64, u64)], after: &[(f64, u64)]) -> Option<(f64, f64)> {
    let delta: Vec<(f64, u64)> = after
        .iter()
        .map(|&(le, n)| {
            let was = before.iter().find(|b| b.0 == le).map_or(0, |b| b.1);
            (le, n.saturating_sub(was))
        })
        .collect();
    let total = delta.iter().map(|d| d.1).max()?;
    if total == 0 {
        return None;
    }
    let at = |q: f64| {
        let want = (total as f64 * q).ceil() as u64;
        delta
            .iter()
            .find(|d| d.1 >= want)
            .map_or(f64::INFINITY, |d| d.0 * 1000.0)
    };
    Some((at(0.5), at(0.99)))
}

/// Egress results of one server.
#[derive(Debug, Clone)]
pub struct Egress {
    /// Which server.
    pub kind: Kind,
    /// RSS with the publisher and no viewers.
    pub rss0: u64,
    /// CPU with the publisher and no viewers (core-seconds per second).
    pub cpu0: f64,
    /// One entry per viewer count.
    pub levels: Vec<Level>,
}

fn wait_for_stream(server: &Server, path: &str) -> anyhow::Result<()> {
    let mut c = Client::new(server.http, Duration::from_secs(10));
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if c.get(path)?.status == 200 {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    anyhow::bail!("{path} did not appear in 20 s")
}

/// Waits until the stream's playlist window is full (the first segment was evicted), so
/// that the server's memory no longer grows with the stream itself.
fn wait_for_full_window(server: &Server, path: &str) -> anyhow::Result<()> {
    let mut c = Client::new(server.http, Duration::from_secs(10));
    let media = match server.kind {
        Kind::Weir => {
            let index = c.get(path)?.text();
            let variant = first_variant(&index).context("no variant")?;
            format!("{}{variant}", dir_of(path))
        }
        Kind::Nginx => path.to_owned(),
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    while Instant::now() < deadline {
        let r = c.get(&media)?;
        if r.status == 200 && parse_media(&r.text())?.media_sequence > 0 {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    anyhow::bail!("the playlist window of {path} did not fill in 90 s")
}

fn sample(counters: &Counters) -> [u64; 4] {
    [
        counters.media.load(Ordering::Relaxed),
        counters.responses.load(Ordering::Relaxed),
        counters.bytes.load(Ordering::Relaxed),
        counters.errors.load(Ordering::Relaxed),
    ]
}

/// Runs the viewer levels against one server.
pub fn run_one(
    kind: Kind,
    setup: &Setup,
    media: &Arc<Media>,
    cfg: &Config,
) -> anyhow::Result<Egress> {
    let server = match kind {
        Kind::Weir => Server::weir(setup, 1, "egress")?,
        Kind::Nginx => Server::nginx(setup, "egress")?,
    };
    let procs = server.procs();
    let stop = Arc::new(AtomicBool::new(false));
    let per_level = RAMP.as_secs_f64() + 1.0 + cfg.viewer_secs + 2.0;
    let publish = Publish {
        rtmp: server.rtmp,
        app: "live".into(),
        stream_name: server.stream_name("egress")?,
        start_at: Instant::now(),
        duration: Duration::from_secs_f64(100.0 + per_level * cfg.viewers.len() as f64),
        stop: stop.clone(),
    };
    let m = media.clone();
    let publisher = std::thread::spawn(move || publisher::run(&publish, &m));
    let path = server.playlist_path("egress");
    wait_for_stream(&server, &path)?;
    crate::progress!(
        "egress: {} — waiting for the playlist window to fill",
        kind.name()
    );
    wait_for_full_window(&server, &path)?;
    std::thread::sleep(Duration::from_secs(2));
    let (c0, t0) = (procs.cpu_secs(), Instant::now());
    std::thread::sleep(Duration::from_secs(3));
    let cpu0 = (procs.cpu_secs() - c0) / t0.elapsed().as_secs_f64();
    let rss0 = procs.rss_bytes();
    let mode = match kind {
        Kind::Weir => Mode::BlockingReload,
        Kind::Nginx => Mode::Poll(Duration::from_millis(cfg.viewer_poll_ms)),
    };
    let mut levels = Vec::new();
    for &v in &cfg.viewers {
        crate::progress!(
            "egress: {} — {v} viewers for {:.0} s",
            kind.name(),
            cfg.viewer_secs
        );
        let counters = Arc::new(Counters::default());
        let vstop = Arc::new(AtomicBool::new(false));
        let handle = viewers::spawn(
            server.http,
            path.clone(),
            mode,
            v,
            RAMP,
            counters.clone(),
            vstop.clone(),
        );
        std::thread::sleep(RAMP + Duration::from_secs(1));
        let h0 = wake_histogram(&server);
        let (s0, cpu_a, ta) = (sample(&counters), procs.cpu_secs(), Instant::now());
        std::thread::sleep(Duration::from_secs_f64(cfg.viewer_secs));
        let (s1, cpu_b) = (sample(&counters), procs.cpu_secs());
        let h1 = wake_histogram(&server);
        let secs = ta.elapsed().as_secs_f64();
        let rss = procs.rss_bytes();
        let active = counters.active.load(Ordering::Relaxed);
        vstop.store(true, Ordering::Relaxed);
        if let Ok(Err(e)) = handle.join() {
            crate::progress!("egress: viewers failed: {e:#}");
        }
        let level = Level {
            viewers: v,
            active,
            media_per_s: (s1[0] - s0[0]) as f64 / secs,
            responses_per_s: (s1[1] - s0[1]) as f64 / secs,
            bytes_per_s: (s1[2] - s0[2]) as f64 / secs,
            cpu_cores: (cpu_b - cpu_a) / secs,
            rss,
            bytes_per_viewer: (rss as f64 - rss0 as f64) / v.max(1) as f64,
            errors: s1[3] - s0[3],
            wake_ms: h0.zip(h1).and_then(|(a, b)| quantiles(&a, &b)),
        };
        crate::progress!(
            "egress: {} {v} viewers ({active} following): {:.0} media/s, {:.0} responses/s, {:.1} MB/s, \
             CPU {:.2} cores → {:.0} media per core-s; {:.1} KiB per viewer; {} errors",
            kind.name(),
            level.media_per_s,
            level.responses_per_s,
            level.bytes_per_s / 1e6,
            level.cpu_cores,
            level.media_per_core_s(),
            level.bytes_per_viewer / 1024.0,
            level.errors
        );
        if let Some((p50, p99)) = level.wake_ms {
            crate::progress!(
                "egress: {} {v} viewers: part available → delivered p50 ≤ {p50} ms, p99 ≤ {p99} ms",
                kind.name()
            );
        }
        levels.push(level);
        std::thread::sleep(Duration::from_secs(2));
    }
    stop.store(true, Ordering::Relaxed);
    if let Ok(Err(e)) = publisher.join() {
        crate::progress!("egress: publisher failed: {e:#}");
    }
    server.stop();
    Ok(Egress {
        kind,
        rss0,
        cpu0,
        levels,
    })
}

/// Scenario 2 on both servers.
pub fn run(setup: &Setup, media: &Arc<Media>, cfg: &Config) -> anyhow::Result<Vec<Egress>> {
    cfg.servers
        .iter()
        .map(|&k| run_one(k, setup, media, cfg))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::quantiles;

    #[test]
    fn quantiles_come_from_the_window_between_two_scrapes() {
        let before = [(0.001, 10), (0.002, 10), (0.005, 10), (f64::INFINITY, 10)];
        // 100 new: 90 within 1 ms, 9 more within 2 ms, 1 within 5 ms.
        let after = [
            (0.001, 100),
            (0.002, 109),
            (0.005, 110),
            (f64::INFINITY, 110),
        ];
        assert_eq!(quantiles(&before, &after), Some((1.0, 2.0)));
        assert_eq!(quantiles(&after, &after), None);
    }
}
