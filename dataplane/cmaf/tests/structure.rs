//! Parses the writer's output back and checks structure, fields and offsets.

use bytes::Bytes;
use weir_cmaf::test_support::{boxes, child, children, path};
use weir_cmaf::{
    FragmentTrack, InitTrack, NON_SYNC_SAMPLE_FLAGS, SYNC_SAMPLE_FLAGS, Sample, fragment,
    init_segment, styp,
};
use weir_media::{AudioConfig, Codec, TrackConfig, VideoConfig};

const AVCC: &[u8] = &[
    0x01, 0x64, 0x00, 0x0d, 0xff, 0xe1, 0x00, 0x19, 0x67, 0x64, 0x00, 0x0d, 0xac, 0xd9, 0x41, 0x41,
    0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0xc0, 0xf1, 0x42, 0x99,
    0x60, 0x01, 0x00, 0x06, 0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0,
];

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn be64(b: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

fn video(width: u16) -> InitTrack {
    InitTrack {
        track_id: 1,
        config: TrackConfig::Video(VideoConfig {
            codec: Codec::H264,
            width,
            height: width.min(240),
            record: Bytes::from_static(AVCC),
        }),
    }
}

fn audio(codec: Codec, record: &'static [u8]) -> InitTrack {
    InitTrack {
        track_id: 2,
        config: TrackConfig::Audio(AudioConfig {
            codec,
            sample_rate: 44_100,
            channels: 2,
            record: Bytes::from_static(record),
        }),
    }
}

/// The sample entry of the `n`th trak of an init segment.
fn sample_entry(init: &[u8], n: usize) -> (String, Vec<u8>) {
    let moov = path(init, &[b"moov"]).expect("moov");
    let trak = children(moov.body, 0)
        .into_iter()
        .filter(|b| &b.kind == b"trak")
        .nth(n)
        .expect("trak");
    let stbl = ["mdia", "minf", "stbl"]
        .iter()
        .try_fold(trak, |b, n| {
            child(b.body, n.as_bytes().try_into().expect("4"))
        })
        .expect("stbl");
    let stsd = child(stbl.body, b"stsd").expect("stsd");
    let entry = children(stsd.body, 8)[0];
    (entry.name(), entry.body.to_vec())
}

#[test]
fn init_segment_has_the_expected_boxes() {
    let init = init_segment(&[video(320), audio(Codec::Aac, &[0x12, 0x10])]);
    let top: Vec<String> = boxes(&init).iter().map(|b| b.name()).collect();
    assert_eq!(top, ["ftyp", "moov"]);
    let ftyp = boxes(&init)[0];
    assert_eq!(&ftyp.body[..4], b"iso6");
    assert!(ftyp.body.windows(4).any(|w| w == b"cmfc"));

    let moov = path(&init, &[b"moov"]).expect("moov");
    let names: Vec<String> = children(moov.body, 0).iter().map(|b| b.name()).collect();
    assert_eq!(names, ["mvhd", "trak", "trak", "mvex"]);
    let mvhd = child(moov.body, b"mvhd").expect("mvhd");
    assert_eq!(be32(mvhd.body, 96), 3, "next_track_ID");

    let traks: Vec<_> = children(moov.body, 0)
        .into_iter()
        .filter(|b| &b.kind == b"trak")
        .collect();
    let tkhd = child(traks[0].body, b"tkhd").expect("tkhd");
    assert_eq!(be32(tkhd.body, 12), 1, "track_ID");
    assert_eq!(be32(tkhd.body, 76) >> 16, 320);
    assert_eq!(be32(tkhd.body, 80) >> 16, 240);
    let mdia = child(traks[0].body, b"mdia").expect("mdia");
    let mdhd = child(mdia.body, b"mdhd").expect("mdhd");
    assert_eq!(be32(mdhd.body, 12), 90_000);
    let hdlr = child(mdia.body, b"hdlr").expect("hdlr");
    assert_eq!(&hdlr.body[8..12], b"vide");
    let minf = child(mdia.body, b"minf").expect("minf");
    let names: Vec<String> = children(minf.body, 0).iter().map(|b| b.name()).collect();
    assert_eq!(names, ["vmhd", "dinf", "stbl"]);
    let stbl = child(minf.body, b"stbl").expect("stbl");
    let names: Vec<String> = children(stbl.body, 0).iter().map(|b| b.name()).collect();
    assert_eq!(names, ["stsd", "stts", "stsc", "stco", "stsz"]);

    let amdhd = path(traks[1].body, &[b"mdia", b"mdhd"]).expect("audio mdhd");
    assert_eq!(be32(amdhd.body, 12), 44_100);

    let mvex = child(moov.body, b"mvex").expect("mvex");
    let trex: Vec<_> = children(mvex.body, 0);
    assert_eq!(trex.len(), 2);
    assert_eq!(be32(trex[1].body, 4), 2);

    // avc1 carries the avcC record verbatim after the 78-byte visual entry.
    let (name, body) = sample_entry(&init, 0);
    assert_eq!(name, "avc1");
    assert_eq!(u16::from_be_bytes([body[24], body[25]]), 320);
    let avcc = child(&body[78..], b"avcC").expect("avcC");
    assert_eq!(avcc.body, AVCC);

    // mp4a → esds → ES_Descriptor → DecoderConfigDescriptor (0x40) → ASC.
    let (name, body) = sample_entry(&init, 1);
    assert_eq!(name, "mp4a");
    assert_eq!(u16::from_be_bytes([body[16], body[17]]), 2, "channels");
    assert_eq!(be32(&body, 24) >> 16, 44_100);
    let esds = child(&body[28..], b"esds").expect("esds");
    let d = &esds.body[4..];
    assert_eq!(d[0], 0x03);
    assert_eq!(usize::from(d[1]), d.len() - 2);
    assert_eq!(&d[5..7], &[0x04, 17]);
    assert_eq!(d[7], 0x40, "objectTypeIndication AAC");
    assert_eq!(&d[20..24], &[0x05, 2, 0x12, 0x10]);
    assert_eq!(&d[24..], &[0x06, 1, 2]);
}

#[test]
fn sample_entries_for_every_codec() {
    let hevc = InitTrack {
        track_id: 1,
        config: TrackConfig::Video(VideoConfig {
            codec: Codec::H265,
            width: 1920,
            height: 1080,
            record: Bytes::from_static(&[1, 2, 3]),
        }),
    };
    let av1 = InitTrack {
        track_id: 1,
        config: TrackConfig::Video(VideoConfig {
            codec: Codec::Av1,
            width: 640,
            height: 360,
            record: Bytes::from_static(&[0x81, 0x08, 0x0c, 0x00]),
        }),
    };
    for (track, entry, config) in [(hevc, "hvc1", b"hvcC"), (av1, "av01", b"av1C")] {
        let init = init_segment(&[track]);
        let (name, body) = sample_entry(&init, 0);
        assert_eq!(name, entry);
        assert!(child(&body[78..], config).is_some());
    }

    // Opus without an OpusHead: defaults, 48 kHz timescale.
    let init = init_segment(&[audio(Codec::Opus, &[])]);
    let (name, body) = sample_entry(&init, 0);
    assert_eq!(name, "Opus");
    assert_eq!(be32(&body, 24) >> 16, 48_000);
    let dops = child(&body[28..], b"dOps").expect("dOps");
    assert_eq!(dops.body, &[0, 2, 0x01, 0x38, 0, 0, 0xbb, 0x80, 0, 0, 0]);
    let mdhd = path(&init, &[b"moov", b"trak", b"mdia", b"mdhd"]).expect("mdhd");
    assert_eq!(be32(mdhd.body, 12), 48_000);

    // AAC with an unusable record gets an ASC derived from rate and channels.
    let init = init_segment(&[audio(Codec::Aac, &[])]);
    let (_, body) = sample_entry(&init, 0);
    assert!(body.windows(4).any(|w| w == [0x05, 2, 0x12, 0x10]));
}

#[test]
fn dimensions_come_from_the_sps_when_the_config_has_none() {
    let init = init_segment(&[video(0)]);
    let tkhd = path(&init, &[b"moov", b"trak", b"tkhd"]).expect("tkhd");
    assert_eq!(be32(tkhd.body, 76) >> 16, 320);
    assert_eq!(be32(tkhd.body, 80) >> 16, 240);
}

fn sample(len: usize, byte: u8, keyframe: bool, duration: u32, cto: i32) -> Sample {
    Sample {
        duration,
        composition_offset: cto,
        keyframe,
        data: Bytes::from(vec![byte; len]),
    }
}

#[test]
fn fragment_offsets_point_at_each_tracks_samples() {
    let v = [
        sample(100, 0xaa, true, 3000, 6000),
        sample(50, 0xab, false, 3000, -3000),
    ];
    let a: [Sample; 3] = std::array::from_fn(|_| sample(7, 0xcc, true, 1024, 0));
    let frag = fragment(
        42,
        &[
            FragmentTrack {
                track_id: 1,
                base_decode_time: 90_000,
                samples: &v,
            },
            FragmentTrack {
                track_id: 2,
                base_decode_time: 1 << 40,
                samples: &a,
            },
            FragmentTrack {
                track_id: 3,
                base_decode_time: 0,
                samples: &[],
            },
        ],
    )
    .to_bytes();
    let top = boxes(&frag);
    assert_eq!(top.len(), 2);
    assert_eq!(
        (top[0].name(), top[1].name()),
        ("moof".into(), "mdat".into())
    );
    assert_eq!(top[0].size + top[1].size, frag.len());
    let moof = top[0];
    let names: Vec<String> = children(moof.body, 0).iter().map(|b| b.name()).collect();
    assert_eq!(names, ["mfhd", "traf", "traf"], "empty tracks are left out");
    assert_eq!(be32(child(moof.body, b"mfhd").expect("mfhd").body, 4), 42);

    let trafs: Vec<_> = children(moof.body, 0)
        .into_iter()
        .filter(|b| &b.kind == b"traf")
        .collect();
    let expect = [(1, 90_000u64, &v[..], 0xaa_u8), (2, 1 << 40, &a[..], 0xcc)];
    for (traf, (id, base, samples, first_byte)) in trafs.iter().zip(expect) {
        let tfhd = child(traf.body, b"tfhd").expect("tfhd");
        assert_eq!(be32(tfhd.body, 0), 0x0002_0000, "default-base-is-moof");
        assert_eq!(be32(tfhd.body, 4), id);
        let tfdt = child(traf.body, b"tfdt").expect("tfdt");
        assert_eq!(tfdt.body[0], 1, "tfdt version 1");
        assert_eq!(be64(tfdt.body, 4), base);
        let trun = child(traf.body, b"trun").expect("trun");
        assert_eq!(be32(trun.body, 0), 0x0100_0f01);
        assert_eq!(be32(trun.body, 4) as usize, samples.len());
        let offset = be32(trun.body, 8) as usize;
        assert_eq!(frag[offset], first_byte, "data offset is relative to moof");
        for (i, s) in samples.iter().enumerate() {
            let at = 12 + 16 * i;
            assert_eq!(be32(trun.body, at), s.duration);
            assert_eq!(be32(trun.body, at + 4) as usize, s.data.len());
            let flags = if s.keyframe {
                SYNC_SAMPLE_FLAGS
            } else {
                NON_SYNC_SAMPLE_FLAGS
            };
            assert_eq!(be32(trun.body, at + 8), flags);
            assert_eq!(be32(trun.body, at + 12) as i32, s.composition_offset);
        }
    }
    assert_eq!(top[1].body.len(), 100 + 50 + 21);
}

#[test]
fn styp_names_cmaf_segment_brands() {
    let s = styp();
    let b = boxes(&s);
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].name(), "styp");
    assert!(b[0].body.windows(4).any(|w| w == b"cmfs"));
}
