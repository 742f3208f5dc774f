//! `weir-bench studio`: what the studio compositor costs, against ffmpeg composing the same.
//!
//! Per guest count N (`--guests`, 2, 4, 9): a fresh `weir serve` (one shard, the studio's
//! defaults: a 1280×720 30 fps program, x264 `veryfast`/`zerolatency` 3000 kbit/s, AAC
//! 128 kbit/s), a host with a channel and a studio broadcast, N guests invited and joined
//! over GraphQL, each published by ffmpeg over RTMP with its participant key: a stream
//! copy of a pre-encoded looping file (360p, 480p, 720p in turn; see [`procs`]), so the
//! publishers cost almost nothing. Then:
//!
//! 1. *idle*: the guests publish, nobody is on stage (no program runs): weir's CPU over
//!    `--idle-secs` is the node's baseline (RTMP ingest, the bus, packaging the guests'
//!    streams);
//! 2. *program*: every guest brought on stage, `GRID`; once the program's LL-HLS plays
//!    and `--settle-secs` passed, over `--secs`: weir's CPU and largest RSS, and the
//!    program's frame rate read back from its LL-HLS (ffmpeg, stream copy, one line per
//!    packet: frames / presentation-time span, and holes in the timestamps);
//! 3. weir and the publishers stop; *peer*: ffmpeg decodes the same N files (looping, in
//!    real time), scales them into the same grid (`xstack`), mixes the audio (`amix`) and
//!    encodes the same 720p30 x264 veryfast + AAC program into a null sink: its CPU and
//!    frames per second over `--secs`, after the same settling.
//!
//! The headline is the compositor's cost (program − idle) per N, against the peer and
//! against LiveKit Egress' documented budget of 4 CPUs per room composite.

mod procs;
mod report;
mod threads;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use serde_json::{Value, json};

use crate::api::client::Conn;
use crate::procstat;
use crate::progress;
use procs::{Node, Reader};
use report::Row;

const README_BEGIN: &str = "<!-- studio-results:begin (written by weir-bench studio) -->";
const README_END: &str = "<!-- studio-results:end -->";

/// Settings of a run.
#[derive(Debug, Clone, PartialEq)]
struct Config {
    quick: bool,
    /// Guest counts.
    guests: Vec<usize>,
    /// Measured seconds (program and peer).
    secs: f64,
    /// Measured seconds of the idle baseline.
    idle_secs: f64,
    /// Seconds after the program plays (or the peer starts) before measuring.
    settle_secs: f64,
    /// Write the results into bench/README.md (default: full runs).
    readme: Option<bool>,
    /// Keep the scratch directory (logs).
    keep: bool,
}

impl Config {
    fn parse(args: &[String]) -> anyhow::Result<Self> {
        let quick = args.iter().any(|a| a == "--quick");
        let mut c = Self {
            quick,
            guests: if quick { vec![2, 4] } else { vec![2, 4, 9] },
            secs: if quick { 8.0 } else { 20.0 },
            idle_secs: if quick { 5.0 } else { 10.0 },
            settle_secs: if quick { 4.0 } else { 8.0 },
            readme: None,
            keep: false,
        };
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let mut value = || it.next().with_context(|| format!("{a} needs a value"));
            match a.as_str() {
                "--quick" => {}
                "--guests" => {
                    c.guests = value()?
                        .split(',')
                        .map(|g| g.trim().parse::<usize>())
                        .collect::<Result<_, _>>()
                        .context("--guests takes counts like 2,4,9")?
                }
                "--secs" => c.secs = value()?.parse()?,
                "--idle-secs" => c.idle_secs = value()?.parse()?,
                "--settle-secs" => c.settle_secs = value()?.parse()?,
                "--readme" => c.readme = Some(true),
                "--no-readme" => c.readme = Some(false),
                "--keep" => c.keep = true,
                other => bail!("unknown flag {other} (see bench/README.md, Studio)"),
            }
        }
        ensure!(
            !c.guests.is_empty() && c.guests.iter().all(|&g| (1..=16).contains(&g)),
            "--guests: 1 to 16 guests a run"
        );
        ensure!(
            c.secs >= 3.0 && c.idle_secs >= 2.0,
            "--secs ≥ 3 and --idle-secs ≥ 2"
        );
        ensure!(c.settle_secs >= 0.0, "--settle-secs ≥ 0");
        Ok(c)
    }
}

/// The load average (1/5/15 min).
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// CPU seconds of several processes (those that exited count 0).
fn cpu_of(pids: &[u32]) -> f64 {
    pids.iter()
        .filter_map(|&p| procstat::cpu_secs(p).ok())
        .sum()
}

