//! The body of the `flv_tag` cargo-fuzz target, also run by unit tests with
//! pseudo-random inputs so CI exercises the same code on stable Rust.

use bytes::Bytes;

use crate::{DemuxEvent, FlvDemuxer};

/// The first byte picks audio, video or data (and a timestamp nudge); the rest is the
/// tag body. Never panics on any input; frames produced keep the bus invariants and
/// belong to a configured track.
pub fn flv_tag(demuxer: &mut FlvDemuxer, data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let body = Bytes::copy_from_slice(body);
    let ts = u32::from(selector) << 20;
    let result = match selector % 3 {
        0 => demuxer.push_audio(ts, &body),
        1 => demuxer.push_video(ts, &body),
        _ => demuxer.push_data(&body),
    };
    if let Ok(events) = result {
        for e in events {
            if let DemuxEvent::Frame(f) = e {
                assert!(f.dts >= 0, "negative dts");
                assert!(!f.data.is_empty(), "empty frame");
                assert!(
                    demuxer.track(f.track).is_some(),
                    "frame of an unknown track"
                );
            }
        }
    }
}
