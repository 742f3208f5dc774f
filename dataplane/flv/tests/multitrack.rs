//! Enhanced RTMP multitrack through the FlvDemuxer: every track id is its own bus track.

use bytes::Bytes;
use weir_flv::{DemuxEvent, FlvDemuxer, FlvError, MAX_TRACKS_PER_KIND};
use weir_media::{Codec, Frame, TrackConfig, TrackId, TrackKind};

/// av1C from `ffmpeg -f lavfi -i testsrc=size=208x120 -c:v libaom-av1`.
const AV1C_208X120: &[u8] = &[
    0x81, 0x00, 0x0c, 0x00, 0x0a, 0x0a, 0x00, 0x00, 0x00, 0x03, 0xb6, 0x7f, 0x73, 0x6b, 0xe4, 0x01,
];

/// An OpusHead with two channels.
const OPUS_HEAD: &[u8] = b"OpusHead\x01\x02\x38\x01\x80\xbb\x00\x00\x00\x00\x00";

fn tag(parts: &[&[u8]]) -> Bytes {
    Bytes::from(parts.concat())
}

/// A multitrack track entry with a UI24 size prefix.
fn sized(id: u8, body: &[u8]) -> Vec<u8> {
    let n = u32::try_from(body.len()).expect("small");
    let mut v = vec![id];
    v.extend_from_slice(&n.to_be_bytes()[1..]);
    v.extend_from_slice(body);
    v
}

fn video(index: u8) -> TrackId {
    TrackId::new(TrackKind::Video, index)
}

fn audio(index: u8) -> TrackId {
    TrackId::new(TrackKind::Audio, index)
}

fn frames(events: &[DemuxEvent]) -> Vec<&Frame> {
    events
        .iter()
        .filter_map(|e| match e {
            DemuxEvent::Frame(f) => Some(f),
            _ => None,
        })
        .collect()
}

fn track_ids(events: &[DemuxEvent]) -> Vec<TrackId> {
    events
        .iter()
        .filter_map(|e| match e {
            DemuxEvent::Track(id, _) => Some(*id),
            _ => None,
        })
        .collect()
}

#[test]
fn one_track_video_with_track_id_2_is_its_own_track() {
    let mut d = FlvDemuxer::new();
    // Key frame, Multitrack; OneTrack + SequenceStart, av01, track 2.
    let ev = d
        .push_video(0, &tag(&[b"\x96\x00av01\x02", AV1C_208X120]))
        .expect("valid");
    match &ev[..] {
        [DemuxEvent::Track(id, TrackConfig::Video(v))] => {
            assert_eq!(*id, video(2));
            assert_eq!((v.codec, v.width, v.height), (Codec::Av1, 208, 120));
        }
        other => panic!("{other:?}"),
    }
    assert!(d.track(video(2)).is_some());
    assert!(d.track(TrackId::VIDEO).is_none());

    let obus = [0x12, 0x00, 0x32, 0x02, 0xaa, 0xbb];
    let t1 = tag(&[b"\x96\x01av01\x02", &obus]);
    let ev = d.push_video(40, &t1).expect("valid");
    let f = frames(&ev);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].track, video(2));
    assert!(f[0].keyframe);
    assert_eq!(&f[0].data[..], &obus);
    assert_eq!(f[0].data.as_ptr(), t1[7..].as_ptr(), "zero-copy");
    let ev = d
        .push_video(73, &tag(&[b"\xa6\x01av01\x02", &obus]))
        .expect("valid");
    let g = frames(&ev);
    assert_eq!(g[0].track, video(2));
    assert!(!g[0].keyframe);
    assert_eq!(g[0].dts - f[0].dts, 33 * 90);

    // Track 0 has no configuration: its frames are counted, not emitted.
    assert_eq!(d.push_video(80, &tag(&[b"\x91av01", &obus])), Ok(vec![]));
    assert_eq!(d.stats().frames_before_config, 1);
}

#[test]
fn many_tracks_audio_yields_a_frame_per_track() {
    let mut d = FlvDemuxer::new();
    let seq = tag(&[b"\x95\x10Opus", &sized(0, OPUS_HEAD), &sized(1, OPUS_HEAD)]);
    let ev = d.push_audio(0, &seq).expect("valid");
    assert_eq!(track_ids(&ev), vec![TrackId::AUDIO, audio(1)]);
    // The same configurations again: nothing new.
    assert_eq!(d.push_audio(0, &seq), Ok(vec![]));

    let coded = tag(&[
        b"\x95\x11Opus",
        &sized(0, &[0xfc, 0x01]),
        &sized(1, &[0xfd]),
    ]);
    let ev = d.push_audio(20, &coded).expect("valid");
    let f = frames(&ev);
    assert_eq!(f.len(), 2);
    assert_eq!(
        (f[0].track, &f[0].data[..]),
        (TrackId::AUDIO, &[0xfc, 0x01][..])
    );
    assert_eq!((f[1].track, &f[1].data[..]), (audio(1), &[0xfd][..]));
    // Same timestamp, same timeline position: the tracks are in sync.
    assert_eq!(f[0].dts, f[1].dts);
    let ev = d.push_audio(40, &coded).expect("valid");
    let g = frames(&ev);
    assert_eq!(g[0].dts - f[0].dts, 20 * 90);
    assert_eq!(g[1].dts - f[1].dts, 20 * 90);

    // An empty track body is counted; the other track still gets its frame.
    let half = tag(&[b"\x95\x11Opus", &sized(0, &[]), &sized(1, &[0xfe])]);
    let ev = d.push_audio(60, &half).expect("valid");
    assert_eq!(frames(&ev).len(), 1);
    assert_eq!(frames(&ev)[0].track, audio(1));
    assert_eq!(d.stats().empty_frames, 1);
}

