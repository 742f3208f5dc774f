//! `weir-bench outputs`: relay fan-out (multistreaming), weir against nginx-rtmp's `push`.
//!
//! One publisher (the live scenario's 720p30 2.5 Mb/s media, replayed in real time by
//! the bench's RTMP client) goes to the server under test, which relays it to D
//! destinations. Every destination is a stream on one sink of the bench's own
//! ([`sink`]), the same for both servers. Per D and server: the server's CPU
//! (core-seconds per second, its processes only), its memory, the added latency of
//! each video frame (sent by the publisher → read by the sink, matched by a hash of the
//! coded bytes, p50/p99 over all destinations) and the frames each destination got
//! against those sent. Both servers also package the stream for viewers (weir LL-HLS,
//! nginx HLS), as in production. Then [`recording`]: one broadcast recorded, against
//! the same unrecorded (`--no-recording` skips it).

mod recording;
pub mod sink;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use serde_json::json;

use crate::api::client::Conn;
use crate::flv::Media;
use crate::procstat;
use crate::progress;
use crate::publisher::{self, Publish};
use crate::weirproc::Weir;

const README_BEGIN: &str = "<!-- outputs-results:begin (written by weir-bench outputs) -->";
const README_END: &str = "<!-- outputs-results:end -->";
const RTMP_MODULE: &str = "/usr/lib/nginx/modules/ngx_rtmp_module.so";

/// Settings of a run.
#[derive(Debug, Clone)]
struct Config {
    quick: bool,
    secs: f64,
    destinations: Vec<usize>,
    media: Option<PathBuf>,
    readme: Option<bool>,
    /// Also measure recording (`--no-recording`: relays only).
    recording: bool,
}

impl Config {
    fn parse(args: &[String]) -> anyhow::Result<Self> {
        let quick = args.iter().any(|a| a == "--quick");
        let mut c = Config {
            quick,
            secs: if quick { 10.0 } else { 30.0 },
            destinations: if quick {
                vec![1, 8]
            } else {
                vec![1, 4, 16, 32]
            },
            media: None,
            readme: None,
            recording: true,
        };
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let mut value = || it.next().with_context(|| format!("{a} needs a value"));
            match a.as_str() {
                "--quick" => {}
                "--secs" => c.secs = value()?.parse()?,
                "--destinations" => {
                    c.destinations = value()?
                        .split(',')
                        .map(str::parse)
                        .collect::<Result<_, _>>()?
                }
                "--media" => c.media = Some(PathBuf::from(value()?)),
                "--readme" => c.readme = Some(true),
                "--no-readme" => c.readme = Some(false),
                "--no-recording" => c.recording = false,
                other => bail!("unknown flag {other} (see bench/README.md, outputs)"),
            }
        }
        ensure!(c.secs >= 3.0, "--secs must be at least 3");
        Ok(c)
    }
}

/// One measured run.
#[derive(Debug, Clone)]
struct Run {
    server: &'static str,
    destinations: usize,
    cores: f64,
    rss_mib: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// Smallest share of the frames sent that a destination got.
    min_received: f64,
}

/// The server under test, relaying to `sink`.
enum Server {
    Weir(Weir),
    Nginx(Child),
}

impl Server {
    fn procs(&self) -> procstat::Server {
        match self {
            Server::Weir(w) => procstat::Server {
                pid: w.child.id(),
                with_children: false,
            },
            Server::Nginx(c) => procstat::Server {
                pid: c.id(),
                with_children: true,
            },
        }
    }

