//! One participant's branches: `appsrc ! parse ! decode ! convert ! videocrop ! queue`
//! into a compositor pad, and `appsrc ! decode ! convert ! resample ! queue` into an
//! audiomixer pad; added and released while the pipeline plays.
//!
//! Timestamps: a participant's frames are on its own ingest clock. The first frame (of
//! either track) maps to the pipeline's running time at its arrival, and every later
//! frame keeps its distance from it, so a participant's audio and video stay together
//! and B-frame reordering is kept; the mixers' latency absorbs network jitter. A frame
//! that would land well in the past or the future (a publisher that reconnected on a
//! new clock) re-anchors the mapping.

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use weir_media::{AudioConfig, Codec, Frame, TIMESCALE, VideoConfig};

use crate::error::CodecError;

/// A mapped frame earlier than this before now re-anchors the mapping (ns).
const LATE_LIMIT: i64 = 1_000_000_000;
/// A mapped frame later than this after now re-anchors the mapping (ns).
const EARLY_LIMIT: i64 = 3_000_000_000;
/// Most media a branch queues before the mixer (ns).
const QUEUE_TIME: u64 = 500_000_000;

/// Names of branch elements start with this (errors inside a branch are not fatal).
pub(crate) const BRANCH_PREFIX: &str = "participant";

static SERIAL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// A decode branch feeding one mixer pad.
pub(crate) struct Branch {
    pub src: gst_app::AppSrc,
    elements: Vec<gst::Element>,
    /// The mixer's request pad this branch feeds.
    pub pad: gst::Pad,
    /// `videocrop`, for video branches.
    pub crop: Option<gst::Element>,
    /// Waiting for a key frame (start, or after a refused push).
    pub need_key: bool,
}

impl Branch {
    /// Builds `appsrc ! <chain>` into a new request pad of `mixer`, and plays it.
    fn build(
        pipeline: &gst::Pipeline,
        mixer: &gst::Element,
        caps: gst::Caps,
        chain: &[&'static str],
    ) -> Result<Branch, CodecError> {
        let err = |e: &dyn std::fmt::Display| CodecError::Pipeline(e.to_string());
        let serial = SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let src = gst_app::AppSrc::builder()
            .name(format!("{BRANCH_PREFIX}{serial}-src"))
            .caps(&caps)
            .format(gst::Format::Time)
            .is_live(true)
            // Unbounded max latency (appsrc's default reports max 0): otherwise a decoder's
            // or parser's latency makes min > max at the mixer, its latency is never
            // configured and it waits for every pad as if not live.
            .min_latency(0)
            .max_latency(-1)
            .max_bytes(8 * 1024 * 1024)
            .block(false)
            .build();
        let mut elements: Vec<gst::Element> = vec![src.clone().upcast()];
        let mut crop = None;
        for f in chain {
            let el = gst::ElementFactory::make(f)
                .name(format!("{BRANCH_PREFIX}{serial}-{f}"))
                .build()
                .map_err(|_| CodecError::MissingElement(f))?;
            if *f == "videocrop" {
                crop = Some(el.clone());
            }
            if *f == "queue" {
                el.set_property("max-size-buffers", 0u32);
                el.set_property("max-size-bytes", 0u32);
                el.set_property("max-size-time", QUEUE_TIME);
                el.set_property_from_str("leaky", "downstream");
            }
            elements.push(el);
        }
        pipeline.add_many(&elements).map_err(|e| err(&e))?;
        gst::Element::link_many(&elements).map_err(|e| err(&e))?;
        let pad = mixer
            .request_pad_simple("sink_%u")
            .ok_or_else(|| CodecError::Pipeline("mixer refused a pad".into()))?;
        let last = elements
            .last()
            .and_then(|e| e.static_pad("src"))
            .ok_or_else(|| CodecError::Pipeline("branch without src pad".into()))?;
        last.link(&pad).map_err(|e| err(&e))?;
        for e in elements.iter().rev() {
            e.sync_state_with_parent().map_err(|e| err(&e))?;
        }
        Ok(Branch {
            src,
            elements,
            pad,
            crop,
            need_key: true,
        })
    }

    /// Stops the branch and gives its pad back to the mixer.
    pub fn remove(self, pipeline: &gst::Pipeline, mixer: &gst::Element) {
        for e in &self.elements {
            let _ = e.set_state(gst::State::Null);
        }
        if let Some(src) = self.elements.last().and_then(|e| e.static_pad("src")) {
            let _ = src.unlink(&self.pad);
        }
        mixer.release_request_pad(&self.pad);
        let _ = pipeline.remove_many(&self.elements);
    }
}

/// The video branch for an H.264 track (other codecs are shown as a placeholder).
pub(crate) fn video_branch(
    pipeline: &gst::Pipeline,
    mixer: &gst::Element,
    config: &VideoConfig,
) -> Result<Branch, CodecError> {
    if config.codec != Codec::H264 {
        return Err(CodecError::Source(format!(
            "{:?} video is not composed (H.264 only)",
            config.codec
        )));
    }
    let caps = crate::pipeline::avc_caps(&config.record);
    Branch::build(
        pipeline,
        mixer,
        caps,
        &[
            "h264parse",
            "avdec_h264",
            "videoconvert",
            "videocrop",
            "queue",
        ],
    )
}

/// The audio branch for an AAC or Opus track.
pub(crate) fn audio_branch(
    pipeline: &gst::Pipeline,
    mixer: &gst::Element,
    config: &AudioConfig,
) -> Result<Branch, CodecError> {
    let rate = i32::try_from(config.sample_rate).unwrap_or(48_000);
    let channels = i32::from(config.channels.max(1));
    let (caps, decoder) = match config.codec {
        Codec::Aac => (
            gst::Caps::builder("audio/mpeg")
                .field("mpegversion", 4i32)
                .field("stream-format", "raw")
                .field("rate", rate)
                .field("channels", channels)
                .field("codec_data", gst::Buffer::from_slice(config.record.clone()))
                .build(),
            "avdec_aac",
        ),
        Codec::Opus => (
            gst::Caps::builder("audio/x-opus")
                .field("channel-mapping-family", 0i32)
                .field("rate", 48_000i32)
                .field("channels", channels.min(2))
                .build(),
            "opusdec",
        ),
        other => {
            return Err(CodecError::Source(format!("{other:?} is not audio")));
        }
    };
    Branch::build(
        pipeline,
        mixer,
        caps,
        &[decoder, "audioconvert", "audioresample", "queue"],
    )
}

/// Bus ticks to nanoseconds.
fn ticks_ns(t: i64) -> i64 {
    t.saturating_mul(1_000_000_000) / i64::from(TIMESCALE)
}

/// Maps one participant's ingest clock to the pipeline's running time.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Anchor {
    offset: Option<i64>,
}

