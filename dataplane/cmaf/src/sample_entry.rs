//! Sample entries (`stsd` children): avc1/hvc1/av01 with their configuration boxes,
//! mp4a with an `esds` built from the AudioSpecificConfig, and Opus with `dOps`.

use weir_media::{AacConfig, AudioConfig, Codec, VideoConfig, parse_avcc, parse_sps};

use crate::writer::BoxWriter;

/// Sampling frequencies indexed by the AudioSpecificConfig `samplingFrequencyIndex`.
const AAC_RATES: [u32; 13] = [
    96_000, 88_200, 64_000, 48_000, 44_100, 32_000, 24_000, 22_050, 16_000, 12_000, 11_025, 8_000,
    7_350,
];

/// Displayed dimensions of a video track: the config's, or (H.264) the SPS's when the
/// config says 0.
pub fn video_dimensions(v: &VideoConfig) -> (u16, u16) {
    if v.width != 0 && v.height != 0 {
        return (v.width, v.height);
    }
    if v.codec == Codec::H264
        && let Ok((sps, _)) = parse_avcc(&v.record)
        && let Some(Ok(info)) = sps.first().map(|s| parse_sps(s))
    {
        let w = u16::try_from(info.width).unwrap_or(u16::MAX);
        let h = u16::try_from(info.height).unwrap_or(u16::MAX);
        return (w, h);
    }
    (v.width, v.height)
}

/// Writes the visual sample entry for `v`.
pub(crate) fn write_video(w: &mut BoxWriter, v: &VideoConfig) {
    let (kind, config_box) = match v.codec {
        Codec::H265 => (*b"hvc1", *b"hvcC"),
        Codec::Av1 => (*b"av01", *b"av1C"),
        _ => (*b"avc1", *b"avcC"),
    };
    let (width, height) = video_dimensions(v);
    w.begin(kind);
    w.zeros(6); // reserved
    w.u16(1); // data_reference_index
    w.u16(0); // pre_defined
    w.u16(0); // reserved
    w.zeros(12); // pre_defined
    w.u16(width);
    w.u16(height);
    w.u32(0x0048_0000); // horizresolution 72 dpi
    w.u32(0x0048_0000); // vertresolution 72 dpi
    w.u32(0); // reserved
    w.u16(1); // frame_count
    w.zeros(32); // compressorname
    w.u16(0x0018); // depth
    w.u16(0xffff); // pre_defined = -1
    w.begin(config_box);
    w.bytes(&v.record);
    w.end();
    w.end();
}

/// Writes the audio sample entry for `a`.
pub(crate) fn write_audio(w: &mut BoxWriter, a: &AudioConfig) {
    match a.codec {
        Codec::Opus => write_opus(w, a),
        _ => write_mp4a(w, a),
    }
}

fn audio_entry_header(w: &mut BoxWriter, kind: [u8; 4], channels: u8, rate: u32) {
    w.begin(kind);
    w.zeros(6); // reserved
    w.u16(1); // data_reference_index
    w.zeros(8); // reserved
    w.u16(u16::from(channels.max(1)));
    w.u16(16); // samplesize
    w.u16(0); // pre_defined
    w.u16(0); // reserved
    // 16.16 fixed point; rates above 65535 Hz do not fit and are written as 0.
    w.u32(if rate <= 0xffff { rate << 16 } else { 0 });
}

fn write_mp4a(w: &mut BoxWriter, a: &AudioConfig) {
    let asc = if AacConfig::parse(&a.record).is_ok() {
        a.record.to_vec()
    } else {
        default_asc(a.sample_rate, a.channels).to_vec()
    };
    audio_entry_header(w, *b"mp4a", a.channels, a.sample_rate);
    w.begin_full(*b"esds", 0, 0);
    // DecSpecificInfo, DecoderConfigDescriptor and SLConfigDescriptor, innermost first.
    let mut dsi = Vec::new();
    descriptor(&mut dsi, 0x05, &asc);
    let mut dcd_body = vec![0x40, 0x15]; // objectTypeIndication (AAC), streamType audio << 2 | 1
    dcd_body.extend_from_slice(&[0, 0, 0]); // bufferSizeDB
    dcd_body.extend_from_slice(&0u32.to_be_bytes()); // maxBitrate
    dcd_body.extend_from_slice(&0u32.to_be_bytes()); // avgBitrate
    dcd_body.extend_from_slice(&dsi);
    let mut es_body = vec![0, 0, 0]; // ES_ID, flags
    descriptor(&mut es_body, 0x04, &dcd_body);
    descriptor(&mut es_body, 0x06, &[0x02]); // SLConfigDescriptor: predefined MP4
    let mut es = Vec::new();
    descriptor(&mut es, 0x03, &es_body);
    w.bytes(&es);
    w.end();
    w.end();
}

