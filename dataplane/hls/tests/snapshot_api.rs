//! [`Snapshot`]s: rendered once per change, immutable, and their `Wait` positions are
//! exactly where the answer changes.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use weir_hls::{LiveStream, ObjectAnswer, PlaylistAnswer, PlaylistQuery, Position, Snapshot};
use weir_media::{TrackId, TrackKind};

fn q(msn: u64, part: Option<u64>) -> PlaylistQuery {
    PlaylistQuery {
        msn: Some(msn),
        part,
        skip: false,
    }
}

#[test]
fn a_snapshot_is_rendered_once_per_change_and_never_changes() {
    let mut src = Source::gop(60);
    let mut s = stream(config(200, 2000, 4, 1), &src);
    src.run_until(&mut s, 2_100);
    let mut changes = 0;
    for _ in 0..200 {
        let before = s.snapshot();
        let f = src.next_frame();
        let changed = s.push_frame(EPOCH_MS + (f.dts / 90) as u64, f);
        let after = s.snapshot();
        assert_eq!(!Arc::ptr_eq(&before, &after), changed);
        assert_eq!(before.position() < after.position(), changed);
        changes += usize::from(changed);
    }
    assert!(changes >= 10, "{changes}");

    // An old snapshot keeps answering as it did.
    let old = s.snapshot();
    let text = old.media_playlist(&PlaylistQuery::default());
    let hinted = Position::new(old.position().msn, old.position().part + 1);
    let hint = format!("part-{}-{}.m4s", hinted.msn, hinted.part - 1);
    src.run_until(&mut s, 8_000);
    assert_eq!(old.media_playlist(&PlaylistQuery::default()), text);
    assert_eq!(old.object(&hint), ObjectAnswer::Wait(hinted));
    assert!(matches!(s.object(&hint), ObjectAnswer::Ready(..)));
    assert!(s.snapshot().position() >= hinted);

    // Frames of other tracks than the default ones are ignored.
    let before = s.snapshot();
    for track in [
        TrackId::new(TrackKind::Video, 1),
        TrackId::new(TrackKind::Audio, 2),
    ] {
        let mut f = src.next_frame();
        f.track = track;
        f.keyframe = true;
        assert!(!s.push_frame(EPOCH_MS, f));
    }
    assert!(Arc::ptr_eq(&before, &s.snapshot()));
}

/// The answers a parked request may get, for a few requests around the live edge.
fn check_wait_contract(snap: &Snapshot) {
    let live = snap.position();
    for msn in live.msn.saturating_sub(1)..=live.msn + 2 {
        for part in [None, Some(0), Some(1), Some(live.part), Some(live.part + 1)] {
            let query = q(msn, part);
            let needed = match part {
                Some(p) => Position::new(msn, p + 1),
                None => Position::new(msn + 1, 0),
            };
            match snap.media_playlist(&query) {
                PlaylistAnswer::Wait(p) => {
                    assert_eq!(p, needed, "{query:?}");
                    assert!(live < p, "{query:?} waits for {p:?} at {live:?}");
                }
                PlaylistAnswer::Ready(_) => assert!(live >= needed, "{query:?} at {live:?}"),
                PlaylistAnswer::BadRequest(_) => assert!(live < needed),
                PlaylistAnswer::NotReady => unreachable!("parts exist"),
            }
        }
        for idx in 0..=live.part + 2 {
            let name = format!("part-{msn}-{idx}.m4s");
            match snap.object(&name) {
                ObjectAnswer::Wait(p) => {
                    assert_eq!(p, Position::new(msn, idx + 1), "{name}");
                    assert!(live < p, "{name} waits for {p:?} at {live:?}");
                }
                ObjectAnswer::Ready(..) => assert!(live >= Position::new(msn, idx + 1)),
                ObjectAnswer::Gone => {}
            }
        }
        let name = format!("seg-{msn}.m4s");
        match snap.object(&name) {
            ObjectAnswer::Wait(p) => {
                assert_eq!(p, Position::new(msn + 1, 0), "{name}");
                assert!(live < p);
            }
            ObjectAnswer::Ready(..) => assert!(live >= Position::new(msn + 1, 0)),
            ObjectAnswer::Gone => {}
        }
    }
}

