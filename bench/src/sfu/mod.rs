//! `weir-bench sfu`: one WebRTC publisher (H.264 baseline ~1.4 Mbit/s + Opus) fanned out
//! to N receive-only subscribers, weir (WHIP → WHEP) against Janus's videoroom, driven by
//! the same str0m load client; see bench/README.md ("SFU (WHEP fan-out)").
//!
//! ```text
//! weir-bench sfu [--quick] [--subscribers 50,100,200,…] [--secs S] [--settle-secs S]
//!                [--servers weir,janus] [--janus-event-loops N] [--no-pin] [--keep]
//!                [--readme | --no-readme]
//! ```
//!
//! Each server gets a fresh process pinned to CPU 0; the client runs on the other CPUs.
//! The ramp adds subscribers step by step; a step that loses ≥ 1 % of the frames, or
//! whose subscribers do not all connect, ends the ramp for that server.

mod client;
mod janus;
mod media;
mod report;
mod signal;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use str0m::media::Direction;
use tokio::sync::watch;

use crate::procstat;
use crate::progress;
use crate::weirproc::Weir;
use client::{Peer, Shared};
use media::TestMedia;
pub use report::Step;

const README_BEGIN: &str = "<!-- sfu-results:begin (written by weir-bench sfu) -->";
const README_END: &str = "<!-- sfu-results:end -->";
/// A step losing this share of frames or more ends the ramp.
const LOSS_LIMIT: f64 = 0.01;

/// The servers compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    /// weir: WHIP in, WHEP out.
    Weir,
    /// Janus's videoroom plugin over its HTTP API.
    Janus,
}

impl Server {
    /// Its name in tables.
    pub fn name(self) -> &'static str {
        match self {
            Self::Weir => "weir",
            Self::Janus => "janus",
        }
    }
}

/// Settings of an `sfu` run.
#[derive(Debug, Clone)]
pub struct Config {
    quick: bool,
    subscribers: Vec<usize>,
    secs: f64,
    settle_secs: f64,
    servers: Vec<Server>,
    janus_event_loops: u32,
    /// weir's `--webrtc-bwe` (viewers' bandwidth estimation and pacing).
    weir_bwe: String,
    pin: bool,
    keep: bool,
    readme: Option<bool>,
}

impl Config {
    fn parse(args: &[String]) -> anyhow::Result<Self> {
        let quick = args.iter().any(|a| a == "--quick");
        let mut c = Self {
            quick,
            subscribers: if quick {
                vec![25, 50]
            } else {
                vec![50, 100, 200, 300, 400, 500, 600, 800]
            },
            secs: if quick { 5.0 } else { 10.0 },
            settle_secs: if quick { 3.0 } else { 4.0 },
            servers: vec![Server::Weir, Server::Janus],
            janus_event_loops: 1,
            weir_bwe: "auto".into(),
            pin: true,
            keep: false,
            readme: None,
        };
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
            match flag.as_str() {
                "--quick" => {}
                "--no-pin" => c.pin = false,
                "--keep" => c.keep = true,
                "--readme" => c.readme = Some(true),
                "--no-readme" => c.readme = Some(false),
                "--secs" => c.secs = value()?.parse()?,
                "--settle-secs" => c.settle_secs = value()?.parse()?,
                "--janus-event-loops" => c.janus_event_loops = value()?.parse()?,
                "--weir-bwe" => c.weir_bwe = value()?.clone(),
                "--subscribers" => {
                    c.subscribers = value()?
                        .split(',')
                        .map(|n| n.trim().parse::<usize>())
                        .collect::<Result<_, _>>()?;
                    c.subscribers.sort_unstable();
                    ensure!(
                        c.subscribers.first().is_some_and(|&n| n >= 1),
                        "--subscribers needs counts ≥ 1"
                    );
                }
                "--servers" => {
                    c.servers = value()?
                        .split(',')
                        .map(|s| match s {
                            "weir" => Ok(Server::Weir),
                            "janus" => Ok(Server::Janus),
                            other => Err(anyhow::anyhow!("unknown server {other} (weir, janus)")),
                        })
                        .collect::<anyhow::Result<_>>()?;
                }
                other => bail!("unknown flag {other} (see bench/src/sfu/mod.rs)"),
            }
        }
        ensure!(c.secs >= 2.0, "--secs must be ≥ 2");
        Ok(c)
    }
}

