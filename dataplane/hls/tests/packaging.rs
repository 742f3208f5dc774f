//! Cutting rules: part durations, segment cuts at key frames, audio timing, init changes.

mod common;

use common::*;
use weir_hls::ObjectAnswer;
use weir_media::VideoConfig;

const SYNC: u32 = 0x0200_0000;

/// Checks the invariants every playlist of `s` must keep; returns (segment durations,
/// first video frame index of each listed full segment).
fn check_invariants(s: &weir_hls::LiveStream, part_target: f64) -> (Vec<f64>, Vec<u32>) {
    let text = playlist(s);
    let target = tag_value(&text, "#EXT-X-TARGETDURATION").expect("target duration") as f64;
    for (d, uri, _) in parts(&text) {
        assert!(d <= part_target, "{uri} lasts {d} > {part_target}");
        assert!(d > 0.0, "{uri} is empty");
    }
    let mut durations = Vec::new();
    let mut firsts = Vec::new();
    for (d, uri) in segments(&text) {
        assert!(d.round() <= target, "{uri}: {d} rounds above {target}");
        let data = object(s, &uri);
        let video: Vec<Traf> = trafs(&data)
            .into_iter()
            .filter(|t| t.track_id == 1)
            .collect();
        assert_eq!(
            video[0].samples[0].2, SYNC,
            "{uri} must start with a key frame"
        );
        let first = u32::from_be_bytes(video[0].first_bytes[..4].try_into().expect("4"));
        // Video samples are contiguous across the fragments of a segment.
        for pair in video.windows(2) {
            let sum: u64 = pair[0].samples.iter().map(|s| u64::from(s.0)).sum();
            assert_eq!(pair[0].tfdt + sum, pair[1].tfdt);
        }
        durations.push(d);
        firsts.push(first);
    }
    (durations, firsts)
}

#[test]
fn regular_gops_make_target_length_segments() {
    let mut src = Source::gop(60);
    let mut s = stream(config(200, 2000, 100, 100), &src);
    src.run_until(&mut s, 20_000);
    let (durations, firsts) = check_invariants(&s, 0.2);
    assert_eq!(durations, vec![2.0; 10]);
    assert_eq!(firsts, (0..10).map(|i| i * 60).collect::<Vec<_>>());
    let text = playlist(&s);
    assert_eq!(tag_value(&text, "#EXT-X-TARGETDURATION"), Some(2));
    // 10 parts per segment, the first of each independent.
    let p = parts(&text);
    assert_eq!(p.len(), 100);
    for (i, (_, uri, independent)) in p.iter().enumerate() {
        assert_eq!(*independent, i % 10 == 0, "{uri}");
    }
}

#[test]
fn irregular_gops_cut_at_the_first_key_frame_past_the_target() {
    let keys = [0u64, 45, 50, 110, 111, 150, 200, 330, 331, 390, 500];
    let mut src = Source::new(true, true, move |i| keys.contains(&i));
    let mut cfg = config(200, 2000, 100, 100);
    cfg.target_duration = std::time::Duration::from_secs(4);
    let mut s = stream(cfg, &src);
    src.run_until(&mut s, 19_000);
    let (durations, firsts) = check_invariants(&s, 0.2);
    // 0 → 110 (3.667 s), 110 → 200 (3 s), 200 → 330, 330 → 390 (exactly 2 s), 390 → 500.
    assert_eq!(firsts, vec![0, 110, 200, 330, 390]);
    assert_eq!(durations, vec![3.667, 3.0, 4.333, 2.0, 3.667]);
    // The announced target duration (4 s) holds the longest segment.
    assert_eq!(tag_value(&playlist(&s), "#EXT-X-TARGETDURATION"), Some(4));
    // The part that starts a segment is independent; mid-segment key frames too.
    let text = playlist(&s);
    let p = parts(&text);
    assert!(p.iter().filter(|p| p.2).count() >= 5);
}