#[test]
fn many_tracks_many_codecs_video() {
    let mut d = FlvDemuxer::new();
    // Two AV1 tracks (ids 0 and 5), each with its own FourCC.
    let mut record = AV1C_208X120.to_vec();
    record[1] = 0x08; // another seq_level_idx: a different configuration
    let seq = tag(&[
        b"\x96\x20",
        b"av01",
        &sized(0, AV1C_208X120),
        b"av01",
        &sized(5, &record),
    ]);
    let ev = d.push_video(0, &seq).expect("valid");
    assert_eq!(track_ids(&ev), vec![TrackId::VIDEO, video(5)]);
    assert!(matches!(d.track(video(5)), Some(TrackConfig::Video(v)) if v.record[..] == record[..]));

    // CodedFrames: av01 has no cts; an hvc1 track in the same tag has no config yet.
    let coded = tag(&[
        b"\x96\x21",
        b"av01",
        &sized(0, &[0x12, 0x00]),
        b"hvc1",
        &sized(1, &[0x00, 0x00, 0x21, 0, 0, 0, 1, 0x26]),
        b"av01",
        &sized(5, &[0x12, 0x00, 0x0a]),
    ]);
    let ev = d.push_video(33, &coded).expect("valid");
    let f = frames(&ev);
    assert_eq!(
        f.iter()
            .map(|f| (f.track, f.data.len()))
            .collect::<Vec<_>>(),
        vec![(TrackId::VIDEO, 2), (video(5), 3)]
    );
    assert_eq!(d.stats().frames_before_config, 1);

    // VP9 is recognised but not carried: the whole tag is an error.
    let vp9 = tag(&[
        b"\x96\x21",
        b"av01",
        &sized(0, &[0x12]),
        b"vp09",
        &sized(1, &[1]),
    ]);
    assert_eq!(
        d.push_video(66, &vp9),
        Err(FlvError::UnsupportedVideoFourCc(*b"vp09"))
    );
}

#[test]
fn truncated_and_bad_many_tracks_are_errors_and_change_nothing() {
    let mut d = FlvDemuxer::new();
    // The second track's size overruns the tag.
    let mut cut = [
        &b"\x95\x10Opus"[..],
        &sized(0, OPUS_HEAD),
        &sized(1, OPUS_HEAD),
    ]
    .concat();
    cut.truncate(cut.len() - 3);
    assert_eq!(
        d.push_audio(0, &Bytes::from(cut.clone())),
        Err(FlvError::Truncated("audio tag"))
    );
    // Every prefix of a valid ManyTracks tag is an error or fine, never a panic.
    let full = [
        &b"\x96\x13av01"[..],
        &sized(0, &[0x12, 0]),
        &sized(1, &[0x12, 0]),
    ]
    .concat();
    for n in 0..full.len() {
        let _ = d.push_video(0, &Bytes::copy_from_slice(&full[..n]));
    }
    assert!(
        d.push_video(0, &Bytes::copy_from_slice(&full[..full.len() - 1]))
            .is_err()
    );

    // The first track is valid, the second's configuration is not: the tag is an error
    // and the first track is not configured either.
    let bad = tag(&[
        b"\x95\x20",
        b"Opus",
        &sized(0, OPUS_HEAD),
        b"mp4a",
        &sized(1, &[0x12]),
    ]);
    assert!(matches!(
        d.push_audio(0, &bad),
        Err(FlvError::InvalidConfig { codec: "AAC", .. })
    ));
    assert_eq!(d.tracks().count(), 0);
    assert!(d.track(TrackId::AUDIO).is_none());
}

#[test]
fn tracks_per_kind_are_bounded() {
    let mut d = FlvDemuxer::new();
    for id in 0..MAX_TRACKS_PER_KIND as u8 {
        let ev = d
            .push_audio(0, &tag(&[b"\x95\x00Opus", &[id * 3], OPUS_HEAD]))
            .expect("within the bound");
        assert_eq!(track_ids(&ev), vec![audio(id * 3)]);
    }
    assert_eq!(
        d.push_audio(0, &tag(&[b"\x95\x00Opus\xc8", OPUS_HEAD])),
        Err(FlvError::TooManyTracks("audio"))
    );
    // A known track may still change its configuration.
    let ev = d
        .push_audio(0, &tag(&[b"\x95\x00Opus\x03", &OPUS_HEAD[..10]]))
        .expect("known track");
    assert_eq!(track_ids(&ev), vec![audio(3)]);
    // Frames of an unconfigured track are counted.
    assert_eq!(
        d.push_audio(20, &tag(&[b"\x95\x01Opus\xc8\xfc"])),
        Ok(vec![])
    );
    assert_eq!(d.stats().frames_before_config, 1);
    // Video tracks have their own bound.
    let ev = d
        .push_video(0, &tag(&[b"\x96\x00av01\x07", AV1C_208X120]))
        .expect("video");
    assert_eq!(track_ids(&ev), vec![video(7)]);
    assert_eq!(d.tracks().count(), MAX_TRACKS_PER_KIND + 1);
    // A tag naming two new tracks where one is left fails as a whole.
    let mut d2 = FlvDemuxer::new();
    for id in 0..(MAX_TRACKS_PER_KIND - 1) as u8 {
        d2.push_audio(0, &tag(&[b"\x95\x00Opus", &[id], OPUS_HEAD]))
            .expect("within the bound");
    }
    let two = tag(&[
        b"\x95\x10Opus",
        &sized(100, OPUS_HEAD),
        &sized(101, OPUS_HEAD),
    ]);
    assert_eq!(
        d2.push_audio(0, &two),
        Err(FlvError::TooManyTracks("audio"))
    );
    assert_eq!(d2.tracks().count(), MAX_TRACKS_PER_KIND - 1);
}
