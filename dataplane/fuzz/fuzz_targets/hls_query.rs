//! Fuzzes the LL-HLS request surface: `PlaylistQuery::parse` on arbitrary UTF-8, and
//! `LiveStream::object` / `media_playlist` on arbitrary names and parsed queries against
//! a stream that holds a few parts.
#![no_main]

use std::sync::OnceLock;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use weir_hls::media::{Codec, Frame, TrackKind, VideoConfig};
use weir_hls::{HlsConfig, LiveStream, ObjectAnswer, ObjectName, PlaylistQuery};

fn stream() -> &'static LiveStream {
    static STREAM: OnceLock<LiveStream> = OnceLock::new();
    STREAM.get_or_init(|| {
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
                track: TrackKind::Video,
                dts,
                pts: dts,
                keyframe: i % 60 == 0,
                data: Bytes::from(vec![0u8; 64]),
            };
            s.push_frame(1_700_000_000_000 + i as u64 * 33, frame);
        }
        s
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let s = stream();
    if let Ok(q) = PlaylistQuery::parse(text) {
        assert!(q.part.is_none() || q.msn.is_some());
        let _ = s.media_playlist(&q);
    }
    if let ObjectAnswer::Ready(..) = s.object(text) {
        // Only canonical names are served.
        let name = ObjectName::parse(text).expect("served names parse");
        assert_eq!(name.file_name(), text);
    }
});
