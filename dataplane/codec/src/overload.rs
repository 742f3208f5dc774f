//! When the engine falls behind live: drop the most expensive rungs, add them back once
//! it keeps up for a while. A sans-IO state machine over (virtual) time and measured lag.

use std::time::Duration;

/// Thresholds of the overload policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverloadConfig {
    /// Lag above which the engine is overloaded: a rung is dropped (default 1 s).
    pub high_lag: Duration,
    /// How long the lag must stay above `high_lag` before a rung is dropped, so a burst
    /// pushed faster than real time (a GOP cache) does not count (default 1 s).
    pub sustain: Duration,
    /// Lag under which the engine counts as keeping up (default 300 ms).
    pub low_lag: Duration,
    /// Least time between two changes before another rung is dropped, so the queue can
    /// drain after the first drop (default 2 s).
    pub drop_cooldown: Duration,
    /// How long the lag must stay under `low_lag` before one rung is added back
    /// (default 10 s). Doubled, up to `max_recover_after`, each time a rung that was added
    /// back has to be dropped again within this time (flapping).
    pub recover_after: Duration,
    /// Cap of the doubled `recover_after` (default 160 s); once a rung that was added back
    /// has held this long without an overload, the wait returns to `recover_after`.
    pub max_recover_after: Duration,
}

impl Default for OverloadConfig {
    fn default() -> Self {
        Self {
            high_lag: Duration::from_secs(1),
            sustain: Duration::from_secs(1),
            low_lag: Duration::from_millis(300),
            drop_cooldown: Duration::from_secs(2),
            recover_after: Duration::from_secs(10),
            max_recover_after: Duration::from_secs(160),
        }
    }
}

/// What the policy wants done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverloadAction {
    /// Stop encoding the highest still-encoded rung; `dropped_rungs` are now off.
    Drop {
        /// Rungs off after this action, counted from the top.
        dropped_rungs: usize,
    },
    /// Encode the lowest dropped rung again; `dropped_rungs` remain off.
    Restore {
        /// Rungs off after this action, counted from the top.
        dropped_rungs: usize,
    },
}

/// The overload state machine. Feed it `observe(now, lag)` periodically; `now` is any
/// monotonic time (virtual in tests), `lag` how far output trails input in media time.
#[derive(Debug, Clone)]
pub struct OverloadPolicy {
    cfg: OverloadConfig,
    droppable: usize,
    dropped: usize,
    last_change: Option<Duration>,
    last_drop: Option<Duration>,
    last_restore: Option<Duration>,
    calm_since: Option<Duration>,
    behind_since: Option<Duration>,
    recover_after: Duration,
}

impl OverloadPolicy {
    /// A policy that may turn off at most `droppable` rungs (the encoded rungs but the
    /// lowest one: a ladder always keeps one rendition).
    pub fn new(cfg: OverloadConfig, droppable: usize) -> Self {
        Self {
            cfg,
            droppable,
            dropped: 0,
            last_change: None,
            last_drop: None,
            last_restore: None,
            calm_since: None,
            behind_since: None,
            recover_after: cfg.recover_after,
        }
    }

    /// How many rungs are off now, counted from the top.
    pub fn dropped(&self) -> usize {
        self.dropped
    }

    /// The current wait before a rung is added back (grows when rungs flap).
    pub fn recover_after(&self) -> Duration {
        self.recover_after
    }

