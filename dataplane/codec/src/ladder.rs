//! The running ladder: the caller-facing handle and the state its threads share.

use std::collections::{BTreeSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;

use parking_lot::Mutex;
use weir_media::{Codec, Frame, TIMESCALE, TrackConfig, TrackId, TrackKind, VideoConfig};

use crate::config::LadderConfig;
use crate::error::{CodecError, PushError};
use crate::pertitle::PerTitle;
use crate::pipeline::{self, Engine};
use crate::plan::{PlannedRung, plan};
use crate::select::Selection;
use crate::timeline::{SourceTimeline, TimeOrigin};

/// What a ladder produces, read with [`Ladder::try_recv`].
///
/// Per rung, a `Config` comes before that rung's first frame and again whenever the rung's
/// avcC changes; frames of one rung are in decode order; rungs interleave freely.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LadderOutput {
    /// A rung's track configuration: H.264, its avcC record, width and height.
    Config {
        /// Index into [`Ladder::rungs`].
        rung: usize,
        /// The configuration.
        config: TrackConfig,
    },
    /// One encoded access unit (4-byte length-prefixed NAL units, 90 kHz timestamps:
    /// the PTS of the source frame it was made from). Its `track` is
    /// `TrackId::new(TrackKind::Video, rung + 1)`: index 0 stays the source's own track;
    /// the caller may renumber.
    Frame {
        /// Index into [`Ladder::rungs`].
        rung: usize,
        /// The frame.
        frame: Frame,
    },
    /// The engine fell behind live: the top `dropped_rungs` encoded rungs are off.
    Overloaded {
        /// Encoded rungs off, counted from the top.
        dropped_rungs: usize,
    },
    /// The engine kept up: one rung is back (from its next keyframe); `dropped_rungs`
    /// remain off.
    Recovered {
        /// Encoded rungs still off, counted from the top.
        dropped_rungs: usize,
    },
    /// Per-title mode: the encoded rungs' bitrates changed with the content.
    Bitrates {
        /// kbit/s per rung (index into [`Ladder::rungs`]; 0 for passthrough rungs).
        kbps: Vec<u32>,
        /// The complexity that chose them: probe bits per 1000 pixels.
        complexity_millibits: u32,
    },
    /// The pipeline failed; the ladder takes no more input.
    Error(String),
    /// After [`Ladder::finish`]: every rung has emitted its last frame.
    Finished,
}

/// Counters of a running ladder.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LadderStats {
    /// Frames accepted by [`Ladder::push`].
    pub pushed: u64,
    /// Frames refused because the input queue was full.
    pub dropped_full: u64,
    /// Frames refused while waiting for a keyframe.
    pub dropped_awaiting_keyframe: u64,
    /// Encoded frames dropped because the output queue was full.
    pub output_dropped: u64,
    /// Encoded rungs currently off because of overload.
    pub dropped_rungs: usize,
    /// Frames emitted per rung.
    pub frames_out: Vec<u64>,
}

type Notify = Arc<dyn Fn() + Send + Sync>;

/// Per-rung state shared by the rung's streaming thread and the control thread.
pub(crate) struct RungShared {
    /// The overload policy wants this rung encoded.
    pub enabled: AtomicBool,
    /// Frames pass (a keyframe has passed since the rung was enabled).
    pub live: AtomicBool,
    /// PTS (ticks) of the rung's latest output, or of the keyframe it went live at.
    pub last_out_pts: AtomicI64,
    /// Frames emitted.
    pub frames_out: AtomicU64,
}

