//! Per-title bitrates: each rung's bitrate follows the content's measured complexity
//! instead of a fixed table. A sans-IO estimator over media time.
//!
//! # How complexity is measured
//! A probe branch of the pipeline encodes the decoded source at a small size
//! ([`PerTitleConfig::probe_height`], 360 lines: small enough to cost a few percent of a
//! core, large enough that grain and fine detail still cost bits, which they stop doing
//! at 180 lines) with x264 `ultrafast` at a *constant quality* (CRF). What that costs in
//! bits per pixel over a sliding window of media time is the complexity: a slide deck
//! costs almost nothing, a sports or grainy film source many times more.
//!
//! # From complexity to bitrates
//! `scale = clamp((bpp / reference_bpp) ^ exponent, min_scale, max_scale)` and every
//! encoded rung gets `table bitrate × scale`. The reference is the complexity the table
//! was written for (typical live content; the default puts an animated test pattern at
//! about 1.0), and the exponent (0.5) keeps the response gentle: content four times as
//! complex gets twice the bits, since the quality a viewer notices grows slower than
//! the bits a constant-quality encoder spends. A new scale is applied only when it moved
//! by more than `min_change` and `hold` has passed since the last change (no pumping);
//! the first decision comes after half a window.

use std::collections::VecDeque;
use std::time::Duration;

use weir_media::TIMESCALE;

/// Settings of the per-title mode.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PerTitleConfig {
    /// Height of the complexity probe's pictures (even; width follows the source).
    pub probe_height: u16,
    /// x264 constant-quality factor of the probe (`quantizer` with `pass=qual`).
    pub probe_crf: u32,
    /// Probe bits per pixel at which the table's bitrates apply unchanged.
    pub reference_bpp: f64,
    /// How strongly bitrates follow complexity (0: not at all, 1: proportionally).
    pub exponent: f64,
    /// Lowest factor applied to the table's bitrates.
    pub min_scale: f64,
    /// Highest factor applied to the table's bitrates.
    pub max_scale: f64,
    /// Media time the complexity is measured over.
    pub window: Duration,
    /// Relative change of the factor below which bitrates are left alone.
    pub min_change: f64,
    /// Least media time between two changes.
    pub hold: Duration,
}

impl Default for PerTitleConfig {
    fn default() -> Self {
        Self {
            probe_height: 360,
            probe_crf: 23,
            reference_bpp: 0.22,
            exponent: 0.5,
            min_scale: 0.3,
            max_scale: 1.5,
            window: Duration::from_secs(6),
            min_change: 0.15,
            hold: Duration::from_secs(8),
        }
    }
}

impl PerTitleConfig {
    /// Checks the settings; the error says which one is wrong.
    pub fn validate(&self) -> Result<(), String> {
        if !(16..=2160).contains(&self.probe_height) || !self.probe_height.is_multiple_of(2) {
            return Err(format!(
                "per-title probe height {} must be even and within 16..=2160",
                self.probe_height
            ));
        }
        if self.probe_crf > 51 {
            return Err(format!("per-title probe CRF {} exceeds 51", self.probe_crf));
        }
        let positive = |v: f64| v.is_finite() && v > 0.0;
        if !positive(self.reference_bpp) || !positive(self.min_scale) {
            return Err("per-title reference_bpp and min_scale must be positive".into());
        }
        if !self.exponent.is_finite() || !(0.0..=2.0).contains(&self.exponent) {
            return Err(format!(
                "per-title exponent {} must be within 0..=2",
                self.exponent
            ));
        }
        if !self.max_scale.is_finite() || self.max_scale < self.min_scale {
            return Err("per-title max_scale must be at least min_scale".into());
        }
        if self.window < Duration::from_secs(1) {
            return Err("per-title window must be at least 1 s".into());
        }
        if !self.min_change.is_finite() || self.min_change < 0.0 {
            return Err("per-title min_change must not be negative".into());
        }
        Ok(())
    }

    /// The factor for a measured complexity (bits per pixel of the probe).
    pub fn scale_for(&self, bpp: f64) -> f64 {
        let raw = (bpp.max(0.0) / self.reference_bpp).powf(self.exponent);
        raw.clamp(self.min_scale, self.max_scale)
    }
}

