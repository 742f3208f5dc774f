//! AAC in ADTS (stream type 0x0F): the frames of a PES become raw AAC bus frames, and
//! the ADTS header becomes the AudioSpecificConfig.
//!
//! A PES may hold several ADTS frames: frame `i` gets `pts = PES pts + i × 1024 ×
//! 90000 / sample_rate` (computed from the PES pts, so rounding never accumulates). A
//! PES without a PTS continues where the previous one ended. CRC-protected frames (9-byte
//! header) are handled; the CRC is not verified. Frames with an in-band channel layout
//! (channel configuration 0) or several raw data blocks are dropped as unsupported.

use bytes::Bytes;
use weir_media::{AudioConfig, Codec, TrackConfig, TrackId};

use crate::error::{AuError, DropReason};
use crate::es::Unit;
use crate::pes::PesPacket;
use crate::timestamp::{TS_MASK, advance};

/// Sample rates by `sampling_frequency_index`.
const RATES: [u32; 13] = [
    96_000, 88_200, 64_000, 48_000, 44_100, 32_000, 24_000, 22_050, 16_000, 12_000, 11_025, 8_000,
    7_350,
];

/// Samples per AAC frame.
const FRAME_SAMPLES: u64 = 1024;

/// An ADTS header's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Header {
    header_len: usize,
    frame_len: usize,
    object_type: u8,
    rate_index: u8,
    channels: u8,
    raw_blocks: u8,
}

/// Reads the ADTS header at the start of `b`; `None` if there is no valid one.
fn header(b: &[u8]) -> Option<Header> {
    let b = b.get(..7)?;
    // Syncword 0xFFF and layer 00 (the MPEG version bit may be either).
    if b[0] != 0xff || b[1] & 0xf6 != 0xf0 {
        return None;
    }
    let protection_absent = b[1] & 1 != 0;
    let h = Header {
        header_len: if protection_absent { 7 } else { 9 },
        frame_len: usize::from(b[3] & 0x03) << 11 | usize::from(b[4]) << 3 | usize::from(b[5] >> 5),
        object_type: (b[2] >> 6) + 1,
        rate_index: (b[2] >> 2) & 0x0f,
        channels: (b[2] & 1) << 2 | b[3] >> 6,
        raw_blocks: b[6] & 0x03,
    };
    (usize::from(h.rate_index) < RATES.len() && h.frame_len >= h.header_len).then_some(h)
}

/// One AAC track's state.
#[derive(Debug, Default)]
pub(crate) struct AacTrack {
    /// The AudioSpecificConfig last announced.
    announced: Option<[u8; 2]>,
    /// Where the next frame would start when a PES carries no PTS.
    next_pts: Option<u64>,
}

impl AacTrack {
    /// Turns one PES into units.
    pub fn access_unit(&mut self, track: TrackId, pes: PesPacket, out: &mut Vec<Unit>) {
        let Some(base) = pes.pts.or(self.next_pts) else {
            out.push(drop(track, AuError::NoTimestamp));
            return;
        };
        let data = &pes.payload;
        let mut p = 0;
        let mut index = 0u64;
        let mut unsupported = false;
        while p < data.len() {
            let Some(h) = header(&data[p..]).filter(|h| h.frame_len <= data.len() - p) else {
                out.push(drop(track, AuError::Adts));
                break;
            };
            let rate = RATES[usize::from(h.rate_index)];
            let pts = advance(base, index * FRAME_SAMPLES, rate);
            index += 1;
            self.next_pts = Some(advance(base, index * FRAME_SAMPLES, rate));
            let raw = pes.payload.slice(p + h.header_len..p + h.frame_len);
            p += h.frame_len;
            if h.channels == 0 || h.raw_blocks > 0 {
                unsupported = true;
                continue;
            }
            if raw.is_empty() {
                continue;
            }
            let asc = [
                h.object_type << 3 | h.rate_index >> 1,
                (h.rate_index & 1) << 7 | h.channels << 3,
            ];
            if self.announced != Some(asc) {
                self.announced = Some(asc);
                out.push(Unit::Config(TrackConfig::Audio(AudioConfig {
                    codec: Codec::Aac,
                    sample_rate: rate,
                    channels: if h.channels == 7 { 8 } else { h.channels },
                    record: Bytes::copy_from_slice(&asc),
                })));
            }
            out.push(Unit::Frame {
                dts: pts & TS_MASK,
                pts: pts & TS_MASK,
                keyframe: true,
                data: raw,
            });
        }
        if unsupported {
            out.push(drop(track, AuError::AdtsUnsupported));
        }
    }
}

