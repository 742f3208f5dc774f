//! AAC AudioSpecificConfig (ISO 14496-3 1.6.2.1).

use crate::bits::{BitReader, BitsError};

/// Errors reading an AudioSpecificConfig.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AacConfigError {
    /// The config ended early.
    #[error("AudioSpecificConfig truncated")]
    Truncated(#[from] BitsError),
    /// Reserved sampling frequency index.
    #[error("reserved sampling frequency index {0}")]
    SampleRate(u32),
}

const RATES: [u32; 13] = [
    96_000, 88_200, 64_000, 48_000, 44_100, 32_000, 24_000, 22_050, 16_000, 12_000, 11_025, 8_000,
    7_350,
];

/// The fields of an AudioSpecificConfig that packagers need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AacConfig {
    /// Audio object type (2 = AAC-LC, 5 = SBR, 29 = PS).
    pub object_type: u8,
    /// Core sampling rate in Hz.
    pub sample_rate: u32,
    /// Channel configuration (0 = defined in-band).
    pub channels: u8,
}

impl AacConfig {
    /// Parses the leading fields of an AudioSpecificConfig.
    pub fn parse(data: &[u8]) -> Result<Self, AacConfigError> {
        let mut r = BitReader::new(data);
        let mut object_type = r.bits(5)?;
        if object_type == 31 {
            object_type = 32 + r.bits(6)?;
        }
        let idx = r.bits(4)?;
        let sample_rate = if idx == 15 {
            r.bits(24)?
        } else {
            *RATES
                .get(idx as usize)
                .ok_or(AacConfigError::SampleRate(idx))?
        };
        let channels = r.bits(4)? as u8;
        Ok(Self {
            object_type: object_type.min(255) as u8,
            sample_rate,
            channels,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lc_stereo_44k1() {
        let c = AacConfig::parse(&[0x12, 0x10]).expect("valid");
        assert_eq!(
            c,
            AacConfig {
                object_type: 2,
                sample_rate: 44_100,
                channels: 2
            }
        );
        assert!(AacConfig::parse(&[0x12]).is_err());
        assert!(AacConfig::parse(&[0x16, 0x90]).is_err());
    }
}
