//! The fixed part of the program pipeline:
//!
//! ```text
//! appsrc "under" (BGRA still) ─┐
//! participants' video ─────────┼─ compositor ! I420 WxH@fps ! textoverlay (banner)
//! appsrc "over" (BGRA still) ──┘     ! queue ! x264enc | nvh264enc ! avc/au ! appsink
//! audiotestsrc (silence, live) ─┬─ audiomixer ! audioconvert ! audioresample
//! participants' audio ──────────┘     ! S16 48 kHz stereo ! avenc_aac ! appsink
//! ```
//! The silent source and the still layers keep both mixers producing at a steady rate
//! when nobody is on stage or an input stalls; the mixers' `latency` is the jitter an
//! input may have before its late frames are dropped instead of waited for.

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use super::ComposeConfig;
use crate::error::CodecError;
use crate::pipeline::{make, set_str};
use crate::select::EncoderKind;

/// The fixed elements the compositor drives.
pub(crate) struct Graph {
    pub pipeline: gst::Pipeline,
    pub video_mixer: gst::Element,
    pub audio_mixer: gst::Element,
    pub banner: gst::Element,
    pub under: gst_app::AppSrc,
    pub over: gst_app::AppSrc,
    pub over_pad: gst::Pad,
    pub video_sink: gst_app::AppSink,
    pub audio_sink: gst_app::AppSink,
}

/// z-order of the layer above every picture.
pub(crate) const OVER_Z: u32 = 1000;

fn err(e: impl std::fmt::Display) -> CodecError {
    CodecError::Pipeline(e.to_string())
}

fn still_src(c: &ComposeConfig) -> gst_app::AppSrc {
    let caps = gst::Caps::builder("video/x-raw")
        .field("format", "BGRA")
        .field("width", c.width as i32)
        .field("height", c.height as i32)
        .field("framerate", gst::Fraction::new(0, 1))
        .build();
    gst_app::AppSrc::builder()
        .caps(&caps)
        .format(gst::Format::Time)
        .is_live(true)
        // Queued buffers wait as long as needed: no upper bound on the latency it adds
        // (appsrc's default reports max 0, which the compositor cannot configure).
        .min_latency(0)
        .max_latency(-1)
        .max_buffers(4)
        .leaky_type(gst_app::AppLeakyType::Upstream)
        .block(false)
        .build()
}

fn encoder(kind: EncoderKind, c: &ComposeConfig) -> Result<gst::Element, CodecError> {
    let enc = make(kind.factory())?;
    let kbps = c.video_kbps.to_string();
    let gop = (c.fps * c.gop_seconds).max(1).to_string();
    match kind {
        EncoderKind::X264 => {
            set_str(&enc, "bitrate", &kbps);
            set_str(&enc, "speed-preset", "veryfast");
            set_str(&enc, "tune", "zerolatency");
            set_str(&enc, "key-int-max", &gop);
            set_str(&enc, "bframes", "0");
            set_str(&enc, "byte-stream", "false");
        }
        EncoderKind::Nvenc => {
            // Not exercised on these machines (no NVENC): best effort.
            set_str(&enc, "bitrate", &kbps);
            set_str(&enc, "rc-mode", "cbr");
            set_str(&enc, "preset", "low-latency-hq");
            set_str(&enc, "gop-size", &gop);
            set_str(&enc, "bframes", "0");
            set_str(&enc, "zerolatency", "true");
        }
    }
    Ok(enc)
}

