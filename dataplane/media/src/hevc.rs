//! H.265 helpers: what a sequence parameter set says (profile, tier, level, chroma
//! format, bit depths, dimensions) and the hvcC record built from VPS/SPS/PPS.

use bytes::Bytes;

use crate::bits::{BitReader, BitsError, unescape_rbsp};

/// Errors reading H.265 parameter sets or building an hvcC record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HevcError {
    /// The SPS bitstream ended early or held out-of-range values.
    #[error("malformed HEVC SPS")]
    Sps(#[from] BitsError),
    /// An hvcC record needs at least one VPS, SPS and PPS.
    #[error("HEVC parameter sets missing (need VPS, SPS and PPS)")]
    MissingParameterSets,
    /// Too many parameter sets, or one too long, for an hvcC record.
    #[error("parameter sets do not fit an hvcC record")]
    TooLarge,
}

/// The fields of an H.265 SPS that describe the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HevcSpsInfo {
    /// `general_profile_space`.
    pub profile_space: u8,
    /// `general_tier_flag` (true: High tier).
    pub tier_high: bool,
    /// `general_profile_idc` (1 = Main, 2 = Main 10, 4 = range extensions).
    pub profile_idc: u8,
    /// `general_profile_compatibility_flag[0..32]`, flag 0 in the most significant bit.
    pub compatibility_flags: u32,
    /// The 48 bits from `general_progressive_source_flag` on, as in the bitstream.
    pub constraint_flags: [u8; 6],
    /// `general_level_idc` (30 × the level number).
    pub level_idc: u8,
    /// `sps_max_sub_layers_minus1 + 1`.
    pub max_sub_layers: u8,
    /// `sps_temporal_id_nesting_flag`.
    pub temporal_id_nesting: bool,
    /// `chroma_format_idc` (0 = monochrome, 1 = 4:2:0, 2 = 4:2:2, 3 = 4:4:4).
    pub chroma_format_idc: u8,
    /// Luma bit depth.
    pub bit_depth_luma: u8,
    /// Chroma bit depth.
    pub bit_depth_chroma: u8,
    /// Width after the conformance window.
    pub width: u32,
    /// Height after the conformance window.
    pub height: u32,
}

/// Largest width or height accepted: HEVC level 6.2's largest picture side.
const MAX_SIDE: u32 = 16_888;

/// Parses an H.265 SPS NAL unit (with its 2-byte header).
pub fn parse_hevc_sps(nal: &[u8]) -> Result<HevcSpsInfo, HevcError> {
    let rbsp = unescape_rbsp(nal);
    let mut r = BitReader::new(&rbsp);
    r.skip(16)?; // NAL unit header
    r.skip(4)?; // sps_video_parameter_set_id
    let max_sub_layers_minus1 = r.bits(3)? as usize;
    if max_sub_layers_minus1 > 6 {
        return Err(BitsError.into());
    }
    let temporal_id_nesting = r.bit()?;
    // profile_tier_level(1, sps_max_sub_layers_minus1)
    let profile_space = r.bits(2)? as u8;
    let tier_high = r.bit()?;
    let profile_idc = r.bits(5)? as u8;
    let compatibility_flags = r.bits(32)?;
    let mut constraint_flags = [0u8; 6];
    for b in &mut constraint_flags {
        *b = r.bits(8)? as u8;
    }
    let level_idc = r.bits(8)? as u8;
    let mut present = [(false, false); 7];
    for p in present.iter_mut().take(max_sub_layers_minus1) {
        *p = (r.bit()?, r.bit()?);
    }
    if max_sub_layers_minus1 > 0 {
        r.skip(2 * (8 - max_sub_layers_minus1))?; // reserved_zero_2bits
    }
    for &(profile, level) in present.iter().take(max_sub_layers_minus1) {
        if profile {
            r.skip(88)?;
        }
        if level {
            r.skip(8)?;
        }
    }
    r.ue()?; // sps_seq_parameter_set_id
    let chroma_format_idc = r.ue()?;
    if chroma_format_idc > 3 {
        return Err(BitsError.into());
    }
    let separate_planes = chroma_format_idc == 3 && r.bit()?;
    let mut width = r.ue()?;
    let mut height = r.ue()?;
    if r.bit()? {
        let (left, right, top, bottom) = (r.ue()?, r.ue()?, r.ue()?, r.ue()?);
        let (sub_w, sub_h) = match (chroma_format_idc, separate_planes) {
            (1, _) => (2, 2),
            (2, _) => (2, 1),
            _ => (1, 1),
        };
        width = width.saturating_sub(left.saturating_add(right).saturating_mul(sub_w));
        height = height.saturating_sub(top.saturating_add(bottom).saturating_mul(sub_h));
    }
    let depth_luma = r.ue()?;
    let depth_chroma = r.ue()?;
    if width > MAX_SIDE || height > MAX_SIDE || depth_luma > 8 || depth_chroma > 8 {
        return Err(BitsError.into());
    }
    Ok(HevcSpsInfo {
        profile_space,
        tier_high,
        profile_idc,
        compatibility_flags,
        constraint_flags,
        level_idc,
        max_sub_layers: max_sub_layers_minus1 as u8 + 1,
        temporal_id_nesting,
        chroma_format_idc: chroma_format_idc as u8,
        bit_depth_luma: 8 + depth_luma as u8,
        bit_depth_chroma: 8 + depth_chroma as u8,
        width,
        height,
    })
}

