//! The per-track split of muxed objects and the MPD, on objects the CMAF writer makes.

#![allow(clippy::unwrap_used)]

use super::*;
use crate::recorder::index::Header;
use weir_cmaf::{InitTrack, init_segment};
use weir_media::{AudioConfig, Codec, TrackConfig, VideoConfig};

fn muxed_init() -> Bytes {
    init_segment(&[
        InitTrack {
            track_id: 1,
            config: TrackConfig::Video(VideoConfig {
                codec: Codec::H264,
                width: 640,
                height: 360,
                record: Bytes::from_static(&[1, 0x64, 0, 0x1f, 0xff, 0xe0, 0]),
            }),
        },
        InitTrack {
            track_id: 2,
            config: TrackConfig::Audio(AudioConfig {
                codec: Codec::Aac,
                sample_rate: 48_000,
                channels: 2,
                record: Bytes::from_static(&[0x11, 0x90]),
            }),
        },
    ])
}

fn sample(duration: u32, cto: i32, key: bool, data: &'static [u8]) -> Sample {
    Sample {
        duration,
        composition_offset: cto,
        keyframe: key,
        data: Bytes::from_static(data),
    }
}

#[test]
fn an_init_segment_is_split_into_one_track_each() {
    let init = muxed_init();
    let t = tracks(&init).unwrap();
    assert_eq!(t.len(), 2);
    assert_eq!(
        (t[0].kind, t[0].codecs.as_str(), t[0].size),
        (Kind::Video, "avc1.64001f", Some((640, 360)))
    );
    assert_eq!(
        (t[1].kind, t[1].codecs.as_str(), t[1].audio, t[1].timescale),
        (Kind::Audio, "mp4a.40.2", Some((2, 48_000)), 48_000)
    );
    for (id, kind) in [(1, Kind::Video), (2, Kind::Audio)] {
        let one = track_init(&init, id).unwrap();
        let left = tracks(&one).unwrap();
        assert_eq!(left.len(), 1, "track {id}");
        assert_eq!(left[0].kind, kind);
        assert_eq!(left[0].id, id);
        // One `trex`, for that track.
        let moov = fmp4::child(&one, b"moov", "moov").unwrap();
        let mvex = fmp4::child(moov, b"mvex", "mvex").unwrap();
        let trex: Vec<_> = fmp4::boxes(mvex).map(Result::unwrap).collect();
        assert_eq!(trex.len(), 1);
        assert_eq!(&trex[0].2[4..8], &id.to_be_bytes());
    }
    assert!(track_init(&init, 9).is_ok_and(|i| tracks(&i).unwrap().is_empty()));
    // Every truncation is an error or less, never a panic.
    for cut in 0..init.len() {
        let _ = track_init(&init[..cut], 1);
        let _ = tracks(&init[..cut]);
    }
}

#[test]
fn a_muxed_segment_is_split_with_its_decode_times_and_offsets() {
    let v = [
        sample(3000, 6000, true, b"idr"),
        sample(3000, -3000, false, b"b"),
    ];
    let a = [
        sample(1024, 0, true, b"aac1"),
        sample(1024, 0, true, b"aac2"),
    ];
    let seg = fragment(
        4,
        &[
            FragmentTrack {
                track_id: 1,
                base_decode_time: 900_000,
                samples: &v,
            },
            FragmentTrack {
                track_id: 2,
                base_decode_time: 480_000,
                samples: &a,
            },
        ],
    )
    .to_bytes();
    let video = track_segment(&seg, 1, 3).unwrap().to_bytes();
    let got = fmp4::read_segment(&video).unwrap();
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|s| s.track == 1));
    assert_eq!(
        (got[0].dts, got[0].pts, got[0].keyframe, &got[0].data[..]),
        (900_000, 906_000, true, &b"idr"[..])
    );
    assert_eq!((got[1].dts, got[1].pts), (903_000, 900_000));
    // mfhd sequence number msn + 1.
    let moof = fmp4::child(&video, b"moof", "moof").unwrap();
    let mfhd = fmp4::child(moof, b"mfhd", "mfhd").unwrap();
    assert_eq!(&mfhd[4..8], &4u32.to_be_bytes());
    let audio = fmp4::read_segment(&track_segment(&seg, 2, 3).unwrap().to_bytes()).unwrap();
    assert_eq!(
        audio.iter().map(|s| (s.track, s.dts)).collect::<Vec<_>>(),
        [(2, 480_000), (2, 481_024)]
    );
    assert!(matches!(
        track_segment(&seg, 3, 3),
        Err(DashError::NoTrack(_))
    ));
    for cut in 0..seg.len() {
        let _ = track_segment(&seg.slice(..cut), 1, 3);
    }
}