/// Builds the fixed graph (not yet playing).
pub(crate) fn build(c: &ComposeConfig, kind: EncoderKind) -> Result<Graph, CodecError> {
    let pipeline = gst::Pipeline::with_name("weir-studio");
    let latency = c.latency.as_nanos() as u64;

    // Video.
    let video_mixer = make("compositor")?;
    video_mixer.set_property("latency", latency);
    set_str(&video_mixer, "background", "black");
    set_str(&video_mixer, "ignore-inactive-pads", "true");
    let raw = make("capsfilter")?;
    raw.set_property(
        "caps",
        gst::Caps::builder("video/x-raw")
            .field("format", "I420")
            .field("width", c.width as i32)
            .field("height", c.height as i32)
            .field("framerate", gst::Fraction::new(c.fps as i32, 1))
            .build(),
    );
    let banner = make("textoverlay")?;
    set_str(&banner, "silent", "true");
    set_str(&banner, "valignment", "bottom");
    set_str(&banner, "halignment", "left");
    set_str(&banner, "shaded-background", "true");
    set_str(&banner, "wrap-mode", "none");
    let font = format!("Sans Bold {}", (c.height / 30).max(8));
    set_str(&banner, "font-desc", &font);
    set_str(&banner, "xpad", &(c.width / 24).to_string());
    set_str(&banner, "ypad", &(c.height / 12).to_string());
    let vqueue = make("queue")?;
    let enc = encoder(kind, c)?;
    let h264 = make("capsfilter")?;
    h264.set_property(
        "caps",
        gst::Caps::builder("video/x-h264")
            .field("stream-format", "avc")
            .field("alignment", "au")
            .build(),
    );
    let video_sink = gst_app::AppSink::builder()
        .sync(false)
        .max_buffers(64)
        .build();

    // Audio.
    let silence = make("audiotestsrc")?;
    set_str(&silence, "wave", "silence");
    set_str(&silence, "is-live", "true");
    set_str(&silence, "samplesperbuffer", "960");
    let audio_mixer = make("audiomixer")?;
    audio_mixer.set_property("latency", latency);
    set_str(&audio_mixer, "ignore-inactive-pads", "true");
    let aconv = make("audioconvert")?;
    let ares = make("audioresample")?;
    let pcm = make("capsfilter")?;
    pcm.set_property(
        "caps",
        gst::Caps::builder("audio/x-raw")
            .field("rate", 48_000i32)
            .field("channels", 2i32)
            .build(),
    );
    let aenc = make("avenc_aac")?;
    aenc.set_property(
        "bitrate",
        i32::try_from(c.audio_kbps * 1000).unwrap_or(128_000),
    );
    let audio_sink = gst_app::AppSink::builder()
        .sync(false)
        .max_buffers(64)
        .build();

    let under = still_src(c);
    let over = still_src(c);
    pipeline
        .add_many([
            under.upcast_ref::<gst::Element>(),
            over.upcast_ref(),
            &video_mixer,
            &raw,
            &banner,
            &vqueue,
            &enc,
            &h264,
            video_sink.upcast_ref(),
            &silence,
            &audio_mixer,
            &aconv,
            &ares,
            &pcm,
            &aenc,
            audio_sink.upcast_ref(),
        ])
        .map_err(err)?;
    gst::Element::link_many([
        &video_mixer,
        &raw,
        &banner,
        &vqueue,
        &enc,
        &h264,
        video_sink.upcast_ref(),
    ])
    .map_err(err)?;
    gst::Element::link_many([
        &audio_mixer,
        &aconv,
        &ares,
        &pcm,
        &aenc,
        audio_sink.upcast_ref(),
    ])
    .map_err(err)?;
    let link_to = |src: &gst::Element, mixer: &gst::Element| -> Result<gst::Pad, CodecError> {
        let pad = mixer
            .request_pad_simple("sink_%u")
            .ok_or_else(|| err("mixer refused a pad"))?;
        src.static_pad("src")
            .ok_or_else(|| err("source without src pad"))?
            .link(&pad)
            .map_err(err)?;
        Ok(pad)
    };
    let under_pad = link_to(under.upcast_ref(), &video_mixer)?;
    under_pad.set_property("zorder", 0u32);
    let over_pad = link_to(over.upcast_ref(), &video_mixer)?;
    over_pad.set_property("zorder", OVER_Z);
    over_pad.set_property("alpha", 0.0f64);
    link_to(&silence, &audio_mixer)?;
    Ok(Graph {
        pipeline,
        video_mixer,
        audio_mixer,
        banner,
        under,
        over,
        over_pad,
        video_sink,
        audio_sink,
    })
}
