//! Simulcast layer choice for one viewer, sans-IO.
//!
//! A publisher's simulcast layers are separate bus video tracks (index 0 = best). The
//! selector measures each layer's bitrate from the frames it sees, takes the viewer's
//! bandwidth estimate (TWCC, from str0m), and picks the best layer that fits with
//! [`HEADROOM`]. Going down happens as soon as the estimate says so; going up only once
//! the estimate has allowed it for [`UP_HOLD`] (no flapping). A switch takes effect at a
//! key frame of the new layer — until then the old layer keeps flowing — and the selector
//! asks for that key frame ([`LayerSelector::poll_keyframe_request`]), at most every
//! [`KEYFRAME_REQUEST_EVERY`](crate::KEYFRAME_REQUEST_EVERY).

use std::time::{Duration, Instant};

use crate::KEYFRAME_REQUEST_EVERY;

/// A layer is chosen only if its bitrate × this fits the estimate.
pub const HEADROOM: f64 = 1.15;
/// How long the estimate must allow a better layer before switching up.
pub const UP_HOLD: Duration = Duration::from_secs(2);
/// Window over which a layer's bitrate is measured.
const RATE_WINDOW: Duration = Duration::from_secs(1);
/// A layer with no frame for this long is gone.
const LAYER_TIMEOUT: Duration = Duration::from_secs(2);
/// Most layers tracked.
const MAX_LAYERS: usize = 8;

#[derive(Debug, Clone, Copy, Default)]
struct Layer {
    /// Bytes in the current window, and when it started.
    window_bytes: u64,
    window_start: Option<Instant>,
    /// Bits per second measured over the last full window.
    bitrate: Option<u64>,
    last_frame: Option<Instant>,
}

/// What to do with a video frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forward {
    /// Send it.
    Send,
    /// Not the layer this viewer gets.
    Drop,
}

/// One viewer's simulcast layer choice.
#[derive(Debug, Default)]
pub struct LayerSelector {
    layers: [Layer; MAX_LAYERS],
    current: Option<u8>,
    target: Option<u8>,
    estimate: Option<u64>,
    /// Since when the estimate has allowed a better layer than the current one.
    better_since: Option<Instant>,
    last_request: Option<Instant>,
    pending_request: Option<u8>,
}

impl LayerSelector {
    /// A selector that has seen nothing yet (it starts on the first layer whose key frame
    /// arrives, preferring the best).
    pub fn new() -> Self {
        Self::default()
    }

    /// The layer being sent.
    pub fn current(&self) -> Option<u8> {
        self.current
    }

    /// The layer being switched to, if a switch waits for its key frame.
    pub fn target(&self) -> Option<u8> {
        self.target.filter(|t| Some(*t) != self.current)
    }

    /// The viewer's bandwidth estimate changed (bits per second).
    pub fn on_estimate(&mut self, now: Instant, bps: u64) {
        self.estimate = Some(bps);
        self.choose(now);
    }

    /// A frame of layer `index` (`bytes` long) arrived on the bus.
    pub fn on_frame(&mut self, now: Instant, index: u8, bytes: usize, keyframe: bool) -> Forward {
        let Some(layer) = self.layers.get_mut(usize::from(index)) else {
            return Forward::Drop;
        };
        layer.last_frame = Some(now);
        match layer.window_start {
            Some(start) if now.duration_since(start) >= RATE_WINDOW => {
                let secs = now.duration_since(start).as_secs_f64();
                layer.bitrate = Some((layer.window_bytes as f64 * 8.0 / secs) as u64);
                layer.window_bytes = bytes as u64;
                layer.window_start = Some(now);
            }
            Some(_) => layer.window_bytes += bytes as u64,
            None => {
                layer.window_bytes = bytes as u64;
                layer.window_start = Some(now);
            }
        }
        self.choose(now);
        if keyframe {
            let take = match (self.current, self.target) {
                // First picture: the target if known, else the best layer seen.
                (None, t) => t.is_none_or(|t| t == index),
                (Some(_), Some(t)) => t == index,
                (Some(_), None) => false,
            };
            if take {
                self.current = Some(index);
                self.target = Some(index);
            }
        }
        if self.current == Some(index) {
            Forward::Send
        } else {
            Forward::Drop
        }
    }

    /// A key frame to ask the publisher for (the target layer), if one is due.
    pub fn poll_keyframe_request(&mut self, now: Instant) -> Option<u8> {
        let target = self.target()?;
        if self
            .last_request
            .is_some_and(|at| now.duration_since(at) < KEYFRAME_REQUEST_EVERY)
            && self.pending_request == Some(target)
        {
            return None;
        }
        self.last_request = Some(now);
        self.pending_request = Some(target);
        Some(target)
    }

