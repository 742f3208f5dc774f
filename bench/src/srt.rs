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

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};

use crate::http::Client;
use crate::playlist::{dir_of, first_variant};
use crate::poller::Timeline;
use crate::progress;
use crate::servers::tail;
use crate::stats::{self, Latency};
use crate::weirproc::{Weir, follow};

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

// ---- MPEG-TS: just enough to pace a file by its PCR and find video frames ----

fn pid(p: &[u8]) -> u16 {
    (u16::from(p[1] & 0x1f) << 8) | u16::from(p[2])
}

/// Offset of the payload in a packet, None without one.
fn payload_at(p: &[u8]) -> Option<usize> {
    let afc = (p[3] >> 4) & 3;
    let at = if afc & 2 != 0 {
        5 + usize::from(p[4])
    } else {
        4
    };
    (afc & 1 != 0 && at < 188).then_some(at)
}

/// The PCR of a packet in seconds.
fn pcr(p: &[u8]) -> Option<f64> {
    let afc = (p[3] >> 4) & 3;
    if afc & 2 == 0 || p[4] < 7 || p[5] & 0x10 == 0 {
        return None;
    }
    let b = &p[6..12];
    let base = (u64::from(b[0]) << 25)
        | (u64::from(b[1]) << 17)
        | (u64::from(b[2]) << 9)
        | (u64::from(b[3]) << 1)
        | (u64::from(b[4]) >> 7);
    let ext = (u64::from(b[4] & 1) << 8) | u64::from(b[5]);
    Some(base as f64 / 90_000.0 + ext as f64 / 27_000_000.0)
}

fn timestamp(b: &[u8]) -> u64 {
    (u64::from(b[0] >> 1) & 7) << 30
        | u64::from(b[1]) << 22
        | (u64::from(b[2]) >> 1) << 15
        | u64::from(b[3]) << 7
        | u64::from(b[4]) >> 1
}

/// A video PES starting in this packet: its DTS (else PTS) in 90 kHz ticks.
fn video_pes_start(p: &[u8]) -> Option<u64> {
    if p[1] & 0x40 == 0 {
        return None;
    }
    let pl = &p[payload_at(p)?..];
    if pl.len() < 19 || pl[..3] != [0, 0, 1] || !(0xe0..=0xef).contains(&pl[3]) {
        return None;
    }
    match pl[7] >> 6 {
        3 => Some(timestamp(&pl[14..19])),
        2 => Some(timestamp(&pl[9..14])),
        _ => None,
    }
}

/// A TS file split into SRT payloads with their due times.
pub struct TsMedia {
    data: Vec<u8>,
    /// Due time of each chunk (s since the first PCR).
    due: Vec<f64>,
    /// Video frames: (DTS ticks, chunk holding the next frame's PES header).
    frames: Vec<(u64, usize)>,
    /// Chunk holding each video frame's PES header.
    starts: Vec<usize>,
}

impl TsMedia {
    /// Parses `data` (188-byte packets, sync bytes checked).
    pub fn parse(mut data: Vec<u8>) -> anyhow::Result<Self> {
        data.truncate(data.len() / 188 * 188);
        ensure!(!data.is_empty(), "empty TS file");
        let n = data.len() / 188;
        let mut pcrs = Vec::new();
        let mut starts = Vec::new();
        for i in 0..n {
            let p = &data[i * 188..(i + 1) * 188];
            ensure!(p[0] == 0x47, "TS packet {i} has no sync byte");
            if let Some(t) = pcr(p) {
                pcrs.push((i, t));
            }
            if let Some(ts) = video_pes_start(p) {
                starts.push((i, ts, pid(p)));
            }
        }
        ensure!(pcrs.len() >= 2, "the TS file has no PCR");
        ensure!(starts.len() >= 2, "the TS file has no video");
        let first_pcr = pcrs[0].1;
        // Packet due times, linear between PCRs (held before the first, after the last).
        let mut due_pkt = vec![0.0; n];
        let mut k = 0;
        for (i, d) in due_pkt.iter_mut().enumerate() {
            while k + 1 < pcrs.len() && pcrs[k + 1].0 <= i {
                k += 1;
            }
            let (i0, t0) = pcrs[k];
            let t = match pcrs.get(k + 1) {
                Some(&(i1, t1)) if i >= i0 => t0 + (t1 - t0) * (i - i0) as f64 / (i1 - i0) as f64,
                _ => t0,
            };
            *d = (t - first_pcr).max(0.0);
        }
        let due = (0..n.div_ceil(7))
            .map(|c| due_pkt[((c + 1) * 7).min(n) - 1])
            .collect();
        let video_pid = starts[0].2;
        let starts: Vec<(usize, u64)> = starts
            .into_iter()
            .filter(|s| s.2 == video_pid)
            .map(|(i, ts, _)| (i, ts))
            .collect();
        let frames = starts.windows(2).map(|w| (w[0].1, w[1].0 / 7)).collect();
        let starts = starts.iter().map(|s| s.0 / 7).collect();
        Ok(Self {
            data,
            due,
            frames,
            starts,
        })
    }

