//! Picture dimensions from HEVC (hvcC → SPS) and AV1 (av1C → sequence header)
//! configuration records. Every read is bounded; a record we cannot read yields `None`
//! and the demuxer falls back to onMetaData.

use weir_media::{BitReader, BitsError, unescape_rbsp as unescape};

/// Cropped width and height from the first SPS in an hvcC record.
pub fn hevc_dimensions(record: &[u8]) -> Option<(u32, u32)> {
    const SPS: u8 = 33;
    let num_arrays = *record.get(22)?;
    let mut p = 23;
    let u16_at = |p: usize| -> Option<usize> {
        let b = record.get(p..p + 2)?;
        Some(usize::from(u16::from_be_bytes([b[0], b[1]])))
    };
    for _ in 0..num_arrays {
        let nal_type = record.get(p)? & 0x3f;
        let count = u16_at(p + 1)?;
        p += 3;
        for _ in 0..count {
            let len = u16_at(p)?;
            let nal = record.get(p + 2..p + 2 + len)?;
            if nal_type == SPS {
                return hevc_sps_dimensions(nal).ok();
            }
            p += 2 + len;
        }
    }
    None
}

fn hevc_sps_dimensions(nal: &[u8]) -> Result<(u32, u32), BitsError> {
    let rbsp = unescape(nal);
    let mut r = BitReader::new(&rbsp);
    r.skip(16)?; // NAL unit header
    r.skip(4)?; // sps_video_parameter_set_id
    let max_sub_layers_minus1 = r.bits(3)? as usize;
    r.skip(1)?; // sps_temporal_id_nesting_flag
    // profile_tier_level(1, max_sub_layers_minus1)
    r.skip(88 + 8)?; // general profile fields, general_level_idc
    let mut present = [(false, false); 8];
    for p in present.iter_mut().take(max_sub_layers_minus1) {
        *p = (r.bit()?, r.bit()?);
    }
    if max_sub_layers_minus1 > 0 {
        r.skip(2 * (8 - max_sub_layers_minus1))?;
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
    if chroma_format_idc == 3 {
        r.skip(1)?; // separate_colour_plane_flag
    }
    let mut width = r.ue()?;
    let mut height = r.ue()?;
    if r.bit()? {
        let (left, right, top, bottom) = (r.ue()?, r.ue()?, r.ue()?, r.ue()?);
        let (sub_w, sub_h) = match chroma_format_idc {
            1 => (2, 2),
            2 => (2, 1),
            _ => (1, 1),
        };
        width = width.saturating_sub(left.saturating_add(right).saturating_mul(sub_w));
        height = height.saturating_sub(top.saturating_add(bottom).saturating_mul(sub_h));
    }
    Ok((width, height))
}

/// `uvlc()` of the AV1 spec.
fn uvlc(r: &mut BitReader<'_>) -> Result<u32, BitsError> {
    let mut zeros = 0;
    while !r.bit()? {
        zeros += 1;
        if zeros >= 32 {
            return Ok(u32::MAX);
        }
    }
    Ok(r.bits(zeros)?.saturating_add((1u32 << zeros) - 1))
}

/// `leb128()` of the AV1 spec, at most 8 bytes.
fn leb128(data: &[u8], p: &mut usize) -> Option<usize> {
    let mut v: u64 = 0;
    for i in 0..8 {
        let b = *data.get(*p)?;
        *p += 1;
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return usize::try_from(v).ok();
        }
    }
    None
}

/// Maximum frame width and height from the sequence header OBU in an av1C record.
pub fn av1_dimensions(record: &[u8]) -> Option<(u32, u32)> {
    const OBU_SEQUENCE_HEADER: u8 = 1;
    let mut p = 4;
    while p < record.len() {
        let header = record[p];
        p += 1;
        if header & 0x04 != 0 {
            p += 1; // extension header
        }
        let size = if header & 0x02 != 0 {
            leb128(record, &mut p)?
        } else {
            record.len().checked_sub(p)?
        };
        let obu = record.get(p..p.checked_add(size)?)?;
        if (header >> 3) & 0x0f == OBU_SEQUENCE_HEADER {
            return av1_sequence_dimensions(obu).ok();
        }
        p += size;
    }
    None
}