const NAL_VPS: u8 = 32;
const NAL_SPS: u8 = 33;
const NAL_PPS: u8 = 34;

/// Builds an hvcC record (HEVCDecoderConfigurationRecord, ISO 14496-15 §8.3.3, 4-byte
/// NAL lengths) from VPS, SPS and PPS NAL units (with their headers). The profile, tier,
/// level, chroma format, bit depths and temporal layers come from the first SPS, which
/// must parse. The arrays are marked complete: the samples carry no parameter sets.
pub fn hvcc_record(vps: &[&[u8]], sps: &[&[u8]], pps: &[&[u8]]) -> Result<Bytes, HevcError> {
    let first = sps.first().ok_or(HevcError::MissingParameterSets)?;
    if vps.is_empty() || pps.is_empty() {
        return Err(HevcError::MissingParameterSets);
    }
    let info = parse_hevc_sps(first)?;
    let mut out = Vec::with_capacity(
        23 + [vps, sps, pps]
            .iter()
            .flat_map(|a| a.iter())
            .map(|n| n.len() + 2 + 3)
            .sum::<usize>(),
    );
    out.push(1); // configurationVersion
    out.push(info.profile_space << 6 | u8::from(info.tier_high) << 5 | info.profile_idc);
    out.extend_from_slice(&info.compatibility_flags.to_be_bytes());
    out.extend_from_slice(&info.constraint_flags);
    out.push(info.level_idc);
    out.extend_from_slice(&[0xf0, 0x00]); // min_spatial_segmentation_idc: unknown
    out.push(0xfc); // parallelismType: unknown
    out.push(0xfc | info.chroma_format_idc);
    out.push(0xf8 | (info.bit_depth_luma - 8));
    out.push(0xf8 | (info.bit_depth_chroma - 8));
    out.extend_from_slice(&[0, 0]); // avgFrameRate: unknown
    // constantFrameRate 0, numTemporalLayers, temporalIdNested, lengthSizeMinusOne 3.
    out.push(info.max_sub_layers << 3 | u8::from(info.temporal_id_nesting) << 2 | 3);
    out.push(3); // numOfArrays
    for (nal_type, nals) in [(NAL_VPS, vps), (NAL_SPS, sps), (NAL_PPS, pps)] {
        let count = u16::try_from(nals.len()).map_err(|_| HevcError::TooLarge)?;
        out.push(0x80 | nal_type); // array_completeness
        out.extend_from_slice(&count.to_be_bytes());
        for nal in nals {
            let len = u16::try_from(nal.len()).map_err(|_| HevcError::TooLarge)?;
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(nal);
        }
    }
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    // From `ffmpeg -f lavfi -i testsrc2=size=640x360 -c:v libx265` (Main, level 2.1).
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

    #[test]
    fn reads_an_x265_sps() {
        let i = parse_hevc_sps(SPS).expect("valid SPS");
        assert_eq!((i.width, i.height), (640, 360));
        assert_eq!((i.profile_space, i.tier_high, i.profile_idc), (0, false, 1));
        assert_eq!(i.compatibility_flags, 0x6000_0000);
        assert_eq!(i.constraint_flags, [0x90, 0, 0, 0, 0, 0]);
        assert_eq!(i.level_idc, 63);
        assert_eq!(
            (i.chroma_format_idc, i.bit_depth_luma, i.bit_depth_chroma),
            (1, 8, 8)
        );
        assert_eq!((i.max_sub_layers, i.temporal_id_nesting), (1, true));
    }

    #[test]
    fn builds_an_hvcc_record() {
        let r = hvcc_record(&[VPS], &[SPS], &[PPS]).expect("builds");
        assert_eq!(&r[..13], &[1, 0x01, 0x60, 0, 0, 0, 0x90, 0, 0, 0, 0, 0, 63]);
        // The same bytes as the hvcC ffmpeg writes for this stream.
        assert_eq!(
            &r[13..23],
            &[0xf0, 0, 0xfc, 0xfd, 0xf8, 0xf8, 0, 0, 0x0f, 3]
        );
        assert_eq!(&r[23..26], &[0xa0, 0, 1]);
        assert_eq!(r.len(), 23 + 3 * 5 + VPS.len() + SPS.len() + PPS.len());
        let config = crate::TrackConfig::Video(crate::VideoConfig {
            codec: crate::Codec::H265,
            width: 640,
            height: 360,
            record: r,
        });
        assert_eq!(config.codec_string(), "hvc1.1.6.L63.90");
        assert_eq!(
            hvcc_record(&[], &[SPS], &[PPS]),
            Err(HevcError::MissingParameterSets)
        );
    }

    #[test]
    fn truncated_sps_is_an_error() {
        for n in 0..SPS.len() - 1 {
            let _ = parse_hevc_sps(&SPS[..n]);
        }
        assert!(parse_hevc_sps(&SPS[..20]).is_err());
    }
}
