//! MPEG-TS, just enough to pace a file by its PCR in SRT-sized chunks and find its video
//! frames; the cached test media.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};

use super::*;

pub(super) fn pid(p: &[u8]) -> u16 {
    (u16::from(p[1] & 0x1f) << 8) | u16::from(p[2])
}

/// Offset of the payload in a packet, None without one.
pub(super) fn payload_at(p: &[u8]) -> Option<usize> {
    let afc = (p[3] >> 4) & 3;
    let at = if afc & 2 != 0 {
        5 + usize::from(p[4])
    } else {
        4
    };
    (afc & 1 != 0 && at < 188).then_some(at)
}

/// The PCR of a packet in seconds.
pub(super) fn pcr(p: &[u8]) -> Option<f64> {
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

pub(super) fn timestamp(b: &[u8]) -> u64 {
    (u64::from(b[0] >> 1) & 7) << 30
        | u64::from(b[1]) << 22
        | (u64::from(b[2]) >> 1) << 15
        | u64::from(b[3]) << 7
        | u64::from(b[4]) >> 1
}

/// A video PES starting in this packet: its DTS (else PTS) in 90 kHz ticks.
pub(super) fn video_pes_start(p: &[u8]) -> Option<u64> {
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
    pub(super) data: Vec<u8>,
    /// Due time of each chunk (s since the first PCR).
    pub(super) due: Vec<f64>,
    /// Video frames: (DTS ticks, chunk holding the next frame's PES header).
    pub(super) frames: Vec<(u64, usize)>,
    /// Chunk holding each video frame's PES header.
    pub(super) starts: Vec<usize>,
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

    pub(super) fn first_dts(&self) -> u64 {
        self.frames.first().map_or(0, |f| f.0)
    }

    /// Media seconds of a DTS since the first frame.
    pub(super) fn media_s(&self, dts: u64) -> f64 {
        dts.wrapping_sub(self.first_dts()) as f64 / 90_000.0
    }
}

/// What the sender did.
#[derive(Debug, Default)]
pub(super) struct Sent {
    /// (media s, sent) of each complete frame.
    pub(super) sends: Vec<(f64, Instant)>,
    /// DTS → sent.
    pub(super) by_dts: HashMap<u64, Instant>,
    /// Worst lateness of a chunk.
    pub(super) max_lag: Duration,
    /// Video frames whose PES header was sent (the last one included).
    pub(super) frames_total: usize,
}

impl Sent {
    /// The frames to measure latency on: past the client start-up, and not in the last
    /// second (the stream's last part is only closed when the stream ends).
    pub(super) fn measured(&self) -> Vec<(f64, Instant)> {
        let last = self.sends.iter().map(|s| s.0).fold(0.0, f64::max);
        self.sends
            .iter()
            .copied()
            .filter(|s| s.0 >= SKIP_S && s.0 < last - 1.0)
            .collect()
    }
}

/// Writes the chunks due before `secs` to `out` in real time from `start`.
pub(super) fn send(
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
        crate::sleep_until(due);
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

/// The `live` media in MPEG-TS: testsrc2 720p30, x264 veryfast 2500k, 2 s GOP, AAC; 30 s.
pub(super) fn ts_media(cfg: &Config) -> anyhow::Result<PathBuf> {
    if let Some(p) = &cfg.media {
        return Ok(p.clone());
    }
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30"])
        .args(["-f", "lavfi", "-i", "sine=sample_rate=48000", "-t", "30"])
        .args([
            "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
        ])
        .args([
            "-b:v", "2500k", "-maxrate", "2500k", "-bufsize", "5000k", "-g", "60",
        ])
        .args(["-c:a", "aac", "-ac", "2", "-f", "mpegts"]);
    crate::media::cached("testsrc2-720p30-x264-2500k-aac-30s.ts", cmd)
}
