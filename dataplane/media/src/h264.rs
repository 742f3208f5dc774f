//! H.264 helpers: the avcC record (read and built) and what a sequence parameter set
//! says about the picture.

use bytes::Bytes;

use crate::bits::{BitReader, BitsError};

/// Errors reading H.264 configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum H264Error {
    /// The avcC record is shorter than its fields say.
    #[error("avcC record truncated")]
    Truncated,
    /// The avcC version is not 1.
    #[error("avcC version {0} is not 1")]
    Version(u8),
    /// The avcC record carries no SPS (or, when building one, no SPS or no PPS).
    #[error("avcC record has no SPS")]
    NoSps,
    /// Too many parameter sets, or one too long, for an avcC record.
    #[error("parameter sets do not fit an avcC record")]
    TooLarge,
    /// The SPS bitstream ended early or held out-of-range values.
    #[error("malformed SPS")]
    Sps(#[from] BitsError),
}

/// What an SPS says about the picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpsInfo {
    /// `profile_idc`.
    pub profile: u8,
    /// `level_idc`.
    pub level: u8,
    /// Displayed width after cropping.
    pub width: u32,
    /// Displayed height after cropping.
    pub height: u32,
    /// `chroma_format_idc` (1 = 4:2:0 unless the profile says otherwise).
    pub chroma_format_idc: u8,
    /// Luma bit depth (8 unless a high profile says otherwise).
    pub bit_depth_luma: u8,
    /// Chroma bit depth.
    pub bit_depth_chroma: u8,
}

/// The parameter sets of an avcC record: (SPS list, PPS list).
pub type ParameterSets<'a> = (Vec<&'a [u8]>, Vec<&'a [u8]>);

/// Splits an avcC record into its SPS and PPS NAL units.
pub fn parse_avcc(record: &[u8]) -> Result<ParameterSets<'_>, H264Error> {
    let mut p = record;
    let head = take(&mut p, 6)?;
    if head[0] != 1 {
        return Err(H264Error::Version(head[0]));
    }
    let num_sps = usize::from(head[5] & 0x1f);
    let mut sps = Vec::with_capacity(num_sps);
    for _ in 0..num_sps {
        let len = take(&mut p, 2)?;
        let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
        sps.push(take(&mut p, len)?);
    }
    let num_pps = usize::from(take(&mut p, 1)?[0]);
    let mut pps = Vec::with_capacity(num_pps);
    for _ in 0..num_pps {
        let len = take(&mut p, 2)?;
        let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
        pps.push(take(&mut p, len)?);
    }
    if sps.is_empty() {
        return Err(H264Error::NoSps);
    }
    Ok((sps, pps))
}

fn take<'a>(p: &mut &'a [u8], n: usize) -> Result<&'a [u8], H264Error> {
    if p.len() < n {
        return Err(H264Error::Truncated);
    }
    let (a, b) = p.split_at(n);
    *p = b;
    Ok(a)
}

/// Largest picture width or height accepted, in macroblocks.
const MAX_MBS: u32 = 1024;