/// An MPEG-4 descriptor: tag, expandable size (7 bits per byte), body.
fn descriptor(out: &mut Vec<u8>, tag: u8, body: &[u8]) {
    out.push(tag);
    let len = body.len();
    let mut groups = Vec::with_capacity(4);
    let mut n = len;
    loop {
        groups.push((n & 0x7f) as u8);
        n >>= 7;
        if n == 0 {
            break;
        }
    }
    for (i, g) in groups.iter().enumerate().rev() {
        out.push(if i == 0 { *g } else { g | 0x80 });
    }
    out.extend_from_slice(body);
}

/// An AAC-LC AudioSpecificConfig for a rate and channel count (when the record is unusable).
pub(crate) fn default_asc(rate: u32, channels: u8) -> [u8; 2] {
    let idx = AAC_RATES.iter().position(|&r| r == rate).unwrap_or(4) as u16;
    let v: u16 = (2 << 11) | (idx << 7) | (u16::from(channels.min(7)) << 3);
    v.to_be_bytes()
}

fn write_opus(w: &mut BoxWriter, a: &AudioConfig) {
    let head = OpusHead::parse(&a.record).unwrap_or(OpusHead {
        channels: if a.channels == 0 { 2 } else { a.channels },
        pre_skip: 312,
        input_rate: 48_000,
        gain: 0,
        family: 0,
        mapping: Vec::new(),
    });
    audio_entry_header(w, *b"Opus", head.channels, 48_000);
    w.begin(*b"dOps");
    w.u8(0); // version
    w.u8(head.channels);
    w.u16(head.pre_skip);
    w.u32(head.input_rate);
    w.u16(head.gain as u16);
    w.u8(head.family);
    w.bytes(&head.mapping);
    w.end();
    w.end();
}

/// The fields of an `OpusHead` (RFC 7845 5.1) that `dOps` repeats.
struct OpusHead {
    channels: u8,
    pre_skip: u16,
    input_rate: u32,
    gain: i16,
    family: u8,
    /// Stream count, coupled count and channel mapping (family != 0 only).
    mapping: Vec<u8>,
}

impl OpusHead {
    fn parse(d: &[u8]) -> Option<Self> {
        if d.len() < 19 || &d[..8] != b"OpusHead" {
            return None;
        }
        let channels = d[9];
        let family = d[18];
        let mapping = if family == 0 {
            Vec::new()
        } else {
            d.get(19..21 + usize::from(channels))?.to_vec()
        };
        Some(Self {
            channels,
            pre_skip: u16::from_le_bytes([d[10], d[11]]),
            input_rate: u32::from_le_bytes([d[12], d[13], d[14], d[15]]),
            gain: i16::from_le_bytes([d[16], d[17]]),
            family,
            mapping,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptor_sizes_use_expandable_encoding() {
        let mut out = Vec::new();
        descriptor(&mut out, 5, &[1, 2]);
        assert_eq!(out, [5, 2, 1, 2]);
        let mut out = Vec::new();
        descriptor(&mut out, 4, &[0; 200]);
        assert_eq!(&out[..3], &[4, 0x81, 0x48]);
        assert_eq!(out.len(), 203);
    }

    #[test]
    fn default_asc_is_aac_lc() {
        assert_eq!(default_asc(44_100, 2), [0x12, 0x10]);
        assert_eq!(default_asc(48_000, 2), [0x11, 0x90]);
    }

    #[test]
    fn opus_head_parses_and_rejects_garbage() {
        let mut h = b"OpusHead".to_vec();
        h.extend_from_slice(&[1, 2, 0x38, 0x01, 0x80, 0xbb, 0, 0, 0, 0, 0]);
        let p = OpusHead::parse(&h).expect("valid");
        assert_eq!((p.channels, p.pre_skip, p.input_rate), (2, 312, 48_000));
        assert!(OpusHead::parse(&h[..18]).is_none());
        h[18] = 1; // mapping family 1 needs a table
        assert!(OpusHead::parse(&h).is_none());
    }
}
