//! Clip heads: the frames of a clip before its first copied keyframe, re-encoded.
//!
//! A clip that starts mid-GOP cannot start with the source's frame there (it depends on
//! the keyframe before). [`reencode_head`] decodes the source from that keyframe, drops
//! every decoded picture before the clip's start, and encodes the rest with x264 at the
//! source's resolution, keyframe first and without B-frames, so its output PTS are the
//! source's and each output frame is one kept source frame. Blocking (a short pipeline
//! run to EOS): call it off any event loop.
//!
//! ```text
//! appsrc (avc, codec_data) ! h264parse ! avdec_h264 ! videoconvert ! I420
//!   ! [probe: drop PTS < start] ! x264enc bframes=0 ! byte-stream ! appsink
//! ```
//! The output is in MP4 sample format (NAL length size of the source's avcC) and keeps
//! x264's SPS and PPS in band in its first sample: the copied rest of a clip has other
//! parameter sets, so a clip signals `avc3` (parameter sets in band) and puts the
//! source's in band at each copied keyframe.

use std::time::Duration;

use bytes::Bytes;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use weir_media::{Frame, TIMESCALE, VideoConfig};

use crate::error::CodecError;

/// Longest a head may take to encode before it is given up.
const HEAD_TIMEOUT: Duration = Duration::from_secs(60);

/// One re-encoded frame of a head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadFrame {
    /// Its presentation time: the source frame's, in bus ticks (90 kHz).
    pub pts: i64,
    /// A keyframe (the first is always one).
    pub keyframe: bool,
    /// MP4 sample format, NAL lengths as the source's avcC says.
    pub data: Bytes,
}

fn ns(ticks: i64, origin: i64) -> u64 {
    u64::try_from(i128::from(ticks - origin) * 1_000_000_000 / i128::from(TIMESCALE)).unwrap_or(0)
}