    fn first_dts(&self) -> u64 {
        self.frames.first().map_or(0, |f| f.0)
    }

    /// Media seconds of a DTS since the first frame.
    fn media_s(&self, dts: u64) -> f64 {
        dts.wrapping_sub(self.first_dts()) as f64 / 90_000.0
    }
}

/// What the sender did.
#[derive(Debug, Default)]
struct Sent {
    /// (media s, sent) of each complete frame.
    sends: Vec<(f64, Instant)>,
    /// DTS → sent.
    by_dts: HashMap<u64, Instant>,
    /// Worst lateness of a chunk.
    max_lag: Duration,
    /// Video frames whose PES header was sent (the last one included).
    frames_total: usize,
}

impl Sent {
    /// The frames to measure latency on: past the client start-up, and not in the last
    /// second (the stream's last part is only closed when the stream ends).
    fn measured(&self) -> Vec<(f64, Instant)> {
        let last = self.sends.iter().map(|s| s.0).fold(0.0, f64::max);
        self.sends
            .iter()
            .copied()
            .filter(|s| s.0 >= SKIP_S && s.0 < last - 1.0)
            .collect()
    }
}

/// Writes the chunks due before `secs` to `out` in real time from `start`.
fn send(
    ts: &TsMedia,
    out: &mut impl std::io::Write,
    start: Instant,
    secs: f64,
) -> anyhow::Result<Sent> {
    let mut sent_at = Vec::with_capacity(ts.due.len());
    let mut max_lag = Duration::ZERO;
    for (c, &d) in ts.due.iter().enumerate() {
        if d >= secs {
            break;
        }
        let due = start + Duration::from_secs_f64(d);
        crate::transcode::sleep_until(due);
        let end = ((c + 1) * CHUNK).min(ts.data.len());
        out.write_all(&ts.data[c * CHUNK..end])
            .context("writing to srt-live-transmit")?;
        let now = Instant::now();
        max_lag = max_lag.max(now.saturating_duration_since(due));
        sent_at.push(now);
    }
    let mut s = Sent {
        max_lag,
        frames_total: ts.starts.iter().filter(|&&c| c < sent_at.len()).count(),
        ..Sent::default()
    };
    for &(dts, chunk) in &ts.frames {
        if let Some(&at) = sent_at.get(chunk) {
            s.sends.push((ts.media_s(dts), at));
            s.by_dts.insert(dts, at);
        }
    }
    Ok(s)
}

// ---- the lossy relay ----

/// A seeded xorshift: `true` for `pct` % of calls.
struct Dice(u64);

impl Dice {
    fn lose(&mut self, pct: u64) -> bool {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % 1000 < pct * 10
    }
}

/// A UDP relay for one caller that loses `pct` % of datagrams each way (seeded, the same
/// datagrams for every server) and delays each by `delay`.
struct Relay {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    lost_up: Arc<AtomicU64>,
    lost_down: Arc<AtomicU64>,
    relayed: Arc<AtomicU64>,
}

type Delayed = mpsc::Sender<(Instant, Vec<u8>, Option<SocketAddr>)>;