#[test]
fn waiting_requests_are_answered_exactly_at_their_position() {
    let mut src = Source::gop(60);
    let mut s = stream(config(200, 2000, 4, 1), &src);
    src.run_until(&mut s, 300);
    // A request parked under each wait position becomes answerable once reached.
    let mut parked: Vec<(Position, String)> = Vec::new();
    for step in 0..400 {
        let f = src.next_frame();
        if !s.push_frame(EPOCH_MS + (f.dts / 90) as u64, f) {
            continue;
        }
        let snap = s.snapshot();
        check_wait_contract(&snap);
        parked.retain(|(p, name)| {
            if snap.position() < *p {
                return true;
            }
            assert!(
                !matches!(snap.object(name), ObjectAnswer::Wait(_)),
                "{name} woken at {:?}",
                snap.position()
            );
            false
        });
        if step % 7 == 0 {
            let p = snap.position();
            for name in [
                format!("part-{}-{}.m4s", p.msn, p.part),
                format!("part-{}-0.m4s", p.msn + 1),
                format!("seg-{}.m4s", p.msn),
            ] {
                if let ObjectAnswer::Wait(until) = snap.object(&name) {
                    parked.push((until, name));
                }
            }
        }
    }
    assert!(
        parked.len() < 6,
        "every parked request but the latest was woken"
    );
}

#[test]
fn snapshot_accessors() {
    let mut src = Source::gop(60);
    let cfg = weir_hls::HlsConfig {
        target_duration: Duration::from_millis(3500),
        ..config(200, 2000, 10, 1)
    };
    let mut s = LiveStream::new(cfg);
    let empty = s.snapshot();
    assert_eq!(empty.position(), Position::new(0, 0));
    assert!(empty.multivariant_playlist().is_none());
    assert_eq!(
        empty.media_playlist(&PlaylistQuery::default()),
        PlaylistAnswer::NotReady
    );
    s.set_tracks(Some(video_config()), Some(audio_config()));
    assert!(s.snapshot().multivariant_playlist().is_some());
    src.run_until(&mut s, 6_100);
    let snap = s.snapshot();
    assert_eq!(snap.target_duration(), Duration::from_secs(4));
    assert!(!snap.is_ended() && !snap.video_stalled());
    assert_eq!(snap.position(), Position::new(3, 0));
    let segments: usize = (0..3)
        .map(|m| object(&s, &format!("seg-{m}.m4s")).len())
        .sum();
    let init = object(&s, "init-0.mp4").len();
    assert!(snap.memory_bytes() > segments + init);
    assert!(snap.memory_bytes() < segments + init + 16_384);
    // Nothing to skip yet (CAN-SKIP-UNTIL is 24 s): a skip request gets the full playlist.
    let skip = PlaylistQuery {
        skip: true,
        ..PlaylistQuery::default()
    };
    assert_eq!(
        snap.media_playlist(&skip),
        snap.media_playlist(&PlaylistQuery::default())
    );
    // Snapshots go to other threads.
    let shared = Arc::clone(&snap);
    let served =
        std::thread::spawn(move || matches!(shared.object("seg-0.m4s"), ObjectAnswer::Ready(..)))
            .join()
            .expect("thread");
    assert!(served);
    s.end();
    let done = s.snapshot();
    assert!(done.is_ended() && !snap.is_ended());
    assert!(matches!(
        done.media_playlist(&q(99, None)),
        PlaylistAnswer::Ready(_)
    ));
}

#[test]
fn complete_segments_are_handed_out_as_a_recorder_stores_them() {
    let mut src = Source::gop(60);
    let mut s = stream(config(2000, 2000, 3, 0), &src);
    src.run_until(&mut s, 9_000);
    let snap = s.snapshot();
    let first = snap.first_complete().expect("complete segments");
    let live = snap.position().msn;
    assert!(
        live >= 3 && first + 3 == live,
        "window of 3: {first}..{live}"
    );
    let seg = snap.complete_segment(first + 1).expect("kept");
    assert_eq!(seg.msn, first + 1);
    assert!(seg.independent && !seg.gap && !seg.discontinuity);
    assert_eq!(seg.init, 0);
    assert_eq!(seg.duration, Duration::from_secs(2));
    assert_eq!(seg.timescale, 90_000);
    // Its bytes are the segment object's, whole.
    match snap.object(&format!("seg-{}.m4s", seg.msn)) {
        ObjectAnswer::Ready(rope, _) => assert_eq!(rope, seg.data),
        other => panic!("{other:?}"),
    }
    assert!(snap.complete_segment(live).is_none(), "in progress");
    assert!(
        first == 0 || snap.complete_segment(first - 1).is_none(),
        "evicted"
    );
}
