//! A stalled video track (camera lost, app backgrounded) while audio keeps coming: the
//! playlist keeps moving with audio-only parts, and video picks up again at a key frame.

mod common;

use common::*;
use weir_hls::{LiveStream, Position};

/// Parts listed so far (every part stays listed with this test's configuration).
fn part_count(s: &LiveStream) -> usize {
    parts(&playlist(s)).len()
}

/// Track ids of the trafs of each moof of `name`.
fn moof_tracks(s: &LiveStream, name: &str) -> Vec<Vec<u32>> {
    use weir_cmaf::test_support::{boxes, child, children};
    let data = object(s, name);
    boxes(&data)
        .into_iter()
        .filter(|b| &b.kind == b"moof")
        .map(|m| {
            children(m.body, 0)
                .into_iter()
                .filter(|b| &b.kind == b"traf")
                .map(|t| {
                    let tfhd = child(t.body, b"tfhd").expect("tfhd");
                    u32::from_be_bytes(tfhd.body[4..8].try_into().expect("4"))
                })
                .collect()
        })
        .collect()
}

#[test]
fn a_stalled_video_track_does_not_freeze_the_playlist() {
    // 4 s of A/V (key frame every 2 s), 5 s of audio only, then A/V again.
    let mut src = Source::gop(60);
    let mut s = stream(config(200, 2000, 100, 100), &src);
    src.run_until(&mut s, 3_990);
    assert!(!s.snapshot().video_stalled());
    let before = part_count(&s);
    src.video = false;
    let mut counts = Vec::new(); // (ms, parts, position) every 500 ms
    let mut last = s.snapshot().position();
    for t in (4_000..=9_000).step_by(500) {
        src.run_until(&mut s, t);
        let snap = s.snapshot();
        assert!(snap.position() >= last, "positions only grow");
        last = snap.position();
        counts.push((t, part_count(&s), snap.video_stalled()));
    }
    // Within video_stall (1 s) nothing moves; then the buffered audio comes out at once
    // and parts keep coming at about 5 per second.
    assert_eq!(counts[1].1, before, "{counts:?}");
    assert!(counts[3].2 && counts[10].2, "stalled: {counts:?}");
    let per_second = |from: usize, to: usize| {
        (counts[to].1 - counts[from].1) as f64 / ((counts[to].0 - counts[from].0) as f64 / 1e3)
    };
    assert!((per_second(3, 10) - 5.0).abs() <= 0.5, "{counts:?}");
    assert!(counts[10].1 - before >= 22, "{counts:?}");

    // Video returns (its clock moved on); frames are dropped until the key frame at 10 s.
    src.video = true;
    src.resync_video();
    src.run_until(&mut s, 9_990);
    assert!(s.snapshot().video_stalled());
    src.run_until(&mut s, 16_000);
    assert!(!s.snapshot().video_stalled());
    let text = playlist(&s);
    let segs = segments(&text);
    // A/V 0-2, 2-4; audio only from ~4 s (by 2 s, and what is left when the video comes
    // back); A/V from the key frame at 10 s (the one at 16 s closes the last).
    let audio_only: Vec<bool> = segs
        .iter()
        .map(|(_, uri)| {
            let moofs = moof_tracks(&s, uri);
            let only = moofs.iter().all(|t| t == &[2]);
            assert!(
                only || moofs.iter().all(|t| t == &[1, 2]),
                "{uri}: {moofs:?}"
            );
            only
        })
        .collect();
    let stall_from = audio_only
        .iter()
        .position(|&a| a)
        .expect("audio-only segments");
    let stall_to = stall_from + audio_only[stall_from..].iter().take_while(|&&a| a).count();
    assert_eq!(stall_from, 2, "{audio_only:?}");
    assert!(audio_only[stall_to..].iter().all(|&a| !a), "{audio_only:?}");
    assert!(stall_to - stall_from >= 3, "{audio_only:?}");
    let stalled: f64 = segs[stall_from..stall_to].iter().map(|s| s.0).sum();
    assert!(
        (stalled - 6.0).abs() < 0.1,
        "audio only from ~4 s to 10 s: {stalled}"
    );
    for (d, uri) in segs[..stall_from].iter().chain(&segs[stall_to..]) {
        assert_eq!(*d, 2.0, "{uri}");
    }
    for (d, uri) in &segs[stall_from..stall_to] {
        assert!(*d <= 2.0, "{uri}: {d}");
    }
    assert_eq!(segs.len() - stall_to, 3, "10-12, 12-14, 14-16");
    let back = format!("part-{stall_to}-0.m4s");
    let p = parts(&text);
    let first = p
        .iter()
        .find(|p| p.1 == back)
        .expect("first part after the stall");
    assert!(first.2, "the segment after the stall starts independent");
    let t = trafs(&object(&s, &back));
    assert_eq!(t[0].track_id, 1);
    assert_eq!(t[0].samples[0].2, 0x0200_0000, "a key frame");
    assert_eq!(
        u32::from_be_bytes(t[0].first_bytes[..4].try_into().expect("4")),
        300
    );
    assert_eq!(t[0].tfdt, 90_000 + 300 * 3000);
    assert!(text.contains("#EXT-X-INDEPENDENT-SEGMENTS\n"));
    assert!(!text.contains("DISCONTINUITY"));
    // The audio-only parts and segments are signalled as gaps in the video (players skip
    // them and jump the hole); the others are not.
    let gaps = text.lines().filter(|l| *l == "#EXT-X-GAP").count();
    assert_eq!(gaps, stall_to - stall_from, "{text}");
    for line in text.lines().filter(|l| l.starts_with("#EXT-X-PART:")) {
        let msn: usize = line
            .split("part-")
            .nth(1)
            .and_then(|r| r.split('-').next())
            .and_then(|m| m.parse().ok())
            .expect("part msn");
        let stalled = (stall_from..stall_to).contains(&msn);
        assert_eq!(line.contains(",GAP=YES"), stalled, "{line}");
    }

    // Audio is continuous through both switches: every part's audio starts where the
    // previous one's ended.
    let mut next = None;
    for (_, uri, _) in &p {
        let audio = trafs(&object(&s, uri))
            .into_iter()
            .find(|t| t.track_id == 2)
            .expect("audio in every part");
        if let Some(n) = next {
            assert_eq!(audio.tfdt, n, "{uri}");
        }
        next = Some(audio.tfdt + audio.samples.iter().map(|s| u64::from(s.0)).sum::<u64>());
    }
    // The frame rate of the multivariant playlist ignores the audio-only segments.
    let mv = String::from_utf8(s.multivariant_playlist().expect("mv").to_vec()).expect("utf-8");
    assert!(mv.contains("FRAME-RATE=30.000"), "{mv}");
    assert_eq!(s.snapshot().position(), Position::new(segs.len() as u64, 0));
}