/// Re-encodes the source frames `frames` (decode order, starting at a keyframe) from the
/// first frame whose PTS is at least `start` (ticks): decoding starts at `frames[0]`,
/// pictures before `start` are dropped. Returns the encoded frames in decode (= output)
/// order; `quantizer` is x264's constant quantizer (lower is better; 18–23 is near the
/// source at broadcast bitrates).
pub fn reencode_head(
    source: &VideoConfig,
    frames: &[Frame],
    start: i64,
    quantizer: u32,
) -> Result<Vec<HeadFrame>, CodecError> {
    gst::init().map_err(|e| CodecError::Init(e.to_string()))?;
    let length_size = usize::from(source.record.get(4).map_or(3, |b| b & 3)) + 1;
    if source.record.len() < 7 || frames.first().is_none_or(|f| !f.keyframe) {
        return Err(CodecError::Source(
            "a head starts at a keyframe of an H.264 track".into(),
        ));
    }
    for f in [
        "appsrc",
        "appsink",
        "h264parse",
        "avdec_h264",
        "x264enc",
        "videoconvert",
    ] {
        if !crate::pipeline::has_element(f) {
            return Err(CodecError::MissingElement(f));
        }
    }
    // GStreamer times from the earliest DTS, plus a second so nothing goes negative.
    let origin = frames.iter().map(|f| f.dts.min(f.pts)).min().unwrap_or(0) - i64::from(TIMESCALE);
    let launch = format!(
        "appsrc name=src format=time is-live=false ! h264parse ! avdec_h264 ! videoconvert \
         ! video/x-raw,format=I420 ! x264enc name=enc bframes=0 key-int-max=100000 \
           option-string=scenecut=0 speed-preset=veryfast pass=quant quantizer={quantizer} \
         ! video/x-h264,stream-format=byte-stream,alignment=au \
         ! appsink name=sink sync=false"
    );
    let pipeline = crate::pipeline::launch(&launch)?;
    let src: gst_app::AppSrc = crate::pipeline::named(&pipeline, "src")?;
    let sink: gst_app::AppSink = crate::pipeline::named(&pipeline, "sink")?;
    src.set_caps(Some(&crate::pipeline::avc_caps(&source.record)));
    src.set_max_bytes(0);
    let keep_ns = ns(start, origin);
    let enc_sink = crate::pipeline::named::<gst::Element>(&pipeline, "enc")?
        .static_pad("sink")
        .ok_or_else(|| CodecError::Pipeline("x264enc without sink pad".into()))?;
    enc_sink.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        match info.buffer().and_then(|b| b.pts()) {
            Some(p) if p.nseconds() + 1_000 < keep_ns => {
                // Taken and freed here (`Handled`): `Drop` on a buffer probe makes the
                // bindings hand GStreamer a null buffer to unref (a CRITICAL per frame).
                drop(info.data.take());
                gst::PadProbeReturn::Handled
            }
            _ => gst::PadProbeReturn::Ok,
        }
    });
    let stop = |e: CodecError| {
        let _ = pipeline.set_state(gst::State::Null);
        e
    };
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| stop(CodecError::Start(e.to_string())))?;
    for f in frames {
        let mut buffer = gst::Buffer::from_slice(f.data.clone());
        if let Some(b) = buffer.get_mut() {
            b.set_pts(gst::ClockTime::from_nseconds(ns(f.pts, origin)));
            b.set_dts(gst::ClockTime::from_nseconds(ns(f.dts, origin)));
            if !f.keyframe {
                b.set_flags(gst::BufferFlags::DELTA_UNIT);
            }
        }
        src.push_buffer(buffer)
            .map_err(|e| stop(CodecError::Pipeline(format!("head input refused: {e:?}"))))?;
    }
    let _ = src.end_of_stream();
    let mut source_pts: Vec<i64> = frames
        .iter()
        .map(|f| f.pts)
        .filter(|&p| p >= start)
        .collect();
    source_pts.sort_unstable();
    let mut out = Vec::new();
    let deadline = std::time::Instant::now() + HEAD_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Err(stop(CodecError::Pipeline("head encode timed out".into())));
        }
        let Some(sample) = sink.try_pull_sample(gst::ClockTime::from_mseconds(
            u64::try_from(left.as_millis()).unwrap_or(u64::MAX),
        )) else {
            if sink.is_eos() {
                break;
            }
            // Not EOS and nothing came: a pipeline error (decoder or encoder).
            let msg = pipeline
                .bus()
                .and_then(|b| b.pop_filtered(&[gst::MessageType::Error]))
                .map(|m| format!("{m:?}"))
                .unwrap_or_else(|| "no output".into());
            return Err(stop(CodecError::Pipeline(format!(
                "head encode failed: {msg}"
            ))));
        };
        let Some(buffer) = sample.buffer() else {
            continue;
        };
        // Without B-frames the encoder's output order is presentation order: the i-th
        // output frame is the i-th kept source frame.
        let Some(&pts) = source_pts.get(out.len()) else {
            return Err(stop(CodecError::Pipeline(
                "the encoder gave more frames than it was given".into(),
            )));
        };
        let map = buffer
            .map_readable()
            .map_err(|e| stop(CodecError::Pipeline(e.to_string())))?;
        out.push(HeadFrame {
            pts,
            keyframe: !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT),
            data: annexb_to_mp4(map.as_slice(), length_size),
        });
    }
    let _ = pipeline.set_state(gst::State::Null);
    if out.len() != source_pts.len() {
        return Err(CodecError::Pipeline(format!(
            "head encoded {} frames of {}",
            out.len(),
            source_pts.len()
        )));
    }
    Ok(out)
}

/// Annex B (start codes) → MP4 sample format with `length_size`-byte lengths; access
/// unit delimiters are dropped.
pub fn annexb_to_mp4(data: &[u8], length_size: usize) -> Bytes {
    let mut out = Vec::with_capacity(data.len() + 16);
    for nal in split_annexb(data) {
        if nal.is_empty() || nal[0] & 0x1f == 9 {
            continue;
        }
        let len = nal.len() as u64;
        out.extend_from_slice(&len.to_be_bytes()[8 - length_size..]);
        out.extend_from_slice(nal);
    }
    Bytes::from(out)
}

fn split_annexb(data: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            starts.push((i, i + 3));
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut nals = Vec::with_capacity(starts.len());
    for (n, &(_, body)) in starts.iter().enumerate() {
        let mut end = starts.get(n + 1).map_or(data.len(), |&(sc, _)| sc);
        // A 4-byte start code's leading zero belongs to no NAL.
        while end > body && data[end - 1] == 0 {
            end -= 1;
        }
        nals.push(&data[body..end]);
    }
    nals
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn annexb_converts() {
        let b = [
            0, 0, 0, 1, 0x09, 0xf0, 0, 0, 1, 0x67, 1, 2, 0, 0, 0, 1, 0x65, 7,
        ];
        assert_eq!(
            &annexb_to_mp4(&b, 4)[..],
            &[0, 0, 0, 3, 0x67, 1, 2, 0, 0, 0, 2, 0x65, 7]
        );
        assert_eq!(
            &annexb_to_mp4(&b, 2)[..],
            &[0, 3, 0x67, 1, 2, 0, 2, 0x65, 7]
        );
    }
}
