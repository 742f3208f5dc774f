//! Fuzzes the LL-HLS request surface: `PlaylistQuery::parse` on arbitrary UTF-8, and
//! `Snapshot::object` / `media_playlist` on arbitrary names and parsed queries against
//! a snapshot of a stream that holds a few parts.
#![no_main]

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use weir_hls::media::{Codec, Frame, TrackId, VideoConfig};
use weir_hls::{
    HlsConfig, LiveStream, ObjectAnswer, ObjectName, PlaylistAnswer, PlaylistQuery, Snapshot,
};

fn snapshot() -> &'static Arc<Snapshot> {
    static SNAPSHOT: OnceLock<Arc<Snapshot>> = OnceLock::new();
    SNAPSHOT.get_or_init(|| {
        let mut s = LiveStream::new(HlsConfig::default());
        s.set_tracks(
            Some(VideoConfig {
                codec: Codec::H264,
                width: 320,
                height: 240,
                record: Bytes::from_static(&[1, 0x64, 0, 0x0d, 0xff, 0xe0, 0]),
            }),
            None,
        );
        for i in 0..150i64 {
            let dts = 90_000 + i * 3000;
            let frame = Frame {
                track: TrackId::VIDEO,
                dts,
                pts: dts,
                keyframe: i % 60 == 0,
                data: Bytes::from(vec![0u8; 64]),
            };
            s.push_frame(1_700_000_000_000 + i as u64 * 33, frame);
        }
        s.snapshot()
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let s = snapshot();
    if let Ok(q) = PlaylistQuery::parse(text) {
        assert!(q.part.is_none() || q.msn.is_some());
        if let PlaylistAnswer::Wait(p) = s.media_playlist(&q) {
            // A waiter is parked under a position not reached yet.
            assert!(p > s.position());
        }
    }
    match s.object(text) {
        ObjectAnswer::Ready(..) => {
            // Only canonical names are served.
            let name = ObjectName::parse(text).expect("served names parse");
            assert_eq!(name.file_name(), text);
        }
        ObjectAnswer::Wait(p) => assert!(p > s.position()),
        ObjectAnswer::Gone => {}
    }
});
