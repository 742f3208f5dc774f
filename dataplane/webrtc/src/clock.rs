//! RTP media time → bus time, per track, on one shared timeline.
//!
//! Each RTP stream starts at a random timestamp with its own clock rate, so tracks are
//! aligned by arrival: the first frame of a track is placed at its arrival time on the
//! session's timeline (which starts at [`TIMELINE_START`], like every ingest's), and later
//! frames follow its RTP clock exactly. A clock that jumps (encoder restart, SSRC change)
//! further than [`MAX_DRIFT`] from arrival time is re-anchored instead of followed, and
//! bus time never goes backwards within a track.

use std::time::{Duration, Instant};

use weir_media::TIMESCALE;

/// Where the first frame of a session lands on the bus timeline (10 s, as for RTMP), so
/// a track that starts a little late never gets a negative timestamp.
pub const TIMELINE_START: i64 = 10 * TIMESCALE as i64;

/// How far a track's RTP clock may run from arrival time before it is re-anchored.
pub const MAX_DRIFT: Duration = Duration::from_secs(5);

/// The timeline shared by a session's tracks.
#[derive(Debug, Clone, Copy)]
pub struct SessionClock {
    epoch: Instant,
}

impl SessionClock {
    /// A timeline whose [`TIMELINE_START`] is `epoch`.
    pub fn new(epoch: Instant) -> Self {
        Self { epoch }
    }

    /// Bus ticks of an arrival instant.
    pub fn arrival_ticks(&self, at: Instant) -> i64 {
        let d = at.saturating_duration_since(self.epoch);
        TIMELINE_START + (d.as_micros() as i64 * i64::from(TIMESCALE)) / 1_000_000
    }
}

/// One track's mapping from RTP media time to bus ticks.
#[derive(Debug, Default, Clone)]
pub struct TrackClock {
    /// Bus ticks minus RTP ticks (in bus units) of the anchor.
    offset: Option<i64>,
    last: Option<i64>,
}

impl TrackClock {
    /// A track clock not yet anchored.
    pub fn new() -> Self {
        Self::default()
    }

    /// Bus ticks of a frame with RTP time `rtp` (`numer` / `rate` seconds, already
    /// unwrapped past 32 bits) that arrived at `arrival` (bus ticks).
    pub fn map(&mut self, rtp: u64, rate: u32, arrival: i64) -> i64 {
        let rate = u128::from(rate.max(1));
        let rtp_ticks = (u128::from(rtp) * u128::from(TIMESCALE) / rate) as i64;
        let max_drift = (MAX_DRIFT.as_millis() as i64) * i64::from(TIMESCALE) / 1000;
        let mapped = self.offset.map(|o| rtp_ticks.wrapping_add(o));
        let t = match mapped {
            Some(t) if (t - arrival).abs() <= max_drift => t,
            _ => {
                if mapped.is_some() {
                    tracing::debug!("RTP clock jumped: track re-anchored to arrival time");
                }
                self.offset = Some(arrival.wrapping_sub(rtp_ticks));
                arrival
            }
        };
        let t = match self.last {
            Some(last) if t <= last => last + 1,
            _ => t,
        };
        self.last = Some(t);
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_the_rtp_clock_after_anchoring() {
        let mut c = TrackClock::new();
        // Opus at 48 kHz, random start.
        let base = 3_000_000_000u64;
        assert_eq!(c.map(base, 48_000, 900_000), 900_000);
        // 20 ms later in RTP, arriving with 7 ms of jitter: RTP wins.
        assert_eq!(c.map(base + 960, 48_000, 900_000 + 1800 + 630), 901_800);
    }

    #[test]
    fn jumps_re_anchor_and_time_never_goes_back() {
        let mut c = TrackClock::new();
        assert_eq!(c.map(1000, 90_000, 900_000), 900_000);
        // The sender's clock leapt an hour ahead: re-anchored at arrival.
        let t = c.map(1000 + 3600 * 90_000, 90_000, 903_000);
        assert_eq!(t, 903_000);
        // A frame mapping before the last one is nudged forward.
        let mut c = TrackClock::new();
        c.map(10_000, 90_000, 900_000);
        assert_eq!(c.map(9_000, 90_000, 900_100), 900_001);
    }

    #[test]
    fn arrival_ticks_start_at_the_timeline_start() {
        let t0 = Instant::now();
        let clock = SessionClock::new(t0);
        assert_eq!(clock.arrival_ticks(t0), TIMELINE_START);
        assert_eq!(
            clock.arrival_ticks(t0 + Duration::from_millis(20)),
            TIMELINE_START + 1800
        );
    }
}