/// The estimator: feed it the probe's encoded frames, ask it for a new factor.
#[derive(Debug, Clone)]
pub struct PerTitle {
    cfg: PerTitleConfig,
    /// Pixels of one probe picture.
    pixels: u64,
    /// (PTS ticks, bytes) of the probe frames in the window.
    samples: VecDeque<(i64, u64)>,
    bytes: u64,
    scale: f64,
    /// PTS of the last change (or of the first frame, before any).
    last_change: Option<i64>,
    decided: bool,
}

impl PerTitle {
    /// An estimator for probe pictures of `width` × `height`; the factor starts at 1.
    pub fn new(cfg: PerTitleConfig, width: u16, height: u16) -> Self {
        Self {
            cfg,
            pixels: (u64::from(width) * u64::from(height)).max(1),
            samples: VecDeque::new(),
            bytes: 0,
            scale: 1.0,
            last_change: None,
            decided: false,
        }
    }

    /// One probe frame: its PTS (90 kHz) and encoded size. Frames older than the window
    /// (before the newest PTS) leave it.
    pub fn observe(&mut self, pts: i64, bytes: usize) {
        let bytes = u64::try_from(bytes).unwrap_or(u64::MAX);
        if let Some(&(last, _)) = self.samples.back()
            && pts <= last
        {
            // Out of order or repeated: count the bytes at the newest time.
            self.bytes = self.bytes.saturating_add(bytes);
            if let Some(back) = self.samples.back_mut() {
                back.1 = back.1.saturating_add(bytes);
            }
            return;
        }
        self.last_change.get_or_insert(pts);
        self.samples.push_back((pts, bytes));
        self.bytes = self.bytes.saturating_add(bytes);
        let window = ticks(self.cfg.window);
        while let Some(&(t, b)) = self.samples.front() {
            if pts - t <= window {
                break;
            }
            self.samples.pop_front();
            self.bytes = self.bytes.saturating_sub(b);
        }
    }

    /// Media time the window covers now.
    fn span(&self) -> i64 {
        match (self.samples.front(), self.samples.back()) {
            (Some(a), Some(b)) => b.0 - a.0,
            _ => 0,
        }
    }

    /// Bits per pixel of the probe over the window, once it covers half the window.
    pub fn complexity(&self) -> Option<f64> {
        if self.span() * 2 < ticks(self.cfg.window) || self.samples.len() < 2 {
            return None;
        }
        let frames = self.samples.len() as f64;
        Some(self.bytes as f64 * 8.0 / (self.pixels as f64 * frames))
    }

    /// The factor in force.
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// A new factor when the measured one moved far enough from the one in force and the
    /// last change is `hold` behind (the first decision needs no hold); `None` otherwise.
    pub fn decide(&mut self) -> Option<f64> {
        let bpp = self.complexity()?;
        let now = self.samples.back()?.0;
        let wanted = self.cfg.scale_for(bpp);
        if self.decided
            && self
                .last_change
                .is_some_and(|t| now - t < ticks(self.cfg.hold))
        {
            return None;
        }
        if (wanted / self.scale - 1.0).abs() <= self.cfg.min_change {
            return None;
        }
        self.scale = wanted;
        self.decided = true;
        self.last_change = Some(now);
        Some(wanted)
    }
}

/// Bitrate of a rung for a factor: the table's, scaled, at least 50 kbit/s.
pub fn scaled_kbps(table_kbps: u32, scale: f64) -> u32 {
    let v = (f64::from(table_kbps) * scale).round();
    if v >= f64::from(u32::MAX) {
        u32::MAX
    } else {
        (v as u32).max(50)
    }
}