#[test]
fn audio_only_streams_cut_by_time_with_nominal_durations() {
    let mut src = Source::new(false, true, |_| true);
    let mut s = stream(config(200, 2000, 100, 100), &src);
    src.run_until(&mut s, 10_000);
    let text = playlist(&s);
    for (d, uri, independent) in parts(&text) {
        // At most the advertised PART-TARGET (200 ms + 5 % headroom).
        assert!(d <= 0.21 && independent, "{uri}: {d}");
    }
    let durations: Vec<f64> = segments(&text).iter().map(|s| s.0).collect();
    assert_eq!(durations.len(), 5);
    for d in &durations {
        assert!((d - 2.0).abs() < 0.024, "{d}");
    }
    // Every sample is 1024 ticks at 44.1 kHz and the timeline has no holes.
    let mut next = None;
    for (_, uri) in segments(&text) {
        for t in trafs(&object(&s, &uri)) {
            assert_eq!(t.track_id, 2);
            assert!(t.samples.iter().all(|s| s.0 == 1024 && s.2 == SYNC));
            if let Some(n) = next {
                assert_eq!(t.tfdt, n);
            }
            next = Some(t.tfdt + 1024 * t.samples.len() as u64);
        }
    }
}

#[test]
fn audio_is_muxed_beside_video_with_contiguous_timing() {
    let mut src = Source::gop(60);
    let mut s = stream(config(200, 2000, 100, 100), &src);
    src.run_until(&mut s, 6_000);
    let text = playlist(&s);
    let mut audio_next: Option<u64> = None;
    let mut audio_samples = 0;
    for (_, uri, _) in parts(&text) {
        let t = trafs(&object(&s, &uri));
        assert_eq!(t.len(), 2, "{uri}: video and audio in one fragment");
        assert_eq!((t[0].track_id, t[1].track_id), (1, 2));
        // Video composition offsets come through (pts = dts + 3000).
        let a = &t[1];
        assert!(a.samples.iter().all(|s| s.0 == 1024));
        if let Some(n) = audio_next {
            assert_eq!(a.tfdt, n, "{uri}");
        }
        audio_next = Some(a.tfdt + 1024 * a.samples.len() as u64);
        audio_samples += a.samples.len();
        // Audio stays within a frame or two of the video it is muxed with.
        let video_s = t[0].tfdt as f64 / 90_000.0;
        let audio_s = a.tfdt as f64 / 44_100.0;
        assert!(
            (video_s - audio_s).abs() < 0.1,
            "{uri}: {video_s} vs {audio_s}"
        );
    }
    assert!(audio_samples > 250, "{audio_samples}");
}

#[test]
fn segments_are_their_parts_concatenated() {
    let mut src = Source::gop(60);
    let mut s = stream(config(200, 2000, 100, 100), &src);
    src.run_until(&mut s, 4_100);
    let seg = object(&s, "seg-0.m4s");
    let mut joined = Vec::new();
    for i in 0..10 {
        joined.extend_from_slice(&object(&s, &format!("part-0-{i}.m4s")));
    }
    assert_eq!(&seg[..], &joined[..]);
    assert!(matches!(s.object("part-0-10.m4s"), ObjectAnswer::Gone));
    // Fragment sequence numbers keep increasing across segments.
    let seqs: Vec<u32> = [&seg[..], &object(&s, "seg-1.m4s")[..]]
        .iter()
        .flat_map(|d| weir_cmaf::test_support::boxes(d))
        .filter(|b| &b.kind == b"moof")
        .map(|m| {
            let mfhd = weir_cmaf::test_support::child(m.body, b"mfhd").expect("mfhd");
            u32::from_be_bytes(mfhd.body[4..8].try_into().expect("4"))
        })
        .collect();
    assert_eq!(seqs, (1..=20).collect::<Vec<_>>());
}

