//! The GStreamer pipeline: `appsrc ! h264parse ! <decoder> ! tee`, then one branch per
//! encoded rung (see [`crate::rung`]); choosing the elements at run time, with fallback.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::Duration;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use weir_media::{Frame, VideoConfig};

use crate::config::LadderConfig;
use crate::error::CodecError;
use crate::ladder::Shared;
use crate::plan::PlannedRung;
use crate::select::{DecoderKind, EncoderKind, Selection, Selector};

/// Buffers the input queue may hold whatever their timestamps say.
pub(crate) const MAX_QUEUED: u64 = 600;

/// Elements every ladder needs, besides a decoder, an encoder and a scaler.
const REQUIRED: &[&str] = &[
    "appsrc",
    "appsink",
    "h264parse",
    "tee",
    "queue",
    "capsfilter",
];

/// A one-frame encode that only reaches EOS where NVENC really works.
const NVENC_PROBE: &str = "videotestsrc num-buffers=2 ! \
    video/x-raw,format=NV12,width=320,height=240,framerate=30/1 ! nvh264enc ! fakesink";
/// A short decode that only reaches EOS where NVDEC really works (needs x264enc).
const NVDEC_PROBE: &str = "videotestsrc num-buffers=2 ! \
    video/x-raw,format=I420,width=320,height=240,framerate=30/1 ! x264enc ! h264parse ! \
    nvh264dec ! fakesink";

/// Caps of H.264 in access units with `record` (an avcC) as its codec data: what every
/// appsrc of encoded video here is fed.
pub(crate) fn avc_caps(record: &[u8]) -> gst::Caps {
    gst::Caps::builder("video/x-h264")
        .field("stream-format", "avc")
        .field("alignment", "au")
        .field("codec_data", gst::Buffer::from_slice(record.to_vec()))
        .build()
}

/// A pipeline from a `gst-launch` description.
pub(crate) fn launch(description: &str) -> Result<gst::Pipeline, CodecError> {
    gst::parse::launch(description)
        .map_err(|e| CodecError::Pipeline(e.to_string()))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| CodecError::Pipeline("not a pipeline".into()))
}

/// Element `name` of `pipeline`, as a `T` (an appsrc, an appsink…).
pub(crate) fn named<T: IsA<gst::Element>>(
    pipeline: &gst::Pipeline,
    name: &str,
) -> Result<T, CodecError> {
    pipeline
        .by_name(name)
        .ok_or_else(|| CodecError::Pipeline(format!("no element {name}")))?
        .downcast::<T>()
        .map_err(|_| CodecError::Pipeline(format!("{name} is not a {}", T::static_type().name())))
}

/// The started pipeline.
pub(crate) struct Engine {
    pipeline: gst::Pipeline,
    appsrc: gst_app::AppSrc,
    /// The decoder and encoder in use.
    pub selection: Selection,
    /// Each encoded rung's encoder element, by rung index (for live bitrate changes).
    pub encoders: Vec<(usize, gst::Element)>,
}

impl Engine {
    /// Queues one source frame at GStreamer times `pts_ns` / `dts_ns`.
    pub fn push(&self, frame: &Frame, pts_ns: u64, dts_ns: u64) -> Result<(), gst::FlowError> {
        let mut buffer = gst::Buffer::from_slice(frame.data.clone());
        let b = buffer.get_mut().ok_or(gst::FlowError::Error)?;
        b.set_pts(gst::ClockTime::from_nseconds(pts_ns));
        b.set_dts(gst::ClockTime::from_nseconds(dts_ns));
        if !frame.keyframe {
            b.set_flags(gst::BufferFlags::DELTA_UNIT);
        }
        self.appsrc.push_buffer(buffer).map(|_| ())
    }

    /// Buffers waiting in the input queue.
    pub fn queued_buffers(&self) -> u64 {
        self.appsrc.current_level_buffers()
    }

    /// Ends the input; every rung drains and the bus posts EOS.
    pub fn end_of_stream(&self) {
        if let Err(e) = self.appsrc.end_of_stream() {
            tracing::debug!(error = ?e, "ladder end of stream refused");
        }
    }

