//! `weir-bench abuse`: attacks on a node with its default limits while one good stream
//! is published and followed as a player would. Per attack: what was sent, when the node
//! cut it (against the deadline that applies), the node's peak memory, and the good
//! stream's latency p95 in the quiet window before and during the attack.
//!
//! Attackers come from many loopback source addresses (127.0.x.y), as a botnet would, so
//! the per-address caps (HTTP 100, RTMP 10 by default) do not hide the deadlines; the
//! flood row is the one that comes from a single address.

use std::io::{ErrorKind, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::flv::Media;
use crate::poller::{self, Mode};
use crate::procstat;
use crate::publisher::{self, Publish};
use crate::weirproc::Weir;
use crate::{progress, stats};

/// One attacking connection: sends `message` a byte at a time, notes when it is closed.
struct Conn {
    socket: TcpStream,
    sent: usize,
    opened: Instant,
    closed: Option<Instant>,
}

impl Conn {
    fn open(from: [u8; 4], to: SocketAddr) -> Option<Self> {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).ok()?;
        s.bind(&SocketAddr::from((from, 0)).into()).ok()?;
        s.connect_timeout(&to.into(), Duration::from_secs(2)).ok()?;
        let socket: TcpStream = s.into();
        socket.set_nonblocking(true).ok()?;
        Some(Self {
            socket,
            sent: 0,
            opened: Instant::now(),
            closed: None,
        })
    }

    /// Reads (and drops) what is there; notes the close.
    fn poll(&mut self, read: bool) {
        let mut buf = [0u8; 4096];
        while self.closed.is_none() {
            if !read {
                // A reader that never reads: its receive queue stays full, so a reset is
                // seen on a write (an empty line, which HTTP allows between requests).
                match self.socket.write(b"\r\n") {
                    Ok(_) => return,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                    Err(_) => self.closed = Some(Instant::now()),
                }
                return;
            }
            match self.socket.read(&mut buf) {
                Ok(0) => self.closed = Some(Instant::now()),
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(_) => self.closed = Some(Instant::now()),
            }
        }
    }

    /// Sends up to `n` more bytes of `message`.
    fn send(&mut self, message: &[u8], n: usize) {
        if self.closed.is_some() || self.sent >= message.len() {
            return;
        }
        let end = (self.sent + n).min(message.len());
        match self.socket.write(&message[self.sent..end]) {
            Ok(k) => self.sent += k,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(_) => self.closed = Some(Instant::now()),
        }
    }
}

/// How an attack behaves.
#[derive(Clone, Copy)]
enum Kind {
    /// Sends its message one byte every `every`.
    Dribble { every: Duration },
    /// Sends its message at once, then never reads.
    NoRead,
    /// Sends its message at once, reads and drops the answers.
    Burst,
}

struct Attack {
    name: &'static str,
    params: String,
    deadline: &'static str,
    target: SocketAddr,
    /// Source addresses and connections per address.
    sources: Vec<[u8; 4]>,
    per_source: usize,
    message: Vec<u8>,
    kind: Kind,
    /// How long the attack runs at most.
    limit: Duration,
}

/// One row of the table.
struct Row {
    name: &'static str,
    params: String,
    deadline: &'static str,
    opened: usize,
    refused: usize,
    cut: usize,
    cut_p50_s: f64,
    cut_max_s: f64,
    peak_rss_mib: f64,
    p95_before_ms: f64,
    p95_during_ms: f64,
}

fn sources(n: usize, third: u8) -> Vec<[u8; 4]> {
    (0..n)
        .map(|i| [127, third + (i / 250) as u8, 0, 2 + (i % 250) as u8])
        .collect()
}

