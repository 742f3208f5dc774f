//! The recording half of `bench outputs`: one broadcast of the live media recorded to
//! disk by `weir serve --record`, and the same broadcast with recording off, in the same
//! run.
//!
//! Reported from the recorder's own `recording finished` line (every file it wrote
//! counted once: init segments, media segments, the index) against the media bytes the
//! bus carried: bytes written per byte of media (target ≤ 1.05), disk bytes per
//! stream-hour, segments and the time spent in fsync (every segment and index line is
//! fsynced before it is listed: the crash-safety policy), and the node's CPU with
//! recording on and off (the writer thread included).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::flv::Media;
use crate::procstat;
use crate::publisher::{self, Publish};
use crate::weirproc::Weir;

/// One recorded (or not) broadcast.
#[derive(Debug, Clone)]
pub struct RecordingRun {
    /// CPU of the node while publishing, cores.
    pub cores_off: f64,
    /// The same with recording on.
    pub cores_on: f64,
    /// Bytes the recorder wrote (every file once).
    pub bytes: u64,
    /// Media bytes of the recorded frames.
    pub media_bytes: u64,
    /// Recorded duration, ms.
    pub duration_ms: u64,
    /// Segments written.
    pub segments: u64,
    /// Time spent in fsync, ms.
    pub fsync_ms: u64,
}

impl RecordingRun {
    /// Bytes written per byte of media.
    pub fn overhead(&self) -> f64 {
        self.bytes as f64 / self.media_bytes.max(1) as f64
    }

    /// Disk bytes per hour of one stream, MiB.
    pub fn mib_per_hour(&self) -> f64 {
        self.bytes as f64 / self.duration_ms.max(1) as f64 * 3_600_000.0 / f64::from(1 << 20)
    }

    /// A markdown table of the run.
    pub fn table(&self) -> String {
        format!(
            "| recorded | bytes written / media bytes | disk per stream-hour | segments | fsync total (per segment) | node CPU recording off → on |\n\
             |---:|---:|---:|---:|---:|---:|\n\
             | {:.1} s | {:.4} | {:.0} MiB | {} | {} ms ({:.1} ms) | {:.3} → {:.3} cores |\n",
            self.duration_ms as f64 / 1000.0,
            self.overhead(),
            self.mib_per_hour(),
            self.segments,
            self.fsync_ms,
            self.fsync_ms as f64 / self.segments.max(1) as f64,
            self.cores_off,
            self.cores_on,
        )
    }
}

/// A `key=value` field of a tracing line (`bytes=123`), as a number.
fn field(line: &str, key: &str) -> Option<u64> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
        .map(|v| v.trim_matches('"'))
        .and_then(|v| v.parse().ok())
}

/// Publishes `media` for `secs` to a fresh node (`record` on or off); returns its CPU
/// (cores, over the middle of the run) and, with `record`, the recorder's report.
fn one(
    bin: &Path,
    work: &Path,
    media: &Arc<Media>,
    secs: f64,
    record: bool,
) -> anyhow::Result<(f64, Option<String>)> {
    let tag = format!("outputs-record-{record}");
    let w = Weir::start(
        bin,
        work,
        &tag,
        None,
        &[
            format!("--record={record}"),
            "--reconnect-grace-ms".into(),
            "500".into(),
        ],
    )?;
    let key = w.key("recorded")?;
    let publish = Publish {
        rtmp: w.rtmp,
        app: "live".into(),
        stream_name: key,
        start_at: Instant::now() + Duration::from_millis(300),
        duration: Duration::from_secs_f64(secs),
        stop: Arc::new(AtomicBool::new(false)),
    };
    let m = media.clone();
    let publisher = std::thread::spawn(move || publisher::run(&publish, &m));
    let procs = procstat::Server {
        pid: w.child.id(),
        with_children: false,
    };
    std::thread::sleep(Duration::from_secs_f64(secs / 4.0));
    let (cpu0, t0) = (procs.cpu_secs(), Instant::now());
    std::thread::sleep(Duration::from_secs_f64(secs / 2.0));
    let cores = (procs.cpu_secs() - cpu0) / t0.elapsed().as_secs_f64();
    publisher
        .join()
        .map_err(|_| anyhow::anyhow!("publisher panicked"))??;
    let mut finished = None;
    if record {
        let deadline = Instant::now() + Duration::from_secs(20);
        while finished.is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(200));
            finished = std::fs::read_to_string(&w.log)?
                .lines()
                .find(|l| l.contains("recording finished"))
                .map(str::to_owned);
        }
        finished
            .as_ref()
            .with_context(|| format!("no `recording finished` in {}", w.log.display()))?;
    }
    w.stop();
    Ok((cores, finished))
}

/// Records one broadcast for `secs` and measures the same without recording.
pub fn measure(
    bin: &Path,
    work: &Path,
    media: &Arc<Media>,
    secs: f64,
) -> anyhow::Result<RecordingRun> {
    let (cores_off, _) = one(bin, work, media, secs, false)?;
    let (cores_on, line) = one(bin, work, media, secs, true)?;
    let line = line.unwrap_or_default();
    let get = |k: &str| field(&line, k).with_context(|| format!("no {k} in {line:?}"));
    Ok(RecordingRun {
        cores_off,
        cores_on,
        bytes: get("bytes")?,
        media_bytes: get("media_bytes")?,
        duration_ms: get("duration_ms")?,
        segments: get("segments")?,
        fsync_ms: get("fsync_ms")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_recorders_line_is_read() {
        let line = "2026-12-07T11:00:00Z  INFO recording finished recording=r1 duration_ms=30000 \
                    bytes=9876543 segments=15 media_bytes=9700000 bytes_per_media_byte=\"1.0182\" fsync_ms=42";
        assert_eq!(field(line, "bytes"), Some(9_876_543));
        assert_eq!(field(line, "media_bytes"), Some(9_700_000));
        assert_eq!(field(line, "fsync_ms"), Some(42));
        assert_eq!(field(line, "missing"), None);
        let r = RecordingRun {
            cores_off: 0.01,
            cores_on: 0.012,
            bytes: 9_876_543,
            media_bytes: 9_700_000,
            duration_ms: 30_000,
            segments: 15,
            fsync_ms: 42,
        };
        assert!((r.overhead() - 1.0182).abs() < 1e-3);
        assert!(r.table().contains("| 30.0 s | 1.0182 |"), "{}", r.table());
    }
}