    fn alive(&self, now: Instant) -> impl Iterator<Item = (u8, &Layer)> {
        self.layers.iter().enumerate().filter_map(move |(i, l)| {
            let live = l
                .last_frame
                .is_some_and(|t| now.duration_since(t) < LAYER_TIMEOUT);
            live.then_some((i as u8, l))
        })
    }

    /// The best layer the estimate allows (the worst alive when none fits).
    fn fitting(&self, now: Instant) -> Option<u8> {
        let estimate = self.estimate?;
        let mut worst = None;
        for (i, l) in self.alive(now) {
            worst = Some(i);
            let rate = l.bitrate?;
            if (rate as f64) * HEADROOM <= estimate as f64 {
                return Some(i);
            }
        }
        worst
    }

    fn choose(&mut self, now: Instant) {
        let current = self.current.filter(|c| {
            self.layers[usize::from(*c)]
                .last_frame
                .is_some_and(|t| now.duration_since(t) < LAYER_TIMEOUT)
        });
        let Some(fit) = self.fitting(now) else {
            if current.is_none() {
                // No estimate yet (or the current layer vanished): the best alive layer.
                let best = self.alive(now).next().map(|(i, _)| i);
                self.target = best;
            }
            return;
        };
        match current {
            None => self.target = Some(fit),
            Some(c) if fit > c => {
                // Worse layer needed: switch down now.
                self.better_since = None;
                self.target = Some(fit);
            }
            Some(c) if fit < c => {
                let since = *self.better_since.get_or_insert(now);
                if now.duration_since(since) >= UP_HOLD {
                    self.target = Some(fit);
                }
            }
            Some(c) => {
                self.better_since = None;
                self.target = Some(c);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds 30 fps of three layers (0: 2.4 Mb/s, 1: 800 kb/s, 2: 240 kb/s), key frames
    /// every `gop` frames, for `frames` frames from `t`.
    fn feed(s: &mut LayerSelector, t: &mut Instant, frames: u32, gop: u32) -> Vec<u8> {
        let mut sent = Vec::new();
        for n in 0..frames {
            *t += Duration::from_millis(33);
            for (layer, bytes) in [(0u8, 10_000usize), (1, 3_333), (2, 1_000)] {
                if s.on_frame(*t, layer, bytes, n % gop == 0) == Forward::Send {
                    sent.push(layer);
                }
            }
        }
        sent
    }

    #[test]
    fn starts_on_the_best_layer_without_an_estimate() {
        let mut s = LayerSelector::new();
        let mut t = Instant::now();
        let sent = feed(&mut s, &mut t, 60, 30);
        assert_eq!(s.current(), Some(0));
        assert!(sent.iter().all(|l| *l == 0));
    }

    #[test]
    fn switches_down_at_once_and_up_after_the_hold() {
        let mut s = LayerSelector::new();
        let mut t = Instant::now();
        s.on_estimate(t, 5_000_000);
        feed(&mut s, &mut t, 60, 30);
        assert_eq!(s.current(), Some(0));
        // The viewer's link drops to 1 Mb/s: layer 1 (800 kb/s × 1.15 fits).
        s.on_estimate(t, 1_000_000);
        assert_eq!(s.target(), Some(1));
        assert_eq!(
            s.poll_keyframe_request(t),
            Some(1),
            "asks for a key frame of layer 1"
        );
        assert_eq!(s.poll_keyframe_request(t), None, "throttled");
        // Until layer 1's key frame, layer 0 keeps flowing; then only layer 1.
        let sent = feed(&mut s, &mut t, 31, 30);
        assert_eq!(s.current(), Some(1));
        assert_eq!(sent.last(), Some(&1));
        assert!(sent.contains(&0), "no gap before the switch");
        // Bandwidth comes back: not before the hold, then up.
        s.on_estimate(t, 5_000_000);
        feed(&mut s, &mut t, 30, 30);
        assert_eq!(s.target(), None, "no switch up during the hold");
        assert_eq!(s.current(), Some(1));
        feed(&mut s, &mut t, 90, 30);
        assert_eq!(
            s.current(),
            Some(0),
            "back up after the hold, at a key frame"
        );
    }

    #[test]
    fn a_starved_viewer_gets_the_worst_layer_and_a_vanished_layer_is_left() {
        let mut s = LayerSelector::new();
        let mut t = Instant::now();
        s.on_estimate(t, 100_000);
        feed(&mut s, &mut t, 61, 30);
        assert_eq!(s.current(), Some(2));
        // Only layer 0 left (publisher dropped the others): it is taken at its key frame.
        let mut sent = Vec::new();
        for n in 0..120u32 {
            t += Duration::from_millis(33);
            if s.on_frame(t, 0, 10_000, n % 30 == 0) == Forward::Send {
                sent.push(n);
            }
        }
        assert_eq!(s.current(), Some(0));
        assert!(!sent.is_empty());
    }
}
