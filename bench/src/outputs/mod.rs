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
    /// Steps of S streams × D destinations each (`--grid 4x32,8x32`).
    grid: Vec<(usize, usize)>,
    /// Each step is measured this many times (medians reported).
    repeat: usize,
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
            grid: if quick {
                vec![(2, 4)]
            } else {
                vec![(4, 8), (8, 32)]
            },
            repeat: 1,
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
                "--grid" => {
                    c.grid = value()?
                        .split(',')
                        .filter(|g| !g.is_empty())
                        .map(|g| {
                            let (a, b) = g.split_once('x').context("--grid takes SxD,SxD")?;
                            anyhow::Ok((a.parse()?, b.parse()?))
                        })
                        .collect::<Result<_, _>>()?
                }
                "--repeat" => c.repeat = value()?.parse()?,
                "--media" => c.media = Some(PathBuf::from(value()?)),
                "--readme" => c.readme = Some(true),
                "--no-readme" => c.readme = Some(false),
                "--no-recording" => c.recording = false,
                other => bail!("unknown flag {other} (see bench/README.md, outputs)"),
            }
        }
        ensure!(c.secs >= 3.0, "--secs must be at least 3");
        ensure!(c.repeat >= 1, "--repeat must be at least 1");
        ensure!(
            c.grid.iter().all(|&(s, d)| s >= 1 && d >= 1),
            "--grid steps need at least one stream and one destination"
        );
        Ok(c)
    }
}

/// One measured run.
#[derive(Debug, Clone)]
struct Run {
    server: &'static str,
    streams: usize,
    /// Per stream.
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

/// A server under test, ready: where to publish, and the (application, name) of each
/// of its S streams.
struct Started {
    server: Server,
    rtmp: std::net::SocketAddr,
    publishes: Vec<(String, String)>,
}

/// The sink stream destination `i` of stream `k` pushes to.
fn sink_name(k: usize, i: usize) -> String {
    format!("s{k}d{i}")
}

/// weir with S channels, each with D destinations (sink streams `s<k>d<i>`).
fn start_weir(
    work: &std::path::Path,
    bin: &std::path::Path,
    sink: u16,
    (streams, d): (usize, usize),
    rep: usize,
) -> anyhow::Result<Started> {
    let tag = format!("outputs-{streams}x{d}-{rep}");
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
    let mut publishes = Vec::new();
    // One user (sign-ups are rate limited per address) with S channels.
    let (token, first) = crate::api::account(w.api.port(), &tag)?;
    let mut c = Conn::connect(w.api.port())?;
    for k in 0..streams {
        let channel = if k == 0 {
            first.clone()
        } else {
            let v = c.graphql(
                Some(&token),
                "mutation($s:String!){createChannel(slug:$s,title:\"bench\"){id}}",
                json!({ "s": format!("bench-{tag}-{k}") }),
            )?;
            v["data"]["createChannel"]["id"]
                .as_str()
                .with_context(|| format!("createChannel: {v}"))?
                .to_owned()
        };
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
            let name = sink_name(k, i);
            let v = c.graphql(
                Some(&token),
                "mutation($c: ID!, $i: DestinationInput!) { createDestination(channelId: $c, input: $i) { id } }",
                json!({ "c": channel, "i": { "name": name, "platform": "rtmp",
                    "url": format!("rtmp://127.0.0.1:{sink}/live"), "streamKey": name } }),
            )?;
            ensure!(v.get("errors").is_none(), "createDestination: {v}");
        }
        publishes.push(("live".to_owned(), key));
    }
    let rtmp = w.rtmp;
    Ok(Started {
        server: Server::Weir(w),
        rtmp,
        publishes,
    })
}

