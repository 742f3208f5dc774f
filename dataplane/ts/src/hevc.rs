//! H.265 in MPEG-TS (stream type 0x24): NAL unit roles and the hvcC record.

use weir_media::{Codec, VideoConfig, hvcc_record, parse_hevc_sps};

use crate::video::{NalRole, VideoCodec};

/// H.265 / HEVC.
#[derive(Debug)]
pub(crate) struct H265;

const NAL_VPS: u8 = 32;
const NAL_SPS: u8 = 33;
const NAL_PPS: u8 = 34;
const NAL_AUD: u8 = 35;
const NAL_FILLER: u8 = 38;

impl VideoCodec for H265 {
    const SLOTS: usize = 3;

    fn role(nal: &[u8]) -> NalRole {
        if nal.len() < 2 {
            return NalRole::Skip;
        }
        match (nal[0] >> 1) & 0x3f {
            NAL_VPS => NalRole::ParameterSet(0),
            NAL_SPS => NalRole::ParameterSet(1),
            NAL_PPS => NalRole::ParameterSet(2),
            NAL_AUD | NAL_FILLER => NalRole::Skip,
            // IRAP: BLA, IDR, CRA and the reserved IRAP types.
            16..=23 => NalRole::Key,
            _ => NalRole::Other,
        }
    }

    fn config(sets: &[Vec<Vec<u8>>; 3]) -> Option<VideoConfig> {
        let [vps, sps, pps] = sets
            .each_ref()
            .map(|s| s.iter().map(Vec::as_slice).collect::<Vec<_>>());
        let record = hvcc_record(&vps, &sps, &pps).ok()?;
        let info = parse_hevc_sps(sps.first()?).ok()?;
        Some(VideoConfig {
            codec: Codec::H265,
            width: u16::try_from(info.width).unwrap_or(0),
            height: u16::try_from(info.height).unwrap_or(0),
            record,
        })
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use weir_media::{TrackConfig, TrackId};

    use super::*;
    use crate::es::Unit;
    use crate::pes::PesPacket;
    use crate::video::VideoTrack;

    // From `ffmpeg -f lavfi -i testsrc2=size=640x360 -c:v libx265`.
    const VPS: &[u8] = &[
        0x40, 0x01, 0x0c, 0x01, 0xff, 0xff, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00,
        0x03, 0x00, 0x00, 0x03, 0x00, 0x3f, 0x95, 0x98, 0x09,
    ];
    const SPS: &[u8] = &[
        0x42, 0x01, 0x01, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00, 0x00,
        0x03, 0x00, 0x3f, 0xa0, 0x05, 0x02, 0x01, 0x69, 0x65, 0x95, 0x9a, 0x49, 0x32, 0xbc, 0x05,
        0xa0, 0x20, 0x00, 0x00, 0x03, 0x00, 0x20, 0x00, 0x00, 0x03, 0x03, 0xc1,
    ];
    const PPS: &[u8] = &[0x44, 0x01, 0xc1, 0x72, 0xb4, 0x62, 0x40];

    fn au(nals: &[&[u8]]) -> Bytes {
        let mut v = Vec::new();
        for n in nals {
            v.extend([0, 0, 1]);
            v.extend_from_slice(n);
        }
        Bytes::from(v)
    }

    #[test]
    fn irap_with_parameter_sets_starts_the_track() {
        let mut t = VideoTrack::<H265>::new();
        let mut out = Vec::new();
        let pes = |pts: u64, payload| PesPacket {
            pts: Some(pts),
            dts: None,
            payload,
        };
        // A CRA without a VPS: not usable yet.
        t.access_unit(
            TrackId::VIDEO,
            pes(1, au(&[SPS, PPS, &[0x2a, 0x01, 7]])),
            &mut out,
        );
        assert!(out.is_empty());
        let aud: &[u8] = &[0x46, 0x01, 0x10];
        let sei: &[u8] = &[0x4e, 0x01, 5, 1, 0x80];
        let idr: &[u8] = &[0x26, 0x01, 0xaf];
        t.access_unit(
            TrackId::VIDEO,
            pes(2, au(&[aud, VPS, SPS, PPS, sei, idr])),
            &mut out,
        );
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
        assert_eq!((v.codec, v.width, v.height), (Codec::H265, 640, 360));
        assert_eq!(v.record[22], 3);
        assert_eq!((*dts, *pts, *keyframe), (2, 2, true));
        assert_eq!(
            &data[..],
            &[0, 0, 0, 5, 0x4e, 1, 5, 1, 0x80, 0, 0, 0, 3, 0x26, 1, 0xaf]
        );
        out.clear();
        // A TRAIL_R picture.
        t.access_unit(TrackId::VIDEO, pes(3, au(&[&[0x02, 0x01, 9]])), &mut out);
        assert!(matches!(
            &out[..],
            [Unit::Frame {
                keyframe: false,
                ..
            }]
        ));
    }
}