    /// Stops the pipeline (joins GStreamer's streaming threads).
    pub fn shutdown(self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

/// Whether GStreamer has an element factory called `name`.
pub(crate) fn has_element(name: &str) -> bool {
    gst::ElementFactory::find(name).is_some()
}

/// Makes an element or says which one is missing.
pub(crate) fn make(factory: &'static str) -> Result<gst::Element, CodecError> {
    gst::ElementFactory::make(factory)
        .build()
        .map_err(|_| CodecError::MissingElement(factory))
}

/// Sets a property from its string form (as `gst-launch` would); false, not a panic,
/// when the element has no such property or the value does not parse.
pub(crate) fn set_str(el: &gst::Element, name: &str, value: &str) -> bool {
    let Some(pspec) = el.find_property(name) else {
        tracing::debug!(element = %el.name(), name, "no such property");
        return false;
    };
    match gst::glib::Value::deserialize_with_pspec(value, &pspec) {
        Ok(v) => {
            el.set_property_from_value(name, &v);
            true
        }
        Err(e) => {
            tracing::warn!(element = %el.name(), name, value, error = %e, "property not set");
            false
        }
    }
}

/// Whether NVENC really encodes here (the element may exist without a usable GPU).
pub(crate) fn nvenc_works() -> bool {
    probe_plays(NVENC_PROBE)
}

/// Runs a short launch line; true when it reaches EOS within 5 s.
fn probe_plays(launch: &str) -> bool {
    let Ok(el) = gst::parse::launch(launch) else {
        return false;
    };
    let ok = el.set_state(gst::State::Playing).is_ok()
        && el.bus().is_some_and(|bus| {
            bus.timed_pop_filtered(
                gst::ClockTime::from_seconds(5),
                &[gst::MessageType::Eos, gst::MessageType::Error],
            )
            .is_some_and(|m| m.type_() == gst::MessageType::Eos)
        });
    let _ = el.set_state(gst::State::Null);
    ok
}

/// Selects elements, builds the pipeline and sets it playing, falling back from GPU
/// elements that are absent, fail their probe, or fail to start.
pub(crate) fn start(
    config: &LadderConfig,
    source: &VideoConfig,
    rungs: &[PlannedRung],
    shared: &Arc<Shared>,
) -> Result<Engine, CodecError> {
    gst::init().map_err(|e| CodecError::Init(e.to_string()))?;
    if let Some(missing) = REQUIRED.iter().find(|f| !has_element(f)) {
        return Err(CodecError::MissingElement(missing));
    }
    if !has_element("videoconvertscale") && !has_element("videoscale") {
        return Err(CodecError::MissingElement("videoscale"));
    }
    let mut selector = Selector::new(config.encoder);
    loop {
        let sel = selector.next(&has_element)?;
        if sel.encoder == EncoderKind::Nvenc && !probe_plays(NVENC_PROBE) {
            tracing::info!("nvh264enc present but cannot encode here; falling back");
            selector.encoder_failed(EncoderKind::Nvenc);
            continue;
        }
        if sel.decoder == DecoderKind::Nvdec && has_element("x264enc") && !probe_plays(NVDEC_PROBE)
        {
            tracing::info!("nvh264dec present but cannot decode here; falling back");
            selector.decoder_failed(DecoderKind::Nvdec);
            continue;
        }
        match build(config, source, rungs, shared, sel) {
            Ok(engine) => match engine.pipeline.set_state(gst::State::Playing) {
                Ok(_) => {
                    tracing::info!(
                        decoder = sel.decoder.factory(),
                        encoder = sel.encoder.factory(),
                        rungs = rungs.len(),
                        "ladder started"
                    );
                    return Ok(engine);
                }
                Err(e) => {
                    engine.shutdown();
                    let err = CodecError::Start(format!("{e} with {sel:?}"));
                    tracing::warn!(error = %err, "ladder start failed");
                    if !selector.failed(sel) {
                        return Err(err);
                    }
                }
            },
            Err(err) => {
                if !selector.failed(sel) {
                    return Err(err);
                }
            }
        }
    }
}

fn build(
    config: &LadderConfig,
    source: &VideoConfig,
    rungs: &[PlannedRung],
    shared: &Arc<Shared>,
    selection: Selection,
) -> Result<Engine, CodecError> {
    let pipeline = gst::Pipeline::with_name("weir-ladder");
    let caps = avc_caps(&source.record);
    let appsrc = gst_app::AppSrc::builder()
        .name("src")
        .caps(&caps)
        .is_live(true)
        .format(gst::Format::Time)
        .stream_type(gst_app::AppStreamType::Stream)
        .max_bytes(0)
        .block(false)
        .build();
    let parse = make("h264parse")?;
    let decoder = make(selection.decoder.factory())?;
    let tee = make("tee")?;
    let link_err = |e: gst::glib::BoolError| CodecError::Pipeline(e.to_string());
    pipeline
        .add_many([appsrc.upcast_ref(), &parse, &decoder, &tee])
        .map_err(link_err)?;
    gst::Element::link_many([appsrc.upcast_ref(), &parse, &decoder, &tee]).map_err(link_err)?;

    // How far the decoder has read: the input backlog is measured from here.
    if let Some(pad) = parse.static_pad("sink") {
        let shared = Arc::clone(shared);
        pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if let (Some(dts), Some(origin)) =
                (info.buffer().and_then(|b| b.dts()), shared.origin.get())
            {
                shared
                    .consumed_dts
                    .store(origin.to_ticks(dts.nseconds()), Ordering::Release);
            }
            gst::PadProbeReturn::Ok
        });
    }

