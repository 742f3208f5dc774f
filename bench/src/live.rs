//! Scenarios 1 and 3: ingest-to-available latency of one stream, and how many real-time
//! publishers one core packages before that latency degrades.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::Config;
use crate::flv::Media;
use crate::poller::{self, Mode};
use crate::procstat;
use crate::publisher::{self, Publish};
use crate::servers::{Kind, Server, Setup};
use crate::stats::{self, Latency};

/// Media time left out at the start of every stream (client start-up).
const SKIP_S: f64 = 2.0;

/// One measured run of `publishers` streams.
#[derive(Debug, Clone)]
pub struct StreamRun {
    /// Publishers.
    pub publishers: usize,
    /// Latency on stream 0.
    pub latency: Latency,
    /// Worst publisher lateness.
    pub max_lag: Duration,
    /// Publishers that fell behind real time (or failed).
    pub behind: usize,
    /// First publisher error, if any.
    pub error: Option<String>,
    /// Server CPU over the run, in cores.
    pub server_cores: f64,
    /// This benchmark's own CPU over the run, in cores.
    pub client_cores: f64,
}

/// How a server's client follows a stream.
pub fn mode(kind: Kind, cfg: &Config) -> Mode {
    match kind {
        Kind::Weir => Mode::BlockingReload,
        Kind::Nginx => Mode::Poll(Duration::from_millis(cfg.nginx_poll_ms)),
    }
}

/// Publishes `k` streams for `secs` (starts spread over one GOP), measuring the
/// latency of stream 0 with the server's client.
pub fn run_streams(
    server: &Server,
    media: &Arc<Media>,
    k: usize,
    tag: &str,
    secs: f64,
    cfg: &Config,
) -> anyhow::Result<StreamRun> {
    let channels: Vec<String> = (0..k).map(|i| format!("{tag}-{i}")).collect();
    let names = channels
        .iter()
        .map(|c| server.stream_name(c))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let stop = Arc::new(AtomicBool::new(false));
    let (timeline, poll) = poller::spawn(
        server.http,
        server.playlist_path(&channels[0]),
        mode(server.kind, cfg),
        stop.clone(),
    );
    let procs = server.procs();
    let (server_cpu0, client_cpu0) = (procs.cpu_secs(), procstat::cpu_secs(std::process::id())?);
    let t0 = Instant::now() + Duration::from_millis(200);
    let stagger = Duration::from_millis(2000 / k as u64);
    let publishers: Vec<_> = names
        .into_iter()
        .enumerate()
        .map(|(i, stream_name)| {
            let p = Publish {
                rtmp: server.rtmp,
                app: "live".into(),
                stream_name,
                start_at: t0 + stagger * i as u32,
                duration: Duration::from_secs_f64(secs),
                stop: stop.clone(),
            };
            let media = media.clone();
            std::thread::spawn(move || publisher::run(&p, &media))
        })
        .collect();
    let mut reports = Vec::with_capacity(k);
    let mut behind = 0;
    let mut max_lag = Duration::ZERO;
    let mut error = None;
    for p in publishers {
        match p
            .join()
            .map_err(|_| anyhow::anyhow!("publisher panicked"))?
        {
            Ok(r) => {
                max_lag = max_lag.max(r.max_lag);
                if r.max_lag > Duration::from_millis(cfg.lag_limit_ms) {
                    behind += 1;
                }
                reports.push(r);
            }
            Err(e) => {
                behind += 1;
                error.get_or_insert(format!("{e:#}"));
                reports.push(publisher::Report::default());
            }
        }
    }
    let elapsed = t0.elapsed().as_secs_f64().max(1e-3);
    let server_cores = (procs.cpu_secs() - server_cpu0) / elapsed;
    let client_cores = (procstat::cpu_secs(std::process::id())? - client_cpu0) / elapsed;
    // The poller needs a moment for the last objects; then it is left to end by itself.
    std::thread::sleep(Duration::from_millis(1500));
    stop.store(true, Ordering::Relaxed);
    if poll.is_finished()
        && let Ok(Err(e)) = poll.join()
    {
        error.get_or_insert(format!("poller: {e:#}"));
    }
    let objects = timeline
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .clone();
    let sends = reports
        .first()
        .map(|r| r.sends.as_slice())
        .unwrap_or_default();
    let latency = stats::latency(sends, &objects, SKIP_S)
        .with_context(|| format!("{} latency", server.kind.name()))?;
    Ok(StreamRun {
        publishers: k,
        latency,
        max_lag,
        behind,
        error,
        server_cores,
        client_cores,
    })
}

fn start(kind: Kind, setup: &Setup, tag: &str) -> anyhow::Result<Server> {
    match kind {
        Kind::Weir => Server::weir(setup, 1, tag),
        Kind::Nginx => Server::nginx(setup, tag),
    }
}