fn ticks(d: Duration) -> i64 {
    i64::try_from(d.as_micros() * u128::from(TIMESCALE) / 1_000_000).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME: i64 = 3000; // 30 fps at 90 kHz

    /// Feeds `secs` of 30 fps frames of `bytes` each from `start`; returns the next PTS
    /// and every decision taken on the way (checked after each frame, as the control
    /// thread would).
    fn feed(p: &mut PerTitle, start: i64, secs: i64, bytes: usize) -> (i64, Vec<f64>) {
        let mut decisions = Vec::new();
        let mut pts = start;
        for _ in 0..secs * 30 {
            p.observe(pts, bytes);
            if let Some(s) = p.decide() {
                decisions.push(s);
            }
            pts += FRAME;
        }
        (pts, decisions)
    }

    /// Frame size giving `bpp` at 640×360.
    fn size(bpp: f64) -> usize {
        (bpp * 640.0 * 360.0 / 8.0) as usize
    }

    #[test]
    fn default_config_is_valid_and_maps_the_reference_to_one() {
        let c = PerTitleConfig::default();
        assert_eq!(c.validate(), Ok(()));
        assert!((c.scale_for(c.reference_bpp) - 1.0).abs() < 1e-9);
        // Four times as complex: twice the bits; clamped at both ends.
        assert!((c.scale_for(c.reference_bpp / 4.0) - 0.5).abs() < 1e-9);
        assert_eq!(c.scale_for(0.0), c.min_scale);
        assert_eq!(c.scale_for(100.0), c.max_scale);
        for bad in [
            PerTitleConfig {
                probe_height: 361,
                ..c
            },
            PerTitleConfig {
                min_scale: 0.0,
                ..c
            },
            PerTitleConfig {
                max_scale: 0.1,
                ..c
            },
            PerTitleConfig {
                exponent: f64::NAN,
                ..c
            },
            PerTitleConfig {
                window: Duration::from_millis(10),
                ..c
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn no_decision_before_half_a_window() {
        let mut p = PerTitle::new(PerTitleConfig::default(), 640, 360);
        let (_, d) = feed(&mut p, 0, 2, size(0.01));
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(p.complexity(), None);
    }

    #[test]
    fn simple_content_gets_less_and_complex_content_more() {
        let cfg = PerTitleConfig::default();
        let mut slides = PerTitle::new(cfg, 640, 360);
        let (_, d) = feed(&mut slides, 0, 5, size(0.005));
        assert_eq!(d, [cfg.min_scale], "a still picture gets the floor, once");
        let mut sport = PerTitle::new(cfg, 640, 360);
        let (_, d) = feed(&mut sport, 0, 5, size(0.22 * 2.25));
        assert_eq!(d.len(), 1);
        assert!((d[0] - 1.5).abs() < 0.01, "{d:?}");
        let mut typical = PerTitle::new(cfg, 640, 360);
        let (_, d) = feed(&mut typical, 0, 20, size(0.23));
        assert!(
            d.is_empty(),
            "close to the reference: the table stays ({d:?})"
        );
    }

    #[test]
    fn changes_wait_for_the_hold_and_follow_the_content() {
        let cfg = PerTitleConfig::default();
        let mut p = PerTitle::new(cfg, 640, 360);
        let (pts, d) = feed(&mut p, 0, 4, size(0.05));
        assert_eq!(d.len(), 1);
        let first = d[0];
        assert!(first < 0.6, "{first}");
        // The content becomes complex: the window needs time to fill with it, and the
        // change waits for the hold (8 s after the first decision at ~3 s).
        let (pts, d) = feed(&mut p, pts, 4, size(0.5));
        assert!(d.is_empty(), "held: {d:?}");
        let (_, d) = feed(&mut p, pts, 8, size(0.5));
        assert_eq!(d.len(), 1, "{d:?}");
        assert!(d[0] > 1.4, "{d:?}");
        assert_eq!(p.scale(), d[0]);
    }

    #[test]
    fn out_of_order_frames_count_without_moving_time_back() {
        let mut p = PerTitle::new(PerTitleConfig::default(), 640, 360);
        p.observe(90_000, 100);
        p.observe(0, 100);
        p.observe(90_000 * 4, 100);
        assert_eq!(p.samples.len(), 2);
        assert_eq!(p.bytes, 300);
    }

    #[test]
    fn scaled_bitrates_round_and_have_a_floor() {
        assert_eq!(scaled_kbps(6000, 0.5), 3000);
        assert_eq!(scaled_kbps(700, 1.5), 1050);
        assert_eq!(scaled_kbps(100, 0.3), 50);
        assert_eq!(scaled_kbps(u32::MAX, 2.0), u32::MAX);
    }
}