    /// One observation; returns the change to apply, if any.
    pub fn observe(&mut self, now: Duration, lag: Duration) -> Option<OverloadAction> {
        let since = |t: Option<Duration>| t.map(|t| now.saturating_sub(t));
        if lag > self.cfg.high_lag {
            self.calm_since = None;
            let behind = now.saturating_sub(*self.behind_since.get_or_insert(now));
            let cooled = since(self.last_change).is_none_or(|d| d >= self.cfg.drop_cooldown);
            if self.dropped >= self.droppable || !cooled || behind < self.cfg.sustain {
                return None;
            }
            if since(self.last_restore).is_some_and(|d| d < self.recover_after) {
                self.recover_after = (self.recover_after * 2).min(self.cfg.max_recover_after);
            }
            self.dropped += 1;
            self.last_change = Some(now);
            self.last_drop = Some(now);
            return Some(OverloadAction::Drop {
                dropped_rungs: self.dropped,
            });
        }
        self.behind_since = None;
        if lag >= self.cfg.low_lag {
            self.calm_since = None;
            return None;
        }
        let calm_start = *self.calm_since.get_or_insert(now);
        let calm = now.saturating_sub(calm_start);
        if let Some(restored) = self.last_restore
            && self.last_drop.is_none_or(|d| d < restored)
            && now.saturating_sub(restored) >= self.cfg.max_recover_after
        {
            self.recover_after = self.cfg.recover_after;
        }
        let settled = since(self.last_change).is_none_or(|d| d >= self.recover_after);
        if self.dropped == 0 || calm < self.recover_after || !settled {
            return None;
        }
        self.dropped -= 1;
        self.last_change = Some(now);
        self.last_restore = Some(now);
        self.calm_since = Some(now);
        Some(OverloadAction::Restore {
            dropped_rungs: self.dropped,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);
    const BEHIND: Duration = Duration::from_millis(1500);
    const OK: Duration = Duration::from_millis(100);

    /// Runs `lag(t)` every 250 ms of virtual time from `from` to `to` seconds; returns the
    /// actions with the time they happened, in ms.
    fn run(
        p: &mut OverloadPolicy,
        from: u64,
        to: u64,
        lag: impl Fn(u64) -> Duration,
    ) -> Vec<(u64, OverloadAction)> {
        (from * 4..to * 4)
            .filter_map(|q| {
                let ms = q * 250;
                p.observe(Duration::from_millis(ms), lag(ms))
                    .map(|a| (ms, a))
            })
            .collect()
    }

    #[test]
    fn keeps_every_rung_while_it_keeps_up() {
        let mut p = OverloadPolicy::new(OverloadConfig::default(), 3);
        assert!(run(&mut p, 0, 600, |_| OK).is_empty());
        // In between the thresholds nothing changes either.
        assert!(run(&mut p, 600, 700, |_| Duration::from_millis(700)).is_empty());
        assert_eq!(p.dropped(), 0);
    }

    #[test]
    fn drops_from_the_top_with_a_cooldown_and_never_the_last_rung() {
        let mut p = OverloadPolicy::new(OverloadConfig::default(), 2);
        let acts = run(&mut p, 0, 30, |_| BEHIND);
        assert_eq!(
            acts,
            [
                (1000, OverloadAction::Drop { dropped_rungs: 1 }),
                (3000, OverloadAction::Drop { dropped_rungs: 2 }),
            ]
        );
        assert_eq!(p.dropped(), 2);
    }

    #[test]
    fn restores_one_rung_at_a_time_after_keeping_up() {
        let mut p = OverloadPolicy::new(OverloadConfig::default(), 3);
        let acts = run(&mut p, 0, 60, |ms| if ms < 4000 { BEHIND } else { OK });
        assert_eq!(
            acts,
            [
                (1000, OverloadAction::Drop { dropped_rungs: 1 }),
                (3000, OverloadAction::Drop { dropped_rungs: 2 }),
                (14000, OverloadAction::Restore { dropped_rungs: 1 }),
                (24000, OverloadAction::Restore { dropped_rungs: 0 }),
            ]
        );
    }

    #[test]
    fn a_blip_of_lag_resets_the_calm_period() {
        let mut p = OverloadPolicy::new(OverloadConfig::default(), 1);
        assert_eq!(p.observe(Duration::ZERO, BEHIND), None);
        assert_eq!(
            p.observe(SEC, BEHIND),
            Some(OverloadAction::Drop { dropped_rungs: 1 })
        );
        // Calm for 7 s, a 700 ms lag (between thresholds), then calm again.
        let acts = run(&mut p, 2, 40, |ms| {
            if ms == 9000 {
                Duration::from_millis(700)
            } else {
                OK
            }
        });
        assert_eq!(
            acts,
            [(19250, OverloadAction::Restore { dropped_rungs: 0 })]
        );
    }

    #[test]
    fn flapping_doubles_the_wait_then_it_decays() {
        let cfg = OverloadConfig::default();
        let mut p = OverloadPolicy::new(cfg, 1);
        // Every time the rung is added back, the engine is behind for the next 3 s.
        let mut restores = Vec::new();
        let mut behind_until = 1000u64;
        for q in 0..(400 * 4) {
            let ms = q * 250;
            let lag = if ms <= behind_until { BEHIND } else { OK };
            match p.observe(Duration::from_millis(ms), lag) {
                Some(OverloadAction::Restore { .. }) => {
                    restores.push(ms);
                    behind_until = ms + 3000;
                }
                Some(OverloadAction::Drop { .. }) | None => {}
            }
        }
        let gaps: Vec<u64> = restores.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(gaps.windows(2).all(|w| w[1] >= w[0]), "{gaps:?}");
        assert_eq!(p.recover_after(), cfg.max_recover_after);
        assert_eq!(gaps, [23_250, 43_250, 83_250, 163_250]);
        // Calm again: the rung comes back and, once it has held for the cap, the wait
        // returns to the base value.
        let at = |s: u64| Duration::from_secs(s);
        assert_eq!(
            p.observe(at(720), OK),
            Some(OverloadAction::Restore { dropped_rungs: 0 })
        );
        assert_eq!(p.observe(at(720) + cfg.max_recover_after - SEC, OK), None);
        assert_eq!(p.recover_after(), cfg.max_recover_after);
        assert_eq!(p.observe(at(720) + cfg.max_recover_after, OK), None);
        assert_eq!(p.recover_after(), cfg.recover_after);
    }

    #[test]
    fn a_burst_shorter_than_sustain_is_ignored() {
        let mut p = OverloadPolicy::new(OverloadConfig::default(), 3);
        let acts = run(
            &mut p,
            0,
            30,
            |ms| if ms % 5000 < 1000 { BEHIND } else { OK },
        );
        assert!(acts.is_empty(), "{acts:?}");
    }

    #[test]
    fn nothing_droppable_means_no_actions() {
        let mut p = OverloadPolicy::new(OverloadConfig::default(), 0);
        assert!(run(&mut p, 0, 60, |_| BEHIND).is_empty());
    }
}