impl Relay {
    fn start(server: SocketAddr, pct: u64, delay: Duration) -> anyhow::Result<Self> {
        let front = Arc::new(UdpSocket::bind("127.0.0.1:0")?);
        let back = Arc::new(UdpSocket::bind("127.0.0.1:0")?);
        back.connect(server)?;
        for s in [&front, &back] {
            s.set_read_timeout(Some(Duration::from_millis(50)))?;
        }
        let r = Self {
            addr: front.local_addr()?,
            stop: Arc::default(),
            lost_up: Arc::default(),
            lost_down: Arc::default(),
            relayed: Arc::default(),
        };
        let caller: Arc<Mutex<Option<SocketAddr>>> = Arc::default();
        let delayed = |stop: Arc<AtomicBool>, out: Arc<UdpSocket>| -> Delayed {
            let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>, Option<SocketAddr>)>();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let Ok((due, b, to)) = rx.recv_timeout(Duration::from_millis(50)) else {
                        continue;
                    };
                    crate::transcode::sleep_until(due);
                    let _ = match to {
                        Some(to) => out.send_to(&b, to),
                        None => out.send(&b),
                    };
                }
            });
            tx
        };
        // caller → server
        {
            let tx = delayed(r.stop.clone(), back.clone());
            let (stop, caller, lost, relayed) = (
                r.stop.clone(),
                caller.clone(),
                r.lost_up.clone(),
                r.relayed.clone(),
            );
            let front = front.clone();
            std::thread::spawn(move || {
                let mut dice = Dice(0x1234_5678_9abc_def1);
                let mut buf = [0u8; 2048];
                while !stop.load(Ordering::Relaxed) {
                    let Ok((n, from)) = front.recv_from(&mut buf) else {
                        continue;
                    };
                    if let Ok(mut c) = caller.lock() {
                        *c = Some(from);
                    }
                    relayed.fetch_add(1, Ordering::Relaxed);
                    if dice.lose(pct) {
                        lost.fetch_add(1, Ordering::Relaxed);
                    } else {
                        let _ = tx.send((Instant::now() + delay, buf[..n].to_vec(), None));
                    }
                }
            });
        }
        // server → caller
        {
            let tx = delayed(r.stop.clone(), front);
            let (stop, lost) = (r.stop.clone(), r.lost_down.clone());
            std::thread::spawn(move || {
                let mut dice = Dice(0x0fed_cba9_8765_4321);
                let mut buf = [0u8; 2048];
                while !stop.load(Ordering::Relaxed) {
                    let Ok(n) = back.recv(&mut buf) else {
                        continue;
                    };
                    let Some(to) = caller.lock().ok().and_then(|c| *c) else {
                        continue;
                    };
                    if dice.lose(pct) {
                        lost.fetch_add(1, Ordering::Relaxed);
                    } else {
                        let _ = tx.send((Instant::now() + delay, buf[..n].to_vec(), Some(to)));
                    }
                }
            });
        }
        Ok(r)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

// ---- processes ----

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts a libsrt caller reading TS from its stdin and waits until it is connected.
fn caller(url: &str, log: &Path) -> anyhow::Result<Killed> {
    let mut child = Command::new("srt-live-transmit")
        .args(["-chunk", "1316", "file://con", url])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting srt-live-transmit (install srt-tools)")?;
    let stderr = child.stderr.take().context("no stderr")?;
    let (tx, rx) = mpsc::channel();
    let mut file = std::fs::File::create(log)?;
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("connected") {
                let _ = tx.send(());
            }
            let _ = writeln!(file, "{line}");
        }
    });
    let child = Killed(child);
    rx.recv_timeout(Duration::from_secs(10))
        .with_context(|| format!("the SRT caller did not connect: {}", tail(log)))?;
    Ok(child)
}

/// A free UDP port on loopback (bound, then released).
fn free_udp_port() -> anyhow::Result<u16> {
    Ok(UdpSocket::bind("127.0.0.1:0")?.local_addr()?.port())
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
    /// SRT receiver: packets given up on (too late), and retransmitted.
    pub srt_dropped: Option<u64>,
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

/// `dropped=` and `retransmitted=` of weir's "SRT publisher left" line.
fn publisher_left(log: &Path) -> Option<(u64, u64)> {
    let text = std::fs::read_to_string(log).ok()?;
    let line = text.lines().find(|l| l.contains("SRT publisher left"))?;
    let field = |name: &str| -> Option<u64> {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(name))
            .and_then(|v| v.trim_end_matches(',').parse().ok())
    };
    Some((field("dropped=")?, field("retransmitted=")?))
}

