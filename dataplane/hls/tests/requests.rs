//! Blocking reload, objects, pause/resume, end, window eviction and memory.

mod common;

use common::*;
use weir_hls::{LiveStream, ObjectAnswer, ObjectKind, PlaylistAnswer, PlaylistQuery, Position};

fn q(msn: u64, part: Option<u64>) -> PlaylistQuery {
    PlaylistQuery {
        msn: Some(msn),
        part,
        skip: false,
    }
}

/// Pushes frames until one reports a new part.
fn next_part(src: &mut Source, s: &mut LiveStream) {
    for _ in 0..1000 {
        let f = src.next_frame();
        let wall = EPOCH_MS + (f.dts / 90) as u64;
        if s.push_frame(wall, f) {
            return;
        }
    }
    panic!("no part in 1000 frames");
}

/// The (msn, part) named by the preload hint.
fn hint(s: &LiveStream) -> (u64, u64) {
    let text = playlist(s);
    let line = text
        .lines()
        .find(|l| l.starts_with("#EXT-X-PRELOAD-HINT"))
        .expect("hint");
    let uri = attr(line, "URI").expect("uri");
    let (m, p) = uri
        .trim_start_matches("part-")
        .trim_end_matches(".m4s")
        .split_once('-')
        .expect("part name");
    (m.parse().expect("msn"), p.parse().expect("part"))
}

#[test]
fn nothing_before_the_first_part() {
    let mut src = Source::gop(60);
    let mut s = stream(config(200, 2000, 4, 1), &src);
    assert_eq!(
        s.media_playlist(&PlaylistQuery::default()),
        PlaylistAnswer::NotReady
    );
    assert_eq!(s.media_playlist(&q(0, Some(0))), PlaylistAnswer::NotReady);
    assert!(matches!(
        s.object("init-0.mp4"),
        ObjectAnswer::Ready(_, ObjectKind::Init)
    ));
    assert_eq!(
        s.object("part-0-0.m4s"),
        ObjectAnswer::Wait(Position::new(0, 1))
    );
    assert_eq!(
        s.object("seg-0.m4s"),
        ObjectAnswer::Wait(Position::new(1, 0))
    );
    next_part(&mut src, &mut s);
    assert!(matches!(
        s.media_playlist(&PlaylistQuery::default()),
        PlaylistAnswer::Ready(_)
    ));
}

