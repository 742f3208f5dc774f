//! When a relay writes (sans-IO).
//!
//! Every send to a destination costs a syscall and, on the far side, a wake-up; at
//! 30 fps video and ~47 AAC frames a second, writing each frame as it comes is ~77 sends
//! a second per destination, and those sends are most of the relay's CPU. Video and
//! data go out at once; an audio frame may wait up to `hold` for the next video frame,
//! so both leave in one write: ~30 sends a second, no added latency for video, and at
//! most `hold` for audio (audio-only broadcasts: one write per `hold`). Destinations
//! (YouTube, Twitch…) buffer seconds, so the wait is invisible there.
//!
//! Batch and report deadlines are put on a shared grid ([`on_grid`]): with their timers
//! on the same instant the shard wakes once for all the node's relays, not once per
//! relay a few microseconds apart.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use weir_rtmp::MediaKind;

/// Decides, after each wake-up, whether a relay writes what it has queued.
#[derive(Debug, Clone)]
pub struct AudioHold {
    hold: Duration,
    /// When the oldest audio not yet written was queued.
    held_since: Option<Instant>,
    /// Something that goes out at once (video, data) is queued.
    urgent: bool,
}

impl AudioHold {
    /// Audio waits up to `hold` (zero: every frame is written at once).
    pub fn new(hold: Duration) -> Self {
        Self {
            hold,
            held_since: None,
            urgent: false,
        }
    }

    /// A message of `kind` was queued at `now`.
    pub fn queued(&mut self, kind: MediaKind, now: Instant) {
        if kind == MediaKind::Audio && !self.hold.is_zero() {
            self.held_since.get_or_insert(now);
        } else {
            self.urgent = true;
        }
    }

    /// Write now? True for video or data, for audio held `hold` long, and when no
    /// audio is held (the session's own answers). Answering true forgets what was held.
    pub fn write_now(&mut self, now: Instant) -> bool {
        let due = self.urgent
            || match self.held_since {
                None => true,
                Some(t) => now.saturating_duration_since(t) >= self.hold,
            };
        if due {
            self.urgent = false;
            self.held_since = None;
        }
        due
    }

    /// When held audio must be written (`None`: nothing held).
    pub fn deadline(&self) -> Option<Instant> {
        self.held_since.map(|t| t + self.hold)
    }
}

/// The grid relay deadlines are put on ([`on_grid`]).
pub const GRID: Duration = Duration::from_millis(5);

/// `at` rounded down to a multiple of `grain` since a process-wide epoch, but not
/// before `now`: timers set a little apart for the same purpose fire together. A
/// zero `grain` leaves `at` as it is.
pub fn on_grid(at: Instant, now: Instant, grain: Duration) -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    if grain.is_zero() || at <= epoch {
        return at;
    }
    let since = (at - epoch).as_nanos();
    let step = grain.as_nanos();
    let down =
        epoch + Duration::from_nanos(u64::try_from(since - since % step).unwrap_or(u64::MAX));
    down.max(now)
}

/// When a relay that wrote at `now` writes next: one `batch` on, on the [`GRID`].
pub fn next_batch(now: Instant, batch: Duration) -> Instant {
    on_grid(now + batch, now, GRID)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_set_apart_meet_on_the_grid() {
        let t0 = Instant::now();
        let a = on_grid(t0 + Duration::from_millis(40), t0, GRID);
        let b = on_grid(
            t0 + Duration::from_micros(40_900),
            t0 + Duration::from_micros(900),
            GRID,
        );
        // Within one grid step of each other they usually meet; never later than asked,
        // never more than a step earlier, never before now.
        for (x, asked) in [(a, 40_000u64), (b, 40_900)] {
            assert!(x <= t0 + Duration::from_micros(asked));
            assert!(x + GRID > t0 + Duration::from_micros(asked));
        }
        let c = on_grid(
            t0 + Duration::from_micros(41_000),
            t0 + Duration::from_micros(1_000),
            GRID,
        );
        let d = on_grid(
            t0 + Duration::from_micros(41_300),
            t0 + Duration::from_micros(1_300),
            GRID,
        );
        assert!(c == d || d.duration_since(c) == GRID, "on the same grid");
        let soon = t0 + Duration::from_micros(10);
        assert_eq!(on_grid(soon, soon, GRID), soon, "not before now");
        assert_eq!(on_grid(soon, t0, Duration::ZERO), soon);
    }

    const HOLD: Duration = Duration::from_millis(50);

    #[test]
    fn audio_waits_for_the_next_video_frame() {
        let t0 = Instant::now();
        let mut p = AudioHold::new(HOLD);
        p.queued(MediaKind::Audio, t0);
        assert!(!p.write_now(t0));
        assert_eq!(p.deadline(), Some(t0 + HOLD));
        p.queued(MediaKind::Audio, t0 + Duration::from_millis(21));
        assert!(!p.write_now(t0 + Duration::from_millis(21)));
        // The deadline is the oldest held frame's.
        assert_eq!(p.deadline(), Some(t0 + HOLD));
        p.queued(MediaKind::Video, t0 + Duration::from_millis(33));
        assert!(p.write_now(t0 + Duration::from_millis(33)));
        assert_eq!(p.deadline(), None);
    }

    #[test]
    fn held_audio_goes_out_after_the_hold() {
        let t0 = Instant::now();
        let mut p = AudioHold::new(HOLD);
        p.queued(MediaKind::Audio, t0);
        assert!(!p.write_now(t0 + Duration::from_millis(49)));
        assert!(p.write_now(t0 + HOLD));
        assert!(
            p.write_now(t0 + HOLD),
            "nothing held: the session's answers go out"
        );
    }

    #[test]
    fn video_and_data_go_out_at_once_and_zero_hold_writes_everything() {
        let t0 = Instant::now();
        let mut p = AudioHold::new(HOLD);
        p.queued(MediaKind::Data, t0);
        assert!(p.write_now(t0));
        let mut off = AudioHold::new(Duration::ZERO);
        off.queued(MediaKind::Audio, t0);
        assert!(off.write_now(t0));
        assert_eq!(off.deadline(), None);
    }
}