fn weir_run(bin: &Path, work: &Path, ts: &TsMedia, cfg: &Config, loss: u64) -> anyhow::Result<Run> {
    let srt_port = free_udp_port()?;
    let srt = SocketAddr::from(([127, 0, 0, 1], srt_port));
    let extra: Vec<String> = [
        "--srt-listen".to_owned(),
        srt.to_string(),
        "--srt-latency-ms".to_owned(),
        cfg.latency_ms.to_string(),
        "--reconnect-grace-ms".to_owned(),
        "1000".to_owned(),
    ]
    .into();
    let weir = Weir::start(bin, work, &format!("srt-{loss}"), None, &extra)?;
    let key = weir.key(CHANNEL)?;
    let relay = Relay::start(srt, loss, Duration::from_millis(cfg.delay_ms))?;
    let stop = Arc::new(AtomicBool::new(false));
    let timeline = Timeline::default();
    let mv = format!("/live/{CHANNEL}/index.m3u8");
    let follower = {
        let (stop, timeline, http, mv) = (stop.clone(), timeline.clone(), weir.http, mv.clone());
        std::thread::spawn(move || follow(http, &mv, None, &stop, &timeline))
    };
    let url = format!(
        "srt://{}?streamid=%23!::r=live/{key},m=publish&latency={}",
        relay.addr, cfg.latency_ms
    );
    let mut run = Run {
        loss,
        ..Run::default()
    };
    let mut slt = caller(&url, &work.join(format!("caller-weir-{loss}.log")))?;
    let mut stdin = slt.0.stdin.take().context("no stdin")?;
    let sent = send(ts, &mut stdin, Instant::now(), cfg.secs)?;
    // Let SRT deliver the tail (latency + retransmissions), then hang up.
    std::thread::sleep(Duration::from_millis(cfg.latency_ms * 3 + 500));
    drop(stdin);
    drop(slt);
    // The publisher leaves after the grace period; the playlist ends.
    let mut client = Client::new(weir.http, Duration::from_secs(10));
    let media_path = client
        .get(&mv)
        .ok()
        .and_then(|r| first_variant(&r.text()))
        .map(|v| format!("{}{v}", dir_of(&mv)));
    let deadline = Instant::now() + Duration::from_secs(15);
    while publisher_left(&weir.log).is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(1500));
    stop.store(true, Ordering::Relaxed);
    if follower.is_finished()
        && let Ok(Err(e)) = follower.join()
    {
        run.error.get_or_insert(format!("follower: {e:#}"));
    }
    if let Some((d, r)) = publisher_left(&weir.log) {
        run.srt_dropped = Some(d);
        run.srt_retransmitted = Some(r);
    }
    run.frames_sent = sent.frames_total;
    run.send_lag_ms = sent.max_lag.as_secs_f64() * 1000.0;
    match media_path {
        Some(p) => {
            let url = format!("http://{}{p}", weir.http);
            match count_video_packets(&url) {
                Ok(n) => run.frames_delivered = n,
                Err(e) => {
                    run.error.get_or_insert(format!("ffprobe: {e:#}"));
                }
            }
        }
        None => {
            run.error
                .get_or_insert("no LL-HLS playlist for the SRT broadcast".into());
        }
    }
    let objects = timeline
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .clone();
    match stats::latency(&sent.measured(), &objects, 0.0) {
        Ok(l) => run.latency = Some(l),
        Err(e) => {
            run.error.get_or_insert(format!("latency: {e:#}"));
        }
    }
    run.relay = (
        relay.lost_up.load(Ordering::Relaxed),
        relay.lost_down.load(Ordering::Relaxed),
        relay.relayed.load(Ordering::Relaxed),
    );
    weir.stop();
    Ok(run)
}

/// Video packets ffprobe reads from an (ended) HLS playlist.
fn count_video_packets(url: &str) -> anyhow::Result<usize> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-count_packets"])
        .args(["-show_entries", "stream=nb_read_packets", "-of", "csv=p=0"])
        .arg(url)
        .stdin(Stdio::null())
        .output()
        .context("running ffprobe")?;
    ensure!(
        out.status.success(),
        "ffprobe {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.trim().trim_end_matches(',').parse().ok())
        .context("ffprobe printed no packet count")
}

/// What the listener's output held: DTS → when the frame was complete, CC gaps.
#[derive(Debug, Default)]
struct Received {
    frames: HashMap<u64, Instant>,
    cc_gaps: u64,
}

