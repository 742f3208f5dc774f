//! The processes of a run: the libsrt caller, weir and srt-live-transmit as listeners,
//! and what each delivered.

use crate::http::Client;
use crate::playlist::{dir_of, first_variant};
use crate::poller::Timeline;
use crate::servers::tail;
use crate::stats::{self, Latency};
use crate::weirproc::{Weir, follow};
use anyhow::{Context as _, ensure};
use std::collections::HashMap;
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use super::*;

pub(super) struct Killed(pub(super) Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts a libsrt caller reading TS from its stdin and waits until it is connected.
pub(super) fn caller(url: &str, log: &Path) -> anyhow::Result<Killed> {
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

/// `dropped=`, `late=` and `retransmitted=` of weir's "SRT publisher left" line.
pub(super) fn publisher_left(log: &Path) -> Option<(u64, u64, u64)> {
    let text = std::fs::read_to_string(log).ok()?;
    let line = text.lines().find(|l| l.contains("SRT publisher left"))?;
    let field = |name: &str| -> Option<u64> {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(name))
            .and_then(|v| v.trim_end_matches(',').parse().ok())
    };
    Some((
        field("dropped=")?,
        field("late=")?,
        field("retransmitted=")?,
    ))
}

pub(super) fn weir_run(
    bin: &Path,
    work: &Path,
    ts: &TsMedia,
    cfg: &Config,
    loss: u64,
) -> anyhow::Result<Run> {
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
    if let Some((d, l, r)) = publisher_left(&weir.log) {
        run.srt_dropped = Some(d);
        run.srt_late = Some(l);
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
pub(super) fn count_video_packets(url: &str) -> anyhow::Result<usize> {
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
pub(super) struct Received {
    pub(super) frames: HashMap<u64, Instant>,
    pub(super) cc_gaps: u64,
}

/// Reads TS from `out`, recording when each video frame was complete (the packet holding
/// the next frame's PES header arrived) and continuity-counter gaps.
pub(super) fn receive(mut out: impl std::io::Read) -> Received {
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

pub(super) fn peer_run(work: &Path, ts: &TsMedia, cfg: &Config, loss: u64) -> anyhow::Result<Run> {
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
    if let Some((d, l, r)) = listener_stats(&stats_path) {
        run.srt_dropped = Some(d);
        run.srt_late = l;
        run.srt_retransmitted = Some(r);
    }
    run.relay = (
        relay.lost_up.load(Ordering::Relaxed),
        relay.lost_down.load(Ordering::Relaxed),
        relay.relayed.load(Ordering::Relaxed),
    );
    Ok(run)
}

/// `packetsDropped`, `packetsBelated` (when the version reports it) and
/// `packetsRetransmitted` of srt-live-transmit's last JSON statistics line.
pub(super) fn listener_stats(path: &Path) -> Option<(u64, Option<u64>, u64)> {
    let text = std::fs::read_to_string(path).ok()?;
    let last = text
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())?;
    let recv = last.get("recv")?;
    Some((
        recv.get("packetsDropped")?.as_u64()?,
        recv.get("packetsBelated")
            .and_then(serde_json::Value::as_u64),
        recv.get("packetsRetransmitted")?.as_u64()?,
    ))
}
