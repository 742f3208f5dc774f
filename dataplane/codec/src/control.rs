//! The control thread: pipeline messages (errors, EOS) and the overload policy.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use weir_media::TIMESCALE;

use crate::ladder::{LadderOutput, Shared};
use crate::overload::{OverloadAction, OverloadConfig, OverloadPolicy};
use crate::pipeline::CONTROL_TICK;

/// How often the overload policy looks at the lag.
const POLICY_EVERY: Duration = Duration::from_millis(250);

/// Runs until the ladder is dropped. `encoded` lists the encoded rungs, top first.
pub(crate) fn run(
    bus: &gst::Bus,
    overload: Option<OverloadConfig>,
    encoded: &[usize],
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
        let Some(policy) = policy.as_mut() else {
            continue;
        };
        if ended || last_eval.elapsed() < POLICY_EVERY {
            continue;
        }
        last_eval = Instant::now();
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