#[test]
fn ending_during_a_stall_flushes_the_audio() {
    let mut src = Source::gop(60);
    let mut s = stream(config(200, 2000, 100, 100), &src);
    src.run_until(&mut s, 3_990);
    src.video = false;
    src.run_until(&mut s, 6_500);
    assert!(s.snapshot().video_stalled());
    s.end();
    let snap = s.snapshot();
    assert!(snap.is_ended() && !snap.video_stalled());
    let text = playlist(&s);
    assert!(text.ends_with("#EXT-X-ENDLIST\n"));
    let segs = segments(&text);
    let durations: Vec<f64> = segs.iter().map(|s| (s.0 * 10.0).round() / 10.0).collect();
    assert_eq!(durations, [2.0, 2.0, 2.0, 0.5]);
    let (_, last) = segs.last().expect("segments");
    assert!(moof_tracks(&s, last).iter().all(|t| t == &[2]));
}

#[test]
fn tracks_stamped_apart_do_not_look_stalled() {
    // Audio stamped 1.5 s ahead of (or behind) the video it is sent with: video keeps
    // arriving, so nothing stalls and segments stay A/V at the 2 s GOP.
    for skew in [135_000, -135_000] {
        let mut src = Source::gop(60);
        src.audio_skew = skew;
        src.start += 135_000; // no negative timestamps
        let mut s = stream(config(200, 2000, 100, 100), &src);
        for t in (500..=20_000).step_by(500) {
            src.run_until(&mut s, t);
            assert!(!s.snapshot().video_stalled(), "skew {skew} at {t} ms");
        }
        let text = playlist(&s);
        let segs = segments(&text);
        assert_eq!(segs.len(), 10, "skew {skew}");
        for (d, uri) in &segs {
            assert_eq!(*d, 2.0, "skew {skew}: {uri}");
            for tracks in moof_tracks(&s, uri) {
                assert_eq!(tracks, [1, 2], "skew {skew}: {uri}");
            }
        }
    }
}

#[test]
fn a_jump_in_audio_timestamps_is_not_a_stall() {
    let mut src = Source::gop(60);
    let mut s = stream(config(200, 2000, 100, 100), &src);
    src.run_until(&mut s, 3_000);
    src.audio_skew = 180_000; // the audio clock jumps 2 s ahead; video goes on
    for t in (3_100..=9_000).step_by(100) {
        src.run_until(&mut s, t);
        assert!(!s.snapshot().video_stalled(), "at {t} ms");
    }
    let text = playlist(&s);
    for (d, uri) in segments(&text) {
        assert_eq!(d, 2.0, "{uri}");
        assert!(moof_tracks(&s, &uri).iter().all(|t| t == &[1, 2]), "{uri}");
    }
}
