//! The program's two appsinks: encoded video and AAC audio back to bus frames, and their
//! track configurations from the caps.

use std::sync::Arc;

use bytes::Bytes;
use gstreamer as gst;
use gstreamer_app as gst_app;
use parking_lot::Mutex;
use weir_media::{AudioConfig, Codec, Frame, TIMESCALE, TrackConfig, TrackId, VideoConfig};

use super::{ComposeOutput, Shared};
use crate::pipeline::running_ns;

/// Per-sink memory of what was last sent.
#[derive(Default)]
struct SinkState {
    record: Option<Bytes>,
    last_dts: Option<i64>,
}

/// Running time (ns) to bus ticks.
fn ticks(ns: u64) -> i64 {
    i64::try_from(u128::from(ns) * u128::from(TIMESCALE) / 1_000_000_000).unwrap_or(i64::MAX)
}

/// Sends the samples of `sink` to `shared` as frames of `track`.
pub(crate) fn install(sink: &gst_app::AppSink, track: TrackId, shared: &Arc<Shared>) {
    let shared = Arc::clone(shared);
    let state = Mutex::new(SinkState::default());
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                on_sample(&sample, track, &shared, &mut state.lock());
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
}

fn config(s: &gst::StructureRef, track: TrackId, record: Bytes) -> TrackConfig {
    let int = |k: &str| s.get::<i32>(k).ok().unwrap_or(0);
    if track.is_video() {
        TrackConfig::Video(VideoConfig {
            codec: Codec::H264,
            width: u16::try_from(int("width")).unwrap_or(0),
            height: u16::try_from(int("height")).unwrap_or(0),
            record,
        })
    } else {
        TrackConfig::Audio(AudioConfig {
            codec: Codec::Aac,
            sample_rate: u32::try_from(int("rate")).unwrap_or(48_000),
            channels: u8::try_from(int("channels")).unwrap_or(2),
            record,
        })
    }
}

fn on_sample(sample: &gst::Sample, track: TrackId, shared: &Shared, st: &mut SinkState) {
    let (Some(caps), Some(buffer)) = (sample.caps(), sample.buffer_owned()) else {
        return;
    };
    if let Some(s) = caps.structure(0)
        && let Ok(codec_data) = s.get::<gst::Buffer>("codec_data")
        && let Ok(map) = codec_data.map_readable()
        && st.record.as_deref() != Some(map.as_slice())
    {
        let record = Bytes::copy_from_slice(map.as_slice());
        st.record = Some(record.clone());
        shared.emit(ComposeOutput::Config(track, config(s, track, record)));
    }
    let segment = sample.segment();
    let Some(pts) = buffer.pts().and_then(|t| running_ns(segment, t)).map(ticks) else {
        return;
    };
    // No B-frames in the program: decode order is presentation order.
    let mut dts = pts;
    if let Some(last) = st.last_dts
        && dts <= last
    {
        dts = last + 1;
    }
    st.last_dts = Some(dts);
    let keyframe = !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
    let Ok(data) = buffer.into_mapped_buffer_readable() else {
        return;
    };
    shared.emit(ComposeOutput::Frame(Frame {
        track,
        dts,
        pts: pts.max(dts),
        keyframe,
        data: Bytes::from_owner(data),
    }));
}
