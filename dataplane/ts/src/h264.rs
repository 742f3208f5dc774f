//! H.264 in MPEG-TS (stream type 0x1B): NAL unit roles and the avcC record.

use weir_media::{Codec, VideoConfig, avcc_record, parse_sps};

use crate::video::{NalRole, VideoCodec};

/// H.264 / AVC.
#[derive(Debug)]
pub(crate) struct H264;

const NAL_IDR: u8 = 5;
const NAL_SPS: u8 = 7;
const NAL_PPS: u8 = 8;
const NAL_AUD: u8 = 9;
const NAL_FILLER: u8 = 12;

impl VideoCodec for H264 {
    const SLOTS: usize = 2;

    fn role(nal: &[u8]) -> NalRole {
        match nal.first().map(|h| h & 0x1f) {
            Some(NAL_SPS) => NalRole::ParameterSet(0),
            Some(NAL_PPS) => NalRole::ParameterSet(1),
            Some(NAL_AUD | NAL_FILLER) | None => NalRole::Skip,
            Some(NAL_IDR) => NalRole::Key,
            Some(_) => NalRole::Other,
        }
    }

    fn config(sets: &[Vec<Vec<u8>>; 3]) -> Option<VideoConfig> {
        let sps: Vec<&[u8]> = sets[0].iter().map(Vec::as_slice).collect();
        let pps: Vec<&[u8]> = sets[1].iter().map(Vec::as_slice).collect();
        let record = avcc_record(&sps, &pps).ok()?;
        let info = parse_sps(sps.first()?).ok()?;
        Some(VideoConfig {
            codec: Codec::H264,
            width: u16::try_from(info.width).unwrap_or(0),
            height: u16::try_from(info.height).unwrap_or(0),
            record,
        })
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use weir_media::{TrackConfig, TrackId, parse_avcc};

    use super::*;
    use crate::es::Unit;
    use crate::pes::PesPacket;
    use crate::video::VideoTrack;

    /// SPS and PPS of `ffmpeg -f lavfi -i testsrc=size=320x240 -c:v libx264`.
    pub(crate) const SPS: &[u8] = &[
        0x67, 0x64, 0x00, 0x0d, 0xac, 0xd9, 0x41, 0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00,
        0x10, 0x00, 0x00, 0x03, 0x03, 0xc0, 0xf1, 0x42, 0x99, 0x60,
    ];
    pub(crate) const PPS: &[u8] = &[0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0];

    fn au(nals: &[&[u8]]) -> Bytes {
        let mut v = Vec::new();
        for n in nals {
            v.extend([0, 0, 0, 1]);
            v.extend_from_slice(n);
        }
        Bytes::from(v)
    }

    fn pes(pts: u64, dts: u64, payload: Bytes) -> PesPacket {
        PesPacket {
            pts: Some(pts),
            dts: Some(dts),
            payload,
        }
    }

    #[test]
    fn access_units_become_length_prefixed_frames() {
        let mut t = VideoTrack::<H264>::new();
        let mut out = Vec::new();
        // A P frame before any parameter sets: skipped.
        t.access_unit(
            TrackId::VIDEO,
            pes(0, 0, au(&[&[0x09, 0xf0], &[0x41, 1]])),
            &mut out,
        );
        assert!(out.is_empty());
        let idr = au(&[
            &[0x09, 0xf0],
            SPS,
            PPS,
            &[0x06, 5, 1, 0x80],
            &[0x65, 0x88, 0x84],
        ]);
        t.access_unit(TrackId::VIDEO, pes(6006, 3003, idr), &mut out);
        let [
            Unit::Dropped(_),
            Unit::Config(TrackConfig::Video(v)),
            Unit::Frame {
                dts,
                pts,
                keyframe,
                data,
            },
        ] = &out[..]
        else {
            panic!("unexpected {out:?}");
        };
        assert_eq!((v.width, v.height), (320, 240));
        assert_eq!(parse_avcc(&v.record), Ok((vec![SPS], vec![PPS])));
        assert_eq!((*dts, *pts, *keyframe), (3003, 6006, true));
        // SEI kept, AUD and parameter sets out.
        assert_eq!(
            &data[..],
            &[0, 0, 0, 4, 0x06, 5, 1, 0x80, 0, 0, 0, 3, 0x65, 0x88, 0x84]
        );
        out.clear();
        // The same sets again: no new config; a P frame.
        t.access_unit(
            TrackId::VIDEO,
            pes(9009, 9009, au(&[SPS, PPS, &[0x41, 2]])),
            &mut out,
        );
        assert!(matches!(
            &out[..],
            [Unit::Frame {
                keyframe: false,
                ..
            }]
        ));
        out.clear();
        // A new PPS: a new config before the frame.
        let pps2: &[u8] = &[0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc1];
        t.access_unit(TrackId::VIDEO, pes(1, 1, au(&[pps2, &[0x65, 3]])), &mut out);
        assert!(matches!(
            &out[..],
            [Unit::Config(_), Unit::Frame { keyframe: true, .. }]
        ));
        out.clear();
        // No PTS: dropped.
        t.access_unit(
            TrackId::VIDEO,
            PesPacket {
                pts: None,
                dts: None,
                payload: au(&[&[0x41, 2]]),
            },
            &mut out,
        );
        assert!(matches!(&out[..], [Unit::Dropped(_)]));
        out.clear();
        // An unusable SPS: reported, then frames wait for a good one.
        t.access_unit(
            TrackId::VIDEO,
            pes(2, 2, au(&[&[0x67, 0x64], &[0x65, 3]])),
            &mut out,
        );
        assert!(matches!(&out[..], [Unit::Dropped(_)]), "{out:?}");
        out.clear();
        t.access_unit(TrackId::VIDEO, pes(3, 3, au(&[&[0x41, 2]])), &mut out);
        assert!(out.is_empty());
        // The good SPS again: the record announced before still holds, no new config.
        t.access_unit(TrackId::VIDEO, pes(4, 4, au(&[SPS, &[0x65, 3]])), &mut out);
        assert!(
            matches!(
                &out[..],
                [Unit::Dropped(_), Unit::Frame { keyframe: true, .. }]
            ),
            "{out:?}"
        );
    }
}