/// Reads TS from `out`, recording when each video frame was complete (the packet holding
/// the next frame's PES header arrived) and continuity-counter gaps.
fn receive(mut out: impl std::io::Read) -> Received {
    let mut r = Received::default();
    let mut buf = vec![0u8; 64 * 1024];
    let mut pending: Vec<u8> = Vec::new();
    let mut last_cc: HashMap<u16, u8> = HashMap::new();
    let mut video_pid = None;
    let mut current: Option<u64> = None;
    let mut now = Instant::now();
    while let Ok(n) = out.read(&mut buf) {
        if n == 0 {
            break;
        }
        now = Instant::now();
        pending.extend_from_slice(&buf[..n]);
        // Resynchronise on the sync byte if needed.
        let mut at = 0;
        while at + 188 <= pending.len() {
            if pending[at] != 0x47 {
                at += 1;
                continue;
            }
            let p = &pending[at..at + 188];
            let id = pid(p);
            if id != 0x1fff && (p[3] >> 4) & 1 != 0 {
                let cc = p[3] & 0x0f;
                if let Some(prev) = last_cc.insert(id, cc)
                    && cc != (prev + 1) & 0x0f
                    && cc != prev
                {
                    r.cc_gaps += 1;
                }
            }
            if let Some(dts) = video_pes_start(p)
                && video_pid.is_none_or(|v| v == id)
            {
                video_pid = Some(id);
                if let Some(prev) = current.replace(dts) {
                    r.frames.entry(prev).or_insert(now);
                }
            }
            at += 188;
        }
        pending.drain(..at);
    }
    // The last frame is complete when the stream ends.
    if let Some(last) = current {
        r.frames.entry(last).or_insert(now);
    }
    r
}

fn peer_run(work: &Path, ts: &TsMedia, cfg: &Config, loss: u64) -> anyhow::Result<Run> {
    let port = free_udp_port()?;
    let listener_url = format!(
        "srt://127.0.0.1:{port}?mode=listener&latency={}",
        cfg.latency_ms
    );
    let stats_path = work.join(format!("listener-{loss}.json"));
    let mut listener = Killed(
        Command::new("srt-live-transmit")
            .args(["-chunk", "1316", "-s", "100", "-f", "-pf", "json"])
            .arg(format!("-statsout:{}", stats_path.display()))
            .args([&listener_url, "file://con"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(
                work.join(format!("listener-{loss}.log")),
            )?)
            .spawn()
            .context("starting srt-live-transmit (install srt-tools)")?,
    );
    let stdout = listener.0.stdout.take().context("no stdout")?;
    let reader = std::thread::spawn(move || receive(stdout));
    std::thread::sleep(Duration::from_millis(300));
    let relay = Relay::start(
        SocketAddr::from(([127, 0, 0, 1], port)),
        loss,
        Duration::from_millis(cfg.delay_ms),
    )?;
    let url = format!("srt://{}?latency={}", relay.addr, cfg.latency_ms);
    let mut slt = caller(&url, &work.join(format!("caller-peer-{loss}.log")))?;
    let mut stdin = slt.0.stdin.take().context("no stdin")?;
    let sent = send(ts, &mut stdin, Instant::now(), cfg.secs)?;
    std::thread::sleep(Duration::from_millis(cfg.latency_ms * 3 + 500));
    drop(stdin);
    drop(slt);
    std::thread::sleep(Duration::from_millis(500));
    drop(listener);
    let got = reader
        .join()
        .map_err(|_| anyhow::anyhow!("reader panicked"))?;
    let mut run = Run {
        loss,
        frames_sent: sent.frames_total,
        send_lag_ms: sent.max_lag.as_secs_f64() * 1000.0,
        cc_gaps: Some(got.cc_gaps),
        ..Run::default()
    };
    // Latency per frame, as in `stats::latency` but matched by DTS.
    let measured: HashMap<u64, Instant> = sent
        .measured()
        .into_iter()
        .map(|(m, at)| ((m * 90_000.0).round() as u64, at))
        .collect();
    let mut values: Vec<f64> = Vec::new();
    for (&dts, &at) in &sent.by_dts {
        let Some(&got_at) = got.frames.get(&dts) else {
            continue;
        };
        if measured.contains_key(&dts.wrapping_sub(ts.first_dts())) {
            values.push(if got_at >= at {
                got_at.duration_since(at).as_secs_f64() * 1000.0
            } else {
                -(at.duration_since(got_at).as_secs_f64() * 1000.0)
            });
        }
    }
    run.frames_delivered = got.frames.len();
    values.sort_by(f64::total_cmp);
    run.latency = Some(Latency {
        n: values.len(),
        p50: stats::percentile(&values, 50.0),
        p95: stats::percentile(&values, 95.0),
        p99: stats::percentile(&values, 99.0),
        min: values.first().copied().unwrap_or(f64::NAN),
        max: values.last().copied().unwrap_or(f64::NAN),
        object_ms: 0.0,
        unmatched: 0,
    });
    if let Some((d, r)) = listener_stats(&stats_path) {
        run.srt_dropped = Some(d);
        run.srt_retransmitted = Some(r);
    }
    run.relay = (
        relay.lost_up.load(Ordering::Relaxed),
        relay.lost_down.load(Ordering::Relaxed),
        relay.relayed.load(Ordering::Relaxed),
    );
    Ok(run)
}

/// Receiver drops and retransmitted packets from the listener's last JSON stats line.
fn listener_stats(path: &Path) -> Option<(u64, u64)> {
    let text = std::fs::read_to_string(path).ok()?;
    let last = text
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())?;
    let recv = last.get("recv")?;
    Some((
        recv.get("packetsDropped")?.as_u64()?,
        recv.get("packetsRetransmitted")?.as_u64()?,
    ))
}

