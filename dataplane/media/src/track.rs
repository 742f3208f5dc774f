//! Track configurations: what a decoder needs before the first frame.

use bytes::Bytes;

/// Codecs the bus carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// H.264 / AVC; config record is an `AVCDecoderConfigurationRecord` (avcC).
    H264,
    /// H.265 / HEVC; config record is an `HEVCDecoderConfigurationRecord` (hvcC).
    H265,
    /// AV1; config record is an `AV1CodecConfigurationRecord` (av1C).
    Av1,
    /// AAC; config record is an `AudioSpecificConfig`.
    Aac,
    /// Opus; config record is an `OpusHead` (may be empty: defaults apply).
    Opus,
}

impl Codec {
    /// True for video codecs.
    pub fn is_video(self) -> bool {
        matches!(self, Codec::H264 | Codec::H265 | Codec::Av1)
    }
}

/// A video track's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoConfig {
    /// The codec.
    pub codec: Codec,
    /// Coded width in pixels (0 when unknown).
    pub width: u16,
    /// Coded height in pixels (0 when unknown).
    pub height: u16,
    /// The decoder configuration record (avcC / hvcC / av1C body, without box header).
    pub record: Bytes,
}

/// An audio track's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioConfig {
    /// The codec.
    pub codec: Codec,
    /// Sample rate in Hz (the output sample rate for AAC with SBR).
    pub sample_rate: u32,
    /// Channel count.
    pub channels: u8,
    /// The decoder configuration record (AudioSpecificConfig / OpusHead).
    pub record: Bytes,
}

/// A track configuration on the bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrackConfig {
    /// Video.
    Video(VideoConfig),
    /// Audio.
    Audio(AudioConfig),
}

impl TrackConfig {
    /// The codec of this track.
    pub fn codec(&self) -> Codec {
        match self {
            TrackConfig::Video(v) => v.codec,
            TrackConfig::Audio(a) => a.codec,
        }
    }

    /// The RFC 6381 `CODECS` string for this track (`avc1.64001f`, `mp4a.40.2`, …).
    pub fn codec_string(&self) -> String {
        match self {
            TrackConfig::Video(v) => match v.codec {
                Codec::H264 if v.record.len() >= 4 => format!(
                    "avc1.{:02x}{:02x}{:02x}",
                    v.record[1], v.record[2], v.record[3]
                ),
                Codec::H264 => "avc1.42e01e".to_owned(),
                Codec::H265 => hevc_codec_string(&v.record),
                Codec::Av1 => av1_codec_string(&v.record),
                Codec::Aac | Codec::Opus => "unknown".to_owned(),
            },
            TrackConfig::Audio(a) => match a.codec {
                Codec::Aac => {
                    let aot = crate::AacConfig::parse(&a.record)
                        .map(|c| c.object_type)
                        .unwrap_or(2);
                    format!("mp4a.40.{aot}")
                }
                Codec::Opus => "opus".to_owned(),
                _ => "unknown".to_owned(),
            },
        }
    }
}

/// `hvc1.<profile>.<compat>.<tier><level>.<constraints>` from an hvcC record.
fn hevc_codec_string(r: &[u8]) -> String {
    if r.len() < 13 {
        return "hvc1.1.6.L93.B0".to_owned();
    }
    let space = match r[1] >> 6 {
        1 => "A",
        2 => "B",
        3 => "C",
        _ => "",
    };
    let profile = r[1] & 0x1f;
    let tier = if r[1] & 0x20 != 0 { 'H' } else { 'L' };
    let compat = u32::from_be_bytes([r[2], r[3], r[4], r[5]]).reverse_bits();
    let level = r[12];
    let mut constraints: Vec<u8> = r[6..12].to_vec();
    while constraints.len() > 1 && constraints.last() == Some(&0) {
        constraints.pop();
    }
    let cons: Vec<String> = constraints.iter().map(|b| format!("{b:X}")).collect();
    format!(
        "hvc1.{space}{profile}.{compat:X}.{tier}{level}.{}",
        cons.join(".")
    )
}

/// `av01.<profile>.<level><tier>.<bitdepth>` from an av1C record.
fn av1_codec_string(r: &[u8]) -> String {
    if r.len() < 3 {
        return "av01.0.08M.08".to_owned();
    }
    let profile = r[1] >> 5;
    let level = r[1] & 0x1f;
    let tier = if r[2] & 0x80 != 0 { 'H' } else { 'M' };
    let high_bitdepth = r[2] & 0x40 != 0;
    let twelve_bit = r[2] & 0x20 != 0;
    let depth = match (high_bitdepth, twelve_bit) {
        (true, true) => 12,
        (true, false) => 10,
        _ => 8,
    };
    format!("av01.{profile}.{level:02}{tier}.{depth:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn avc_codec_string_comes_from_the_record() {
        let t = TrackConfig::Video(VideoConfig {
            codec: Codec::H264,
            width: 1280,
            height: 720,
            record: Bytes::from_static(&[1, 0x64, 0x00, 0x1f, 0xff]),
        });
        assert_eq!(t.codec_string(), "avc1.64001f");
    }

    #[test]
    fn aac_codec_string_names_the_object_type() {
        let t = TrackConfig::Audio(AudioConfig {
            codec: Codec::Aac,
            sample_rate: 44_100,
            channels: 2,
            record: Bytes::from_static(&[0x12, 0x10]),
        });
        assert_eq!(t.codec_string(), "mp4a.40.2");
    }

    #[test]
    fn av1_codec_string() {
        let t = TrackConfig::Video(VideoConfig {
            codec: Codec::Av1,
            width: 0,
            height: 0,
            record: Bytes::from_static(&[0x81, 0x08, 0x0c, 0x00]),
        });
        assert_eq!(t.codec_string(), "av01.0.08M.08");
    }
}
