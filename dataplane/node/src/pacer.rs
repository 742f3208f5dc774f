//! Ingest read batching under load.
//!
//! Encoders write every frame as it is made, so a publisher's socket becomes readable
//! ~80 times a second, and each read costs the shard a completion, a wake-up, a receive
//! call and an ACK whatever its size. When the shard is lightly loaded that is the price
//! of the lowest latency. When it is busy, a publishing connection that has drained its
//! socket waits a little before reading again, so each read carries several frames: the
//! shard then spends its time on media instead of per-read overhead, and can take about
//! twice as many publishers before it falls behind (`cargo xtask bench live`).
//!
//! The wait grows with the shard's own CPU use, measured every [`SAMPLE_EVERY`] from
//! `/proc/thread-self/schedstat`: none below [`BUSY_FROM`], then linearly up to the
//! configured maximum at [`BUSY_FULL`]. The wait adds at most that maximum to
//! ingest-to-available latency, and only while the shard is busy.

use std::cell::Cell;
use std::pin::pin;
use std::time::{Duration, Instant};

use futures_util::future::{Either, select};

use crate::shutdown::Shutdown;

/// How often the shard's CPU use is sampled.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(250);
/// Below this share of a core, reads are not delayed.
pub const BUSY_FROM: f64 = 0.5;
/// From this share of a core on, reads wait the full maximum.
pub const BUSY_FULL: f64 = 0.8;

/// The read pause of one shard (shared by its connections).
#[derive(Debug)]
pub struct Pacer {
    max: Duration,
    pause: Cell<Duration>,
    /// Smoothed share of a core the shard used.
    busy: Cell<f64>,
}

impl Pacer {
    /// A pacer that waits at most `max` (zero disables batching).
    pub fn new(max: Duration) -> Self {
        Self {
            max,
            pause: Cell::new(Duration::ZERO),
            busy: Cell::new(0.0),
        }
    }

    /// How long a publishing connection that drained its socket waits before reading.
    pub fn pause(&self) -> Duration {
        self.pause.get()
    }

    /// Takes one CPU-use sample (share of a core since the previous one).
    pub fn sample(&self, busy: f64) {
        // Smooth over about a second so a burst does not swing the pause.
        let smoothed = 0.7 * self.busy.get() + 0.3 * busy.clamp(0.0, 1.0);
        self.busy.set(smoothed);
        self.pause.set(pause_for(smoothed, self.max));
        metrics::gauge!("weir_ingest_read_pause_seconds").set(self.pause.get().as_secs_f64());
    }
}

/// The pause for a shard using `busy` of a core.
pub fn pause_for(busy: f64, max: Duration) -> Duration {
    let share = ((busy - BUSY_FROM) / (BUSY_FULL - BUSY_FROM)).clamp(0.0, 1.0);
    max.mul_f64(share)
}

/// CPU time the calling thread has used.
fn thread_cpu() -> Option<Duration> {
    // schedstat: nanoseconds on CPU first; stat: utime and stime in clock ticks (100/s).
    if let Ok(s) = std::fs::read_to_string("/proc/thread-self/schedstat")
        && let Some(ns) = s.split_whitespace().next().and_then(|v| v.parse().ok())
        && ns > 0
    {
        return Some(Duration::from_nanos(ns));
    }
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// Samples the shard thread's CPU use until shutdown (run on the shard it paces).
pub async fn run(pacer: std::rc::Rc<Pacer>, shutdown: Shutdown) {
    if pacer.max.is_zero() {
        return;
    }
    let Some(mut cpu) = thread_cpu() else {
        tracing::debug!("no per-thread CPU time: ingest reads are not batched");
        return;
    };
    let mut at = Instant::now();
    loop {
        let tick = pin!(compio::time::sleep(SAMPLE_EVERY));
        let stop = pin!(shutdown.wait());
        if let Either::Right(_) = select(tick, stop).await {
            return;
        }
        let (now, Some(used)) = (Instant::now(), thread_cpu()) else {
            return;
        };
        let wall = now.duration_since(at).as_secs_f64();
        if wall > 0.0 {
            pacer.sample(used.saturating_sub(cpu).as_secs_f64() / wall);
        }
        (cpu, at) = (used, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_pause_when_idle_full_pause_when_busy() {
        let max = Duration::from_millis(40);
        assert_eq!(pause_for(0.0, max), Duration::ZERO);
        assert_eq!(pause_for(BUSY_FROM, max), Duration::ZERO);
        let half = pause_for(0.65, max).abs_diff(Duration::from_millis(20));
        assert!(half < Duration::from_micros(1));
        assert_eq!(pause_for(BUSY_FULL, max), max);
        assert_eq!(pause_for(1.5, max), max);
        assert_eq!(pause_for(0.9, Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn samples_are_smoothed() {
        let p = Pacer::new(Duration::from_millis(40));
        p.sample(1.0);
        assert_eq!(p.pause(), Duration::ZERO, "one busy sample is not enough");
        for _ in 0..10 {
            p.sample(1.0);
        }
        assert_eq!(p.pause(), Duration::from_millis(40));
        for _ in 0..10 {
            p.sample(0.1);
        }
        assert_eq!(p.pause(), Duration::ZERO);
    }

    #[test]
    fn this_thread_has_cpu_time() {
        let start = thread_cpu().expect("procfs");
        let t = Instant::now();
        let mut x = 0u64;
        while t.elapsed() < Duration::from_millis(30) {
            x = x.wrapping_add(std::hint::black_box(1));
        }
        assert!(x > 0);
        assert!(thread_cpu().expect("procfs") > start);
    }
}
