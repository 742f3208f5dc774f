//! FlvDemuxer on hand-built tags for every branch, a real ffmpeg FLV, and random input.

use bytes::Bytes;
use weir_flv::file::{TAG_AUDIO, TAG_SCRIPT, TAG_VIDEO, read_tags};
use weir_flv::{DemuxEvent, FlvDemuxer, FlvError};
use weir_media::{AudioConfig, Codec, Frame, TrackConfig, TrackId, VideoConfig};
use weir_rtmp::amf0::{self, Amf0Value};

/// avcC from `ffmpeg -f lavfi -i testsrc=size=320x240 -c:v libx264`.
const AVCC_320X240: &[u8] = &[
    0x01, 0x64, 0x00, 0x0d, 0xff, 0xe1, 0x00, 0x19, 0x67, 0x64, 0x00, 0x0d, 0xac, 0xd9, 0x41, 0x41,
    0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0xc0, 0xf1, 0x42, 0x99,
    0x60, 0x01, 0x00, 0x06, 0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0,
];

/// hvcC from `ffmpeg -f lavfi -i testsrc=size=202x122 -c:v libx265` (SEI array removed).
const HVCC_202X122: &[u8] = &[
    0x01, 0x01, 0x60, 0x00, 0x00, 0x00, 0x90, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1e, 0xf0, 0x00, 0xfc,
    0xfd, 0xf8, 0xf8, 0x00, 0x00, 0x0f, 0x03, 0x20, 0x00, 0x01, 0x00, 0x18, 0x40, 0x01, 0x0c, 0x01,
    0xff, 0xff, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00, 0x00, 0x03, 0x00,
    0x1e, 0x95, 0x98, 0x09, 0x21, 0x00, 0x01, 0x00, 0x2a, 0x42, 0x01, 0x01, 0x01, 0x60, 0x00, 0x00,
    0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00, 0x00, 0x03, 0x00, 0x1e, 0xa0, 0x1a, 0x20, 0x20, 0x72,
    0x49, 0x96, 0x56, 0x69, 0x24, 0xca, 0xf0, 0x16, 0x80, 0x80, 0x00, 0x00, 0x03, 0x00, 0x80, 0x00,
    0x00, 0x07, 0x84, 0x22, 0x00, 0x01, 0x00, 0x07, 0x44, 0x01, 0xc1, 0x72, 0xb4, 0x62, 0x40,
];

/// av1C from `ffmpeg -f lavfi -i testsrc=size=208x120 -c:v libaom-av1`.
const AV1C_208X120: &[u8] = &[
    0x81, 0x00, 0x0c, 0x00, 0x0a, 0x0a, 0x00, 0x00, 0x00, 0x03, 0xb6, 0x7f, 0x73, 0x6b, 0xe4, 0x01,
];