/// A GraphQL call that must succeed; returns `data`.
fn gql(c: &mut Conn, token: Option<&str>, query: &str, vars: Value) -> anyhow::Result<Value> {
    let v = c.graphql(token, query, vars)?;
    if v.get("errors").is_some() || v.get("data").is_none_or(Value::is_null) {
        bail!("GraphQL failed: {v}");
    }
    Ok(v["data"].clone())
}

/// A string field of a GraphQL answer.
fn field(v: &Value, path: &[&str]) -> anyhow::Result<String> {
    let mut x = v;
    for p in path {
        x = &x[*p];
    }
    x.as_str()
        .map(str::to_owned)
        .with_context(|| format!("no {} in {v}", path.join(".")))
}

/// The media playlist a multivariant playlist at `path` names first (as a path).
fn variant_path(path: &str, multivariant: &str) -> Option<String> {
    let uri = multivariant
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))?;
    if uri.starts_with('/') {
        return Some(uri.to_owned());
    }
    let dir = &path[..path.rfind('/')? + 1];
    Some(format!("{dir}{uri}"))
}

/// Waits until the program's media playlist holds `segments` whole segments (the reader
/// starts that far back from the live edge).
fn wait_program(node: &Node, path: &str, segments: usize, within: Duration) -> anyhow::Result<()> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], node.http_port));
    let mut client = crate::http::Client::new(addr, Duration::from_secs(5));
    let deadline = Instant::now() + within;
    let mut last = String::new();
    while Instant::now() < deadline {
        let media = client
            .get(path)
            .ok()
            .filter(|r| r.status == 200)
            .and_then(|r| variant_path(path, &r.text()));
        match media.map(|m| client.get(&m)) {
            Some(Ok(r)) => {
                let text = r.text();
                if r.status == 200 && text.matches("#EXTINF").count() >= segments {
                    return Ok(());
                }
                last = format!("{} {}", r.status, text.lines().next().unwrap_or(""));
            }
            Some(Err(e)) => last = format!("{e:#}"),
            None => last = "no multivariant playlist".into(),
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    bail!(
        "the program never played at {path} (last answer: {last}): {}",
        crate::servers::tail(&node.log)
    )
}

/// The encoder the compositor says it started with.
fn encoder_in(log: &str) -> String {
    log.lines()
        .filter(|l| l.contains("studio compositor started"))
        .find_map(|l| {
            let rest = &l[l.find("encoder=")? + "encoder=".len()..];
            Some(rest.split_whitespace().next()?.trim_matches('"').to_owned())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// weir's side of guest count `n`: idle baseline, then the composed program.
fn measure_weir(
    cfg: &Config,
    weir_bin: &std::path::Path,
    work: &std::path::Path,
    files: &[PathBuf],
    row: &mut Row,
) -> anyhow::Result<()> {
    let n = files.len();
    let mut node = Node::start(weir_bin, work, &format!("n{n}"))?;
    let (token, channel) = crate::api::account(node.api_port, &format!("studio{n}"))?;
    let mut c = Conn::connect(node.api_port)?;
    let t = Some(token.as_str());
    let d = gql(
        &mut c,
        t,
        "mutation($c: ID!) { createStudioBroadcast(channelId: $c, input: { title: \"Bench\" }) { id programHlsPath } }",
        json!({ "c": channel }),
    )?;
    let broadcast = field(&d, &["createStudioBroadcast", "id"])?;
    let program_path = field(&d, &["createStudioBroadcast", "programHlsPath"])?;
    let mut guests = Vec::new();
    let mut publishers = Vec::new();
    for (i, file) in files.iter().enumerate() {
        let d = gql(
            &mut c,
            t,
            "mutation($b: ID!) { inviteGuest(broadcastId: $b) { token } }",
            json!({ "b": broadcast }),
        )?;
        let invitation = field(&d, &["inviteGuest", "token"])?;
        let d = gql(
            &mut c,
            None,
            "mutation($i: String!, $n: String!) { joinStudio(invitation: $i, displayName: $n) { publishKey participant { id } } }",
            json!({ "i": invitation, "n": format!("Guest {}", i + 1) }),
        )?;
        let key = field(&d, &["joinStudio", "publishKey"])?;
        guests.push(field(&d, &["joinStudio", "participant", "id"])?);
        publishers.push(procs::publisher(file, &node.rtmp_url(&key))?);
    }
    let pub_pids: Vec<u32> = publishers.iter().map(procs::Proc::pid).collect();
    progress!("N={n}: {n} guests joined and publishing; idle baseline");
    std::thread::sleep(Duration::from_secs_f64(cfg.settle_secs.max(3.0)));
    for p in &mut publishers {
        ensure!(
            p.running(),
            "a publisher exited: {}",
            crate::servers::tail(&node.log)
        );
    }
    let (cpu0, t0) = (procstat::cpu_secs(node.pid())?, Instant::now());
    std::thread::sleep(Duration::from_secs_f64(cfg.idle_secs));
    row.idle_cores = (procstat::cpu_secs(node.pid())? - cpu0) / t0.elapsed().as_secs_f64();
    row.idle_rss = procstat::rss_bytes(node.pid())?;

    for g in &guests {
        gql(
            &mut c,
            t,
            "mutation($p: ID!) { bringOnStage(participantId: $p) { id } }",
            json!({ "p": g }),
        )?;
    }
    gql(
        &mut c,
        t,
        "mutation($b: ID!) { setLayout(broadcastId: $b, layout: GRID, transitionMs: 0) { id } }",
        json!({ "b": broadcast }),
    )?;
    wait_program(&node, &program_path, 3, Duration::from_secs(40))?;
    node.wait_log("studio compositor started", Duration::from_secs(5))?;
    row.encoder = encoder_in(&node.log_text());
    progress!(
        "N={n}: program plays ({}, {}); settling {:.0} s",
        row.encoder,
        node.http_url(&program_path),
        cfg.settle_secs
    );
    let reader_log = work.join(format!("reader-n{n}.log"));
    let reader = Reader::start(&node.http_url(&program_path), &reader_log)?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while reader.packets().is_empty() {
        ensure!(
            Instant::now() < deadline,
            "the program reader got no frames in 30 s: {}",
            crate::servers::tail(&reader_log)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs_f64(cfg.settle_secs));
    progress!("N={n}: measuring weir for {:.0} s", cfg.secs);
    let at0 = Instant::now();
    let threads0 = threads::snapshot(node.pid());
    let (cpu0, pub0, read0) = (
        procstat::cpu_secs(node.pid())?,
        cpu_of(&pub_pids),
        cpu_of(&[reader.pid()]),
    );
    let end = at0 + Duration::from_secs_f64(cfg.secs);
    let mut rss = 0;
    while Instant::now() < end {
        rss = rss.max(procstat::rss_bytes(node.pid())?);
        crate::sleep_until((Instant::now() + Duration::from_millis(500)).min(end));
    }
    let wall = at0.elapsed().as_secs_f64();
    row.program_cores = (procstat::cpu_secs(node.pid())? - cpu0) / wall;
    row.threads = threads::shares(&threads0, &threads::snapshot(node.pid()))
        .into_iter()
        .map(|(g, share)| (g, share * row.program_cores))
        .collect();
    row.publisher_cores = (cpu_of(&pub_pids) - pub0) / wall;
    row.reader_cores = (cpu_of(&[reader.pid()]) - read0) / wall;
    row.program_rss = rss.max(procstat::rss_bytes(node.pid())?);
    let at1 = Instant::now();
    // The reader gets whole parts/segments: take what arrived in the window.
    let pts: Vec<f64> = reader
        .packets()
        .iter()
        .filter(|p| p.at >= at0 && p.at <= at1)
        .map(|p| p.pts)
        .collect();
    row.fps = report::fps_of(&pts, 30.0);
    row.realtime = row.fps.span / wall;
    ensure!(
        row.fps.frames > 1,
        "the program reader got no frames in the window"
    );
    for p in &mut publishers {
        ensure!(p.running(), "a publisher exited during the window");
    }
    Ok(())
}

/// The peer for the same files.
fn measure_peer(
    cfg: &Config,
    work: &std::path::Path,
    files: &[PathBuf],
    row: &mut Row,
) -> anyhow::Result<()> {
    let n = files.len();
    let progress_file = work.join(format!("peer-n{n}.progress"));
    let mut peer = procs::peer(files, &progress_file)?;
    progress!(
        "N={n}: ffmpeg peer started; settling {:.0} s",
        cfg.settle_secs
    );
    std::thread::sleep(Duration::from_secs_f64(cfg.settle_secs.max(3.0)));
    ensure!(peer.running(), "the ffmpeg peer exited (filter graph?)");
    let (cpu0, f0, t0) = (
        procstat::cpu_secs(peer.pid())?,
        procs::progress_frames(&progress_file),
        Instant::now(),
    );
    std::thread::sleep(Duration::from_secs_f64(cfg.secs));
    let wall = t0.elapsed().as_secs_f64();
    row.peer_cores = (procstat::cpu_secs(peer.pid())? - cpu0) / wall;
    row.peer_fps = (procs::progress_frames(&progress_file).saturating_sub(f0)) as f64 / wall;
    ensure!(peer.running(), "the ffmpeg peer exited during the window");
    Ok(())
}

/// Runs the bench (see the module docs).
pub fn run(args: &[String]) -> anyhow::Result<()> {
    let cfg = Config::parse(args)?;
    let weir_bin = std::env::var_os("WEIR_BIN")
        .map(PathBuf::from)
        .or_else(|| Some(std::env::current_exe().ok()?.parent()?.join("weir")))
        .context("set WEIR_BIN to the weir binary")?;
    ensure!(
        weir_bin.exists(),
        "{} does not exist: build weir (release) or set WEIR_BIN",
        weir_bin.display()
    );
    let max = cfg.guests.iter().copied().max().unwrap_or(1);
    let mut media = Vec::new();
    for i in 0..max.min(procs::GUEST_SIZES.len()) {
        media.push(procs::guest_media(procs::guest_size(i))?);
    }
    let work = std::env::temp_dir().join(format!("weir-bench-studio-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let load_before = loadavg();
    let mut rows = Vec::new();
    let outcome = (|| -> anyhow::Result<()> {
        for &n in &cfg.guests {
            let files: Vec<PathBuf> = (0..n).map(|i| media[i % media.len()].clone()).collect();
            let mut row = Row {
                guests: n,
                sizes: report::sizes(n),
                ..Row::default()
            };
            measure_weir(&cfg, &weir_bin, &work, &files, &mut row)?;
            measure_peer(&cfg, &work, &files, &mut row)?;
            progress!(
                "N={n}: weir idle {:.3}, program {:.3} cores ({:.1} fps); ffmpeg {:.3} cores ({:.1} fps)",
                row.idle_cores,
                row.program_cores,
                row.fps.fps,
                row.peer_cores,
                row.peer_fps
            );
            rows.push(row);
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
    let table = format!(
        "{}\nweir's program CPU by thread group (cores; threads named by their GStreamer \
         element, x264's and the decoders' worker threads inherit them):\n\n{}",
        report::table(&rows, cfg.secs),
        report::threads_table(&rows)
    );
    let encoder = rows.first().map_or("unknown", |r| r.encoder.as_str());
    println!(
        "\nweir-bench studio ({}) — {machine}; load average {load_before} before, {load_after} after; weir's encoder {encoder}\n\n{table}",
        if cfg.quick { "quick" } else { "full" }
    );
    if cfg.readme.unwrap_or(!cfg.quick) {
        let readme = crate::bench_dir().join("README.md");
        let section = format!(
            "`cargo xtask bench studio`{} — {machine}; load average (1/5/15 min) \
             {load_before} before, {load_after} after. weir's encoder: `{encoder}` \
             (veryfast, zerolatency). Idle over {:.0} s, program and peer over {:.0} s \
             after {:.0} s of settling.\n\n{table}",
            if cfg.quick { " --quick" } else { "" },
            cfg.idle_secs,
            cfg.secs,
            cfg.settle_secs,
        );
        if !crate::report::replace_marked(&readme, README_BEGIN, README_END, &section)? {
            let old = std::fs::read_to_string(&readme)?;
            std::fs::write(
                &readme,
                format!(
                    "{}\n\n{README_BEGIN}\n{section}{README_END}\n",
                    old.trim_end()
                ),
            )?;
        }
        progress!("results written to {}", readme.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn parses_defaults_and_flags() {
        let c = Config::parse(&[]).expect("defaults");
        assert_eq!(c.guests, vec![2, 4, 9]);
        assert_eq!(c.secs, 20.0);
        let q = Config::parse(&args("--quick")).expect("quick");
        assert_eq!(q.guests, vec![2, 4]);
        assert!(q.quick && q.secs < c.secs);
        let f = Config::parse(&args("--guests 1,3 --secs 5 --no-readme --keep")).expect("flags");
        assert_eq!(f.guests, vec![1, 3]);
        assert_eq!((f.secs, f.readme, f.keep), (5.0, Some(false), true));
    }

    #[test]
    fn refuses_bad_flags() {
        assert!(Config::parse(&args("--guests")).is_err());
        assert!(Config::parse(&args("--guests 2,x")).is_err());
        assert!(Config::parse(&args("--guests 0")).is_err());
        assert!(Config::parse(&args("--guests 40")).is_err());
        assert!(Config::parse(&args("--secs 1")).is_err());
        assert!(Config::parse(&args("--wat")).is_err());
    }

    #[test]
    fn resolves_the_variant() {
        let mv = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nabc/media.m3u8\n";
        assert_eq!(
            variant_path("/live/x-pgm/index.m3u8", mv).as_deref(),
            Some("/live/x-pgm/abc/media.m3u8")
        );
        assert_eq!(
            variant_path("/live/a.m3u8", "#EXTM3U\n/abs/m.m3u8\n").as_deref(),
            Some("/abs/m.m3u8")
        );
        assert_eq!(variant_path("/live/a.m3u8", "#EXTM3U\n"), None);
    }

    #[test]
    fn finds_the_encoder_in_the_log() {
        let log = "2026-12-03T13:00:00Z  INFO weir_codec::compose: studio compositor started encoder=\"x264enc\" width=1280 height=720 fps=30\n";
        assert_eq!(encoder_in(log), "x264enc");
        assert_eq!(encoder_in("nothing"), "unknown");
    }
}