/// What one server's run produced.
#[derive(Debug, Clone)]
pub struct ServerRun {
    /// Which server.
    pub server: Server,
    /// Its CPU and RSS with the publisher and no subscriber.
    pub idle_cores: f64,
    /// RSS with the publisher only, bytes.
    pub idle_rss: u64,
    /// The ramp's steps.
    pub steps: Vec<Step>,
    /// Why the ramp ended.
    pub ended: String,
}

/// Runs the scenario.
pub fn run(args: &[String]) -> anyhow::Result<()> {
    let cfg = Config::parse(args)?;
    let weir_bin = std::env::var_os("WEIR_BIN")
        .map(PathBuf::from)
        .or_else(|| Some(std::env::current_exe().ok()?.parent()?.join("weir")))
        .context("set WEIR_BIN to the weir binary")?;
    ensure!(
        weir_bin.exists() || !cfg.servers.contains(&Server::Weir),
        "{} does not exist: build weir or set WEIR_BIN",
        weir_bin.display()
    );
    let server_cpu = if cfg.pin { pin_self() } else { None };
    let media = Arc::new(TestMedia::load()?);
    progress!(
        "{} run; media {} video frames, {} Opus packets, {:.0} kbit/s; servers {}",
        if cfg.quick { "quick" } else { "full" },
        media.video.len(),
        media.audio.len(),
        media.bitrate() / 1000.0,
        match server_cpu {
            Some(c) => format!("pinned to CPU {c}, the client on the others"),
            None => "not pinned".into(),
        }
    );
    let cert = str0m::crypto::from_feature_flags()
        .dtls_provider
        .generate_certificate()
        .context("str0m cannot generate a DTLS certificate")?;
    let work = std::env::temp_dir().join(format!("weir-bench-sfu-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let load_before = report::loadavg();
    let mut runs = Vec::new();
    let outcome = (|| -> anyhow::Result<()> {
        for &server in &cfg.servers {
            runs.push(run_server(
                server, &cfg, &weir_bin, &work, server_cpu, &media, &cert,
            )?);
        }
        Ok(())
    })();
    if cfg.keep || outcome.is_err() {
        progress!("scratch directory (logs) kept: {}", work.display());
    } else {
        let _ = std::fs::remove_dir_all(&work);
    }
    outcome?;
    let text = report::render(&runs, &cfg, &media, server_cpu.is_some(), &load_before);
    println!("\n{text}");
    if cfg.readme.unwrap_or(!cfg.quick) {
        let readme = crate::bench_dir().join("README.md");
        if !crate::report::replace_marked(&readme, README_BEGIN, README_END, &text)? {
            let old = std::fs::read_to_string(&readme)?;
            std::fs::write(
                &readme,
                format!("{}\n\n{README_BEGIN}\n{text}{README_END}\n", old.trim_end()),
            )?;
        }
        progress!("results written to {}", readme.display());
    }
    Ok(())
}

/// Pins this process to CPUs 1.. and returns the servers' CPU (0); None on one CPU.
fn pin_self() -> Option<usize> {
    let n = std::thread::available_parallelism().map_or(1, |n| n.get());
    if n < 2 {
        return None;
    }
    pin(std::process::id(), &format!("1-{}", n - 1)).then_some(0)
}

/// `taskset -a -p -c CPUS PID` (every thread of the process).
fn pin(pid: u32, cpus: &str) -> bool {
    Command::new("taskset")
        .args(["-a", "-p", "-c", cpus, &pid.to_string()])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The server under test and how peers reach it.
enum Target {
    Weir {
        weir: Weir,
        key: String,
    },
    Janus {
        janus: janus::Janus,
        session: janus::Session,
        feed: u64,
    },
}

impl Target {
    /// The local address the client's peers bind to.
    fn client_ip(&self) -> std::net::IpAddr {
        match self {
            Self::Weir { .. } => std::net::IpAddr::from([127, 0, 0, 1]),
            Self::Janus { janus, .. } => janus.ice_ip,
        }
    }

    fn pid(&self) -> u32 {
        match self {
            Self::Weir { weir, .. } => weir.child.id(),
            Self::Janus { janus, .. } => janus.pid(),
        }
    }
}

fn run_server(
    server: Server,
    cfg: &Config,
    weir_bin: &std::path::Path,
    work: &std::path::Path,
    cpu: Option<usize>,
    media: &Arc<TestMedia>,
    cert: &str0m::config::DtlsCert,
) -> anyhow::Result<ServerRun> {
    progress!("{}: starting", server.name());
    let mut target = match server {
        Server::Weir => {
            let bwe = cfg.weir_bwe.clone();
            let extra: Vec<String> = [
                "--webrtc-max-sessions-per-ip",
                "1000000",
                "--webrtc-max-sessions",
                "1000000",
                "--webrtc-bwe",
                &bwe,
            ]
            .map(str::to_owned)
            .to_vec();
            let weir = Weir::start(weir_bin, work, "sfu", None, &extra)?;
            if let Some(c) = cpu {
                ensure!(
                    pin(weir.child.id(), &c.to_string()),
                    "taskset on weir failed"
                );
            }
            let key = weir.key("bench")?;
            Target::Weir { weir, key }
        }
        Server::Janus => {
            let janus = janus::Janus::start(work, cpu, cfg.janus_event_loops)?;
            let session = janus::Session::create(janus.http)?;
            Target::Janus {
                janus,
                session,
                feed: 0,
            }
        }
    };
    let procs = procstat::Server {
        pid: target.pid(),
        with_children: false,
    };
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .saturating_sub(1)
        .max(1);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name("sfu-client")
        .enable_all()
        .build()?;
    // The publisher on its own thread, so subscriber work never delays its schedule
    // more than the OS scheduler does.
    let pub_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("sfu-publisher")
        .enable_all()
        .build()?;
    let shared = Arc::new(Shared::default());
    let (stop_tx, stop_rx) = watch::channel(false);

    // The publisher.
    let mut peer = Peer::new(cert, target.client_ip())?;
    let offer = peer.offer(Direction::SendOnly)?;
    let answer = match &mut target {
        Target::Weir { weir, key } => {
            signal::post_offer(weir.http, &format!("/whip/{key}"), &offer.sdp)?
        }
        Target::Janus { session, feed, .. } => {
            let h = session.attach()?;
            let (answer, id) = session.publish(h, &offer.sdp)?;
            *feed = id;
            answer
        }
    };
    peer.accept_answer(offer.pending, &answer)?;
    client::spawn_publisher(
        pub_rt.handle(),
        peer,
        offer.mids,
        media.clone(),
        shared.clone(),
        stop_rx.clone(),
    )?;
    let deadline = Instant::now() + Duration::from_secs(15);
    while !shared.publishing.load(Ordering::Relaxed) {
        ensure!(
            Instant::now() < deadline,
            "{}: the publisher did not connect in 15 s",
            server.name()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_secs(3));
    let (c0, t0) = (procs.cpu_secs(), Instant::now());
    std::thread::sleep(Duration::from_secs(3));
    let idle_cores = (procs.cpu_secs() - c0) / t0.elapsed().as_secs_f64();
    let idle_rss = procs.rss_bytes();
    progress!(
        "{}: publishing; server {idle_cores:.3} cores, {:.1} MiB with no subscriber",
        server.name(),
        idle_rss as f64 / 1048576.0
    );

    let mut steps = Vec::new();
    let mut ended = "ramp complete".to_owned();
    let mut joined = 0usize;
    for &n in &cfg.subscribers {
        let join_start = Instant::now();
        while joined < n {
            let mut peer = Peer::new(cert, target.client_ip())?;
            match &mut target {
                Target::Weir { weir, .. } => {
                    let offer = peer.offer(Direction::RecvOnly)?;
                    let answer = signal::post_offer(weir.http, "/whep/bench", &offer.sdp)?;
                    peer.accept_answer(offer.pending, &answer)?;
                }
                Target::Janus { session, feed, .. } => {
                    let h = session.attach()?;
                    let offer = session.subscribe(h, *feed)?;
                    let answer = peer.accept_offer(&offer)?;
                    session.start(h, &answer)?;
                }
            }
            client::spawn_subscriber(rt.handle(), peer, shared.clone(), stop_rx.clone())?;
            joined += 1;
        }
        let join_secs = join_start.elapsed().as_secs_f64();
        let deadline = Instant::now() + Duration::from_secs(20);
        while (shared.connected.load(Ordering::Relaxed) as usize) < n && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_secs_f64(cfg.settle_secs));
        let step = measure(n, join_secs, cfg.secs, &shared, &procs, idle_rss);
        progress!("{}: {}", server.name(), step.line());
        let failed = step.connected < n || step.loss() >= LOSS_LIMIT;
        steps.push(step);
        if failed {
            ended = format!("stopped at {n}: loss ≥ 1 % or not all connected");
            break;
        }
    }
    let _ = stop_tx.send(true);
    std::thread::sleep(Duration::from_millis(300));
    rt.shutdown_timeout(Duration::from_secs(2));
    pub_rt.shutdown_timeout(Duration::from_secs(2));
    drop(target);
    Ok(ServerRun {
        server,
        idle_cores,
        idle_rss,
        steps,
        ended,
    })
}

/// One measured window with `n` subscribers.
fn measure(
    n: usize,
    join_secs: f64,
    secs: f64,
    shared: &Shared,
    procs: &procstat::Server,
    idle_rss: u64,
) -> Step {
    if let Ok(mut l) = shared.latencies.lock() {
        l.clear();
    }
    let me = procstat::Server {
        pid: std::process::id(),
        with_children: false,
    };
    let before = shared.counts();
    let (cpu0, me0, t0) = (procs.cpu_secs(), me.cpu_secs(), Instant::now());
    shared.window.store(true, Ordering::Relaxed);
    std::thread::sleep(Duration::from_secs_f64(secs));
    shared.window.store(false, Ordering::Relaxed);
    let elapsed = t0.elapsed().as_secs_f64();
    let delta = shared.counts() - before;
    let server_cores = (procs.cpu_secs() - cpu0) / elapsed;
    let client_cores = (me.cpu_secs() - me0) / elapsed;
    let mut lat: Vec<f64> = shared
        .latencies
        .lock()
        .map(|l| l.iter().map(|&us| f64::from(us) / 1000.0).collect())
        .unwrap_or_default();
    lat.sort_by(f64::total_cmp);
    let rss = procs.rss_bytes();
    Step {
        n,
        connected: (shared.connected.load(Ordering::Relaxed) as usize).min(n),
        failed: shared.failed.load(Ordering::Relaxed),
        join_secs,
        secs: elapsed,
        counts: delta,
        server_cores,
        client_cores,
        p50_ms: crate::stats::percentile(&lat, 50.0),
        p99_ms: crate::stats::percentile(&lat, 99.0),
        samples: lat.len(),
        unmatched: shared.unmatched.load(Ordering::Relaxed),
        rss,
        kib_per_sub: (rss as f64 - idle_rss as f64) / 1024.0 / n as f64,
    }
}