/// nginx-rtmp (one worker, HLS on as in the live scenario): one application per stream
/// (`s<k>`, so the pushed names do not collide), each pushing to its D sink streams.
fn start_nginx(
    work: &std::path::Path,
    sink: u16,
    (streams, d): (usize, usize),
    rep: usize,
) -> anyhow::Result<Started> {
    ensure!(
        std::path::Path::new(RTMP_MODULE).exists(),
        "{RTMP_MODULE} is missing: install libnginx-mod-rtmp"
    );
    let dir = work.join(format!("nginx-outputs-{streams}x{d}-{rep}"));
    let port = crate::servers::free_port()?;
    let dd = dir.display();
    let mut apps = String::new();
    for k in 0..streams {
        std::fs::create_dir_all(dir.join(format!("hls{k}")))?;
        let _ = writeln!(
            apps,
            "    application s{k} {{\n      live on;\n      record off;\n      hls on;\n      \
             hls_path {dd}/hls{k};\n      hls_fragment 1s;\n      hls_playlist_length 10s;"
        );
        for i in 0..d {
            let _ = writeln!(
                apps,
                "      push rtmp://127.0.0.1:{sink}/live/{};",
                sink_name(k, i)
            );
        }
        apps.push_str("    }\n");
    }
    let conf = format!(
        "load_module {RTMP_MODULE};\ndaemon off;\nmaster_process off;\nworker_processes 1;\n\
         pid {dd}/nginx.pid;\nerror_log {dd}/error.log info;\nevents {{ worker_connections 8192; }}\n\
         rtmp {{\n  server {{\n    listen 127.0.0.1:{port};\n    chunk_size 4096;\n{apps}  }}\n}}\n"
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
    Ok(Started {
        server: Server::Nginx(child),
        rtmp: addr,
        publishes: (0..streams)
            .map(|k| (format!("s{k}"), "bench".to_owned()))
            .collect(),
    })
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Publishes every stream for `secs`, measures after a warm-up of a third of it.
fn measure(
    started: Started,
    name: &'static str,
    (streams, d): (usize, usize),
    sink: &sink::Sink,
    media: &Arc<Media>,
    secs: f64,
) -> anyhow::Result<Run> {
    let Started {
        server,
        rtmp,
        publishes,
    } = started;
    let procs = server.procs();
    let warmup = Duration::from_secs_f64(secs / 3.0);
    let start_at = Instant::now() + Duration::from_millis(300);
    let publishers: Vec<_> = publishes
        .into_iter()
        .map(|(app, stream_name)| {
            let publish = Publish {
                rtmp,
                app,
                stream_name,
                start_at,
                duration: Duration::from_secs_f64(secs + secs / 3.0),
                stop: Arc::new(AtomicBool::new(false)),
            };
            let m = media.clone();
            std::thread::spawn(move || publisher::run(&publish, &m))
        })
        .collect();
    std::thread::sleep(warmup);
    let _ = sink.take();
    let (cpu0, t0) = (procs.cpu_secs(), Instant::now());
    std::thread::sleep(Duration::from_secs_f64(secs));
    let (cpu1, t1) = (procs.cpu_secs(), Instant::now());
    let rss = procs.rss_bytes();
    let mut reports = Vec::new();
    for p in publishers {
        reports.push(
            p.join()
                .map_err(|_| anyhow::anyhow!("publisher panicked"))??,
        );
    }
    std::thread::sleep(Duration::from_millis(500));
    let arrivals = sink.take();
    server.stop();
    // Per stream: hash → send times, in order.
    let mut sends: Vec<std::collections::HashMap<u64, Vec<Instant>>> = Vec::new();
    let mut sent_in_window = usize::MAX;
    for report in &reports {
        let mut by_hash: std::collections::HashMap<u64, Vec<Instant>> = Default::default();
        let mut in_window = 0;
        for ((_, at), h) in report.sends.iter().zip(&report.video_hashes) {
            by_hash.entry(*h).or_default().push(*at);
            if *at >= t0 && *at < t1 {
                in_window += 1;
            }
        }
        sent_in_window = sent_in_window.min(in_window);
        sends.push(by_hash);
    }
    let mut lat = Vec::new();
    let mut per_dest: std::collections::HashMap<String, usize> = Default::default();
    for a in &arrivals {
        let Some(k) = a
            .stream
            .strip_prefix('s')
            .and_then(|r| r.split_once('d'))
            .and_then(|(k, _)| k.parse::<usize>().ok())
        else {
            continue;
        };
        let Some(times) = sends.get(k).and_then(|m| m.get(&a.hash)) else {
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
    let min_received = (0..streams)
        .flat_map(|k| (0..d).map(move |i| sink_name(k, i)))
        .map(|n| per_dest.get(&n).copied().unwrap_or(0))
        .min()
        .unwrap_or(0) as f64
        / sent_in_window.max(1) as f64;
    Ok(Run {
        server: name,
        streams,
        destinations: d,
        cores: (cpu1 - cpu0) / (t1 - t0).as_secs_f64(),
        rss_mib: rss as f64 / (1 << 20) as f64,
        p50_ms: percentile(&lat, 0.5),
        p99_ms: percentile(&lat, 0.99),
        min_received,
    })
}

/// Each (server, step) over the repeats: the median of each figure, and the worst
/// destination's share of frames over all runs.
fn medians(runs: &[Run]) -> Vec<Run> {
    let mut out: Vec<Run> = Vec::new();
    for r in runs {
        if out
            .iter()
            .any(|o| (o.server, o.streams, o.destinations) == (r.server, r.streams, r.destinations))
        {
            continue;
        }
        let same: Vec<&Run> = runs
            .iter()
            .filter(|o| {
                (o.server, o.streams, o.destinations) == (r.server, r.streams, r.destinations)
            })
            .collect();
        let median = |f: fn(&Run) -> f64| {
            let mut v: Vec<f64> = same.iter().map(|r| f(r)).collect();
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        out.push(Run {
            cores: median(|r| r.cores),
            rss_mib: median(|r| r.rss_mib),
            p50_ms: median(|r| r.p50_ms),
            p99_ms: median(|r| r.p99_ms),
            min_received: same
                .iter()
                .map(|r| r.min_received)
                .fold(f64::INFINITY, f64::min),
            ..r.clone()
        });
    }
    out
}

fn table(runs: &[Run]) -> String {
    let mut t = String::from(
        "| streams × destinations | server | server CPU (cores) | CPU nginx-rtmp / weir | destinations per core (S·D ÷ CPU) | added latency p50 / p99 (ms) | frames received (worst destination) | RSS (MiB) |\n\
         |---:|---|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in runs {
        let peer = runs.iter().find(|o| {
            (o.streams, o.destinations) == (r.streams, r.destinations) && o.server != r.server
        });
        let ratio = match (r.server, peer) {
            ("weir", Some(p)) if r.cores > 0.0 => format!("{:.2}", p.cores / r.cores),
            _ => String::new(),
        };
        let per_core = if r.cores > 0.0 {
            format!("{:.0}", (r.streams * r.destinations) as f64 / r.cores)
        } else {
            String::new()
        };
        let _ = writeln!(
            t,
            "| {} × {} | {} | {:.3} | {ratio} | {per_core} | {:.1} / {:.1} | {:.1} % | {:.0} |",
            r.streams,
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
        "{} run: {:.0} kbit/s source, {} s per run, destinations {:?}, streams × destinations {:?}, {} run(s) each, sink on :{}",
        if cfg.quick { "quick" } else { "full" },
        media.bitrate() as f64 / 1000.0,
        cfg.secs,
        cfg.destinations,
        cfg.grid,
        cfg.repeat,
        sink.port
    );
    let steps: Vec<(usize, usize)> = cfg
        .destinations
        .iter()
        .map(|&d| (1, d))
        .chain(cfg.grid.iter().copied())
        .collect();
    let mut runs = Vec::new();
    for &step in &steps {
        let (streams, d) = step;
        for rep in 0..cfg.repeat {
            for name in ["weir", "nginx-rtmp"] {
                progress!(
                    "{name}: {streams} stream(s) → {d} destinations each{}",
                    if cfg.repeat > 1 {
                        format!(" (run {} of {})", rep + 1, cfg.repeat)
                    } else {
                        String::new()
                    }
                );
                let started = match name {
                    "weir" => start_weir(&work, &bin, sink.port, step, rep)?,
                    _ => start_nginx(&work, sink.port, step, rep)?,
                };
                let r = measure(started, name, step, &sink, &media, cfg.secs)?;
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
    }
    let runs = medians(&runs);
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