fn drop(track: TrackId, error: AuError) -> Unit {
    Unit::Dropped(DropReason::AccessUnit { track, error })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testmux::adts;

    fn frames(out: &[Unit]) -> Vec<(u64, Vec<u8>)> {
        out.iter()
            .filter_map(|u| match u {
                Unit::Frame { pts, data, .. } => Some((*pts, data.to_vec())),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn several_frames_per_pes_get_their_own_pts() {
        let mut payload = adts(3, 2, &[1, 2, 3], false);
        payload.extend(adts(3, 2, &[4, 5], true));
        payload.extend(adts(3, 2, &[6], false));
        let mut t = AacTrack::default();
        let mut out = Vec::new();
        let base = (1 << 33) - 1920;
        t.access_unit(
            TrackId::AUDIO,
            PesPacket {
                pts: Some(base),
                dts: None,
                payload: Bytes::from(payload),
            },
            &mut out,
        );
        let Unit::Config(TrackConfig::Audio(a)) = &out[0] else {
            panic!("{out:?}")
        };
        assert_eq!(
            (a.sample_rate, a.channels, &a.record[..]),
            (48_000, 2, &[0x11, 0x90][..])
        );
        assert_eq!(
            frames(&out),
            vec![(base, vec![1, 2, 3]), (0, vec![4, 5]), (1920, vec![6])]
        );
        // A PES without PTS continues; a new config when the rate changes.
        out.clear();
        t.access_unit(
            TrackId::AUDIO,
            PesPacket {
                pts: None,
                dts: None,
                payload: Bytes::from(adts(4, 1, &[7], false)),
            },
            &mut out,
        );
        assert!(
            matches!(&out[0], Unit::Config(TrackConfig::Audio(a)) if a.sample_rate == 44_100 && a.channels == 1)
        );
        assert_eq!(frames(&out), vec![(3840, vec![7])]);
    }

    #[test]
    fn malformed_and_unsupported_frames() {
        let mut t = AacTrack::default();
        let mut out = Vec::new();
        let mut payload = adts(3, 2, &[1], false);
        payload.extend(adts(3, 0, &[2], false));
        payload.extend(adts(3, 2, &[3, 3, 3], false));
        payload.truncate(payload.len() - 1);
        let pes = |payload: Vec<u8>| PesPacket {
            pts: Some(0),
            dts: None,
            payload: Bytes::from(payload),
        };
        t.access_unit(TrackId::AUDIO, pes(payload), &mut out);
        assert_eq!(frames(&out), vec![(0, vec![1])]);
        let errors: Vec<_> = out
            .iter()
            .filter_map(|u| match u {
                Unit::Dropped(DropReason::AccessUnit { error, .. }) => Some(*error),
                _ => None,
            })
            .collect();
        assert_eq!(errors, vec![AuError::Adts, AuError::AdtsUnsupported]);
        out.clear();
        t.access_unit(TrackId::AUDIO, pes(vec![0xff, 0xf1, 0x3c]), &mut out);
        assert!(frames(&out).is_empty());
        let mut n = AacTrack::default();
        n.access_unit(
            TrackId::AUDIO,
            PesPacket {
                pts: None,
                dts: None,
                payload: Bytes::new(),
            },
            &mut out,
        );
        assert!(matches!(out.last(), Some(Unit::Dropped(_))));
    }
}