#[test]
fn new_codec_config_starts_a_new_init_segment() {
    let mut src = Source::gop(60);
    let mut s = stream(config(200, 2000, 2, 1), &src);
    src.run_until(&mut s, 4_500);
    let changed = VideoConfig {
        width: 640,
        height: 480,
        ..video_config()
    };
    s.set_tracks(Some(changed.clone()), Some(audio_config()));
    // Same tracks again: nothing changes.
    s.set_tracks(Some(changed), Some(audio_config()));
    src.run_until(&mut s, 8_100);
    let text = playlist(&s);
    let map_then_seg: Vec<&str> = text
        .lines()
        .filter(|l| {
            l.starts_with("#EXT-X-MAP") || l.starts_with("#EXT-X-DISC") || l.starts_with("seg-")
        })
        .collect();
    assert_eq!(
        map_then_seg,
        [
            "#EXT-X-MAP:URI=\"init-0.mp4\"",
            "seg-2.m4s",
            "#EXT-X-DISCONTINUITY",
            "#EXT-X-MAP:URI=\"init-1.mp4\"",
            "seg-3.m4s",
        ]
    );
    let init1 = object(&s, "init-1.mp4");
    assert!(init1.windows(4).any(|w| w == b"avc1"));
    assert_ne!(object(&s, "init-0.mp4"), init1);
    // Once no kept segment uses init-0 it is dropped; the discontinuity count moves
    // into EXT-X-DISCONTINUITY-SEQUENCE.
    src.run_until(&mut s, 12_100);
    assert!(matches!(s.object("init-0.mp4"), ObjectAnswer::Gone));
    let text = playlist(&s);
    assert_eq!(tag_value(&text, "#EXT-X-DISCONTINUITY-SEQUENCE"), Some(1));
    assert!(!text.contains("#EXT-X-DISCONTINUITY\n"));
}

#[test]
fn tracks_completed_before_media_keep_init_zero() {
    let src = Source::gop(60);
    let mut s = weir_hls::LiveStream::new(config(200, 2000, 4, 1));
    assert!(s.multivariant_playlist().is_none());
    s.set_tracks(Some(video_config()), None);
    s.set_tracks(Some(video_config()), Some(audio_config()));
    let mut src = src;
    src.run_until(&mut s, 2_100);
    let text = playlist(&s);
    assert!(text.contains("init-0.mp4") && !text.contains("DISCONTINUITY"));
    let mv = String::from_utf8(s.multivariant_playlist().expect("tracks").to_vec()).expect("utf8");
    assert!(mv.contains("CODECS=\"avc1.64000d,mp4a.40.2\""), "{mv}");
}

#[test]
fn millisecond_timestamps_at_29_97_fps_still_make_full_parts() {
    // RTMP stamps 29.97 fps video in whole milliseconds: 33 or 34 ms a frame, so six
    // frames add up to 200 or 201 ms. Parts must still hold six frames (not five), and
    // every part that is neither independent nor last in its segment must last at least
    // 85 % of PART-TARGET (RFC 8216bis).
    let mut s = weir_hls::LiveStream::new(config(200, 2000, 100, 100));
    s.set_tracks(Some(video_config()), None);
    for i in 0..600u64 {
        let ms = (i as f64 * 1001.0 / 30.0).round() as i64;
        s.push_frame(
            1_700_000_000_000 + ms as u64,
            weir_media::Frame {
                track: weir_media::TrackId::VIDEO,
                dts: ms * 90,
                pts: ms * 90,
                keyframe: i % 60 == 0,
                data: bytes::Bytes::from_static(&[0, 0, 0, 1, 0x65]),
            },
        );
    }
    let text = playlist(&s);
    let target = 0.21;
    assert!(text.contains("#EXT-X-PART-INF:PART-TARGET=0.210"), "{text}");
    let all = parts(&text);
    assert!(all.len() > 20);
    for (i, (d, uri, independent)) in all.iter().enumerate() {
        assert!(*d <= target, "{uri}: {d}");
        let last_of_segment = all
            .get(i + 1)
            .is_none_or(|next| next.2 || next.1.split('-').nth(1) != uri.split('-').nth(1));
        if !independent && !last_of_segment {
            assert!(
                *d >= 0.85 * target,
                "{uri} lasts {d}, under 85 % of {target}"
            );
        }
    }
}
