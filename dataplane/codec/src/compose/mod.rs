//! The studio compositor: participants' bus frames in, one program (H.264 + AAC) out.
//!
//! [`Compositor::start`] builds and plays the pipeline (see [`graph`](self) for its
//! shape). The caller (the node's studio task) owns the plan: it gives each participant's
//! track configurations ([`Compositor::set_tracks`]: a decode branch per track, added or
//! replaced while playing), pushes their frames ([`Compositor::push`], never blocks), and
//! applies [`weir_studio::Plan`]s ([`Compositor::apply`]: tile geometry, crops, opacity,
//! z-order, mix volume) and still layers ([`Compositor::set_layers`]). The program comes
//! out of [`Compositor::try_recv`] as track configurations and frames on one timeline
//! (the pipeline's running time, in bus ticks), ready for a bus publisher;
//! [`Compositor::set_notify`] is called when something is ready.
//!
//! A participant without frames never stalls the program: both mixers run on live
//! sources of their own (still layers, silence) and skip inactive pads; a participant's
//! decode error drops its branches (the tile shows its placeholder) without touching the
//! others.

mod graph;
mod input;
mod sinks;
mod still;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use gstreamer as gst;
use gstreamer::prelude::*;
use parking_lot::Mutex;
use weir_media::{Frame, TrackConfig, TrackId, TrackKind};
use weir_studio::{Banner, Bgra, Plan};

pub use still::{MAX_IMAGE_BYTES, MAX_IMAGE_SIDE, decode_image};

use crate::config::EncoderChoice;
use crate::error::{CodecError, PushError};
use crate::select::{EncoderKind, Selector};
use input::{Anchor, Branch};

/// Most outputs waiting for the caller before new ones are dropped.
const MAX_PENDING: usize = 1024;

/// The program's format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComposeConfig {
    /// Canvas width.
    pub width: u32,
    /// Canvas height.
    pub height: u32,
    /// Output frame rate.
    pub fps: u32,
    /// Video bitrate, kbit/s.
    pub video_kbps: u32,
    /// AAC bitrate, kbit/s.
    pub audio_kbps: u32,
    /// Key frame interval, seconds (LL-HLS segments are cut at key frames).
    pub gop_seconds: u32,
    /// x264 or NVENC (chosen at run time with `Auto`).
    pub encoder: EncoderChoice,
    /// How late an input's frame may arrive before the mixers stop waiting for it.
    pub latency: Duration,
}

impl Default for ComposeConfig {
    fn default() -> Self {
        Self {
            width: 1280,
            height: 720,
            fps: 30,
            video_kbps: 3000,
            audio_kbps: 128,
            gop_seconds: 2,
            encoder: EncoderChoice::Auto,
            latency: Duration::from_millis(200),
        }
    }
}

/// What the compositor produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ComposeOutput {
    /// A track's configuration: video is [`TrackId::VIDEO`], audio [`TrackId::AUDIO`].
    Config(TrackId, TrackConfig),
    /// A program frame.
    Frame(Frame),
    /// The pipeline failed and stopped (why).
    Failed(String),
}

/// What the compositor's threads share with the caller.
pub(crate) struct Shared {
    out: Mutex<VecDeque<ComposeOutput>>,
    notify: Mutex<Option<Box<dyn Fn() + Send + Sync>>>,
    dropped: AtomicU64,
}

impl Shared {
    pub(crate) fn emit(&self, o: ComposeOutput) {
        {
            let mut q = self.out.lock();
            if q.len() >= MAX_PENDING && !matches!(o, ComposeOutput::Failed(_)) {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                return;
            }
            q.push_back(o);
        }
        if let Some(n) = &*self.notify.lock() {
            n();
        }
    }
}

/// One participant's branches and clock mapping.
#[derive(Default)]
struct Input {
    video: Option<(Branch, TrackConfig)>,
    audio: Option<(Branch, TrackConfig)>,
    anchor: Anchor,
}

