//! The bus contract, deterministically: frames are pushed by hand, no clocks involved.

#![allow(clippy::unwrap_used, missing_docs)]

use std::time::Duration;

use bytes::Bytes;
use weir_bus::{
    Broadcast, BusConfig, BusError, BusEvent, Closed, LagPolicy, SubscribeOptions, Subscriber,
    TrackSet,
};
use weir_media::{AudioConfig, Codec, Frame, TrackConfig, TrackId, TrackKind, VideoConfig};

const FRAME: i64 = 3000; // 30 fps in 90 kHz ticks

fn video_config(width: u16) -> TrackConfig {
    TrackConfig::Video(VideoConfig {
        codec: Codec::H264,
        width,
        height: width / 16 * 9,
        record: Bytes::from_static(&[1, 0x64, 0, 0x1f]),
    })
}

fn audio_config() -> TrackConfig {
    TrackConfig::Audio(AudioConfig {
        codec: Codec::Aac,
        sample_rate: 48_000,
        channels: 2,
        record: Bytes::from_static(&[0x11, 0x90]),
    })
}

fn av() -> TrackSet {
    let mut t = TrackSet::new();
    t.insert(TrackId::VIDEO, video_config(1280)).unwrap();
    t.insert(TrackId::AUDIO, audio_config()).unwrap();
    t
}

fn frame(track: TrackId, n: i64, keyframe: bool, size: usize) -> Frame {
    Frame {
        track,
        dts: n * FRAME,
        pts: n * FRAME,
        keyframe: keyframe || track.kind == TrackKind::Audio,
        data: Bytes::from(vec![n as u8; size]),
    }
}

/// Video frame `n` of a stream with a key frame every `gop` frames.
fn video(n: i64, gop: i64) -> Frame {
    frame(TrackId::VIDEO, n, n % gop == 0, 100)
}

fn drain(sub: &mut Subscriber) -> Vec<BusEvent> {
    let mut out = Vec::new();
    let _ = sub.drain_into(&mut out);
    out
}