    fn stop(self) {
        match self {
            Server::Weir(w) => w.stop(),
            Server::Nginx(mut c) => {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

/// weir with a channel whose D destinations are streams `d0…` on the sink; returns it,
/// its RTMP address and the stream key to publish with.
fn start_weir(
    work: &std::path::Path,
    bin: &std::path::Path,
    sink: u16,
    d: usize,
) -> anyhow::Result<(Server, std::net::SocketAddr, String)> {
    let tag = format!("outputs-{d}");
    let w = Weir::start(
        bin,
        work,
        &tag,
        None,
        &[
            "--relay-allow-internal".into(),
            "true".into(),
            // Creating many destinations in a row is not what the API's limits are for.
            "--api-rate-per-ip".into(),
            "1000".into(),
            "--api-rate-per-user".into(),
            "1000".into(),
        ],
    )?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(w.api).is_err() {
        ensure!(
            Instant::now() < deadline,
            "weir's API did not listen on {}",
            w.api
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (token, channel) = crate::api::account(w.api.port(), &tag)?;
    let mut c = Conn::connect(w.api.port())?;
    let v = c.graphql(
        Some(&token),
        "mutation($c: ID!) { issueStreamKey(channelId: $c) { secret } }",
        json!({ "c": channel }),
    )?;
    let key = v["data"]["issueStreamKey"]["secret"]
        .as_str()
        .with_context(|| format!("issueStreamKey: {v}"))?
        .to_owned();
    for i in 0..d {
        let v = c.graphql(
            Some(&token),
            "mutation($c: ID!, $i: DestinationInput!) { createDestination(channelId: $c, input: $i) { id } }",
            json!({ "c": channel, "i": { "name": format!("d{i}"), "platform": "rtmp",
                "url": format!("rtmp://127.0.0.1:{sink}/live"), "streamKey": format!("d{i}") } }),
        )?;
        ensure!(v.get("errors").is_none(), "createDestination: {v}");
    }
    let rtmp = w.rtmp;
    Ok((Server::Weir(w), rtmp, key))
}

/// nginx-rtmp (one worker, HLS on as in the live scenario) pushing to D sink streams.
fn start_nginx(
    work: &std::path::Path,
    sink: u16,
    d: usize,
) -> anyhow::Result<(Server, std::net::SocketAddr, String)> {
    ensure!(
        std::path::Path::new(RTMP_MODULE).exists(),
        "{RTMP_MODULE} is missing: install libnginx-mod-rtmp"
    );
    let dir = work.join(format!("nginx-outputs-{d}"));
    std::fs::create_dir_all(dir.join("hls"))?;
    let port = crate::servers::free_port()?;
    let dd = dir.display();
    let mut push = String::new();
    for i in 0..d {
        let _ = writeln!(push, "      push rtmp://127.0.0.1:{sink}/live/d{i};");
    }
    let conf = format!(
        "load_module {RTMP_MODULE};\ndaemon off;\nmaster_process off;\nworker_processes 1;\n\
         pid {dd}/nginx.pid;\nerror_log {dd}/error.log info;\nevents {{ worker_connections 4096; }}\n\
         rtmp {{\n  server {{\n    listen 127.0.0.1:{port};\n    chunk_size 4096;\n    \
         application live {{\n      live on;\n      record off;\n      hls on;\n      \
         hls_path {dd}/hls;\n      hls_fragment 1s;\n      hls_playlist_length 10s;\n{push}    }}\n  }}\n}}\n"
    );
    let path = dir.join("nginx.conf");
    std::fs::write(&path, conf)?;
    let child = Command::new("nginx")
        .arg("-p")
        .arg(&dir)
        .arg("-e")
        .arg(dir.join("error.log"))
        .arg("-c")
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting nginx")?;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(addr).is_err() {
        ensure!(Instant::now() < deadline, "nginx did not listen on {addr}");
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok((Server::Nginx(child), addr, "bench".into()))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Publishes for `secs`, measures after a warm-up of a third of it.
fn measure(
    (server, rtmp, key): (Server, std::net::SocketAddr, String),
    name: &'static str,
    d: usize,
    sink: &sink::Sink,
    media: &Arc<Media>,
    secs: f64,
) -> anyhow::Result<Run> {
    let procs = server.procs();
    let warmup = Duration::from_secs_f64(secs / 3.0);
    let publish = Publish {
        rtmp,
        app: "live".into(),
        stream_name: key,
        start_at: Instant::now() + Duration::from_millis(300),
        duration: Duration::from_secs_f64(secs + secs / 3.0),
        stop: Arc::new(AtomicBool::new(false)),
    };
    let m = media.clone();
    let publisher = std::thread::spawn(move || publisher::run(&publish, &m));
    std::thread::sleep(warmup);
    let _ = sink.take();
    let (cpu0, t0) = (procs.cpu_secs(), Instant::now());
    std::thread::sleep(Duration::from_secs_f64(secs));
    let (cpu1, t1) = (procs.cpu_secs(), Instant::now());
    let rss = procs.rss_bytes();
    let report = publisher
        .join()
        .map_err(|_| anyhow::anyhow!("publisher panicked"))??;
    std::thread::sleep(Duration::from_millis(500));
    let arrivals = sink.take();
    server.stop();
    // hash → send times, in order.
    let mut sends: std::collections::HashMap<u64, Vec<Instant>> = Default::default();
    let mut sent_in_window = 0usize;
    for ((_, at), h) in report.sends.iter().zip(&report.video_hashes) {
        sends.entry(*h).or_default().push(*at);
        if *at >= t0 && *at < t1 {
            sent_in_window += 1;
        }
    }
    let mut lat = Vec::new();
    let mut per_dest: std::collections::HashMap<String, usize> = Default::default();
    for a in &arrivals {
        let Some(times) = sends.get(&a.hash) else {
            continue;
        };
        // The latest send of that frame before it arrived (the media loops).
        let Some(sent) = times.iter().rev().find(|t| **t <= a.at) else {
            continue;
        };
        if *sent >= t0 && *sent < t1 {
            lat.push(a.at.duration_since(*sent).as_secs_f64() * 1000.0);
            *per_dest.entry(a.stream.clone()).or_default() += 1;
        }
    }
    lat.sort_by(f64::total_cmp);
    let min_received = (0..d)
        .map(|i| per_dest.get(&format!("d{i}")).copied().unwrap_or(0))
        .min()
        .unwrap_or(0) as f64
        / sent_in_window.max(1) as f64;
    Ok(Run {
        server: name,
        destinations: d,
        cores: (cpu1 - cpu0) / (t1 - t0).as_secs_f64(),
        rss_mib: rss as f64 / (1 << 20) as f64,
        p50_ms: percentile(&lat, 0.5),
        p99_ms: percentile(&lat, 0.99),
        min_received,
    })
}

fn table(runs: &[Run]) -> String {
    let mut t = String::from(
        "| destinations | server | server CPU (cores) | CPU nginx-rtmp / weir | added latency p50 / p99 (ms) | frames received (worst destination) | RSS (MiB) |\n\
         |---:|---|---:|---:|---:|---:|---:|\n",
    );
    for r in runs {
        let peer = runs
            .iter()
            .find(|o| o.destinations == r.destinations && o.server != r.server);
        let ratio = match (r.server, peer) {
            ("weir", Some(p)) if r.cores > 0.0 => format!("{:.2}", p.cores / r.cores),
            _ => String::new(),
        };
        let _ = writeln!(
            t,
            "| {} | {} | {:.3} | {ratio} | {:.1} / {:.1} | {:.1} % | {:.0} |",
            r.destinations,
            r.server,
            r.cores,
            r.p50_ms,
            r.p99_ms,
            r.min_received * 100.0,
            r.rss_mib
        );
    }
    t
}

/// Runs the scenario.
pub fn run(args: &[String]) -> anyhow::Result<()> {
    let cfg = Config::parse(args)?;
    let bin = std::env::var_os("WEIR_BIN")
        .map(PathBuf::from)
        .context("set WEIR_BIN to the weir binary (cargo xtask bench outputs does)")?;
    let media_path = crate::live_media(cfg.media.as_deref(), None)?;
    let media = Arc::new(Media::load(&media_path)?);
    let work = std::env::temp_dir().join(format!("weir-bench-outputs-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let sink = sink::Sink::start()?;
    progress!(
        "{} run: {:.0} kbit/s source, {} s per run, destinations {:?}, sink on :{}",
        if cfg.quick { "quick" } else { "full" },
        media.bitrate() as f64 / 1000.0,
        cfg.secs,
        cfg.destinations,
        sink.port
    );
    let mut runs = Vec::new();
    for &d in &cfg.destinations {
        for name in ["weir", "nginx-rtmp"] {
            progress!("{name}: 1 stream → {d} destinations");
            let started = match name {
                "weir" => start_weir(&work, &bin, sink.port, d)?,
                _ => start_nginx(&work, sink.port, d)?,
            };
            let r = measure(started, name, d, &sink, &media, cfg.secs)?;
            progress!(
                "  {:.3} cores, p50 {:.1} ms p99 {:.1} ms, worst destination got {:.1} % of the frames",
                r.cores,
                r.p50_ms,
                r.p99_ms,
                r.min_received * 100.0
            );
            runs.push(r);
        }
    }
    let recording = if cfg.recording {
        progress!("weir: 1 stream recorded, and the same with recording off");
        let r = recording::measure(&bin, &work, &media, cfg.secs.max(20.0))?;
        progress!(
            "  {:.4} bytes written per media byte, {:.0} MiB per stream-hour, fsync {} ms over {} segments",
            r.overhead(),
            r.mib_per_hour(),
            r.fsync_ms,
            r.segments
        );
        Some(r)
    } else {
        None
    };
    if std::env::var_os("WEIR_BENCH_DEBUG").is_none() {
        let _ = std::fs::remove_dir_all(&work);
    } else {
        progress!("kept {}", work.display());
    }
    let machine = crate::report::machine();
    let mut table = table(&runs);
    if let Some(r) = &recording {
        table.push('\n');
        table.push_str(&r.table());
    }
    println!(
        "\nweir-bench outputs ({}) — {machine}\n\n{table}",
        if cfg.quick { "quick" } else { "full" }
    );
    if cfg.readme.unwrap_or(!cfg.quick) {
        let readme = crate::bench_dir().join("README.md");
        let section = format!(
            "`cargo xtask bench outputs`{} — {machine}.\n\n{table}",
            if cfg.quick { " --quick" } else { "" }
        );
        if crate::report::replace_marked(&readme, README_BEGIN, README_END, &section)? {
            progress!("results written to {}", readme.display());
        } else {
            progress!(
                "{} has no outputs-results markers: results not written",
                readme.display()
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::sink::frame_hash;

    #[test]
    fn frames_are_matched_whatever_their_header_says() {
        let a = [0x27, 1, 0, 0, 0x21, 9, 8, 7];
        let b = [0x27, 1, 0, 0, 0x00, 9, 8, 7]; // another composition time
        assert_eq!(frame_hash(&a), frame_hash(&b));
        assert_ne!(frame_hash(&a), frame_hash(&[0x27, 1, 0, 0, 0, 9, 8, 6]));
        assert_eq!(frame_hash(&[0x27, 0, 0, 0, 0, 1]), None, "sequence header");
        assert_eq!(frame_hash(&[0xaf, 1, 2]), None, "audio");
    }
}