/// A running compositor.
pub struct Compositor {
    graph: graph::Graph,
    inputs: Mutex<HashMap<String, Input>>,
    shared: Arc<Shared>,
    encoder: EncoderKind,
    layers: Mutex<(Option<gst::Buffer>, Option<gst::Buffer>)>,
    control: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Compositor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compositor")
            .field("encoder", &self.encoder)
            .finish_non_exhaustive()
    }
}

impl Compositor {
    /// Builds and plays the program pipeline, falling back from NVENC to x264 where
    /// NVENC is absent or does not work.
    pub fn start(config: &ComposeConfig) -> Result<Self, CodecError> {
        gst::init().map_err(|e| CodecError::Init(e.to_string()))?;
        let mut selector = Selector::new(config.encoder);
        let kind = loop {
            let sel = selector.next(&crate::pipeline::has_element)?;
            if sel.encoder == EncoderKind::Nvenc && !crate::pipeline::nvenc_works() {
                selector.encoder_failed(EncoderKind::Nvenc);
                continue;
            }
            break sel.encoder;
        };
        let graph = graph::build(config, kind)?;
        let shared = Arc::new(Shared {
            out: Mutex::new(VecDeque::new()),
            notify: Mutex::new(None),
            dropped: AtomicU64::new(0),
        });
        sinks::install(&graph.video_sink, TrackId::VIDEO, &shared);
        sinks::install(&graph.audio_sink, TrackId::AUDIO, &shared);
        // The base time is set before starting, and kept: each element gets it with its
        // first state change. Left to the pipeline, it is set only on PAUSED → PLAYING,
        // after the clock: a mixer whose task already runs (live, since PAUSED) can see
        // the clock with base time 0, find itself hours late, time out with no input and
        // end the program (EOS) at once.
        let clock = gst::SystemClock::obtain();
        graph.pipeline.use_clock(Some(&clock));
        graph.pipeline.set_start_time(gst::ClockTime::NONE);
        graph.pipeline.set_base_time(clock.time());
        graph
            .pipeline
            .set_state(gst::State::Playing)
            .map_err(|e| CodecError::Start(e.to_string()))?;
        let control = spawn_control(&graph.pipeline, &shared)?;
        tracing::info!(
            encoder = kind.factory(),
            width = config.width,
            height = config.height,
            fps = config.fps,
            "studio compositor started"
        );
        Ok(Self {
            graph,
            inputs: Mutex::new(HashMap::new()),
            shared,
            encoder: kind,
            layers: Mutex::new((None, None)),
            control: Some(control),
        })
    }

