//! Synthetic H.264 sources in bus format, made with GStreamer itself (`videotestsrc !
//! x264enc`), for tests and benchmarks of anything that consumes video frames.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;
use weir_media::{Codec, Frame, TIMESCALE, TrackId, VideoConfig};

use crate::error::CodecError;

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynthSpec {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Frames per second.
    pub fps: u32,
    /// Number of frames.
    pub frames: u32,
    /// Regular keyframe interval in frames.
    pub gop: u32,
    /// Extra keyframes, by frame number (presentation order): an irregular GOP.
    pub extra_keyframes: Vec<u32>,
    /// B-frames (gives the source composition offsets).
    pub bframes: u32,
    /// `videotestsrc` pattern nick (`"ball"`, `"smpte"`, …).
    pub pattern: String,
    /// `videotestsrc` `horizontal-speed`: pixels the picture scrolls per frame (motion).
    pub horizontal_speed: i32,
    /// Bus tick of the first frame's PTS.
    pub start_ticks: i64,
}

impl Default for SynthSpec {
    fn default() -> Self {
        Self {
            width: 1280,
            height: 720,
            fps: 30,
            frames: 150,
            gop: 60,
            extra_keyframes: Vec::new(),
            bframes: 2,
            pattern: "ball".into(),
            horizontal_speed: 0,
            start_ticks: 0,
        }
    }
}

/// Encodes `spec` with x264 and returns the track config (avcC) and the frames in decode
/// order, 90 kHz, in bus format (length-prefixed NAL units).
pub fn synth_h264(spec: &SynthSpec) -> Result<(VideoConfig, Vec<Frame>), CodecError> {
    gst::init().map_err(|e| CodecError::Init(e.to_string()))?;
    // One second of offset so that encoder DTS before the first PTS stay positive.
    let offset_ns: u64 = 1_000_000_000;
    let launch = format!(
        "videotestsrc name=src num-buffers={frames} pattern={pattern} timestamp-offset={offset_ns} \
         horizontal-speed={speed} \
         ! video/x-raw,format=I420,width={w},height={h},framerate={fps}/1 \
         ! x264enc name=enc speed-preset=ultrafast key-int-max={gop} bframes={bf} \
           option-string=scenecut=0 bitrate=4000 \
         ! video/x-h264,stream-format=avc,alignment=au,profile=high \
         ! appsink name=sink sync=false",
        frames = spec.frames,
        pattern = spec.pattern,
        speed = spec.horizontal_speed,
        w = spec.width,
        h = spec.height,
        fps = spec.fps,
        gop = spec.gop,
        bf = spec.bframes,
    );
    let err = |e: gst::glib::BoolError| CodecError::Pipeline(e.to_string());
    let pipeline = gst::parse::launch(&launch)
        .map_err(|e| CodecError::Pipeline(e.to_string()))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| CodecError::Pipeline("not a pipeline".into()))?;
    let by_name = |n: &str| {
        pipeline
            .by_name(n)
            .ok_or_else(|| CodecError::Pipeline(format!("no element {n}")))
    };
    let sink = by_name("sink")?
        .downcast::<gst_app::AppSink>()
        .map_err(|_| CodecError::Pipeline("sink is not an appsink".into()))?;
    let enc_sink = by_name("enc")?
        .static_pad("sink")
        .ok_or_else(|| CodecError::Pipeline("x264enc without sink pad".into()))?;
    let extra = Arc::new(spec.extra_keyframes.clone());
    let counter = Arc::new(AtomicU64::new(0));
    enc_sink.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
        let n = counter.fetch_add(1, Ordering::Relaxed);
        if let Some(pts) = info.buffer().and_then(|b| b.pts())
            && extra.iter().any(|&k| u64::from(k) == n)
        {
            let ev = gst_video::DownstreamForceKeyUnitEvent::builder()
                .timestamp(pts)
                .running_time(pts)
                .build();
            // Sent from the upstream side, so it reaches x264enc before this frame.
            if let Some(peer) = pad.peer() {
                let _ = peer.push_event(ev);
            }
        }
        gst::PadProbeReturn::Ok
    });
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| CodecError::Start(e.to_string()))?;
    let to_ticks = |ns: u64| {
        let rel = i128::from(ns) - i128::from(offset_ns);
        let t = (rel * i128::from(TIMESCALE) + 500_000_000).div_euclid(1_000_000_000);
        i64::try_from(t).unwrap_or(0) + spec.start_ticks
    };
    let mut frames = Vec::new();
    let mut config = None;
    while let Ok(sample) = sink.pull_sample() {
        let (Some(buffer), Some(caps)) = (sample.buffer(), sample.caps()) else {
            continue;
        };
        if config.is_none()
            && let Some(s) = caps.structure(0)
            && let Ok(cd) = s.get::<gst::Buffer>("codec_data")
        {
            let map = cd.map_readable().map_err(err)?;
            config = Some(VideoConfig {
                codec: Codec::H264,
                width: u16::try_from(spec.width).unwrap_or(0),
                height: u16::try_from(spec.height).unwrap_or(0),
                record: Bytes::copy_from_slice(map.as_slice()),
            });
        }
        let segment = sample.segment();
        let Some(pts) = buffer
            .pts()
            .and_then(|t| crate::pipeline::running_ns(segment, t))
        else {
            continue;
        };
        let dts = buffer
            .dts()
            .and_then(|t| crate::pipeline::running_ns(segment, t))
            .unwrap_or(pts);
        let map = buffer.map_readable().map_err(err)?;
        frames.push(Frame {
            track: TrackId::VIDEO,
            dts: to_ticks(dts),
            pts: to_ticks(pts),
            keyframe: !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT),
            data: Bytes::copy_from_slice(map.as_slice()),
        });
    }
    let _ = pipeline.set_state(gst::State::Null);
    let config = config.ok_or_else(|| CodecError::Pipeline("encoder gave no avcC".into()))?;
    Ok((config, frames))
}