/// State shared by the caller's handle, the streaming threads and the control thread.
pub(crate) struct Shared {
    pub out: Mutex<VecDeque<LadderOutput>>,
    pub max_out: usize,
    notify: Mutex<Option<Notify>>,
    /// Set once, by the first accepted frame.
    pub origin: OnceLock<TimeOrigin>,
    pub timeline: Mutex<SourceTimeline>,
    /// GStreamer PTS (ns) of the frames every rung makes keyframes of.
    pub keyframes: Mutex<BTreeSet<u64>>,
    pub rungs: Vec<RungShared>,
    /// DTS (ticks) of the latest frame pushed, and of the latest one the decoder took.
    pub pushed_dts: AtomicI64,
    pub consumed_dts: AtomicI64,
    pub closed: AtomicBool,
    pub dropped_rungs: AtomicU64,
    pub output_dropped: AtomicU64,
    /// The per-title estimator, fed by the probe branch (per-title mode only).
    pub per_title: Mutex<Option<PerTitle>>,
}

impl Shared {
    /// Queues an output and wakes the caller. Frames are refused (false) when the queue
    /// is full; configs and status always go in.
    pub fn emit(&self, out: LadderOutput) -> bool {
        {
            let mut q = self.out.lock();
            if matches!(out, LadderOutput::Frame { .. }) && q.len() >= self.max_out {
                return false;
            }
            q.push_back(out);
        }
        let notify = self.notify.lock().clone();
        if let Some(f) = notify {
            f();
        }
        true
    }
}

#[derive(Debug, Default)]
struct InputState {
    /// A keyframe has been accepted.
    started: bool,
    /// The encoded rungs skip frames up to the next keyframe (after an overflow).
    awaiting_key: bool,
    last_out_key_pts: Option<i64>,
    finished: bool,
    pushed: u64,
    dropped_full: u64,
    dropped_awaiting: u64,
}

/// A running transcode ladder for one source track.
///
/// Decoding, scaling and encoding run on GStreamer's streaming threads (one for decode,
/// one per encoded rung, plus x264's own) and a control thread watches the pipeline and
/// the overload policy; the caller's thread only queues input and reads output.
pub struct Ladder {
    rungs: Vec<PlannedRung>,
    shared: Arc<Shared>,
    engine: Option<Engine>,
    control: Option<JoinHandle<()>>,
    input: Mutex<InputState>,
    follows_source: bool,
    max_gop_ticks: i64,
    max_backlog_ticks: i64,
}

impl Ladder {
    /// Plans the rungs for `source` (H.264 with its avcC) and starts the engine: picks the
    /// decoder and encoder (NVDEC/NVENC when present and working, see [`crate::Selector`]),
    /// builds the pipeline and sets it playing. The source configuration is fixed for the
    /// ladder's life: when the source's avcC changes, start a new ladder.
    pub fn start(config: &LadderConfig, source: &VideoConfig) -> Result<Ladder, CodecError> {
        config.validate()?;
        if source.codec != Codec::H264 {
            return Err(CodecError::Source(format!(
                "{:?} is not H.264",
                source.codec
            )));
        }
        weir_media::parse_avcc(&source.record)
            .map_err(|e| CodecError::Source(format!("avcC: {e}")))?;
        let rungs = plan(config, source);
        if rungs.is_empty() {
            return Err(CodecError::Source("unknown picture dimensions".into()));
        }
        let shared = Arc::new(Shared {
            out: Mutex::new(VecDeque::new()),
            max_out: config.max_output_queue,
            notify: Mutex::new(None),
            origin: OnceLock::new(),
            timeline: Mutex::new(SourceTimeline::new()),
            keyframes: Mutex::new(BTreeSet::new()),
            rungs: rungs
                .iter()
                .map(|_| RungShared {
                    enabled: AtomicBool::new(true),
                    live: AtomicBool::new(false),
                    last_out_pts: AtomicI64::new(i64::MIN),
                    frames_out: AtomicU64::new(0),
                })
                .collect(),
            pushed_dts: AtomicI64::new(i64::MIN),
            consumed_dts: AtomicI64::new(i64::MIN),
            closed: AtomicBool::new(false),
            dropped_rungs: AtomicU64::new(0),
            output_dropped: AtomicU64::new(0),
            per_title: Mutex::new(None),
        });
        for (i, r) in rungs.iter().enumerate().filter(|(_, r)| r.passthrough) {
            shared.emit(LadderOutput::Config {
                rung: i,
                config: TrackConfig::Video(VideoConfig {
                    width: r.width,
                    height: r.height,
                    ..source.clone()
                }),
            });
        }
        let (engine, control) = if rungs.iter().any(|r| !r.passthrough) {
            let engine = pipeline::start(config, source, &rungs, &shared)?;
            let control = pipeline::spawn_control(&engine, config, &rungs, &shared)?;
            (Some(engine), Some(control))
        } else {
            (None, None)
        };
        let ticks = |d: std::time::Duration| {
            i64::try_from(d.as_micros() * u128::from(TIMESCALE) / 1_000_000).unwrap_or(i64::MAX)
        };
        Ok(Ladder {
            rungs,
            shared,
            engine,
            control,
            input: Mutex::new(InputState::default()),
            follows_source: config.gop_follows_source,
            max_gop_ticks: ticks(config.max_gop).max(1),
            max_backlog_ticks: ticks(config.max_input_backlog),
        })
    }