fn tag(parts: &[&[u8]]) -> Bytes {
    Bytes::from(parts.concat())
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

fn only_frame(events: Vec<DemuxEvent>) -> Frame {
    match &events[..] {
        [DemuxEvent::Frame(f)] => f.clone(),
        other => panic!("expected one frame, got {other:?}"),
    }
}

#[test]
fn legacy_avc_track_frames_and_zero_copy() {
    let mut d = FlvDemuxer::new();
    // A frame before the sequence header is dropped and counted.
    let early = tag(&[&[0x17, 1, 0, 0, 0], &[0, 0, 0, 1, 0x65]]);
    assert_eq!(d.push_video(0, &early), Ok(vec![]));
    assert_eq!(d.stats().frames_before_config, 1);

    let seq = tag(&[&[0x17, 0, 0, 0, 0], AVCC_320X240]);
    let ev = d.push_video(0, &seq).expect("valid");
    assert_eq!(
        ev,
        vec![DemuxEvent::Track(
            TrackId::VIDEO,
            TrackConfig::Video(VideoConfig {
                codec: Codec::H264,
                width: 320,
                height: 240,
                record: Bytes::from_static(AVCC_320X240),
            })
        )]
    );
    // The same record again: no new Track.
    assert_eq!(d.push_video(0, &seq), Ok(vec![]));

    let key = tag(&[&[0x17, 1, 0, 0, 0x42], &[0, 0, 0, 2, 0x65, 0x88]]);
    let f = only_frame(d.push_video(1000, &key).expect("valid"));
    assert!(f.keyframe);
    assert_eq!(f.track, TrackId::VIDEO);
    assert_eq!(f.composition_offset(), 66 * 90);
    assert_eq!(&f.data[..], &[0, 0, 0, 2, 0x65, 0x88]);
    assert_eq!(
        f.data.as_ptr(),
        key[5..].as_ptr(),
        "payload is a zero-copy slice"
    );

    // Negative composition offset (SI24 -33).
    let inter = tag(&[&[0x27, 1, 0xff, 0xff, 0xdf], &[0, 0, 0, 1, 0x41]]);
    let g = only_frame(d.push_video(1033, &inter).expect("valid"));
    assert!(!g.keyframe);
    assert_eq!(g.composition_offset(), -33 * 90);
    assert_eq!(g.dts - f.dts, 33 * 90);
    assert!(g.pts > 0);

    // NAL lengths overrunning the payload are passed through.
    let overrun = tag(&[&[0x27, 1, 0, 0, 0], &[0xff, 0xff, 0xff, 0xff, 0x41]]);
    assert_eq!(
        only_frame(d.push_video(1066, &overrun).expect("ok"))
            .data
            .len(),
        5
    );
    // An empty coded frame produces nothing.
    assert_eq!(d.push_video(1100, &tag(&[&[0x27, 1, 0, 0, 0]])), Ok(vec![]));
    // Sequence end and command frames produce nothing.
    assert_eq!(d.push_video(1100, &tag(&[&[0x17, 2, 0, 0, 0]])), Ok(vec![]));
    assert_eq!(d.push_video(1100, &tag(&[&[0x57, 0]])), Ok(vec![]));
}

#[test]
fn changed_config_is_emitted_again_and_bad_config_is_an_error() {
    let mut d = FlvDemuxer::new();
    d.push_video(0, &tag(&[&[0x17, 0, 0, 0, 0], AVCC_320X240]))
        .expect("valid");
    let mut changed = AVCC_320X240.to_vec();
    *changed.last_mut().expect("non-empty") ^= 1; // a different PPS
    let ev = d
        .push_video(0, &tag(&[&[0x17, 0, 0, 0, 0], &changed]))
        .expect("valid");
    assert!(matches!(&ev[..], [DemuxEvent::Track(TrackId::VIDEO, _)]));
    let err = d.push_video(0, &tag(&[&[0x17, 0, 0, 0, 0], &[2, 0x64, 0, 0x1f]]));
    assert!(matches!(
        err,
        Err(FlvError::InvalidConfig { codec: "H.264", .. })
    ));
    assert!(matches!(
        d.push_video(0, &tag(&[&[0x17, 0, 0, 0, 0], &[1, 0x64, 0]])),
        Err(FlvError::InvalidConfig { .. })
    ));
    // An empty sequence header is ignored.
    assert_eq!(d.push_video(0, &tag(&[&[0x17, 0, 0, 0, 0]])), Ok(vec![]));
    assert!(matches!(
        d.push_video(0, &tag(&[&[0x12, 0]])),
        Err(FlvError::UnsupportedVideoCodec(2))
    ));
}

#[test]
fn enhanced_hevc_sequence_start_and_coded_frames() {
    let mut d = FlvDemuxer::new();
    let ev = d
        .push_video(0, &tag(&[b"\x90hvc1", HVCC_202X122]))
        .expect("valid");
    match &ev[..] {
        [DemuxEvent::Track(TrackId::VIDEO, TrackConfig::Video(v))] => {
            assert_eq!((v.codec, v.width, v.height), (Codec::H265, 202, 122));
            assert_eq!(&v.record[..], HVCC_202X122);
        }
        other => panic!("{other:?}"),
    }
    // CodedFrames with a negative cts, then CodedFramesX.
    let cf = tag(&[b"\x91hvc1\xff\xff\xf0", &[0, 0, 0, 3, 0x26, 0x01, 0xaf]]);
    let f = only_frame(d.push_video(500, &cf).expect("valid"));
    assert!(f.keyframe);
    assert_eq!(f.composition_offset(), -16 * 90);
    assert_eq!(f.data.as_ptr(), cf[8..].as_ptr());
    let x = tag(&[b"\xa3hvc1", &[0, 0, 0, 1, 0x02]]);
    let g = only_frame(d.push_video(533, &x).expect("valid"));
    assert!(!g.keyframe);
    assert_eq!(g.composition_offset(), 0);
    // A frame of another codec than the configured track is dropped.
    assert_eq!(d.push_video(566, &tag(&[b"\x91av01\x12\x00"])), Ok(vec![]));
    assert_eq!(d.stats().frames_before_config, 1);
}

#[test]
fn enhanced_av1_sequence_start_and_obus() {
    let mut d = FlvDemuxer::new();
    let ev = d
        .push_video(0, &tag(&[b"\x90av01", AV1C_208X120]))
        .expect("valid");
    match &ev[..] {
        [DemuxEvent::Track(TrackId::VIDEO, t @ TrackConfig::Video(v))] => {
            assert_eq!((v.codec, v.width, v.height), (Codec::Av1, 208, 120));
            assert_eq!(t.codec_string(), "av01.0.00M.08");
        }
        other => panic!("{other:?}"),
    }
    let obus = [0x12, 0x00, 0x32, 0x02, 0xaa, 0xbb];
    let f = only_frame(
        d.push_video(40, &tag(&[b"\x91av01", &obus]))
            .expect("valid"),
    );
    assert_eq!(&f.data[..], &obus);
    // MPEG-2 TS sequence start and metadata are not media.
    assert_eq!(d.push_video(40, &tag(&[b"\x95av01\x80\x04"])), Ok(vec![]));
    assert_eq!(
        d.push_video(40, &tag(&[b"\x94av01\x02\x00\x01x"])),
        Ok(vec![])
    );
    // Multitrack one track, through ModEx.
    let mt = tag(&[b"\x97\x00\x00\x06", b"\x03av01\x00", &obus]);
    assert_eq!(
        only_frame(d.push_video(80, &mt).expect("valid")).data.len(),
        6
    );
    // VP9 is recognised but not carried.
    assert_eq!(
        d.push_video(0, &tag(&[b"\x90vp09\x01"])),
        Err(FlvError::UnsupportedVideoFourCc(*b"vp09"))
    );
}

#[test]
fn hevc_falls_back_to_metadata_dimensions() {
    let mut d = FlvDemuxer::new();
    let meta = amf0::encode_all(&[
        Amf0Value::string("@setDataFrame"),
        Amf0Value::string("onMetaData"),
        Amf0Value::EcmaArray(vec![
            ("width".into(), Amf0Value::Number(1920.0)),
            ("height".into(), Amf0Value::Number(1080.0)),
            ("framerate".into(), Amf0Value::Number(60.0)),
        ]),
    ]);
    let ev = d.push_data(&meta).expect("valid");
    match &ev[..] {
        [DemuxEvent::Metadata(m)] => {
            assert_eq!(
                (m.width, m.height, m.framerate),
                (Some(1920), Some(1080), Some(60.0))
            );
        }
        other => panic!("{other:?}"),
    }
    let ev = d
        .push_video(0, &tag(&[b"\x90hvc1", &[1, 2, 3]]))
        .expect("valid");
    match &ev[..] {
        [DemuxEvent::Track(TrackId::VIDEO, TrackConfig::Video(v))] => {
            assert_eq!((v.width, v.height), (1920, 1080))
        }
        other => panic!("{other:?}"),
    }
    let cue = amf0::encode_all(&[Amf0Value::string("onCuePoint"), Amf0Value::Null]);
    assert_eq!(d.push_data(&cue), Ok(vec![]));
    assert!(matches!(
        d.push_data(&[0x02, 0, 9]),
        Err(FlvError::Script(_))
    ));
}

#[test]
fn aac_legacy_and_sbr() {
    let mut d = FlvDemuxer::new();
    assert_eq!(d.push_audio(0, &tag(&[&[0xaf, 1, 0x21]])), Ok(vec![]));
    let ev = d
        .push_audio(0, &tag(&[&[0xaf, 0, 0x12, 0x10]]))
        .expect("valid");
    assert_eq!(
        ev,
        vec![DemuxEvent::Track(
            TrackId::AUDIO,
            TrackConfig::Audio(AudioConfig {
                codec: Codec::Aac,
                sample_rate: 44_100,
                channels: 2,
                record: Bytes::from_static(&[0x12, 0x10]),
            })
        )]
    );
    let raw = tag(&[&[0xaf, 1], &[0x21, 0x10, 0x04]]);
    let f = only_frame(d.push_audio(23, &raw).expect("valid"));
    assert!(f.keyframe);
    assert_eq!(f.track, TrackId::AUDIO);
    assert_eq!(f.data.as_ptr(), raw[2..].as_ptr());
    // HE-AAC with explicit SBR: core 24 kHz, output 48 kHz.
    let ev = d
        .push_audio(46, &tag(&[&[0xaf, 0, 0x2b, 0x11, 0x88, 0x00]]))
        .expect("valid");
    assert!(
        matches!(&ev[..], [DemuxEvent::Track(TrackId::AUDIO, TrackConfig::Audio(a))] if a.sample_rate == 48_000 && a.channels == 2)
    );
    // Channel configuration 0 falls back to the FLV mono/stereo flag.
    let ev = d
        .push_audio(46, &tag(&[&[0xae, 0, 0x12, 0x00]]))
        .expect("valid");
    assert!(
        matches!(&ev[..], [DemuxEvent::Track(TrackId::AUDIO, TrackConfig::Audio(a))] if a.channels == 1)
    );
    assert!(matches!(
        d.push_audio(0, &tag(&[&[0xaf, 0, 0x12]])),
        Err(FlvError::InvalidConfig { codec: "AAC", .. })
    ));
    assert_eq!(
        d.push_audio(0, &tag(&[&[0x2f, 0x00]])),
        Err(FlvError::UnsupportedAudioFormat(2))
    );
}

#[test]
fn enhanced_opus_and_mp4a() {
    let mut d = FlvDemuxer::new();
    let mut head = b"OpusHead\x01\x06".to_vec();
    head.extend_from_slice(&[
        0x38, 0x01, 0x80, 0xbb, 0, 0, 0, 0, 1, 4, 2, 0, 4, 1, 2, 3, 5,
    ]);
    let ev = d.push_audio(0, &tag(&[b"\x90Opus", &head])).expect("valid");
    assert!(
        matches!(&ev[..], [DemuxEvent::Track(TrackId::AUDIO, TrackConfig::Audio(a))]
        if a.codec == Codec::Opus && a.sample_rate == 48_000 && a.channels == 6)
    );
    let f = only_frame(
        d.push_audio(20, &tag(&[b"\x91Opus", &[0xfc, 0xff, 0xfe]]))
            .expect("valid"),
    );
    assert_eq!(&f.data[..], &[0xfc, 0xff, 0xfe]);
    // An empty OpusHead: defaults.
    let ev = d.push_audio(40, &tag(&[b"\x90Opus"])).expect("valid");
    assert!(
        matches!(&ev[..], [DemuxEvent::Track(TrackId::AUDIO, TrackConfig::Audio(a))] if a.channels == 2)
    );
    // mp4a through the enhanced header.
    let ev = d
        .push_audio(60, &tag(&[b"\x90mp4a", &[0x11, 0x90]]))
        .expect("valid");
    assert!(
        matches!(&ev[..], [DemuxEvent::Track(TrackId::AUDIO, TrackConfig::Audio(a))] if a.sample_rate == 48_000)
    );
    assert_eq!(d.push_audio(80, &tag(&[b"\x92mp4a"])), Ok(vec![]));
}

#[test]
fn real_ffmpeg_flv() {
    let file = Bytes::from_static(include_bytes!("data/h264_aac_160x120.flv"));
    let tags = read_tags(&file).expect("an FLV file");
    let mut d = FlvDemuxer::new();
    let mut events = Vec::new();
    for t in &tags {
        let ev = match t.tag_type {
            TAG_VIDEO => d.push_video(t.timestamp, &t.body),
            TAG_AUDIO => d.push_audio(t.timestamp, &t.body),
            TAG_SCRIPT => d.push_data(&t.body),
            _ => continue,
        };
        events.extend(ev.expect("ffmpeg output is valid"));
    }
    let tracks: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            DemuxEvent::Track(id, t) => Some((*id, t)),
            _ => None,
        })
        .collect();
    assert_eq!(tracks.len(), 2);
    assert!(
        matches!(tracks[0], (TrackId::VIDEO, TrackConfig::Video(v)) if (v.width, v.height) == (160, 120))
    );
    assert!(
        matches!(tracks[1], (TrackId::AUDIO, TrackConfig::Audio(a)) if a.sample_rate == 44_100 && a.channels == 1)
    );
    assert!(matches!(&events[0], DemuxEvent::Metadata(m) if m.width == Some(160)));
    let fs = frames(&events);
    let video: Vec<_> = fs.iter().filter(|f| f.track == TrackId::VIDEO).collect();
    let audio: Vec<_> = fs.iter().filter(|f| f.track == TrackId::AUDIO).collect();
    assert!(video.len() >= 7, "{} video frames", video.len());
    assert!(audio.len() >= 20, "{} audio frames", audio.len());
    assert!(video[0].keyframe);
    assert!(video.iter().filter(|f| f.keyframe).count() >= 2, "-g 5");
    assert!(video.iter().any(|f| f.composition_offset() > 0), "B-frames");
    for w in video.windows(2).chain(audio.windows(2)) {
        assert!(w[1].dts > w[0].dts);
    }
    // Every access unit is a well-formed run of 4-byte length-prefixed NAL units.
    for f in &video {
        let mut p = 0;
        while p < f.data.len() {
            let n = u32::from_be_bytes([f.data[p], f.data[p + 1], f.data[p + 2], f.data[p + 3]]);
            p += 4 + n as usize;
        }
        assert_eq!(p, f.data.len());
    }
}