    let mut encoders = Vec::new();
    // Each encoded rung scales from the one above it when that one is at least as large
    // (the cascade, see `rung`); otherwise from the decoded source.
    let mut above: Option<(&PlannedRung, gst::Element)> = None;
    for (index, rung) in rungs.iter().enumerate().filter(|(_, r)| !r.passthrough) {
        let upstream = match &above {
            Some((a, scaled)) if a.width >= rung.width && a.height >= rung.height => scaled,
            _ => &tee,
        };
        let branch =
            crate::rung::add_branch(&pipeline, upstream, index, rung, config, selection, shared)?;
        encoders.push((index, branch.encoder));
        above = Some((rung, branch.scaled));
    }
    if let Some(cfg) = config.per_title {
        let dims = crate::plan::source_dimensions(source);
        let added = dims
            .ok_or_else(|| CodecError::Source("unknown picture dimensions".into()))
            .and_then(|d| crate::probe::add_probe(&pipeline, &tee, d, cfg, shared));
        if let Err(e) = added {
            tracing::warn!(error = %e, "per-title probe unavailable: the table's bitrates stay");
        }
    }
    Ok(Engine {
        pipeline,
        appsrc,
        selection,
        encoders,
    })
}

/// Starts the control thread: pipeline messages and the overload policy.
pub(crate) fn spawn_control(
    engine: &Engine,
    config: &LadderConfig,
    rungs: &[PlannedRung],
    shared: &Arc<Shared>,
) -> Result<JoinHandle<()>, CodecError> {
    let bus = engine
        .pipeline
        .bus()
        .ok_or_else(|| CodecError::Pipeline("pipeline has no bus".into()))?;
    let encoded: Vec<usize> = (0..rungs.len())
        .filter(|&i| !rungs[i].passthrough)
        .collect();
    let overload = config.overload;
    let bitrates = crate::control::Bitrates {
        encoders: engine
            .encoders
            .iter()
            .map(|(i, e)| (*i, e.clone(), rungs[*i].video_bitrate_kbps))
            .collect(),
        kind: engine.selection.encoder,
        rungs: rungs.len(),
    };
    let shared = Arc::clone(shared);
    std::thread::Builder::new()
        .name("weir-ladder-ctl".into())
        .spawn(move || crate::control::run(&bus, overload, &encoded, &bitrates, &shared))
        .map_err(|e| CodecError::Pipeline(format!("control thread: {e}")))
}

/// How often the control thread wakes when the bus is quiet.
pub(crate) const CONTROL_TICK: Duration = Duration::from_millis(100);

/// `t` as running time in `segment` (nanoseconds), which is what the ladder put in:
/// encoders may shift buffer times and the segment with them (x264enc moves streams with
/// B-frames 1000 hours later so DTS stay positive). `None` when `t` falls before the segment.
pub(crate) fn running_ns(segment: Option<&gst::Segment>, t: gst::ClockTime) -> Option<u64> {
    let Some(seg) = segment.and_then(|s| s.downcast_ref::<gst::ClockTime>()) else {
        return Some(t.nseconds());
    };
    match seg.to_running_time_full(t)? {
        gst::Signed::Positive(rt) => Some(rt.nseconds()),
        gst::Signed::Negative(_) => None,
    }
}