fn frames(events: &[BusEvent]) -> Vec<(TrackId, i64, bool)> {
    events
        .iter()
        .filter_map(|e| match e {
            BusEvent::Frame(f) => Some((f.track, f.dts / FRAME, f.keyframe)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_subscriber_joining_mid_gop_starts_at_the_last_key_frame_with_the_tracks() {
    let bus = Broadcast::new(BusConfig::default());
    let mut publisher = bus.publish(false).unwrap();
    publisher.set_tracks(av());
    for n in 0..75 {
        publisher.push(video(n, 30));
        publisher.push(frame(TrackId::AUDIO, n, true, 10));
    }
    publisher.flush();

    let mut late = bus.subscribe(SubscribeOptions::default()).unwrap();
    let events = drain(&mut late);
    assert_eq!(events[0], BusEvent::Tracks(bus.tracks().unwrap()));
    let got = frames(&events);
    assert_eq!(
        got[0],
        (TrackId::VIDEO, 60, true),
        "starts at the last key frame"
    );
    assert_eq!(
        got.len(),
        30,
        "15 video + 15 audio frames of the current GOP"
    );
    // Then live frames follow.
    publisher.push(video(75, 30));
    publisher.flush();
    assert_eq!(frames(&drain(&mut late)), [(TrackId::VIDEO, 75, false)]);
}

#[test]
fn a_slow_subscriber_skips_to_the_next_key_frame_and_never_slows_the_others() {
    let bus = Broadcast::new(BusConfig::default());
    let mut publisher = bus.publish(false).unwrap();
    publisher.set_tracks(av());
    let small = SubscribeOptions {
        policy: LagPolicy::SkipToKeyframe,
        max_frames: 40,
        max_bytes: 1 << 20,
    };
    let mut slow = bus.subscribe(small).unwrap();
    let mut fast = bus.subscribe(SubscribeOptions::default()).unwrap();
    let mut fast_frames = 0;
    for n in 0..100 {
        publisher.push(video(n, 30));
        publisher.flush();
        fast_frames += frames(&drain(&mut fast)).len();
        assert!(
            slow.queued_bytes() <= 40 * 100,
            "bounded: {}",
            slow.queued_bytes()
        );
    }
    assert_eq!(fast_frames, 100, "the fast subscriber got every frame");
    let events = drain(&mut slow);
    let skipped: u64 = events
        .iter()
        .map(|e| match e {
            BusEvent::Skipped { frames } => *frames,
            _ => 0,
        })
        .sum();
    assert!(skipped > 0, "{events:?}");
    let got = frames(&events);
    assert!(got[0].2, "resumes at a key frame: {got:?}");
    // Once resumed, frames follow without holes.
    let after_skip: Vec<i64> = got.iter().map(|f| f.1).collect();
    assert!(
        after_skip.windows(2).all(|w| w[1] == w[0] + 1),
        "{after_skip:?}"
    );
    assert!(got.len() <= 40);
    // Queued frames were dropped (counted), then non-key frames until a key frame.
    assert!(got.len() as u64 + skipped <= 100);
    assert_eq!(got.last().map(|f| f.1), Some(99), "it is live again");
}

#[test]
fn a_disconnect_subscriber_is_dropped_when_it_falls_behind() {
    let bus = Broadcast::new(BusConfig::default());
    let mut publisher = bus.publish(false).unwrap();
    publisher.set_tracks(av());
    let opts = SubscribeOptions {
        policy: LagPolicy::Disconnect,
        max_frames: 10,
        max_bytes: 1 << 20,
    };
    let mut sub = bus.subscribe(opts).unwrap();
    for n in 0..11 {
        publisher.push(video(n, 30));
    }
    publisher.flush();
    assert_eq!(sub.try_recv(), Err(Closed::Lagged));
    assert_eq!(sub.queued_bytes(), 0, "its memory is freed");
    assert_eq!(bus.subscriber_count(), 0);
}

#[test]
fn publisher_leaving_and_resuming() {
    let bus = Broadcast::new(BusConfig::default());
    let mut sub = bus.subscribe(SubscribeOptions::default()).unwrap();
    let mut first = bus.publish(false).unwrap();
    assert_eq!(bus.publish(false).unwrap_err(), BusError::Busy);
    first.set_tracks(av());
    for n in 0..10 {
        first.push(video(n, 5));
    }
    drop(first); // flushes, then leaves
    let events = drain(&mut sub);
    assert_eq!(events[0], BusEvent::PublisherJoined { resumed: false });
    assert_eq!(frames(&events).len(), 10);
    assert_eq!(events.last(), Some(&BusEvent::PublisherLeft));
    // No GOP is served from the publisher that left.
    let mut late = bus.subscribe(SubscribeOptions::default()).unwrap();
    assert_eq!(frames(&drain(&mut late)).len(), 0);

    let mut second = bus.publish(false).unwrap();
    second.set_tracks(av()); // the same tracks: no new Tracks event
    second.push(video(1, 5)); // not a key frame: subscribers wait for one
    second.push(video(5, 5));
    second.flush();
    let events = drain(&mut sub);
    assert_eq!(events[0], BusEvent::PublisherJoined { resumed: true });
    assert_eq!(frames(&events), [(TrackId::VIDEO, 5, true)]);

    bus.end();
    assert_eq!(sub.try_recv(), Ok(Some(BusEvent::Ended)));
    assert_eq!(sub.try_recv(), Err(Closed::Ended));
    assert_eq!(bus.publish(false).unwrap_err(), BusError::Ended);
}

#[test]
fn takeover_displaces_the_old_publisher() {
    let bus = Broadcast::new(BusConfig::default());
    let mut sub = bus.subscribe(SubscribeOptions::default()).unwrap();
    let mut old = bus.publish(false).unwrap();
    old.set_tracks(av());
    let mut new = bus.publish(true).unwrap();
    assert!(!old.is_current());
    old.push(video(0, 5));
    old.flush();
    drop(old); // a displaced publisher leaving says nothing
    new.push(video(30, 5));
    new.flush();
    let events = drain(&mut sub);
    assert_eq!(frames(&events), [(TrackId::VIDEO, 30, true)]);
    assert_eq!(
        events
            .iter()
            .filter(|e| **e == BusEvent::PublisherLeft)
            .count(),
        1,
        "{events:?}"
    );
}

#[test]
fn several_video_and_audio_tracks_each_start_at_their_own_key_frame() {
    let bus = Broadcast::new(BusConfig::default());
    let mut publisher = bus.publish(false).unwrap();
    let mut tracks = TrackSet::new();
    let hi = TrackId::new(TrackKind::Video, 0);
    let lo = TrackId::new(TrackKind::Video, 1);
    let en = TrackId::new(TrackKind::Audio, 0);
    let fr = TrackId::new(TrackKind::Audio, 1);
    tracks.insert(hi, video_config(1920)).unwrap();
    tracks.insert(lo, video_config(640)).unwrap();
    tracks.insert(en, audio_config()).unwrap();
    tracks.insert(fr, audio_config()).unwrap();
    publisher.set_tracks(tracks);
    // The low rendition's key frames are 5 frames after the high one's.
    for n in 0..40 {
        publisher.push(frame(hi, n, n % 20 == 0, 100));
        publisher.push(frame(lo, n, n % 20 == 5, 50));
        publisher.push(frame(en, n, true, 10));
        publisher.push(frame(fr, n, true, 10));
        // A frame of an unknown track is dropped.
        publisher.push(frame(TrackId::new(TrackKind::Video, 7), n, true, 10));
    }
    publisher.flush();
    let mut late = bus.subscribe(SubscribeOptions::default()).unwrap();
    let got = frames(&drain(&mut late));
    let first = |t: TrackId| got.iter().find(|f| f.0 == t).copied();
    assert_eq!(first(hi), Some((hi, 20, true)));
    assert_eq!(
        first(lo),
        Some((lo, 25, true)),
        "waits for its own key frame"
    );
    assert_eq!(first(en), Some((en, 20, true)));
    assert_eq!(first(fr), Some((fr, 20, true)));
    assert!(got.iter().all(|f| f.0.index != 7));
    assert_eq!(got.iter().filter(|f| f.0 == lo).count(), 15);
}

#[test]
fn a_gop_too_long_for_the_cache_is_not_cached() {
    let bus = Broadcast::new(BusConfig {
        gop_cache_frames: 10,
        ..BusConfig::default()
    });
    let mut publisher = bus.publish(false).unwrap();
    publisher.set_tracks(av());
    for n in 0..15 {
        publisher.push(video(n, 100));
    }
    publisher.flush();
    let mut late = bus.subscribe(SubscribeOptions::default()).unwrap();
    assert!(frames(&drain(&mut late)).is_empty());
    assert_eq!(bus.memory_bytes(), 0);
    publisher.push(video(100, 100));
    publisher.flush();
    assert_eq!(frames(&drain(&mut late)), [(TrackId::VIDEO, 100, true)]);
}

#[test]
fn track_changes_reach_subscribers_before_the_frames_that_need_them() {
    let bus = Broadcast::new(BusConfig::default());
    let mut sub = bus.subscribe(SubscribeOptions::default()).unwrap();
    let mut publisher = bus.publish(false).unwrap();
    publisher.push(video(0, 30)); // before any tracks: dropped
    publisher.set_tracks(av());
    publisher.push(video(1, 1));
    let mut bigger = av();
    bigger.insert(TrackId::VIDEO, video_config(1920)).unwrap();
    publisher.set_tracks(bigger.clone());
    publisher.push(video(2, 1));
    publisher.flush();
    let events = drain(&mut sub);
    let kinds: Vec<String> = events
        .iter()
        .map(|e| match e {
            BusEvent::Tracks(t) if **t == bigger => "tracks(1920)".to_owned(),
            BusEvent::Tracks(_) => "tracks".to_owned(),
            BusEvent::Frame(f) => format!("frame {}", f.dts / FRAME),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "PublisherJoined { resumed: false }",
            "tracks",
            "frame 1",
            "tracks(1920)",
            "frame 2"
        ]
    );
}

#[test]
fn a_subscriber_on_another_thread_is_woken_and_sees_everything_in_order() {
    let bus = Broadcast::new(BusConfig::default());
    let mut publisher = bus.publish(false).unwrap();
    publisher.set_tracks(av());
    let mut sub = bus.subscribe(SubscribeOptions::default()).unwrap();
    let reader = std::thread::spawn(move || {
        let mut seen = Vec::new();
        futures_lite::future::block_on(async {
            loop {
                match sub.recv().await {
                    Ok(BusEvent::Frame(f)) => seen.push(f.dts / FRAME),
                    Ok(_) => {}
                    Err(Closed::Ended) => break,
                    Err(e) => panic!("{e}"),
                }
            }
        });
        seen
    });
    for n in 0..500 {
        publisher.push(video(n, 30));
        if n % 3 == 0 {
            publisher.flush();
        }
        if n % 50 == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    publisher.flush();
    bus.end();
    let seen = reader.join().unwrap();
    assert_eq!(seen, (0..500).collect::<Vec<_>>());
}

#[test]
fn dropped_subscribers_are_forgotten_and_limits_hold() {
    let bus = Broadcast::new(BusConfig {
        max_subscribers: 2,
        ..BusConfig::default()
    });
    let a = bus.subscribe(SubscribeOptions::default()).unwrap();
    let _b = bus.subscribe(SubscribeOptions::default()).unwrap();
    assert_eq!(
        bus.subscribe(SubscribeOptions::default()).unwrap_err(),
        BusError::TooManySubscribers
    );
    drop(a);
    assert!(bus.subscribe(SubscribeOptions::default()).is_ok());
}

#[test]
fn keyframe_requests_reach_the_publisher_coalesced() {
    let b = Broadcast::new(BusConfig::default());
    let p = b.publish(false).expect("publisher");
    assert!(p.take_keyframe_requests().is_empty());
    let layer = weir_media::TrackId::new(weir_media::TrackKind::Video, 2);
    b.request_keyframe(weir_media::TrackId::VIDEO);
    b.request_keyframe(weir_media::TrackId::VIDEO);
    b.request_keyframe(layer);
    b.request_keyframe(weir_media::TrackId::AUDIO); // audio needs none: ignored
    assert_eq!(
        p.take_keyframe_requests(),
        vec![weir_media::TrackId::VIDEO, layer]
    );
    assert!(p.take_keyframe_requests().is_empty(), "taken once");
}
