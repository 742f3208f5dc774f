//! H.264 between RTP's Annex B access units and the bus's AVCC samples.
//!
//! str0m depacketizes to Annex B (start codes) and packetizes from Annex B; the bus and
//! every packager carry 4-byte length-prefixed NAL units with the parameter sets in an
//! `AVCDecoderConfigurationRecord`. [`AvcAssembler`] turns received access units into bus
//! samples and notices parameter-set changes; [`annexb_from_avcc`] goes the other way and
//! puts SPS/PPS in front of every IDR (browsers need them in-band).

use bytes::Bytes;
use weir_media::{parse_avcc, parse_sps};

/// NAL unit types used here.
const NAL_IDR: u8 = 5;
const NAL_SPS: u8 = 7;
const NAL_PPS: u8 = 8;
const NAL_AUD: u8 = 9;

/// Largest parameter set kept (real ones are tens of bytes).
const MAX_PARAMETER_SET: usize = 1024;

/// Splits an Annex B buffer into its NAL units (without start codes). Bytes before the
/// first start code are ignored; a buffer without any start code is one NAL unit.
pub fn annexb_nals(data: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            starts.push((i, i + 3));
            i += 3;
        } else {
            i += 1;
        }
    }
    if starts.is_empty() {
        return if data.is_empty() { vec![] } else { vec![data] };
    }
    let mut nals = Vec::with_capacity(starts.len());
    for (k, &(_, begin)) in starts.iter().enumerate() {
        let mut end = starts.get(k + 1).map_or(data.len(), |&(s, _)| s);
        // A 4-byte start code leaves its leading zero on the previous unit.
        while end > begin && data[end - 1] == 0 {
            end -= 1;
        }
        if end > begin {
            nals.push(&data[begin..end]);
        }
    }
    nals
}

/// A received access unit in bus form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvcSample {
    /// 4-byte length-prefixed NAL units (no SPS/PPS/AUD).
    pub data: Bytes,
    /// Contains an IDR slice.
    pub keyframe: bool,
}

/// New decoder configuration seen in the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvcConfig {
    /// The `AVCDecoderConfigurationRecord`.
    pub record: Bytes,
    /// Display width from the SPS.
    pub width: u16,
    /// Display height from the SPS.
    pub height: u16,
}

/// Turns Annex B access units into AVCC samples, tracking SPS/PPS.
#[derive(Debug, Default)]
pub struct AvcAssembler {
    sps: Option<Vec<u8>>,
    pps: Option<Vec<u8>>,
    announced: Option<Bytes>,
}

impl AvcAssembler {
    /// A fresh assembler (no parameter sets yet).
    pub fn new() -> Self {
        Self::default()
    }

    /// Converts one access unit. Returns the sample (None when it held only parameter
    /// sets) and a new configuration when the parameter sets changed.
    pub fn push(&mut self, annexb: &[u8]) -> (Option<AvcSample>, Option<AvcConfig>) {
        let mut out = Vec::with_capacity(annexb.len() + 16);
        let mut keyframe = false;
        for nal in annexb_nals(annexb) {
            let Some(&header) = nal.first() else { continue };
            match header & 0x1f {
                NAL_SPS if nal.len() <= MAX_PARAMETER_SET => self.sps = Some(nal.to_vec()),
                NAL_PPS if nal.len() <= MAX_PARAMETER_SET => self.pps = Some(nal.to_vec()),
                NAL_SPS | NAL_PPS | NAL_AUD => {}
                t => {
                    keyframe |= t == NAL_IDR;
                    out.extend_from_slice(&(nal.len() as u32).to_be_bytes());
                    out.extend_from_slice(nal);
                }
            }
        }
        let config = self.config_if_changed();
        let sample = (!out.is_empty()).then(|| AvcSample {
            data: Bytes::from(out),
            keyframe,
        });
        (sample, config)
    }

    fn config_if_changed(&mut self) -> Option<AvcConfig> {
        let (sps, pps) = (self.sps.as_deref()?, self.pps.as_deref()?);
        let record = avcc_record(sps, pps)?;
        if self.announced.as_ref() == Some(&record) {
            return None;
        }
        let info = parse_sps(sps).ok()?;
        self.announced = Some(record.clone());
        Some(AvcConfig {
            record,
            width: u16::try_from(info.width).unwrap_or(u16::MAX),
            height: u16::try_from(info.height).unwrap_or(u16::MAX),
        })
    }
}