/// Reads profile, level and cropped dimensions from an SPS NAL unit (with its header byte).
pub fn parse_sps(nal: &[u8]) -> Result<SpsInfo, H264Error> {
    let rbsp = crate::bits::unescape_rbsp(nal);
    let mut r = BitReader::new(&rbsp);
    r.skip(8)?; // NAL header
    let profile = r.bits(8)? as u8;
    r.skip(8)?; // constraint flags
    let level = r.bits(8)? as u8;
    r.ue()?; // seq_parameter_set_id
    let mut chroma_format_idc = 1;
    let (mut depth_luma, mut depth_chroma) = (0, 0);
    if matches!(
        profile,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    ) {
        chroma_format_idc = r.ue()?;
        if chroma_format_idc == 3 {
            r.skip(1)?; // separate_colour_plane_flag
        }
        depth_luma = r.ue()?; // bit_depth_luma_minus8
        depth_chroma = r.ue()?; // bit_depth_chroma_minus8
        if chroma_format_idc > 3 || depth_luma > 6 || depth_chroma > 6 {
            return Err(H264Error::Sps(BitsError));
        }
        r.skip(1)?; // qpprime_y_zero_transform_bypass_flag
        if r.bit()? {
            let lists = if chroma_format_idc == 3 { 12 } else { 8 };
            for i in 0..lists {
                if r.bit()? {
                    skip_scaling_list(&mut r, if i < 6 { 16 } else { 64 })?;
                }
            }
        }
    }
    r.ue()?; // log2_max_frame_num_minus4
    let poc_type = r.ue()?;
    if poc_type == 0 {
        r.ue()?;
    } else if poc_type == 1 {
        r.skip(1)?;
        r.se()?;
        r.se()?;
        let n = r.ue()?;
        if n > 255 {
            return Err(H264Error::Sps(BitsError));
        }
        for _ in 0..n {
            r.se()?;
        }
    }
    r.ue()?; // max_num_ref_frames
    r.skip(1)?; // gaps_in_frame_num_value_allowed_flag
    let mbs_w = r.ue()? + 1;
    let map_units_h = r.ue()? + 1;
    let frame_mbs_only = r.bit()?;
    if !frame_mbs_only {
        r.skip(1)?;
    }
    r.skip(1)?; // direct_8x8_inference_flag
    let (mut cl, mut cr, mut ct, mut cb) = (0, 0, 0, 0);
    if r.bit()? {
        cl = r.ue()?;
        cr = r.ue()?;
        ct = r.ue()?;
        cb = r.ue()?;
    }
    let height_mul = if frame_mbs_only { 1 } else { 2 };
    let (crop_x, crop_y) = match chroma_format_idc {
        0 => (1, 2 - u32::from(frame_mbs_only)),
        1 => (2, 2 * (2 - u32::from(frame_mbs_only))),
        2 => (2, 2 - u32::from(frame_mbs_only)),
        _ => (1, 2 - u32::from(frame_mbs_only)),
    };
    // Level 6.2 tops out at 139,264 macroblocks a frame; anything past 1024 in either
    // direction (16,384 px) is a corrupt SPS, not a picture.
    if mbs_w > MAX_MBS || map_units_h > MAX_MBS {
        return Err(H264Error::Sps(BitsError));
    }
    let width = (mbs_w * 16).saturating_sub(cl.saturating_add(cr).saturating_mul(crop_x));
    let height = (map_units_h * 16 * height_mul)
        .saturating_sub(ct.saturating_add(cb).saturating_mul(crop_y));
    Ok(SpsInfo {
        profile,
        level,
        width,
        height,
        // Range-checked above.
        chroma_format_idc: chroma_format_idc as u8,
        bit_depth_luma: 8 + depth_luma as u8,
        bit_depth_chroma: 8 + depth_chroma as u8,
    })
}

/// Builds an avcC record (AVCDecoderConfigurationRecord, 4-byte NAL lengths) from SPS and
/// PPS NAL units (with their header bytes). Profile and level come from the first SPS,
/// which must parse; high profiles get the chroma format and bit depth extension.
pub fn avcc_record(sps: &[&[u8]], pps: &[&[u8]]) -> Result<Bytes, H264Error> {
    let first = sps.first().ok_or(H264Error::NoSps)?;
    if pps.is_empty() {
        return Err(H264Error::NoSps);
    }
    if sps.len() > 31 || pps.len() > 255 {
        return Err(H264Error::TooLarge);
    }
    let info = parse_sps(first)?;
    let mut out =
        Vec::with_capacity(16 + first.len() + pps.iter().map(|p| p.len() + 2).sum::<usize>());
    // parse_sps read these three bytes.
    out.extend_from_slice(&[
        1,
        first[1],
        first[2],
        first[3],
        0xff,
        0xe0 | sps.len() as u8,
    ]);
    for nal in sps {
        push_u16_prefixed(&mut out, nal)?;
    }
    out.push(pps.len() as u8);
    for nal in pps {
        push_u16_prefixed(&mut out, nal)?;
    }
    if matches!(info.profile, 100 | 110 | 122 | 144) {
        out.extend_from_slice(&[
            0xfc | info.chroma_format_idc,
            0xf8 | (info.bit_depth_luma - 8),
            0xf8 | (info.bit_depth_chroma - 8),
            0, // numOfSequenceParameterSetExt
        ]);
    }
    Ok(Bytes::from(out))
}

