//! Still pictures of a video: keyframes decoded and scaled to JPEG (recordings' poster and
//! thumbnails). Blocking; call it off the shards.
//!
//! ```text
//! appsrc (avc, au, codec_data) ! h264parse ! avdec_h264 ! videoconvert ! videoscale
//!   ! video/x-raw,width=W,pixel-aspect-ratio=1/1 ! jpegenc ! appsink
//! ```
//! Only keyframes go in: each decodes on its own (an IDR with the track's parameter
//! sets), so any choice of them works, in any spacing. They are pushed one second apart
//! whatever their real times. The height follows from the source's display aspect.

use std::time::Duration;

use bytes::Bytes;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use weir_media::{Frame, VideoConfig};

use crate::error::CodecError;

/// Longest wait for all the pictures.
const TIMEOUT: Duration = Duration::from_secs(60);

/// `keyframes` of an H.264 track (`source`: its avcC) as JPEGs `width` pixels wide (even;
/// never wider than the source), in order, one per keyframe.
pub fn keyframe_jpegs(
    source: &VideoConfig,
    keyframes: &[Frame],
    width: u32,
) -> Result<Vec<Bytes>, CodecError> {
    gst::init().map_err(|e| CodecError::Init(e.to_string()))?;
    if source.record.len() < 7 || keyframes.iter().any(|f| !f.keyframe) {
        return Err(CodecError::Source(
            "snapshots are made of H.264 keyframes".into(),
        ));
    }
    if keyframes.is_empty() {
        return Ok(Vec::new());
    }
    for f in [
        "appsrc",
        "appsink",
        "h264parse",
        "avdec_h264",
        "videoconvert",
        "videoscale",
        "jpegenc",
    ] {
        if !crate::pipeline::has_element(f) {
            return Err(CodecError::MissingElement(f));
        }
    }
    let width = (width.min(u32::from(source.width).max(2)) & !1).max(2);
    let launch = format!(
        "appsrc name=src format=time is-live=false ! h264parse ! avdec_h264 ! videoconvert \
         ! videoscale ! video/x-raw,width={width},pixel-aspect-ratio=1/1 ! jpegenc quality=80 \
         ! appsink name=sink sync=false"
    );
    let pipeline = crate::pipeline::launch(&launch)?;
    let src: gst_app::AppSrc = crate::pipeline::named(&pipeline, "src")?;
    let sink: gst_app::AppSink = crate::pipeline::named(&pipeline, "sink")?;
    src.set_caps(Some(&crate::pipeline::avc_caps(&source.record)));
    src.set_max_bytes(0);
    let stop = |e: CodecError| {
        let _ = pipeline.set_state(gst::State::Null);
        e
    };
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| stop(CodecError::Start(e.to_string())))?;
    for (i, f) in keyframes.iter().enumerate() {
        let mut buffer = gst::Buffer::from_slice(f.data.clone());
        if let Some(b) = buffer.get_mut() {
            let t = gst::ClockTime::from_seconds(i as u64);
            b.set_pts(t);
            b.set_dts(t);
            b.set_duration(gst::ClockTime::from_seconds(1));
        }
        src.push_buffer(buffer).map_err(|e| {
            stop(CodecError::Pipeline(format!(
                "snapshot input refused: {e:?}"
            )))
        })?;
    }
    let _ = src.end_of_stream();
    let deadline = std::time::Instant::now() + TIMEOUT;
    let mut out = Vec::with_capacity(keyframes.len());
    while out.len() < keyframes.len() {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Err(stop(CodecError::Pipeline("snapshots timed out".into())));
        }
        let Some(sample) = sink.try_pull_sample(gst::ClockTime::from_mseconds(
            u64::try_from(left.as_millis()).unwrap_or(u64::MAX),
        )) else {
            break; // end of stream (or an error: counted below)
        };
        if let Some(buffer) = sample.buffer() {
            let map = buffer
                .map_readable()
                .map_err(|e| stop(CodecError::Pipeline(e.to_string())))?;
            out.push(Bytes::copy_from_slice(map.as_slice()));
        }
    }
    let _ = pipeline.set_state(gst::State::Null);
    if out.len() != keyframes.len() {
        return Err(CodecError::Pipeline(format!(
            "{} pictures of {} keyframes",
            out.len(),
            keyframes.len()
        )));
    }
    Ok(out)
}