/// Builds an `AVCDecoderConfigurationRecord` from one SPS and one PPS.
pub fn avcc_record(sps: &[u8], pps: &[u8]) -> Option<Bytes> {
    if sps.len() < 4 || pps.is_empty() || sps.len() > 0xffff || pps.len() > 0xffff {
        return None;
    }
    let mut r = Vec::with_capacity(11 + sps.len() + pps.len());
    r.extend_from_slice(&[1, sps[1], sps[2], sps[3], 0xff, 0xe1]);
    r.extend_from_slice(&(sps.len() as u16).to_be_bytes());
    r.extend_from_slice(sps);
    r.push(1);
    r.extend_from_slice(&(pps.len() as u16).to_be_bytes());
    r.extend_from_slice(pps);
    Some(Bytes::from(r))
}

/// Converts an AVCC sample to Annex B; with `record`, its SPS/PPS go first (pass it for
/// key frames). Truncated length prefixes end the conversion at the last whole unit.
pub fn annexb_from_avcc(sample: &[u8], record: Option<&[u8]>) -> Vec<u8> {
    const START: [u8; 4] = [0, 0, 0, 1];
    let mut out = Vec::with_capacity(sample.len() + 64);
    if let Some((sps, pps)) = record.and_then(|r| parse_avcc(r).ok()) {
        for ps in sps.iter().chain(pps.iter()) {
            out.extend_from_slice(&START);
            out.extend_from_slice(ps);
        }
    }
    let mut p = sample;
    while p.len() >= 4 {
        let len = u32::from_be_bytes([p[0], p[1], p[2], p[3]]) as usize;
        let Some(nal) = p.get(4..4 + len) else { break };
        if nal.first().is_some_and(|h| h & 0x1f != NAL_AUD) {
            out.extend_from_slice(&START);
            out.extend_from_slice(nal);
        }
        p = &p[4 + len..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // A 320x240 baseline SPS and a PPS (from x264).
    const SPS: &[u8] = &[
        0x67, 0x42, 0xc0, 0x0b, 0xd9, 0x01, 0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10,
        0x00, 0x00, 0x03, 0x00, 0x20, 0xf1, 0x42, 0xa4, 0x80,
    ];
    const PPS: &[u8] = &[0x68, 0xcb, 0x83, 0xcb, 0x20];

    fn annexb(nals: &[&[u8]]) -> Vec<u8> {
        let mut v = Vec::new();
        for (i, n) in nals.iter().enumerate() {
            v.extend_from_slice(if i % 2 == 0 {
                &[0, 0, 0, 1]
            } else {
                &[0, 0, 1]
            });
            v.extend_from_slice(n);
        }
        v
    }

    #[test]
    fn splits_three_and_four_byte_start_codes() {
        let buf = annexb(&[SPS, PPS, &[0x65, 1, 2, 0]]);
        let nals = annexb_nals(&buf);
        assert_eq!(nals.len(), 3);
        assert_eq!(nals[0], SPS);
        assert_eq!(nals[1], PPS);
        // Trailing zero bytes are never part of a NAL unit (trailing_zero_8bits).
        assert_eq!(nals[2], &[0x65, 1, 2]);
        assert_eq!(annexb_nals(&[0x41, 9]), vec![&[0x41u8, 9][..]]);
        assert!(annexb_nals(&[]).is_empty());
    }

    #[test]
    fn assembles_config_then_samples_and_round_trips() {
        let mut a = AvcAssembler::new();
        let idr: &[u8] = &[0x65, 0x88, 0x84, 0x21];
        let (sample, config) = a.push(&annexb(&[&[0x09, 0xf0], SPS, PPS, idr]));
        let config = config.expect("config on first SPS/PPS");
        assert_eq!((config.width, config.height), (320, 240));
        let sample = sample.expect("a sample");
        assert!(sample.keyframe);
        assert_eq!(&sample.data[..], &[0, 0, 0, 4, 0x65, 0x88, 0x84, 0x21]);
        // Same parameter sets again: no new config.
        let (_, again) = a.push(&annexb(&[SPS, PPS, idr]));
        assert!(again.is_none());
        let (p, none) = a.push(&annexb(&[&[0x41, 0x9a, 1]]));
        assert!(none.is_none());
        assert!(!p.expect("p frame").keyframe);
        // Back to Annex B with the parameter sets first.
        let back = annexb_from_avcc(&sample.data, Some(&config.record));
        assert_eq!(annexb_nals(&back), vec![SPS, PPS, idr]);
    }

    #[test]
    fn truncated_avcc_stops_cleanly() {
        let out = annexb_from_avcc(&[0, 0, 0, 9, 0x65, 1], None);
        assert!(out.is_empty());
        let out = annexb_from_avcc(&[0, 0, 0, 2, 0x41, 1, 0, 0], None);
        assert_eq!(out, vec![0, 0, 0, 1, 0x41, 1]);
    }
}
