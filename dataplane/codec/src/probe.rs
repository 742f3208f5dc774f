//! The per-title complexity probe: `queue (leaky) ! videoconvertscale ! capsfilter !
//! x264enc (ultrafast, constant quality) ! appsink`, whose encoded sizes feed
//! [`crate::PerTitle`].
//!
//! The probe must never hold the ladder back: its queue drops its oldest picture when
//! full, so a slow probe measures fewer frames (bits per pixel per *measured* frame stay
//! right), and the tee never waits on it.

use std::sync::Arc;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use crate::error::CodecError;
use crate::ladder::Shared;
use crate::pertitle::{PerTitle, PerTitleConfig};
use crate::pipeline::{has_element, make, running_ns, set_str};
use crate::plan::scaled_width;

/// Adds the probe branch to `tee` for a source of `src_w` × `src_h` and arms the
/// estimator in `shared`. Without x264enc (an NVENC-only machine) there is no probe:
/// an error the caller logs, and the table's bitrates stay.
pub(crate) fn add_probe(
    pipeline: &gst::Pipeline,
    tee: &gst::Element,
    (src_w, src_h): (u32, u32),
    cfg: PerTitleConfig,
    shared: &Arc<Shared>,
) -> Result<(), CodecError> {
    if !has_element("x264enc") {
        return Err(CodecError::MissingElement("x264enc"));
    }
    let height = u32::from(cfg.probe_height).min(src_h & !1).max(16);
    let width = scaled_width(src_w, src_h, height);
    let height = u16::try_from(height).unwrap_or(cfg.probe_height);

    let queue = make("queue")?;
    for (k, v) in [
        ("max-size-buffers", "4"),
        ("max-size-bytes", "0"),
        ("max-size-time", "0"),
        ("leaky", "downstream"),
    ] {
        set_str(&queue, k, v);
    }
    let mut chain = vec![queue];
    if has_element("videoconvertscale") {
        chain.push(make("videoconvertscale")?);
    } else {
        chain.push(make("videoscale")?);
        chain.push(make("videoconvert")?);
    }
    let raw = make("capsfilter")?;
    raw.set_property(
        "caps",
        gst::Caps::builder("video/x-raw")
            .field("format", "I420")
            .field("width", i32::from(width))
            .field("height", i32::from(height))
            .field("pixel-aspect-ratio", gst::Fraction::new(1, 1))
            .build(),
    );
    chain.push(raw);
    let enc = make("x264enc")?;
    let crf = cfg.probe_crf.to_string();
    for (k, v) in [
        ("pass", "qual"),
        ("quantizer", crf.as_str()),
        // x264enc caps constant quality with a VBV at `bitrate` (default 2048k, which a
        // complex 360-line picture exceeds): lift the cap, the measure must not saturate.
        ("bitrate", "200000"),
        ("speed-preset", "ultrafast"),
        ("tune", "zerolatency"),
        ("key-int-max", "60"),
        ("bframes", "0"),
        ("threads", "1"),
    ] {
        set_str(&enc, k, v);
    }
    chain.push(enc);
    let sink = gst_app::AppSink::builder()
        .name("complexity-probe")
        .sync(false)
        .enable_last_sample(false)
        .build();
    set_str(sink.upcast_ref(), "async", "false");
    chain.push(sink.clone().upcast());

    let pipe_err = |e: gst::glib::BoolError| CodecError::Pipeline(e.to_string());
    pipeline.add_many(&chain).map_err(pipe_err)?;
    gst::Element::link_many(&chain).map_err(pipe_err)?;
    tee.link(&chain[0]).map_err(pipe_err)?;

    *shared.per_title.lock() = Some(PerTitle::new(cfg, width, height));
    let shared = Arc::clone(shared);
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let (Some(buffer), Some(origin)) = (sample.buffer(), shared.origin.get()) else {
                    return Ok(gst::FlowSuccess::Ok);
                };
                if let Some(ns) = buffer.pts().and_then(|t| running_ns(sample.segment(), t))
                    && let Some(p) = shared.per_title.lock().as_mut()
                {
                    p.observe(origin.to_ticks(ns), buffer.size());
                }
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    tracing::debug!(width, height, "per-title complexity probe added");
    Ok(())
}
