//! One encoded rung: `queue ! videoconvertscale ! capsfilter ! tee`, the rung's scaled
//! frames, then `tee. ! queue ! <encoder> [! h264parse] ! capsfilter(avc, au) ! appsink`;
//! its gate/keyframe probe and its output. The encoder element is returned, for live
//! bitrate changes, and the tee, for the rungs below.
//!
//! **Cascade.** Each rung scales from the next larger rung's scaled frames, not from the
//! decoded source: 1080p → 720p → 480p → 360p reads a third of the pixels that scaling
//! every rung from 1080p reads, and GStreamer's scaler is the ladder's largest cost after
//! x264. Measured (600 frames of 1080p I420, 720/480/360): 4.4 s of CPU from the source,
//! 2.6 s cascaded, 2.2 s cascaded without chroma resampling; libswscale's bilinear on the
//! same job, from the source, 2.0 s. GStreamer's default 2-tap bilinear skips source
//! pixels when it shrinks by more than 2×, so the cascade also aliases less.
//!
//! The probe on the encoder queue's source pad (the encoder's own streaming thread) drops
//! frames while the rung is off, restarts it only at a keyframe position, applies the
//! frame-rate cap, and sends a downstream force-key-unit event right before every frame at
//! a keyframe position, so all rungs cut their GOPs on the same frames. A rung that is off
//! still scales when a rung below it is on.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;
use parking_lot::Mutex;
use weir_media::{Codec, Frame, TrackConfig, VideoConfig};

use crate::config::LadderConfig;
use crate::error::CodecError;
use crate::ladder::{LadderOutput, Shared, rung_track};
use crate::pipeline::{has_element, make, running_ns, set_str};
use crate::plan::PlannedRung;
use crate::select::{EncoderKind, Selection};
use crate::timeline::FrameDecimator;

/// x264's "no automatic keyframes" (`X264_KEYINT_MAX_INFINITE`).
const KEYINT_INFINITE: &str = "1073741824";

/// A rung's branch: the scaled picture (for rungs below it to scale from) and the
/// encoder (for live bitrate changes).
pub(crate) struct Branch {
    /// Tee carrying this rung's scaled raw frames.
    pub scaled: gst::Element,
    /// The rung's encoder element.
    pub encoder: gst::Element,
}

/// Builds rung `index`'s branch from `upstream` (a tee of raw frames: the decoder's, or
/// the next larger rung's scaled frames — see the module docs), links it and wires its
/// probe and sink.
pub(crate) fn add_branch(
    pipeline: &gst::Pipeline,
    upstream: &gst::Element,
    index: usize,
    rung: &PlannedRung,
    config: &LadderConfig,
    selection: Selection,
    shared: &Arc<Shared>,
) -> Result<Branch, CodecError> {
    let queue = raw_queue()?;
    let mut scale = vec![queue.clone()];
    if has_element("videoconvertscale") {
        scale.push(make("videoconvertscale")?);
    } else {
        scale.push(make("videoscale")?);
        scale.push(make("videoconvert")?);
    }
    for el in &scale[1..] {
        set_str(el, "add-borders", "false");
        // Scale each plane as it is, without resampling chroma to 4:4:4 and back: the
        // decoder's output and the encoder's input are both 4:2:0, and GStreamer's full
        // chroma mode costs a third of the scaling (measured on 1080p → 720/480/360).
        if el.find_property("chroma-mode").is_some() {
            set_str(el, "chroma-mode", "none");
        }
    }
    let raw = make("capsfilter")?;
    let format = if selection.encoder == EncoderKind::Nvenc {
        "NV12"
    } else {
        "I420"
    };
    raw.set_property(
        "caps",
        gst::Caps::builder("video/x-raw")
            .field("format", format)
            .field("width", i32::from(rung.width))
            .field("height", i32::from(rung.height))
            .field("pixel-aspect-ratio", gst::Fraction::new(1, 1))
            .build(),
    );
    scale.push(raw);
    let scaled = make("tee")?;
    scale.push(scaled.clone());

    let gate = raw_queue()?;
    let mut chain = vec![gate.clone()];
    let enc = encoder(selection.encoder, rung, config)?;
    chain.push(enc.clone());
    if selection.encoder == EncoderKind::Nvenc {
        chain.push(make("h264parse")?);
    }
    let h264 = make("capsfilter")?;
    h264.set_property(
        "caps",
        gst::Caps::builder("video/x-h264")
            .field("stream-format", "avc")
            .field("alignment", "au")
            .build(),
    );
    chain.push(h264);
    let sink = gst_app::AppSink::builder()
        .name(format!("rung{index}"))
        .sync(false)
        .enable_last_sample(false)
        .build();
    set_str(sink.upcast_ref(), "async", "false");
    chain.push(sink.clone().upcast());

    let pipe_err = |e: gst::glib::BoolError| CodecError::Pipeline(e.to_string());
    pipeline.add_many(&scale).map_err(pipe_err)?;
    pipeline.add_many(&chain).map_err(pipe_err)?;
    gst::Element::link_many(&scale).map_err(pipe_err)?;
    gst::Element::link_many(&chain).map_err(pipe_err)?;
    upstream.link(&queue).map_err(pipe_err)?;
    scaled.link(&gate).map_err(pipe_err)?;

    let src = gate
        .static_pad("src")
        .ok_or_else(|| CodecError::Pipeline("queue without src pad".into()))?;
    install_gate(&src, index, rung.max_fps, shared);
    install_sink(&sink, index, config.tuning.bframes > 0, shared);
    Ok(Branch {
        scaled,
        encoder: enc,
    })
}