fn empty_index() -> Index {
    Index::new(Header {
        id: "r".into(),
        channel_id: "c".into(),
        broadcast_id: "b".into(),
        started_ms: 0,
        target_secs: 4,
        signed: None,
    })
}

fn seg(msn: u64, init: u64, start_s: u64) -> SegmentEntry {
    SegmentEntry {
        msn,
        duration_us: 2_000_000,
        bytes: 500_000,
        start: 90_000 * start_s,
        timescale: 90_000,
        wallclock_ms: 0,
        init,
        discontinuity: false,
        gap: false,
        independent: true,
    }
}

#[test]
fn the_mpd_has_a_period_per_init_and_exact_timelines() {
    let mut index = empty_index();
    index.inits = vec![(0, 700), (1, 700)];
    index.segments = vec![seg(0, 0, 10), seg(1, 0, 12), seg(2, 0, 14)];
    // The publisher came back with new parameters: a new init, a new Period.
    let mut back = seg(3, 1, 100);
    back.discontinuity = true;
    index.segments.push(back);
    index.ended_ms = Some(1);
    let t = tracks(&muxed_init()).unwrap();
    let mpd = render_mpd(&index, |_| Some(t.clone()));
    assert!(mpd.contains("type=\"static\""), "{mpd}");
    assert!(
        mpd.contains("mediaPresentationDuration=\"PT8.000S\""),
        "{mpd}"
    );
    assert_eq!(mpd.matches("<Period ").count(), 2, "{mpd}");
    assert!(mpd.contains("<Period id=\"1\" start=\"PT6.000S\" duration=\"PT2.000S\">"));
    // Video in 90 kHz from the index, audio converted to 48 kHz.
    assert!(mpd.contains(
        "presentationTimeOffset=\"900000\" startNumber=\"0\" initialization=\"dash/v/init-0.mp4\" media=\"dash/v/seg-$Number$.m4s\""
    ), "{mpd}");
    assert!(mpd.contains("<S t=\"900000\" d=\"180000\"/>\n            <S d=\"180000\"/>"));
    assert!(mpd.contains("<S t=\"480000\" d=\"96000\"/>"), "{mpd}");
    assert!(mpd.contains("startNumber=\"3\" initialization=\"dash/a/init-1.mp4\""));
    assert!(mpd.contains("codecs=\"avc1.64001f\" bandwidth=\"2000000\" width=\"640\""));
    // An init that cannot be read leaves its segments out; its time still passes.
    let mpd = render_mpd(&index, |n| (n == 1).then(|| t.clone()));
    assert_eq!(mpd.matches("<Period ").count(), 1);
    assert!(mpd.contains("<Period id=\"1\" start=\"PT6.000S\""));
}

#[test]
fn audio_only_runs_are_periods_without_video() {
    let mut index = empty_index();
    let mut g = seg(1, 0, 12);
    g.gap = true;
    index.segments = vec![seg(0, 0, 10), g, seg(2, 0, 14)];
    let t = tracks(&muxed_init()).unwrap();
    let mpd = render_mpd(&index, |_| Some(t.clone()));
    assert_eq!(mpd.matches("<Period ").count(), 3);
    assert_eq!(mpd.matches("contentType=\"video\"").count(), 2);
    assert_eq!(mpd.matches("contentType=\"audio\"").count(), 3);
}