/// Scenario 1: one publisher, latency per server.
pub fn latency(
    setup: &Setup,
    media: &Arc<Media>,
    cfg: &Config,
) -> anyhow::Result<Vec<(Kind, StreamRun)>> {
    let mut out = Vec::new();
    for &kind in &cfg.servers {
        crate::progress!(
            "latency: {} — 1 publisher for {:.0} s",
            kind.name(),
            cfg.latency_secs
        );
        let server = start(kind, setup, "latency")?;
        let run = run_streams(&server, media, 1, "lat", cfg.latency_secs, cfg)?;
        crate::progress!(
            "latency: {} min {:.0} ms, p50 {:.0} ms, p95 {:.0} ms, p99 {:.0} ms, max {:.0} ms over {} frames \
             (objects of {:.0} ms)",
            kind.name(),
            run.latency.min,
            run.latency.p50,
            run.latency.p95,
            run.latency.p99,
            run.latency.max,
            run.latency.n,
            run.latency.object_ms
        );
        if let Some(e) = &run.error {
            crate::progress!("latency: {}: {e}", kind.name());
        }
        server.stop();
        out.push((kind, run));
    }
    Ok(out)
}

/// Past this count the ramp grows linearly, by this much a step.
const RAMP_LINEAR_FROM: usize = 256;

/// The ramp of publisher counts: 1, 2, 4, … 256, then 512, 768, 1024, … (steps of 256, so
/// the capacity is found to within a quarter of the first doubling that fails) up to
/// `max`, always including `max`.
pub fn ramp(max: usize) -> Vec<usize> {
    let mut v: Vec<usize> = std::iter::successors(Some(1usize), |&k| {
        Some(if k < RAMP_LINEAR_FROM {
            k * 2
        } else {
            k + RAMP_LINEAR_FROM
        })
    })
    .take_while(|&k| k < max)
    .collect();
    v.push(max.max(1));
    v
}

impl Capacity {
    /// Server CPU per publisher (core-ms per second) at the largest passing step, when
    /// that step used enough CPU (0.1 core) for /proc's tick resolution to be fine enough.
    pub fn cpu_per_publisher_ms(&self) -> Option<f64> {
        let (run, _) = self
            .steps
            .iter()
            .rfind(|(r, ok)| *ok && r.publishers == self.max_ok)?;
        (run.server_cores >= 0.1).then(|| run.server_cores * 1000.0 / run.publishers as f64)
    }
}

/// Result of the publisher ramp on one server.
#[derive(Debug, Clone)]
pub struct Capacity {
    /// Which server.
    pub kind: Kind,
    /// Every step run.
    pub steps: Vec<(StreamRun, bool)>,
    /// Largest passing K (0 if even one failed).
    pub max_ok: usize,
    /// Why the ramp ended without a failing step (max_ok is then a lower bound).
    pub capped: Option<&'static str>,
    /// The p95 bound that was applied, in ms.
    pub bound_ms: f64,
}

/// Scenario 3: ramp K publishers on one core until latency degrades.
pub fn capacity(setup: &Setup, media: &Arc<Media>, cfg: &Config) -> anyhow::Result<Vec<Capacity>> {
    let bench_cpus = crate::bench_cpus();
    let mut out = Vec::new();
    for &kind in &cfg.servers {
        let server = start(kind, setup, "capacity")?;
        let mut cap = Capacity {
            kind,
            steps: Vec::new(),
            max_ok: 0,
            capped: Some("ramp ended"),
            bound_ms: cfg.part_target_ms as f64 + 150.0,
        };
        let steps = match &cfg.ramp {
            Some(list) => list.clone(),
            None => ramp(cfg.publishers_max),
        };
        for k in steps {
            crate::progress!(
                "publishers: {} — K={k} for {:.0} s",
                kind.name(),
                cfg.step_secs
            );
            let run = run_streams(&server, media, k, &format!("k{k}"), cfg.step_secs, cfg)?;
            if kind == Kind::Nginx && k == 1 {
                cap.bound_ms = run.latency.p95 * 1.5;
            }
            let ok = run.behind == 0 && run.latency.n > 0 && run.latency.p95 <= cap.bound_ms;
            // The bench shares the machine: when it uses nearly all of its CPUs, it is
            // the bottleneck and the step says nothing about the server.
            let client_bound = run.client_cores >= 0.85 * bench_cpus as f64;
            crate::progress!(
                "publishers: {} K={k}: p95 {:.0} ms (bound {:.0}), max lag {} ms, behind {}, server CPU {:.2} cores, \
                 bench CPU {:.2} → {}",
                kind.name(),
                run.latency.p95,
                cap.bound_ms,
                run.max_lag.as_millis(),
                run.behind,
                run.server_cores,
                run.client_cores,
                match (ok, client_bound) {
                    (true, _) => "ok",
                    (false, true) => "inconclusive: the bench is CPU-bound",
                    (false, false) => "degraded",
                }
            );
            if let Some(e) = &run.error {
                crate::progress!("publishers: {}: {e}", kind.name());
            }
            cap.steps.push((run, ok));
            if !ok {
                cap.capped = client_bound.then_some("bench CPU-bound");
                break;
            }
            cap.max_ok = k;
            if client_bound {
                cap.capped = Some("bench CPU-bound");
                break;
            }
            std::thread::sleep(Duration::from_secs(1));
        }
        server.stop();
        out.push(cap);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn ramps() {
        assert_eq!(super::ramp(1), [1]);
        assert_eq!(super::ramp(8), [1, 2, 4, 8]);
        assert_eq!(super::ramp(48), [1, 2, 4, 8, 16, 32, 48]);
        assert_eq!(
            super::ramp(1280),
            [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 768, 1024, 1280]
        );
        assert_eq!(
            super::ramp(600),
            [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 600]
        );
    }
}