/// A short queue of raw frames: each one starts a streaming thread.
fn raw_queue() -> Result<gst::Element, CodecError> {
    let queue = make("queue")?;
    for (k, v) in [
        ("max-size-buffers", "4"),
        ("max-size-bytes", "0"),
        ("max-size-time", "0"),
    ] {
        set_str(&queue, k, v);
    }
    Ok(queue)
}

fn encoder(
    kind: EncoderKind,
    rung: &PlannedRung,
    config: &LadderConfig,
) -> Result<gst::Element, CodecError> {
    let enc = make(kind.factory())?;
    let kbps = rung.video_bitrate_kbps.to_string();
    let bframes = config.tuning.bframes.to_string();
    match kind {
        EncoderKind::X264 => {
            set_str(&enc, "bitrate", &kbps);
            set_str(&enc, "speed-preset", "veryfast");
            if config.tuning.zerolatency {
                set_str(&enc, "tune", "zerolatency");
            }
            // Keyframes come only from the force-key-unit events (see the module docs).
            set_str(&enc, "key-int-max", KEYINT_INFINITE);
            set_str(&enc, "bframes", &bframes);
            set_str(&enc, "option-string", "scenecut=0");
            set_str(&enc, "byte-stream", "false");
            set_str(&enc, "threads", &x264_threads(rung).to_string());
        }
        EncoderKind::Nvenc => {
            // Not exercised on these machines (no NVENC): every setting is best effort.
            set_str(&enc, "bitrate", &kbps);
            set_str(&enc, "rc-mode", "cbr");
            set_str(&enc, "preset", "low-latency-hq");
            set_str(&enc, "gop-size", "-1");
            set_str(&enc, "bframes", &bframes);
            set_str(
                &enc,
                "zerolatency",
                if config.tuning.zerolatency {
                    "true"
                } else {
                    "false"
                },
            );
        }
    }
    Ok(enc)
}

/// Pixels a second one x264 `veryfast` thread is given: 1080p at 40 fps. One thread
/// measured here encodes 1080p `testsrc2` at 66 fps, so this leaves 1.6× headroom.
const X264_PIXELS_PER_THREAD: u64 = 1920 * 1080 * 40;

/// x264 threads for a rung: as few as keep it in real time. x264's automatic count (1.5 ×
/// the CPUs, sliced with `zerolatency`) cost 28 % more CPU than one thread for 1080p here,
/// and a ladder's rungs already run in parallel with each other. The frame rate is
/// assumed to be 60 unless the rung caps it.
fn x264_threads(rung: &PlannedRung) -> u64 {
    let fps = u64::from(rung.max_fps.unwrap_or(60));
    let pixels = u64::from(rung.width) * u64::from(rung.height) * fps;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
    pixels.div_ceil(X264_PIXELS_PER_THREAD).clamp(1, cpus)
}

fn install_gate(src: &gst::Pad, index: usize, max_fps: Option<u32>, shared: &Arc<Shared>) {
    let shared = Arc::clone(shared);
    let decimator = max_fps.map(|f| Mutex::new(FrameDecimator::new(f)));
    src.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
        let Some(pts) = info.buffer().and_then(|b| b.pts()) else {
            return gst::PadProbeReturn::Ok;
        };
        let ns = pts.nseconds();
        let key = shared.keyframes.lock().contains(&ns);
        let state = &shared.rungs[index];
        if !state.enabled.load(Ordering::Acquire) {
            state.live.store(false, Ordering::Release);
            return gst::PadProbeReturn::Drop;
        }
        if !state.live.load(Ordering::Acquire) {
            if !key {
                return gst::PadProbeReturn::Drop;
            }
            state.live.store(true, Ordering::Release);
            if let Some(origin) = shared.origin.get() {
                state
                    .last_out_pts
                    .fetch_max(origin.to_ticks(ns), Ordering::AcqRel);
            }
        }
        if let Some(d) = &decimator
            && !d.lock().keep(ns, key)
        {
            return gst::PadProbeReturn::Drop;
        }
        if key {
            let running_time = pad
                .sticky_event::<gst::event::Segment>(0)
                .and_then(|e| {
                    e.segment()
                        .downcast_ref::<gst::ClockTime>()
                        .and_then(|s| s.to_running_time(pts))
                })
                .unwrap_or(pts);
            let event = gst_video::DownstreamForceKeyUnitEvent::builder()
                .timestamp(pts)
                .running_time(running_time)
                .all_headers(false)
                .build();
            let ok = pad.push_event(event);
            if !ok {
                tracing::debug!(rung = index, "force-key-unit event not handled");
            }
        }
        gst::PadProbeReturn::Ok
    });
}