/// A GraphQL introspection query (answers of ~80 KB) as one pipelined POST.
fn introspection() -> String {
    let body = r#"{"query":"{ __schema { types { name kind description fields { name description args { name description type { name kind ofType { name kind } } } type { name kind ofType { name kind } } } } } }"}"#;
    format!(
        "POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn handshake_then(tail: &[u8]) -> Vec<u8> {
    let mut b = vec![3u8];
    b.extend(std::iter::repeat_n(7u8, 1536 * 2));
    b.extend_from_slice(tail);
    b
}

/// Runs `a`, sampling the node's memory; returns (opened, refused at once, cut times).
fn attack(a: &Attack, pid: u32, peak: &mut u64) -> (usize, usize, Vec<f64>) {
    let mut conns = Vec::new();
    let mut failed = 0;
    for &src in &a.sources {
        for _ in 0..a.per_source {
            match Conn::open(src, a.target) {
                Some(c) => conns.push(c),
                None => failed += 1,
            }
            // Opening a thousand connections takes seconds: look for closes meanwhile,
            // or a connection refused at once would read as cut seconds later.
            if matches!(a.kind, Kind::Burst) && conns.len() % 20 == 0 {
                conns.iter_mut().for_each(|c| c.poll(true));
            }
        }
    }
    let start = Instant::now();
    let mut last_send = None::<Instant>;
    if !matches!(a.kind, Kind::Dribble { .. }) {
        for c in &mut conns {
            c.send(&a.message, a.message.len());
        }
    }
    while start.elapsed() < a.limit && conns.iter().any(|c| c.closed.is_none()) {
        if let Kind::Dribble { every } = a.kind
            && last_send.is_none_or(|t| t.elapsed() >= every)
        {
            last_send = Some(Instant::now());
            conns.iter_mut().for_each(|c| c.send(&a.message, 1));
        }
        let read = !matches!(a.kind, Kind::NoRead);
        conns.iter_mut().for_each(|c| c.poll(read));
        if let Ok(rss) = procstat::rss_bytes(pid) {
            *peak = (*peak).max(rss);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // Closed within 500 ms of connecting: refused by a cap, not cut by a deadline.
    let lived: Vec<f64> = conns
        .iter()
        .filter_map(|c| c.closed.map(|t| (t - c.opened).as_secs_f64()))
        .collect();
    let refused = failed + lived.iter().filter(|&&s| s < 0.5).count();
    let cut: Vec<f64> = lived.into_iter().filter(|&s| s >= 0.5).collect();
    (conns.len() + failed, refused, cut)
}

fn quantile(v: &mut [f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * q).round() as usize]
}

/// Latency p95 (ms) of the frames sent in `[from, to)`.
fn p95(sends: &[(f64, Instant)], objects: &[poller::Object], from: Instant, to: Instant) -> f64 {
    let window: Vec<_> = sends
        .iter()
        .copied()
        .filter(|(_, t)| *t >= from && *t < to)
        .collect();
    stats::latency(&window, objects, 0.0).map_or(f64::NAN, |l| l.p95)
}

/// `weir-bench abuse [--quick] [--readme | --no-readme]`.
pub fn run(args: &[String]) -> anyhow::Result<()> {
    let quick = args.iter().any(|a| a == "--quick");
    let scale = if quick { 4 } else { 1 };
    let bin = std::env::var_os("WEIR_BIN")
        .map(PathBuf::from)
        .context("set WEIR_BIN to the weir binary (cargo xtask bench abuse does)")?;
    let media = Arc::new(Media::load(&crate::live_media(None, None)?)?);
    let work = std::env::temp_dir().join(format!("weir-bench-abuse-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    // The node's defaults, per-address caps included (Weir::start turns them off
    // unless given).
    let extra: Vec<String> = [
        "--http-max-connections-per-ip",
        "100",
        "--rtmp-max-connections-per-ip",
        "10",
        "--api-max-connections-per-ip",
        "256",
    ]
    .map(String::from)
    .to_vec();
    let w = Weir::start(&bin, &work, "abuse", None, &extra)?;
    let pid = w.child.id();
    let key = w.key("good")?;
    let stop = Arc::new(AtomicBool::new(false));
    let total = Duration::from_secs(if quick { 195 } else { 255 });
    let p = Publish {
        rtmp: w.rtmp,
        app: "live".into(),
        stream_name: key,
        start_at: Instant::now() + Duration::from_millis(200),
        duration: total,
        stop: stop.clone(),
    };
    let m = media.clone();
    let publisher = std::thread::spawn(move || publisher::run(&p, &m));
    std::thread::sleep(Duration::from_secs(3));
    let (timeline, poll) = poller::spawn(
        w.http,
        "/live/good/index.m3u8".into(),
        Mode::BlockingReload,
        stop.clone(),
    );
    // A stalled reader asks for a real segment (the newest complete one) many times.
    std::thread::sleep(Duration::from_secs(5));
    let segment = newest_segment(w.http).unwrap_or_else(|| "/live/good/index.m3u8".into());
    let get = |path: &str| format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
    let attacks = vec![
        Attack {
            name: "HTTP slow request heads",
            params: format!(
                "{} conns from {} addresses, 1 byte / 2 s",
                2000 / scale,
                100 / scale
            ),
            deadline: "http_head_timeout_ms 10 s",
            target: w.http,
            sources: sources(100 / scale, 1),
            per_source: 20,
            message: get("/live/good/index.m3u8").into_bytes(),
            kind: Kind::Dribble {
                every: Duration::from_secs(2),
            },
            limit: Duration::from_secs(20),
        },
        Attack {
            name: "RTMP handshake dribble",
            params: format!(
                "{} conns from {} addresses, 1 byte / 2 s",
                2000 / scale,
                250 / scale
            ),
            deadline: "rtmp_publish_timeout_ms 10 s",
            target: w.rtmp,
            sources: sources(250 / scale, 3),
            per_source: 8,
            message: handshake_then(&[]),
            kind: Kind::Dribble {
                every: Duration::from_secs(2),
            },
            limit: Duration::from_secs(20),
        },
        Attack {
            name: "HTTP readers that stop reading",
            params: format!(
                "{} conns from 10 addresses, 20 pipelined GETs of a segment each",
                200 / scale
            ),
            deadline: "http_write_timeout_ms 15 s",
            target: w.http,
            sources: sources(10, 5),
            per_source: 20 / scale,
            message: get(&segment).repeat(20).into_bytes(),
            kind: Kind::NoRead,
            limit: Duration::from_secs(30),
        },
        Attack {
            name: "HTTP connection flood, one address",
            params: format!("{} conns from 127.0.7.2", 1000 / scale),
            deadline: "http_max_connections_per_ip 100 (at once)",
            target: w.http,
            sources: vec![[127, 0, 7, 2]],
            per_source: 1000 / scale,
            message: Vec::new(),
            kind: Kind::Burst,
            limit: Duration::from_secs(5),
        },
        Attack {
            name: "GraphQL API slow request heads",
            params: format!(
                "{} conns from {} addresses, 1 byte / 2 s",
                1000 / scale,
                50 / scale
            ),
            deadline: "[control] head_timeout_ms 10 s",
            target: w.api,
            sources: sources(50 / scale, 10),
            per_source: 20,
            message: b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                .to_vec(),
            kind: Kind::Dribble {
                every: Duration::from_secs(2),
            },
            limit: Duration::from_secs(20),
        },
        Attack {
            name: "GraphQL API readers that stop reading",
            params: format!(
                "{} conns from as many addresses, 110 pipelined introspection queries (~80 KB answers) each",
                30 / scale
            ),
            deadline: "[control] write_timeout_ms 15 s",
            target: w.api,
            // One connection per address: 110 queries stay under the per-IP rate burst
            // (120). Their ~9 MB of answers outgrow the kernel's socket buffers (~3 MB
            // here: fewer queries are all written at once, and the connection is then
            // cut as an idle keep-alive by the head deadline instead).
            sources: sources(30 / scale, 14),
            per_source: 1,
            message: introspection().repeat(110).into_bytes(),
            kind: Kind::NoRead,
            limit: Duration::from_secs(30),
        },
        Attack {
            name: "GraphQL API connection flood, one address",
            // Always over the cap, quick or not.
            params: "1000 conns from 127.0.12.2".to_owned(),
            deadline: "[control] max_connections_per_ip 256 (at once)",
            target: w.api,
            sources: vec![[127, 0, 12, 2]],
            per_source: 1000,
            message: Vec::new(),
            kind: Kind::Burst,
            limit: Duration::from_secs(5),
        },
        Attack {
            name: "RTMP oversized command (8 MiB announced)",
            params: format!("{} conns from {} addresses", 200 / scale, 25),
            deadline: "rtmp_max_command_bytes 64 KiB (at once)",
            target: w.rtmp,
            sources: sources(25, 8),
            per_source: 8 / scale.min(8),
            message: handshake_then(&[3, 0, 0, 0, 0x80, 0x00, 0x00, 20, 0, 0, 0, 0]),
            kind: Kind::Burst,
            limit: Duration::from_secs(5),
        },
    ];
    let mut rows = Vec::new();
    let mut phases = Vec::new();
    let mut quiet_from = Instant::now();
    std::thread::sleep(Duration::from_secs(8));
    for a in &attacks {
        progress!("{}: {}", a.name, a.params);
        let before = (quiet_from, Instant::now());
        let mut peak = 0;
        let during_from = Instant::now();
        let (opened, refused, mut cut) = attack(a, pid, &mut peak);
        let during = (during_from, Instant::now());
        let (p50, max) = (quantile(&mut cut, 0.5), quantile(&mut cut, 1.0));
        progress!(
            "  {opened} opened, {refused} refused at once, {} cut (p50 {p50:.1} s, max {max:.1} s), peak RSS {} MiB",
            cut.len(),
            peak >> 20
        );
        phases.push((before, during));
        rows.push(Row {
            name: a.name,
            params: a.params.clone(),
            deadline: a.deadline,
            opened,
            refused,
            cut: cut.len(),
            cut_p50_s: p50,
            cut_max_s: max,
            peak_rss_mib: peak as f64 / f64::from(1u32 << 20),
            p95_before_ms: f64::NAN,
            p95_during_ms: f64::NAN,
        });
        // Let the node settle before the next quiet window.
        std::thread::sleep(Duration::from_secs(3));
        quiet_from = Instant::now();
        std::thread::sleep(Duration::from_secs(8));
    }
    stop.store(true, Ordering::Relaxed);
    let report = publisher
        .join()
        .map_err(|_| anyhow::anyhow!("publisher panicked"))??;
    let _ = poll.join();
    let objects = timeline
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .clone();
    for (row, (before, during)) in rows.iter_mut().zip(&phases) {
        row.p95_before_ms = p95(&report.sends, &objects, before.0, before.1);
        row.p95_during_ms = p95(&report.sends, &objects, during.0, during.1);
    }
    let warnings = w.warnings().len();
    w.stop();
    let _ = std::fs::remove_dir_all(&work);
    let table = table(&rows);
    let machine = crate::report::machine();
    println!(
        "\nweir-bench abuse ({}) — {machine}\n\n{table}",
        if quick { "quick" } else { "full" }
    );
    progress!("node warnings logged: {warnings}");
    if args.iter().any(|a| a == "--readme") || (!quick && !args.iter().any(|a| a == "--no-readme"))
    {
        let readme = crate::bench_dir().join("README.md");
        let section = format!(
            "## Abuse results\n\n{} run (`cargo xtask bench abuse`), {machine}. One node \
             (`weir serve --shards 1`, default limits), one good 2.5 Mbit/s RTMP stream followed \
             with LL-HLS blocking reloads throughout; each attack in turn. *Refused* = closed \
             within 0.5 s of connecting (a cap); *cut* = closed later (a deadline), with the time \
             from connect. p95 is the good stream's ingest-to-delivery latency in the quiet 8 s \
             before the attack and during it.\n\n{table}",
            if quick { "Quick" } else { "Full" }
        );
        if !crate::report::replace_marked(
            &readme,
            "<!-- abuse-results:begin (written by weir-bench abuse) -->",
            "<!-- abuse-results:end -->",
            &section,
        )? {
            anyhow::bail!("{} has no abuse-results markers", readme.display());
        }
        progress!("results written to {}", readme.display());
    }
    Ok(())
}

/// The newest complete segment of the good stream's media playlist.
fn newest_segment(http: SocketAddr) -> Option<String> {
    let mut c = crate::http::Client::new(http, Duration::from_secs(5));
    let mv = c.get("/live/good/index.m3u8").ok()?;
    let variant = crate::playlist::first_variant(&mv.text())?;
    let path = format!("/live/good/{variant}");
    let media = c.get(&path).ok()?;
    let text = media.text();
    let seg = text
        .lines()
        .rfind(|l| !l.is_empty() && !l.starts_with('#'))?;
    Some(format!("{}{seg}", crate::playlist::dir_of(&path)))
}

fn table(rows: &[Row]) -> String {
    let mut t = String::from(
        "| attack | parameters | limit that applies | opened | refused at once | cut | cut after (p50 / max) | peak node RSS | good stream p95 before → during |\n\
         |---|---|---|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        t.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {:.0} MiB | {:.0} → {:.0} ms |\n",
            r.name,
            r.params,
            r.deadline,
            r.opened,
            r.refused,
            r.cut,
            if r.cut == 0 {
                "—".to_owned()
            } else {
                format!("{:.1} / {:.1} s", r.cut_p50_s, r.cut_max_s)
            },
            r.peak_rss_mib,
            r.p95_before_ms,
            r.p95_during_ms
        ));
    }
    t
}
