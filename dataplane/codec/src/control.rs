//! The control thread: pipeline messages (errors, EOS), the overload policy and the
//! per-title bitrates.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use weir_media::TIMESCALE;

use crate::ladder::{LadderOutput, Shared};
use crate::overload::{OverloadAction, OverloadConfig, OverloadPolicy};
use crate::pertitle::scaled_kbps;
use crate::pipeline::{CONTROL_TICK, set_str};
use crate::select::EncoderKind;

/// What the control thread needs to change bitrates live (per-title mode).
pub(crate) struct Bitrates {
    /// (rung index, its encoder, the table's kbit/s) of every encoded rung.
    pub encoders: Vec<(usize, gst::Element, u32)>,
    /// Which encoder they are.
    pub kind: EncoderKind,
    /// Rungs in the ladder (passthrough ones included).
    pub rungs: usize,
}

impl Bitrates {
    /// Asks the per-title estimator for a new factor; when there is one, sets every
    /// encoder's bitrate and reports the new bitrates.
    fn update(&self, shared: &Shared) {
        let (scale, bpp) = {
            let mut guard = shared.per_title.lock();
            let Some(p) = guard.as_mut() else {
                return;
            };
            let Some(scale) = p.decide() else {
                return;
            };
            (scale, p.complexity().unwrap_or(0.0))
        };
        let mut kbps = vec![0; self.rungs];
        for (rung, enc, table) in &self.encoders {
            let v = scaled_kbps(*table, scale);
            // x264enc and nvh264enc both take `bitrate` (kbit/s) while playing.
            if !set_str(enc, "bitrate", &v.to_string()) {
                tracing::warn!(rung, encoder = self.kind.factory(), "bitrate not changed");
            }
            if let Some(k) = kbps.get_mut(*rung) {
                *k = v;
            }
        }
        tracing::info!(scale, complexity_bpp = bpp, ?kbps, "per-title bitrates");
        shared.emit(LadderOutput::Bitrates {
            kbps,
            complexity_millibits: (bpp * 1000.0).round().clamp(0.0, f64::from(u32::MAX)) as u32,
        });
    }
}

/// How often the overload policy looks at the lag.
const POLICY_EVERY: Duration = Duration::from_millis(250);

/// Runs until the ladder is dropped. `encoded` lists the encoded rungs, top first.
pub(crate) fn run(
    bus: &gst::Bus,
    overload: Option<OverloadConfig>,
    encoded: &[usize],
    bitrates: &Bitrates,
    shared: &Shared,
) {
    let start = Instant::now();
    let mut policy = overload.map(|c| OverloadPolicy::new(c, encoded.len().saturating_sub(1)));
    let mut last_eval = start;
    let mut ended = false;
    while !shared.closed.load(Ordering::Acquire) {
        if let Some(msg) = bus.timed_pop(gst::ClockTime::from_nseconds(
            u64::try_from(CONTROL_TICK.as_nanos()).unwrap_or(u64::MAX),
        )) {
            use gst::MessageView;
            match msg.view() {
                MessageView::Error(e) => {
                    let src = msg
                        .src()
                        .map(|s| s.path_string().to_string())
                        .unwrap_or_default();
                    let text = format!("{src}: {} ({:?})", e.error(), e.debug());
                    tracing::warn!(error = %text, "ladder pipeline error");
                    shared.closed.store(true, Ordering::Release);
                    shared.emit(LadderOutput::Error(text));
                    ended = true;
                }
                MessageView::Eos(_) => {
                    shared.emit(LadderOutput::Finished);
                    ended = true;
                }
                MessageView::Warning(w) => {
                    tracing::warn!(warning = %w.error(), "ladder pipeline warning");
                }
                _ => {}
            }
        }
        if ended || last_eval.elapsed() < POLICY_EVERY {
            continue;
        }
        last_eval = Instant::now();
        bitrates.update(shared);
        let Some(policy) = policy.as_mut() else {
            continue;
        };
        let Some(action) = policy.observe(start.elapsed(), lag(shared, encoded)) else {
            continue;
        };
        let (dropped, out) = match action {
            OverloadAction::Drop { dropped_rungs } => {
                (dropped_rungs, LadderOutput::Overloaded { dropped_rungs })
            }
            OverloadAction::Restore { dropped_rungs } => {
                (dropped_rungs, LadderOutput::Recovered { dropped_rungs })
            }
        };
        for (k, &rung) in encoded.iter().enumerate() {
            let on = k >= dropped;
            let state = &shared.rungs[rung];
            state.enabled.store(on, Ordering::Release);
            if !on {
                state.live.store(false, Ordering::Release);
            }
        }
        shared.dropped_rungs.store(
            u64::try_from(dropped).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        tracing::info!(?action, "ladder overload policy");
        shared.emit(out);
    }
}

/// How far the engine trails the input, in media time: the larger of the input backlog
/// (pushed but not yet decoded) and the distance to the slowest live encoded rung.
fn lag(shared: &Shared, encoded: &[usize]) -> Duration {
    let pushed = shared.pushed_dts.load(Ordering::Acquire);
    if pushed == i64::MIN {
        return Duration::ZERO;
    }
    let consumed = shared.consumed_dts.load(Ordering::Acquire);
    let read = match (consumed, shared.origin.get()) {
        (i64::MIN, Some(origin)) => origin.first_dts(),
        (i64::MIN, None) => pushed,
        (c, _) => c,
    };
    let mut lag = pushed.saturating_sub(read);
    let slowest = encoded
        .iter()
        .map(|&i| &shared.rungs[i])
        .filter(|r| r.enabled.load(Ordering::Acquire) && r.live.load(Ordering::Acquire))
        .map(|r| r.last_out_pts.load(Ordering::Acquire))
        .filter(|&p| p != i64::MIN)
        .min();
    if let Some(out) = slowest {
        lag = lag.max(pushed.saturating_sub(out));
    }
    let micros = u64::try_from(lag.max(0)).unwrap_or(0) * 1_000_000 / u64::from(TIMESCALE);
    Duration::from_micros(micros)
}
