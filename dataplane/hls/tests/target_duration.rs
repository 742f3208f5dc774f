//! A fixed `EXT-X-TARGETDURATION`: long GOPs and key-frame-less streams are cut before a
//! segment outgrows it, and `EXT-X-INDEPENDENT-SEGMENTS` only appears while true.

mod common;

use std::time::Duration;

use common::*;
use weir_hls::{HlsConfig, LiveStream};

const INDEPENDENT: &str = "#EXT-X-INDEPENDENT-SEGMENTS\n";

fn multivariant(s: &LiveStream) -> String {
    String::from_utf8(s.multivariant_playlist().expect("tracks").to_vec()).expect("utf-8")
}

/// The index (first 4 bytes) of the first video sample of an object, and whether that
/// sample is a sync sample.
fn first_video(s: &LiveStream, name: &str) -> (u32, bool) {
    let t = trafs(&object(s, name));
    let v = t.iter().find(|t| t.track_id == 1).expect("video traf");
    let index = u32::from_be_bytes(v.first_bytes[..4].try_into().expect("4"));
    (index, v.samples[0].2 == 0x0200_0000)
}

#[test]
fn long_gops_are_cut_within_a_constant_target_duration() {
    // x264's default keyint 250 at 25 fps is a 10 s GOP; here 300 frames at 30 fps, with
    // the default 2 s segment target and 4 s target duration.
    let mut src = Source::gop(300);
    let cfg = HlsConfig {
        window: 100,
        keep_parts_segments: 100,
        ..HlsConfig::default()
    };
    let mut s = stream(cfg, &src);
    src.run_until(&mut s, 1_000);
    let first = playlist(&s);
    assert_eq!(tag_value(&first, "#EXT-X-TARGETDURATION"), Some(4));
    assert!(first.contains(INDEPENDENT) && multivariant(&s).contains(INDEPENDENT));
    let mut announced = Vec::new();
    for t in (1_000..=31_000).step_by(250) {
        src.run_until(&mut s, t);
        announced.push(tag_value(&playlist(&s), "#EXT-X-TARGETDURATION"));
    }
    assert!(announced.iter().all(|&t| t == Some(4)), "{announced:?}");
    let last = playlist(&s);
    assert_eq!(
        tag_value(&first, "#EXT-X-TARGETDURATION"),
        tag_value(&last, "#EXT-X-TARGETDURATION")
    );
    assert!(
        last.contains("CAN-SKIP-UNTIL=24.000"),
        "six target durations"
    );

    // Every EXTINF rounds to at most the target: 4.467 + 4.467 + 1.067 per GOP, the
    // short one ending right before the next key frame.
    let segs = segments(&last);
    let durations: Vec<f64> = segs.iter().map(|s| s.0).collect();
    assert_eq!(
        durations,
        [
            4.467, 4.467, 1.067, 4.467, 4.467, 1.067, 4.467, 4.467, 1.067
        ]
    );
    for (d, uri) in &segs {
        assert!(d.round() <= 4.0 && *d < 4.5, "{uri}: {d}");
    }
    // Segments cut without a key frame are not independent; those at key frames are.
    let all_parts = parts(&last);
    for (i, (_, uri)) in segs.iter().enumerate() {
        let (index, sync) = first_video(&s, uri);
        let at_key = i % 3 == 0;
        assert_eq!(index % 300 == 0, at_key, "{uri} starts at frame {index}");
        assert_eq!(sync, at_key, "{uri}");
        let msn = uri.trim_start_matches("seg-").trim_end_matches(".m4s");
        let part0 = all_parts
            .iter()
            .find(|p| p.1 == format!("part-{msn}-0.m4s"))
            .expect("first part listed");
        assert_eq!(part0.2, at_key, "{}", part0.1);
    }
    // So neither playlist claims independent segments any more.
    assert!(!last.contains(INDEPENDENT), "{last}");
    assert!(!multivariant(&s).contains(INDEPENDENT));
}

#[test]
fn a_stream_without_key_frames_is_cut_before_the_target_duration() {
    let mut src = Source::new(true, false, |i| i == 0);
    let mut cfg = config(200, 2000, 100, 100);
    cfg.target_duration = Duration::from_secs(5);
    let mut s = stream(cfg, &src);
    src.run_until(&mut s, 17_000);
    let text = playlist(&s);
    let durations: Vec<f64> = segments(&text).iter().map(|s| s.0).collect();
    assert_eq!(durations, [5.467, 5.467, 5.467]);
    assert_eq!(tag_value(&text, "#EXT-X-TARGETDURATION"), Some(5));
    let p = parts(&text);
    assert!(p[0].2, "the first part starts with the key frame");
    assert!(p[1..].iter().all(|p| !p.2), "no other part is independent");
}

#[test]
fn independent_segments_tag_follows_the_listed_segments() {
    // A key frame at 0, none until 6 s, then every 2 s: one forced cut (at 4.467 s),
    // then a short segment up to the key frame at 6 s, then regular segments.
    let mut src = Source::new(true, true, |i| i == 0 || (i >= 180 && i % 60 == 0));
    let mut cfg = config(200, 2000, 2, 1);
    cfg.target_duration = Duration::from_secs(4);
    let mut s = stream(cfg, &src);
    src.run_until(&mut s, 3_000);
    assert!(playlist(&s).contains(INDEPENDENT));
    assert!(multivariant(&s).contains(INDEPENDENT));
    src.run_until(&mut s, 5_000);
    let text = playlist(&s);
    assert_eq!(segments(&text)[0].0, 4.467);
    assert!(
        !text.contains(INDEPENDENT),
        "seg-1 does not start with a key frame"
    );
    src.run_until(&mut s, 7_000);
    let text = playlist(&s);
    assert_eq!(segments(&text)[1].0, 1.533, "cut at the first key frame");
    // Once every listed segment starts with a key frame the media playlist says so again;
    // the multivariant playlist speaks for the whole broadcast and does not.
    src.run_until(&mut s, 14_000);
    let text = playlist(&s);
    assert_eq!(tag_value(&text, "#EXT-X-MEDIA-SEQUENCE"), Some(4));
    assert!(text.contains(INDEPENDENT), "{text}");
    assert!(!multivariant(&s).contains(INDEPENDENT));
}