#[test]
fn random_and_truncated_tags_never_panic() {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let valid: Vec<Vec<u8>> = vec![
        [&[1u8, 0x17, 0, 0, 0, 0][..], AVCC_320X240].concat(),
        [&[1u8][..], b"\x90hvc1", HVCC_202X122].concat(),
        [&[1u8][..], b"\x90av01", AV1C_208X120].concat(),
        [
            &[1u8][..],
            b"\xa6\x13hvc1\x00\x00\x00\x02\xaa\xbb\x01\x00\x00\x01\xcc",
        ]
        .concat(),
        [&[1u8][..], b"\x97\xff\x00\x01\xaa\xbb\x03av01\x0b"].concat(),
        [
            &[1u8][..],
            b"\x96\x20av01\x00\x00\x00\x10",
            AV1C_208X120,
            b"hvc1\x04\x00\x00\x03\x01\x02\x03",
        ]
        .concat(),
        [
            &[1u8][..],
            b"\x96\x21av01\x00\x00\x00\x01\xaaav01\x04\x00\x00\x01\xbb",
        ]
        .concat(),
        vec![0, 0xaf, 0, 0x2b, 0x11, 0x88, 0x00],
        [
            &[0u8][..],
            b"\x95\x11Opus\x00\x00\x00\x01\xfc\x01\x00\x00\x01\xfd",
        ]
        .concat(),
        [
            &[2u8][..],
            &amf0::encode_all(&[
                Amf0Value::string("onMetaData"),
                Amf0Value::object([("width", Amf0Value::Number(2.0))]),
            ]),
        ]
        .concat(),
    ];
    let mut d = FlvDemuxer::new();
    for i in 0..20_000 {
        let r = next();
        let input: Vec<u8> = if i % 2 == 0 {
            // Truncated and bit-flipped valid tags.
            let mut v = valid[(r % valid.len() as u64) as usize].clone();
            let flips = (r >> 8) % 4;
            for k in 0..flips {
                let pos = ((r >> (16 + 8 * k)) as usize) % v.len();
                v[pos] ^= 1 << ((r >> 60) & 7);
            }
            let cut = ((r >> 40) as usize) % (v.len() + 1);
            v.truncate(cut);
            v
        } else {
            (0..(r % 64)).map(|_| next() as u8).collect()
        };
        weir_flv::fuzzing::flv_tag(&mut d, &input);
        if i % 1000 == 0 {
            d = FlvDemuxer::new();
        }
    }
}