fn push_u16_prefixed(out: &mut Vec<u8>, nal: &[u8]) -> Result<(), H264Error> {
    let len = u16::try_from(nal.len()).map_err(|_| H264Error::TooLarge)?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(nal);
    Ok(())
}

fn skip_scaling_list(r: &mut BitReader<'_>, size: usize) -> Result<(), BitsError> {
    let mut last = 8i32;
    let mut next = 8i32;
    for _ in 0..size {
        if next != 0 {
            // delta_scale is specified in -128..=127; anything else is a corrupt SPS.
            let delta = r.se()?;
            if !(-128..=127).contains(&delta) {
                return Err(BitsError);
            }
            next = (last + delta + 256).rem_euclid(256);
        }
        if next != 0 {
            last = next;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    // avcC from `ffmpeg -f lavfi -i testsrc=size=320x240 -c:v libx264` (High, level 1.3).
    const AVCC: &[u8] = &[
        0x01, 0x64, 0x00, 0x0d, 0xff, 0xe1, 0x00, 0x19, 0x67, 0x64, 0x00, 0x0d, 0xac, 0xd9, 0x41,
        0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0xc0, 0xf1,
        0x42, 0x99, 0x60, 0x01, 0x00, 0x06, 0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0,
    ];

    #[test]
    fn reads_dimensions_from_x264_sps() {
        let (sps, pps) = parse_avcc(AVCC).expect("valid avcC");
        assert_eq!(pps.len(), 1);
        let info = parse_sps(sps[0]).expect("valid sps");
        assert_eq!(info.profile, 100);
        assert_eq!(info.level, 13);
        assert_eq!((info.width, info.height), (320, 240));
    }

    #[test]
    fn builds_the_avcc_record_ffmpeg_writes() {
        let (sps, pps) = parse_avcc(AVCC).expect("valid avcC");
        let info = parse_sps(sps[0]).expect("valid sps");
        assert_eq!(
            (
                info.chroma_format_idc,
                info.bit_depth_luma,
                info.bit_depth_chroma
            ),
            (1, 8, 8)
        );
        let built = avcc_record(&sps, &pps).expect("builds");
        // ffmpeg's record plus the high-profile extension (4:2:0, 8 bit, no SPS ext).
        assert_eq!(&built[..AVCC.len()], AVCC);
        assert_eq!(&built[AVCC.len()..], &[0xfd, 0xf8, 0xf8, 0]);
        assert_eq!(parse_avcc(&built), Ok((sps.clone(), pps.clone())));
        assert_eq!(avcc_record(&sps, &[]), Err(H264Error::NoSps));
        assert_eq!(avcc_record(&[], &pps), Err(H264Error::NoSps));
        assert!(avcc_record(&[&[0x67, 0x64]], &pps).is_err());
    }

    #[test]
    fn truncated_records_are_errors() {
        for n in 0..AVCC.len() - 1 {
            if let Ok((sps, _)) = parse_avcc(&AVCC[..n]) {
                sps.iter().for_each(|s| {
                    let _ = parse_sps(s);
                });
            }
        }
        assert_eq!(parse_avcc(&AVCC[..3]), Err(H264Error::Truncated));
    }
}