/// Where the cached test media lives.
fn cache_dir() -> PathBuf {
    std::env::var_os("WEIR_BENCH_CACHE")
        .map(PathBuf::from)
        .or_else(|| {
            let exe = std::env::current_exe().ok()?;
            Some(exe.parent()?.parent()?.join("weir-bench-cache"))
        })
        .unwrap_or_else(|| std::env::temp_dir().join("weir-bench-cache"))
}

/// The `live` media in MPEG-TS: testsrc2 720p30, x264 veryfast 2500k, 2 s GOP, AAC; 30 s.
fn ts_media(cfg: &Config) -> anyhow::Result<PathBuf> {
    if let Some(p) = &cfg.media {
        return Ok(p.clone());
    }
    let cache = cache_dir();
    std::fs::create_dir_all(&cache)?;
    let path = cache.join("testsrc2-720p30-x264-2500k-aac-30s.ts");
    if path.exists() {
        return Ok(path);
    }
    progress!(
        "encoding the MPEG-TS test media → {} (once)",
        path.display()
    );
    let tmp = cache.join("encoding.ts");
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30"])
        .args(["-f", "lavfi", "-i", "sine=sample_rate=48000", "-t", "30"])
        .args([
            "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
        ])
        .args([
            "-b:v", "2500k", "-maxrate", "2500k", "-bufsize", "5000k", "-g", "60",
        ])
        .args(["-c:a", "aac", "-ac", "2", "-f", "mpegts"])
        .arg(&tmp)
        .stdin(Stdio::null())
        .status()
        .context("running ffmpeg")?;
    ensure!(status.success(), "ffmpeg failed: {status}");
    std::fs::rename(&tmp, &path)?;
    Ok(path)
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
         weir SRT dropped / retransmitted | srt-live-transmit: ingest → TS out p50 / p95 / max (ms) | \
         srt-live-transmit frames missing / sent | its SRT dropped / retransmitted, CC gaps | relay lost up / down |\n\
         |---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for (w, p) in runs {
        let _ = writeln!(
            t,
            "| {} % | {} | {} / {} | {} / {} | {} | {} / {} | {} / {}, {} | {} / {} |",
            w.loss,
            lat(w.latency.as_ref()),
            w.missing(),
            w.frames_sent,
            opt(w.srt_dropped),
            opt(w.srt_retransmitted),
            lat(p.latency.as_ref()),
            p.missing(),
            p.frames_sent,
            opt(p.srt_dropped),
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
                "  weir: latency {} ms, frames missing {} of {}, SRT dropped {} / retransmitted {}, \
                 relay lost {} / {} of {}, send lag {:.0} ms{}",
                lat(w.latency.as_ref()),
                w.missing(),
                w.frames_sent,
                opt(w.srt_dropped),
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
                "  srt-live-transmit: latency {} ms, frames missing {} of {}, SRT dropped {} / \
                 retransmitted {}, CC gaps {}, relay lost {} / {} of {}",
                lat(p.latency.as_ref()),
                p.missing(),
                p.frames_sent,
                opt(p.srt_dropped),
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
        let text = std::fs::read_to_string(&readme)?;
        let block = format!(
            "{README_BEGIN}\n`cargo xtask bench srt`{} — {machine}.\n\n{table}{README_END}",
            if cfg.quick { " --quick" } else { "" }
        );
        match (text.find(README_BEGIN), text.find(README_END)) {
            (Some(a), Some(b)) if a < b => {
                let new = format!("{}{block}{}", &text[..a], &text[b + README_END.len()..]);
                std::fs::write(&readme, new)?;
                progress!("results written to {}", readme.display());
            }
            _ => progress!(
                "{} has no srt-results markers: results not written",
                readme.display()
            ),
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
