//! Decoding uploaded images (PNG, JPEG) into BGRA, once per image.

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use weir_studio::Bgra;

use crate::error::CodecError;

/// Largest width or height of an image taken.
pub const MAX_IMAGE_SIDE: u32 = 4096;
/// Largest image file taken.
pub const MAX_IMAGE_BYTES: usize = 8 * 1024 * 1024;

/// Decodes a PNG or JPEG file to BGRA at its own size.
pub fn decode_image(data: &[u8]) -> Result<Bgra, CodecError> {
    if data.len() > MAX_IMAGE_BYTES {
        return Err(CodecError::Source(format!(
            "image of {} bytes is over {MAX_IMAGE_BYTES}",
            data.len()
        )));
    }
    let decoder = if data.starts_with(b"\x89PNG\r\n\x1a\n") {
        "pngdec"
    } else if data.starts_with(&[0xff, 0xd8, 0xff]) {
        "jpegdec"
    } else {
        return Err(CodecError::Source("not a PNG or JPEG image".into()));
    };
    gst::init().map_err(|e| CodecError::Init(e.to_string()))?;
    let parse = if decoder == "pngdec" {
        "pngparse"
    } else {
        "jpegparse"
    };
    let parse = if crate::pipeline::has_element(parse) {
        format!("{parse} ! ")
    } else {
        String::new()
    };
    let launch = format!(
        "appsrc name=src ! {parse}{decoder} ! videoconvert ! video/x-raw,format=BGRA ! \
         appsink name=sink sync=false"
    );
    let pipeline = gst::parse::launch(&launch)
        .map_err(|e| CodecError::Pipeline(e.to_string()))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| CodecError::Pipeline("not a pipeline".into()))?;
    let result = run(&pipeline, data);
    let _ = pipeline.set_state(gst::State::Null);
    result
}

fn run(pipeline: &gst::Pipeline, data: &[u8]) -> Result<Bgra, CodecError> {
    let by_name = |n: &str| {
        pipeline
            .by_name(n)
            .ok_or_else(|| CodecError::Pipeline(format!("no {n}")))
    };
    let src = by_name("src")?
        .downcast::<gst_app::AppSrc>()
        .map_err(|_| CodecError::Pipeline("src is not an appsrc".into()))?;
    let sink = by_name("sink")?
        .downcast::<gst_app::AppSink>()
        .map_err(|_| CodecError::Pipeline("sink is not an appsink".into()))?;
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| CodecError::Start(e.to_string()))?;
    let _ = src.push_buffer(gst::Buffer::from_slice(data.to_vec()));
    let _ = src.end_of_stream();
    let sample = sink
        .try_pull_sample(gst::ClockTime::from_seconds(5))
        .ok_or_else(|| CodecError::Source("the image could not be decoded".into()))?;
    let caps = sample
        .caps()
        .ok_or_else(|| CodecError::Source("decoded image without caps".into()))?;
    let info = gstreamer_video::VideoInfo::from_caps(caps)
        .map_err(|e| CodecError::Source(format!("decoded image caps: {e}")))?;
    let (w, h) = (info.width(), info.height());
    if w == 0 || h == 0 || w > MAX_IMAGE_SIDE || h > MAX_IMAGE_SIDE {
        return Err(CodecError::Source(format!(
            "image of {w}x{h} is out of bounds"
        )));
    }
    let buffer = sample
        .buffer()
        .ok_or_else(|| CodecError::Source("decoded image without data".into()))?;
    let map = buffer
        .map_readable()
        .map_err(|_| CodecError::Source("decoded image unreadable".into()))?;
    let stride = info.stride()[0] as usize;
    let row = w as usize * 4;
    let mut out = Vec::with_capacity(row * h as usize);
    for y in 0..h as usize {
        let start = y * stride;
        let line = map
            .get(start..start + row)
            .ok_or_else(|| CodecError::Source("decoded image is short".into()))?;
        out.extend_from_slice(line);
    }
    Bgra::from_raw(w, h, out).ok_or_else(|| CodecError::Source("decoded image size".into()))
}