#[test]
fn blocking_reload_answers() {
    let mut src = Source::gop(60);
    let mut s = stream(config(200, 2000, 4, 1), &src);
    src.run_until(&mut s, 4_500); // segments 0, 1 complete; 2 has 2 parts
    assert_eq!(hint(&s), (2, 2));

    // Already there: complete segments, existing parts.
    for (msn, part) in [
        (0, None),
        (1, None),
        (1, Some(9)),
        (1, Some(40)),
        (2, Some(0)),
        (2, Some(1)),
    ] {
        assert!(
            matches!(s.media_playlist(&q(msn, part)), PlaylistAnswer::Ready(_)),
            "{msn} {part:?}"
        );
    }
    // Not yet: the hinted part, later parts within the advance limit, segment 2, 3, 4.
    // Each waits for the position that satisfies it.
    assert_eq!(s.snapshot().position(), Position::new(2, 2));
    for (msn, part, until) in [
        (2, Some(2), (2, 3)),
        (2, Some(16), (2, 17)),
        (2, None, (3, 0)),
        (3, None, (4, 0)),
        (3, Some(0), (3, 1)),
        (4, None, (5, 0)),
    ] {
        assert_eq!(
            s.media_playlist(&q(msn, part)),
            PlaylistAnswer::Wait(Position::new(until.0, until.1)),
            "{msn} {part:?}"
        );
    }
    // Too far: msn beyond live + 2, part beyond the advance part limit (15 parts).
    for (msn, part) in [
        (5, None),
        (2, Some(17)),
        (3, Some(8)),
        (u64::MAX, Some(u64::MAX)),
    ] {
        assert!(
            matches!(
                s.media_playlist(&q(msn, part)),
                PlaylistAnswer::BadRequest(_)
            ),
            "{msn} {part:?}"
        );
    }
    // The waited-for part arrives: the same request is now ready and lists it.
    next_part(&mut src, &mut s);
    match s.media_playlist(&q(2, Some(2))) {
        PlaylistAnswer::Ready(text) => {
            assert!(
                std::str::from_utf8(&text)
                    .expect("utf8")
                    .contains("part-2-2.m4s\"")
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(hint(&s), (2, 3));
    // Waiting for the whole segment 2: ready once it is complete.
    let mut pushes = 0;
    while let PlaylistAnswer::Wait(until) = s.media_playlist(&q(2, None)) {
        assert_eq!(until, Position::new(3, 0));
        next_part(&mut src, &mut s);
        pushes += 1;
    }
    assert_eq!(pushes, 7, "parts 3..=9 complete segment 2");
    assert_eq!(hint(&s), (3, 0));
}

#[test]
fn objects_by_name() {
    let mut src = Source::gop(60);
    let mut s = stream(config(200, 2000, 4, 1), &src);
    src.run_until(&mut s, 4_500);
    assert!(matches!(
        s.object("seg-1.m4s"),
        ObjectAnswer::Ready(_, ObjectKind::Segment)
    ));
    assert!(matches!(
        s.object("part-0-3.m4s"),
        ObjectAnswer::Ready(_, ObjectKind::Part)
    ));
    assert!(matches!(
        s.object("part-2-1.m4s"),
        ObjectAnswer::Ready(_, ObjectKind::Part)
    ));
    // The hinted part, one more ahead, the first part of the next segment, the segment
    // in progress: wait, each until the position at which it exists.
    for (name, until) in [
        ("part-2-2.m4s", (2, 3)),
        ("part-2-3.m4s", (2, 4)),
        ("part-3-0.m4s", (3, 1)),
        ("seg-2.m4s", (3, 0)),
    ] {
        let until = Position::new(until.0, until.1);
        assert_eq!(s.object(name), ObjectAnswer::Wait(until), "{name}");
    }
    for name in [
        "part-2-4.m4s",
        "part-3-1.m4s",
        "part-4-0.m4s",
        "seg-3.m4s",
        "part-0-10.m4s",
        "init-1.mp4",
        "seg-01.m4s",
        "media.m3u8",
        "",
        "seg-1.m4s?x",
        "/seg-1.m4s",
    ] {
        assert_eq!(s.object(name), ObjectAnswer::Gone, "{name}");
    }
    // Waiting on the hint resolves to that very part.
    next_part(&mut src, &mut s);
    assert!(matches!(
        s.object("part-2-2.m4s"),
        ObjectAnswer::Ready(_, ObjectKind::Part)
    ));
}

#[test]
fn end_flushes_and_finalises() {
    let mut src = Source::gop(60);
    let mut s = stream(config(200, 2000, 4, 1), &src);
    src.run_until(&mut s, 3_000);
    s.end();
    assert!(s.is_ended());
    let text = playlist(&s);
    assert!(text.ends_with("seg-1.m4s\n#EXT-X-ENDLIST\n"), "{text}");
    assert!(!text.contains("PRELOAD-HINT"));
    let durations: Vec<f64> = segments(&text).iter().map(|s| s.0).collect();
    assert_eq!(durations, [2.0, 1.033]);
    // Every blocking request is answered at once now; nothing is waited for.
    for query in [q(1, Some(1)), q(7, None), q(u64::MAX, Some(5))] {
        assert!(matches!(s.media_playlist(&query), PlaylistAnswer::Ready(_)));
    }
    assert_eq!(s.object("part-2-0.m4s"), ObjectAnswer::Gone);
    assert_eq!(s.object("seg-2.m4s"), ObjectAnswer::Gone);
    assert!(!s.push_frame(EPOCH_MS, src.next_frame()));
    s.end();
    assert_eq!(playlist(&s), text);
}

#[test]
fn pause_and_resume_continue_the_timeline_with_a_discontinuity() {
    let mut src = Source::gop(60);
    let mut s = stream(config(200, 2000, 10, 10), &src);
    src.run_until(&mut s, 3_000);
    s.pause();
    assert!(s.is_paused());
    let before = playlist(&s);
    assert_eq!(segments(&before).len(), 2, "the open segment was flushed");
    assert_eq!(hint(&s), (2, 0));
    assert_eq!(
        s.media_playlist(&q(2, Some(0))),
        PlaylistAnswer::Wait(Position::new(2, 1))
    );
    let last_video_end = {
        let t: Vec<Traf> = trafs(&object(&s, "seg-1.m4s"))
            .into_iter()
            .filter(|t| t.track_id == 1)
            .collect();
        let last = t.last().expect("video");
        last.tfdt + last.samples.iter().map(|s| u64::from(s.0)).sum::<u64>()
    };

    // The publisher reconnects: its clock starts over, and its first frames are not key
    // frames (they are dropped until one is).
    s.resume();
    assert!(!s.is_paused());
    let mut src = Source::new(true, true, |i| i % 60 == 10);
    src.run_until(&mut s, 6_000);
    let text = playlist(&s);
    let tail = &text[text.find("seg-1.m4s").expect("seg-1")..];
    let lines: Vec<&str> = tail.lines().take(4).collect();
    assert_eq!(lines[1], "#EXT-X-DISCONTINUITY");
    assert!(lines[2].starts_with("#EXT-X-PROGRAM-DATE-TIME:"));
    assert!(lines[3].contains("part-2-0.m4s") && lines[3].contains("INDEPENDENT=YES"));
    assert!(
        !text.contains("EXT-X-MAP:URI=\"init-1.mp4\""),
        "same tracks, same init"
    );

    // tfdt continues exactly where the first session stopped.
    let t = trafs(&object(&s, "part-2-0.m4s"));
    let video = t.iter().find(|t| t.track_id == 1).expect("video");
    assert_eq!(video.tfdt, last_video_end);
    assert_eq!(video.samples[0].2, 0x0200_0000);
    assert_eq!(
        u32::from_be_bytes(video.first_bytes[..4].try_into().expect("4")),
        10
    );
    let audio = t.iter().find(|t| t.track_id == 2).expect("audio");
    assert!(
        audio.tfdt * 90_000 / 44_100 + 2100 >= last_video_end,
        "audio does not go back"
    );
}

#[test]
fn a_rendition_switched_off_resumes_on_its_siblings_timeline() {
    // Video only, as a ladder rung is packaged; keyframe every 2 s.
    let mut src = Source::new(true, false, |i| i % 60 == 0);
    let mut s = stream(config(200, 2000, 10, 10), &src);
    src.run_until(&mut s, 4_000);
    s.pause();
    // 6 s of frames the rung did not produce (the encoder was overloaded).
    let mut skipped = LiveStream::new(config(200, 2000, 10, 10));
    skipped.set_tracks(Some(video_config()), None);
    src.run_until(&mut skipped, 10_000);
    s.resume_in_place();
    src.run_until(&mut s, 14_000);
    let text = playlist(&s);
    assert!(text.contains("#EXT-X-DISCONTINUITY\n"), "{text}");
    // The first segment after the pause starts at the source's own time (its first key
    // frame after the pause, 12 s after the first frame), not right after the last one
    // before the pause (4 s) as a rebased resume would.
    let msn = text
        .lines()
        .skip_while(|l| *l != "#EXT-X-DISCONTINUITY")
        .find_map(|l| {
            l.strip_prefix("#EXT-X-PART:")
                .and_then(|p| p.split("URI=\"part-").nth(1))
        })
        .and_then(|p| p.split('-').next())
        .and_then(|m| m.parse::<u64>().ok())
        .expect("a part after the discontinuity");
    let t = trafs(&object(&s, &format!("part-{msn}-0.m4s")));
    assert_eq!(t[0].tfdt, 90_000 + 12 * 90_000, "{text}");
}

#[test]
fn frames_while_paused_resume_implicitly() {
    let mut src = Source::gop(60);
    let mut s = stream(config(200, 2000, 10, 10), &src);
    src.run_until(&mut s, 2_500);
    s.pause();
    src.run_until(&mut s, 5_000);
    assert!(!s.is_paused());
    assert!(playlist(&s).contains("#EXT-X-DISCONTINUITY\n"));
}

#[test]
fn window_eviction_bounds_memory() {
    let mut src = Source::gop(60);
    let mut s = stream(config(200, 2000, 3, 1), &src);
    src.run_until(&mut s, 10_000);
    let seg_bytes = object(&s, "seg-3.m4s").len();
    let mut peak = 0;
    for t in (10_000..120_000).step_by(500) {
        src.run_until(&mut s, t);
        peak = peak.max(s.memory_bytes());
    }
    // 3 kept segments + the one in progress + init and buffered samples.
    assert!(
        peak <= 4 * seg_bytes + 4096,
        "{peak} vs segment {seg_bytes}"
    );
    assert!(s.memory_bytes() >= 3 * seg_bytes);
    let text = playlist(&s);
    assert_eq!(tag_value(&text, "#EXT-X-MEDIA-SEQUENCE"), Some(56));
    assert_eq!(segments(&text).len(), 3);
    assert_eq!(parts(&text).len(), 10 + parts_in_progress(&text));
    assert_eq!(s.object("seg-55.m4s"), ObjectAnswer::Gone);
    assert_eq!(s.object("part-55-0.m4s"), ObjectAnswer::Gone);
    assert!(
        matches!(s.object("part-56-0.m4s"), ObjectAnswer::Ready(..)),
        "parts of kept segments stay fetchable"
    );
}

fn parts_in_progress(text: &str) -> usize {
    let last_seg = text.rfind("seg-").expect("segment");
    text[last_seg..].matches("#EXT-X-PART:").count()
}