/// What a rung's sink remembers between samples.
#[derive(Default)]
struct SinkState {
    record: Option<Bytes>,
    last_dts: Option<i64>,
    /// An output was dropped (queue full): skip to the next keyframe.
    need_key: bool,
}

fn install_sink(
    sink: &gst_app::AppSink,
    index: usize,
    dts_from_encoder: bool,
    shared: &Arc<Shared>,
) {
    let shared = Arc::clone(shared);
    let state = Mutex::new(SinkState::default());
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                on_sample(&sample, index, dts_from_encoder, &shared, &mut state.lock());
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
}

fn on_sample(
    sample: &gst::Sample,
    index: usize,
    dts_from_encoder: bool,
    shared: &Shared,
    st: &mut SinkState,
) {
    let (Some(caps), Some(buffer), Some(origin)) = (
        sample.caps(),
        sample.buffer_owned(),
        shared.origin.get().copied(),
    ) else {
        return;
    };
    if let Some(s) = caps.structure(0)
        && let Ok(codec_data) = s.get::<gst::Buffer>("codec_data")
        && let Ok(map) = codec_data.map_readable()
        && st.record.as_deref() != Some(map.as_slice())
    {
        let record = Bytes::copy_from_slice(map.as_slice());
        let dim = |k: &str| {
            s.get::<i32>(k)
                .ok()
                .and_then(|v| u16::try_from(v).ok())
                .unwrap_or(0)
        };
        st.record = Some(record.clone());
        shared.emit(LadderOutput::Config {
            rung: index,
            config: TrackConfig::Video(VideoConfig {
                codec: Codec::H264,
                width: dim("width"),
                height: dim("height"),
                record,
            }),
        });
    }
    let segment = sample.segment();
    let Some(pts_ns) = buffer.pts().and_then(|t| running_ns(segment, t)) else {
        return;
    };
    let pts = origin.to_ticks(pts_ns);
    let keyframe = !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
    let mapped = if dts_from_encoder {
        buffer
            .dts()
            .and_then(|t| running_ns(segment, t))
            .map(|d| origin.to_ticks(d))
    } else {
        shared.timeline.lock().dts_for(pts)
    };
    let mut dts = mapped.unwrap_or(pts);
    if let Some(last) = st.last_dts
        && dts <= last
    {
        dts = last + 1;
    }
    if st.need_key && !keyframe {
        shared.output_dropped.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let Ok(data) = buffer.into_mapped_buffer_readable() else {
        return;
    };
    let frame = Frame {
        track: rung_track(index),
        dts,
        pts,
        keyframe,
        data: Bytes::from_owner(data),
    };
    if shared.emit(LadderOutput::Frame { rung: index, frame }) {
        st.need_key = false;
        st.last_dts = Some(dts);
        let rung = &shared.rungs[index];
        rung.frames_out.fetch_add(1, Ordering::Relaxed);
        rung.last_out_pts.fetch_max(pts, Ordering::AcqRel);
    } else {
        st.need_key = true;
        shared.output_dropped.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rung(width: u16, height: u16, max_fps: Option<u32>) -> PlannedRung {
        PlannedRung {
            name: format!("{height}p"),
            width,
            height,
            video_bitrate_kbps: 1000,
            max_fps,
            passthrough: false,
        }
    }

    #[test]
    fn x264_threads_follow_the_pixel_rate() {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
        assert_eq!(x264_threads(&rung(640, 360, None)), 1);
        assert_eq!(x264_threads(&rung(1280, 720, None)), 1);
        assert_eq!(x264_threads(&rung(1920, 1080, Some(30))), 1);
        assert_eq!(x264_threads(&rung(1920, 1080, None)), 2.min(cpus));
        assert_eq!(x264_threads(&rung(3840, 2160, None)), 6.min(cpus));
    }
}