impl Anchor {
    /// GStreamer (pts, dts) of `frame` given the running time `now` (ns); re-anchors
    /// when the frame would land too far from now. `None` when it would be negative.
    pub fn map(&mut self, frame: &Frame, now: u64) -> Option<(u64, u64)> {
        let now = i64::try_from(now).ok()?;
        let dts = ticks_ns(frame.dts);
        let pts = ticks_ns(frame.pts);
        let offset = match self.offset {
            Some(o) if (dts + o) > now - LATE_LIMIT && (dts + o) < now + EARLY_LIMIT => o,
            _ => {
                let o = now - dts;
                self.offset = Some(o);
                o
            }
        };
        let (p, d) = (pts + offset, dts + offset);
        (p >= 0 && d >= 0).then_some((p as u64, d as u64))
    }
}

/// Wraps a bus frame as a GStreamer buffer at (`pts`, `dts`).
pub(crate) fn buffer(frame: &Frame, pts: u64, dts: u64) -> Option<gst::Buffer> {
    let mut b = gst::Buffer::from_slice(frame.data.clone());
    let m = b.get_mut()?;
    m.set_pts(gst::ClockTime::from_nseconds(pts));
    m.set_dts(gst::ClockTime::from_nseconds(dts));
    if !frame.keyframe {
        m.set_flags(gst::BufferFlags::DELTA_UNIT);
    }
    Some(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use weir_media::TrackId;

    fn frame(dts: i64, pts: i64) -> Frame {
        Frame {
            track: TrackId::VIDEO,
            dts,
            pts,
            keyframe: true,
            data: Bytes::new(),
        }
    }

    #[test]
    fn the_anchor_keeps_distances_and_re_anchors_on_a_new_clock() {
        let mut a = Anchor::default();
        let s = 1_000_000_000u64;
        // First frame at running time 5 s.
        assert_eq!(
            a.map(&frame(90_000, 93_000), 5 * s),
            Some((5 * s + 33_333_333, 5 * s))
        );
        // One second of media later, arriving a bit late: same mapping.
        assert_eq!(
            a.map(&frame(180_000, 180_000), 6 * s + 100),
            Some((6 * s, 6 * s))
        );
        // The publisher reconnected: its clock restarts at 0, which would land 5 s in
        // the past: re-anchored at now.
        assert_eq!(a.map(&frame(0, 0), 7 * s), Some((7 * s, 7 * s)));
    }
}