    /// The rungs this ladder produces, top first; output `rung` indices point here.
    pub fn rungs(&self) -> &[PlannedRung] {
        &self.rungs
    }

    /// The decoder and encoder in use (`None` when every rung is passthrough).
    pub fn selection(&self) -> Option<Selection> {
        self.engine.as_ref().map(|e| e.selection)
    }

    /// Hands one source frame (bus format, 90 kHz) to the engine. Never blocks.
    ///
    /// Frames before the first keyframe are refused ([`PushError::AwaitingKeyframe`]).
    /// When the input queue holds more than `max_input_backlog`, the frame is dropped,
    /// counted and refused with [`PushError::Full`], and the encoded rungs then skip frames
    /// up to the next keyframe (a decoder cannot use them). Passthrough rungs get every
    /// frame from the first keyframe on, whatever the engine's state.
    pub fn push(&self, frame: &Frame) -> Result<(), PushError> {
        if !frame.track.is_video() {
            return Err(PushError::Refused("not a video frame"));
        }
        let mut input = self.input.lock();
        if input.finished || self.shared.closed.load(Ordering::Acquire) {
            return Err(PushError::Closed);
        }
        if !input.started && !frame.keyframe {
            input.dropped_awaiting += 1;
            return Err(PushError::AwaitingKeyframe);
        }
        let origin = *self
            .shared
            .origin
            .get_or_init(|| TimeOrigin::new(frame.dts));
        let (Some(pts_ns), Some(dts_ns)) = (origin.to_ns(frame.pts), origin.to_ns(frame.dts))
        else {
            return Err(PushError::Refused("timestamp before the ladder's origin"));
        };
        input.started = true;
        for (i, _) in self.rungs.iter().enumerate().filter(|(_, r)| r.passthrough) {
            let mut out = frame.clone();
            out.track = rung_track(i);
            if self.shared.emit(LadderOutput::Frame {
                rung: i,
                frame: out,
            }) {
                self.shared.rungs[i]
                    .frames_out
                    .fetch_add(1, Ordering::Relaxed);
            } else {
                self.shared.output_dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        if let Some(engine) = &self.engine {
            if input.awaiting_key && !frame.keyframe {
                input.dropped_awaiting += 1;
                return Err(PushError::AwaitingKeyframe);
            }
            let consumed = self.shared.consumed_dts.load(Ordering::Acquire);
            let pushed = self.shared.pushed_dts.load(Ordering::Acquire);
            // Before the decoder has read anything, all that was pushed is backlog.
            let read = if consumed == i64::MIN {
                origin.first_dts()
            } else {
                consumed
            };
            let backlog = if pushed == i64::MIN {
                0
            } else {
                pushed.saturating_sub(read)
            };
            if backlog > self.max_backlog_ticks || engine.queued_buffers() > pipeline::MAX_QUEUED {
                input.awaiting_key = true;
                input.dropped_full += 1;
                return Err(PushError::Full);
            }
            let out_key = (self.follows_source && frame.keyframe)
                || input
                    .last_out_key_pts
                    .is_none_or(|k| frame.pts.saturating_sub(k) >= self.max_gop_ticks);
            if out_key {
                input.last_out_key_pts = Some(frame.pts);
                let mut keys = self.shared.keyframes.lock();
                keys.insert(pts_ns);
                // Forget keyframes a minute behind: every rung is past them.
                while keys.first().is_some_and(|&k| k + 60_000_000_000 < pts_ns) {
                    keys.pop_first();
                }
            }
            self.shared.timeline.lock().push(frame.pts, frame.dts);
            if engine.push(frame, pts_ns, dts_ns).is_err() {
                return Err(PushError::Closed);
            }
            self.shared.pushed_dts.store(frame.dts, Ordering::Release);
            input.awaiting_key = false;
        }
        input.pushed += 1;
        Ok(())
    }

    /// Non-blocking: the next output ready, if any.
    pub fn try_recv(&self) -> Option<LadderOutput> {
        self.shared.out.lock().pop_front()
    }

    /// Sets the wake-up hook, called after each output is queued, on the thread that
    /// queued it: an engine thread, or the caller's own inside [`Ladder::push`] for
    /// passthrough frames. It must be cheap, must not block and must not call back into
    /// the ladder: set a flag, notify an `event_listener::Event` or a `tokio::sync::Notify`,
    /// write to an eventfd. The caller then drains [`Ladder::try_recv`]; check it once after
    /// setting the hook, for outputs queued before.
    pub fn set_notify(&self, notify: Box<dyn Fn() + Send + Sync>) {
        *self.shared.notify.lock() = Some(Arc::from(notify));
    }

    /// Ends the input: the engine drains and emits [`LadderOutput::Finished`] after every
    /// rung's last frame. Later pushes are refused with [`PushError::Closed`].
    pub fn finish(&self) {
        let mut input = self.input.lock();
        if input.finished {
            return;
        }
        input.finished = true;
        match &self.engine {
            Some(engine) if self.shared.origin.get().is_some() => engine.end_of_stream(),
            _ => {
                self.shared.emit(LadderOutput::Finished);
            }
        }
    }

    /// Counters.
    pub fn stats(&self) -> LadderStats {
        let input = self.input.lock();
        LadderStats {
            pushed: input.pushed,
            dropped_full: input.dropped_full,
            dropped_awaiting_keyframe: input.dropped_awaiting,
            output_dropped: self.shared.output_dropped.load(Ordering::Relaxed),
            dropped_rungs: usize::try_from(self.shared.dropped_rungs.load(Ordering::Relaxed))
                .unwrap_or(usize::MAX),
            frames_out: self
                .shared
                .rungs
                .iter()
                .map(|r| r.frames_out.load(Ordering::Relaxed))
                .collect(),
        }
    }

    /// Stops the engine now (no draining; see [`Ladder::finish`]) and waits for its
    /// threads to end. Dropping the ladder does the same.
    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for Ladder {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::Release);
        if let Some(control) = self.control.take() {
            let _ = control.join();
        }
        if let Some(engine) = self.engine.take() {
            engine.shutdown();
        }
    }
}

impl std::fmt::Debug for Ladder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ladder")
            .field("rungs", &self.rungs)
            .field("selection", &self.selection())
            .finish_non_exhaustive()
    }
}

/// The track id of rung `rung`'s frames: video, index `rung + 1`.
pub(crate) fn rung_track(rung: usize) -> TrackId {
    TrackId::new(TrackKind::Video, u8::try_from(rung + 1).unwrap_or(u8::MAX))
}