    /// The encoder element in use (`x264enc`, `nvh264enc`).
    pub fn encoder(&self) -> &'static str {
        self.encoder.factory()
    }

    /// Calls `f` (from a GStreamer thread) whenever an output is ready.
    pub fn set_notify(&self, f: impl Fn() + Send + Sync + 'static) {
        *self.shared.notify.lock() = Some(Box::new(f));
    }

    /// The next output, if any.
    pub fn try_recv(&self) -> Option<ComposeOutput> {
        self.shared.out.lock().pop_front()
    }

    /// Outputs dropped because the caller did not take them.
    pub fn dropped_outputs(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// The pipeline's running time (ns).
    fn now(&self) -> u64 {
        self.graph
            .pipeline
            .current_running_time()
            .map(|t| t.nseconds())
            .unwrap_or(0)
    }

    /// Sets participant `id`'s tracks (its first video and audio); a branch whose
    /// configuration changed is rebuilt, a missing one removed. `Err` says which track
    /// could not be taken (the others are still set).
    pub fn set_tracks(
        &self,
        id: &str,
        video: Option<&TrackConfig>,
        audio: Option<&TrackConfig>,
    ) -> Result<(), CodecError> {
        let g = &self.graph;
        let mut inputs = self.inputs.lock();
        let input = inputs.entry(id.to_owned()).or_default();
        let mut result = Ok(());
        if input.video.as_ref().map(|(_, c)| c) != video {
            if let Some((b, _)) = input.video.take() {
                b.remove(&g.pipeline, &g.video_mixer);
            }
            if let Some(TrackConfig::Video(v)) = video {
                match input::video_branch(&g.pipeline, &g.video_mixer, v) {
                    Ok(b) => {
                        b.pad.set_property("alpha", 0.0f64);
                        input.video = Some((b, TrackConfig::Video(v.clone())));
                    }
                    Err(e) => result = Err(e),
                }
            }
        }
        if input.audio.as_ref().map(|(_, c)| c) != audio {
            if let Some((b, _)) = input.audio.take() {
                b.remove(&g.pipeline, &g.audio_mixer);
            }
            if let Some(TrackConfig::Audio(a)) = audio {
                match input::audio_branch(&g.pipeline, &g.audio_mixer, a) {
                    Ok(b) => {
                        b.pad.set_property("mute", true);
                        input.audio = Some((b, TrackConfig::Audio(a.clone())));
                    }
                    Err(e) => result = result.and(Err(e)),
                }
            }
        }
        result
    }

    /// Removes participant `id` and its branches.
    pub fn remove(&self, id: &str) {
        let g = &self.graph;
        if let Some(input) = self.inputs.lock().remove(id) {
            if let Some((b, _)) = input.video {
                b.remove(&g.pipeline, &g.video_mixer);
            }
            if let Some((b, _)) = input.audio {
                b.remove(&g.pipeline, &g.audio_mixer);
            }
        }
    }

    /// Queues a frame of participant `id` (its track 0 of each kind).
    pub fn push(&self, id: &str, frame: &Frame) -> Result<(), PushError> {
        let now = self.now();
        let mut inputs = self.inputs.lock();
        let input = inputs
            .get_mut(id)
            .ok_or(PushError::Refused("unknown participant"))?;
        let Some((pts, dts)) = input.anchor.map(frame, now) else {
            return Err(PushError::Refused("timestamp before the program began"));
        };
        let branch = match frame.track.kind {
            TrackKind::Video => input.video.as_mut(),
            TrackKind::Audio => input.audio.as_mut(),
        };
        let Some((branch, _)) = branch else {
            return Err(PushError::Refused("no branch for this track"));
        };
        if branch.need_key && !frame.keyframe {
            return Err(PushError::AwaitingKeyframe);
        }
        let buffer = input::buffer(frame, pts, dts).ok_or(PushError::Refused("buffer"))?;
        match branch.src.push_buffer(buffer) {
            Ok(_) => {
                branch.need_key = false;
                Ok(())
            }
            Err(_) => {
                branch.need_key = true;
                Err(PushError::Full)
            }
        }
    }

    /// Applies a plan: geometry, crop and opacity of every picture, mix volumes.
    pub fn apply(&self, plan: &Plan) {
        let inputs = self.inputs.lock();
        for (id, input) in inputs.iter() {
            let Some((b, _)) = &input.video else {
                continue;
            };
            match plan.video.iter().find(|v| &v.participant == id) {
                Some(v) => {
                    if let Some(crop) = &b.crop {
                        set_if_changed(crop, "left", v.crop.left as i32);
                        set_if_changed(crop, "right", v.crop.right as i32);
                        set_if_changed(crop, "top", v.crop.top as i32);
                        set_if_changed(crop, "bottom", v.crop.bottom as i32);
                    }
                    set_if_changed(&b.pad, "xpos", v.rect.x);
                    set_if_changed(&b.pad, "ypos", v.rect.y);
                    set_if_changed(&b.pad, "width", v.rect.w);
                    set_if_changed(&b.pad, "height", v.rect.h);
                    set_if_changed(&b.pad, "zorder", v.z + 1);
                    b.pad.set_property("alpha", f64::from(v.alpha));
                }
                None => b.pad.set_property("alpha", 0.0f64),
            }
        }
        for (id, volume) in &plan.audio {
            if let Some(Some((b, _))) = inputs.get(id).map(|i| &i.audio) {
                b.pad.set_property("volume", f64::from(*volume));
                b.pad.set_property("mute", *volume <= 0.0);
            }
        }
    }

    /// Sets the still layers: `under` the pictures (canvas size), `over` them (canvas
    /// size with transparency; `None`: nothing over).
    pub fn set_layers(&self, under: &Bgra, over: Option<&Bgra>) {
        let buf = |b: &Bgra| gst::Buffer::from_slice(b.data.clone());
        let mut layers = self.layers.lock();
        *layers = (Some(buf(under)), over.map(buf));
        self.graph
            .over_pad
            .set_property("alpha", if layers.1.is_some() { 1.0f64 } else { 0.0 });
        drop(layers);
        self.refresh_layers();
    }

    /// Pushes the still layers again at the current time (call about once a second).
    pub fn refresh_layers(&self) {
        let now = gst::ClockTime::from_nseconds(self.now());
        let layers = self.layers.lock();
        for (src, layer) in [
            (&self.graph.under, &layers.0),
            (&self.graph.over, &layers.1),
        ] {
            if let Some(b) = layer {
                let mut b = b.copy();
                if let Some(m) = b.get_mut() {
                    m.set_pts(now);
                }
                let _ = src.push_buffer(b);
            }
        }
    }

    /// Shows `banner` as the lower third (`None` hides it).
    pub fn set_banner(&self, banner: Option<&Banner>) {
        let b = &self.graph.banner;
        match banner {
            Some(banner) => {
                let escape = |s: &str| gst::glib::markup_escape_text(s).to_string();
                let mut markup = escape(&banner.title);
                if !banner.subtitle.is_empty() {
                    markup = format!(
                        "{markup}\n<span size=\"smaller\" weight=\"normal\">{}</span>",
                        escape(&banner.subtitle)
                    );
                }
                b.set_property("markup", markup);
                b.set_property("silent", false);
            }
            None => b.set_property("silent", true),
        }
    }

    /// Stops the pipeline and its threads.
    pub fn stop(mut self) {
        let _ = self.graph.pipeline.set_state(gst::State::Null);
        if let Some(bus) = self.graph.pipeline.bus() {
            let _ = bus.post(gst::message::Application::new(gst::Structure::new_empty(
                "stop",
            )));
        }
        if let Some(t) = self.control.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Compositor {
    fn drop(&mut self) {
        let _ = self.graph.pipeline.set_state(gst::State::Null);
    }
}

fn set_if_changed<T>(obj: &impl IsA<gst::glib::Object>, name: &str, value: T)
where
    T: gst::glib::value::ToValue
        + Into<gst::glib::Value>
        + PartialEq
        + for<'a> gst::glib::value::FromValue<'a>
        + 'static,
{
    if obj.property::<T>(name) != value {
        obj.set_property(name, value);
    }
}

/// Watches the pipeline bus: an error inside a participant's branch is logged (the
/// caller sees its pushes refused and rebuilds it); any other error fails the program.
fn spawn_control(
    pipeline: &gst::Pipeline,
    shared: &Arc<Shared>,
) -> Result<JoinHandle<()>, CodecError> {
    let bus = pipeline
        .bus()
        .ok_or_else(|| CodecError::Pipeline("pipeline has no bus".into()))?;
    let shared = Arc::clone(shared);
    let pipeline = pipeline.downgrade();
    std::thread::Builder::new()
        .name("weir-studio-ctl".into())
        .spawn(move || {
            loop {
                let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(200)) else {
                    if pipeline.upgrade().is_none_or(|p| p.current_state() == gst::State::Null) {
                        return;
                    }
                    continue;
                };
                match msg.view() {
                    gst::MessageView::Application(_) => return,
                    gst::MessageView::Error(e) => {
                        let from = msg.src().map(|s| s.name().to_string()).unwrap_or_default();
                        let in_branch = from.starts_with(input::BRANCH_PREFIX);
                        tracing::warn!(from, error = %e.error(), debug = ?e.debug(), in_branch, "studio pipeline error");
                        if !in_branch {
                            shared.emit(ComposeOutput::Failed(format!("{from}: {}", e.error())));
                            return;
                        }
                    }
                    _ => {}
                }
            }
        })
        .map_err(|e| CodecError::Pipeline(format!("control thread: {e}")))
}