fn av1_sequence_dimensions(obu: &[u8]) -> Result<(u32, u32), BitsError> {
    let mut r = BitReader::new(obu);
    r.skip(3)?; // seq_profile
    r.skip(1)?; // still_picture
    if r.bit()? {
        r.skip(5)?; // reduced_still_picture_header: seq_level_idx[0]
    } else {
        let mut decoder_model_info = false;
        let mut buffer_delay_length = 0;
        if r.bit()? {
            // timing_info
            r.skip(64)?;
            if r.bit()? {
                uvlc(&mut r)?;
            }
            decoder_model_info = r.bit()?;
            if decoder_model_info {
                buffer_delay_length = r.bits(5)? as usize + 1;
                r.skip(32 + 5 + 5)?;
            }
        }
        let initial_display_delay = r.bit()?;
        let operating_points = r.bits(5)? + 1;
        for _ in 0..operating_points {
            r.skip(12)?; // operating_point_idc
            if r.bits(5)? > 7 {
                r.skip(1)?; // seq_tier
            }
            if decoder_model_info && r.bit()? {
                r.skip(2 * buffer_delay_length + 1)?;
            }
            if initial_display_delay && r.bit()? {
                r.skip(4)?;
            }
        }
    }
    let width_bits = r.bits(4)? + 1;
    let height_bits = r.bits(4)? + 1;
    let width = r.bits(width_bits)?.saturating_add(1);
    let height = r.bits(height_bits)?.saturating_add(1);
    Ok((width, height))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// hvcC from `ffmpeg -f lavfi -i testsrc=size=202x122 -c:v libx265` (SEI array
    /// removed): coded 208x128 with a conformance window.
    pub(crate) const HVCC_202X122: &[u8] = &[
        0x01, 0x01, 0x60, 0x00, 0x00, 0x00, 0x90, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1e, 0xf0, 0x00,
        0xfc, 0xfd, 0xf8, 0xf8, 0x00, 0x00, 0x0f, 0x03, 0x20, 0x00, 0x01, 0x00, 0x18, 0x40, 0x01,
        0x0c, 0x01, 0xff, 0xff, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00,
        0x00, 0x03, 0x00, 0x1e, 0x95, 0x98, 0x09, 0x21, 0x00, 0x01, 0x00, 0x2a, 0x42, 0x01, 0x01,
        0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00, 0x00, 0x03, 0x00, 0x1e,
        0xa0, 0x1a, 0x20, 0x20, 0x72, 0x49, 0x96, 0x56, 0x69, 0x24, 0xca, 0xf0, 0x16, 0x80, 0x80,
        0x00, 0x00, 0x03, 0x00, 0x80, 0x00, 0x00, 0x07, 0x84, 0x22, 0x00, 0x01, 0x00, 0x07, 0x44,
        0x01, 0xc1, 0x72, 0xb4, 0x62, 0x40,
    ];

    /// av1C from `ffmpeg -f lavfi -i testsrc=size=208x120 -c:v libaom-av1`.
    pub(crate) const AV1C_208X120: &[u8] = &[
        0x81, 0x00, 0x0c, 0x00, 0x0a, 0x0a, 0x00, 0x00, 0x00, 0x03, 0xb6, 0x7f, 0x73, 0x6b, 0xe4,
        0x01,
    ];

    #[test]
    fn hevc_sps_with_conformance_window() {
        assert_eq!(hevc_dimensions(HVCC_202X122), Some((202, 122)));
    }

    #[test]
    fn av1_sequence_header() {
        assert_eq!(av1_dimensions(AV1C_208X120), Some((208, 120)));
    }

    #[test]
    fn truncated_records_give_none() {
        for n in 0..HVCC_202X122.len() - 40 {
            assert_eq!(hevc_dimensions(&HVCC_202X122[..n]), None, "{n}");
        }
        for n in 0..AV1C_208X120.len() {
            let _ = av1_dimensions(&AV1C_208X120[..n]);
        }
        assert_eq!(av1_dimensions(&[0x81, 0, 0, 0, 0x0a, 0xff]), None);
    }
}
