//! Opus in MPEG-TS (stream type 0x06 with a registration descriptor `Opus`, as ffmpeg
//! writes it; the Xiph/ETSI mapping): every access unit starts with a control header,
//!
//! ```text
//! control_header_prefix 11 bits 0x3ff | start_trim_flag | end_trim_flag |
//! control_extension_flag | 2 reserved | au_size as 0xFF runs plus a last byte < 255 |
//! [start_trim 16] [end_trim 16] [control_extension_length 8, that many bytes]
//! ```
//!
//! followed by `au_size` bytes of one Opus packet. A PES may hold several; each gets the
//! PES pts plus the durations (from the TOC byte, RFC 6716 §3.1) of those before it. The
//! trims are not applied. The `OpusHead` comes from the `channel_config_code` of the DVB
//! extension descriptor (tag 0x7f, extension tag 0x80); without one: stereo, 48 kHz.
//! Codes above 8 (explicit mappings) are not supported and fall back to stereo.

use bytes::Bytes;
use weir_media::{AudioConfig, Codec, TrackConfig, TrackId};

use crate::error::{AuError, DropReason};
use crate::es::Unit;
use crate::pes::PesPacket;
use crate::timestamp::advance;

/// Opus always runs at 48 kHz.
const OPUS_RATE: u32 = 48_000;

/// The `OpusHead` (RFC 7845 §5.1) for an Opus-in-TS `channel_config_code`, and the channel
/// count. Stream counts and channel orders as ffmpeg maps them.
pub(crate) fn opus_head(channel_config: Option<u8>) -> (Bytes, u8) {
    const STREAMS: [u8; 9] = [2, 1, 1, 2, 2, 3, 4, 4, 5];
    const COUPLED: [u8; 9] = [0, 0, 1, 1, 2, 2, 2, 3, 3];
    const MAPS: [&[u8]; 8] = [
        &[0],
        &[0, 1],
        &[0, 2, 1],
        &[0, 1, 2, 3],
        &[0, 4, 1, 2, 3],
        &[0, 4, 1, 2, 3, 5],
        &[0, 4, 1, 2, 3, 5, 6],
        &[0, 6, 1, 2, 3, 4, 5, 7],
    ];
    let code = channel_config.filter(|&c| c <= 8).unwrap_or(2);
    let channels = if code == 0 { 2 } else { code };
    let mut head = b"OpusHead".to_vec();
    head.extend([1, channels]);
    head.extend(0u16.to_le_bytes()); // pre-skip: not carried in TS
    head.extend(OPUS_RATE.to_le_bytes());
    head.extend(0i16.to_le_bytes()); // output gain
    match code {
        1 | 2 => head.push(0), // mapping family 0: no table
        _ => {
            let i = usize::from(code);
            // Dual mono (code 0) is family 255 with two uncoupled streams.
            head.push(if code == 0 { 255 } else { 1 });
            head.extend([STREAMS[i], COUPLED[i]]);
            head.extend_from_slice(MAPS[usize::from(channels) - 1]);
        }
    }
    (Bytes::from(head), channels)
}

/// Samples (at 48 kHz) in an Opus packet, from its TOC byte; `None` if malformed.
fn packet_samples(packet: &[u8]) -> Option<u64> {
    let toc = *packet.first()?;
    let config = toc >> 3;
    let frame = match config {
        0..=11 => [480, 960, 1920, 2880][usize::from(config % 4)],
        12..=15 => [480, 960][usize::from(config % 2)],
        _ => [120, 240, 480, 960][usize::from(config % 4)],
    };
    let frames = match toc & 3 {
        0 => 1,
        1 | 2 => 2,
        _ => u64::from(packet.get(1)? & 0x3f),
    };
    let total = frame * frames;
    // At most 120 ms a packet.
    (frames > 0 && total <= 5760).then_some(total)
}

/// One access unit's control header: (header length, au_size).
fn control_header(b: &[u8]) -> Option<(usize, usize)> {
    if b.len() < 2 || u16::from_be_bytes([b[0], b[1]]) >> 5 != 0x3ff {
        return None;
    }
    let flags = b[1];
    let mut p = 2;
    let mut size = 0usize;
    loop {
        let byte = *b.get(p)?;
        p += 1;
        size += usize::from(byte);
        if byte != 0xff {
            break;
        }
    }
    if flags & 0x10 != 0 {
        p += 2; // start_trim
    }
    if flags & 0x08 != 0 {
        p += 2; // end_trim
    }
    if flags & 0x04 != 0 {
        p += 1 + usize::from(*b.get(p)?);
    }
    Some((p, size))
}

/// One Opus track's state.
#[derive(Debug)]
pub(crate) struct OpusTrack {
    config: AudioConfig,
    announced: bool,
    next_pts: Option<u64>,
}

impl OpusTrack {
    /// A track with the PMT's channel configuration code, if it had one.
    pub fn new(channel_config: Option<u8>) -> Self {
        let (record, channels) = opus_head(channel_config);
        Self {
            config: AudioConfig {
                codec: Codec::Opus,
                sample_rate: OPUS_RATE,
                channels,
                record,
            },
            announced: false,
            next_pts: None,
        }
    }

    /// Turns one PES into units.
    pub fn access_unit(&mut self, track: TrackId, pes: PesPacket, out: &mut Vec<Unit>) {
        let Some(base) = pes.pts.or(self.next_pts) else {
            out.push(drop(track, AuError::NoTimestamp));
            return;
        };
        let data = &pes.payload;
        let mut p = 0;
        let mut elapsed = 0u64;
        while p < data.len() {
            let rest = &data[p..];
            let Some((header, size)) = control_header(rest) else {
                out.push(drop(track, AuError::Opus));
                break;
            };
            let Some(samples) = rest
                .get(header..header.saturating_add(size))
                .and_then(packet_samples)
            else {
                out.push(drop(track, AuError::Opus));
                break;
            };
            let pts = advance(base, elapsed, OPUS_RATE);
            elapsed += samples;
            self.next_pts = Some(advance(base, elapsed, OPUS_RATE));
            if !self.announced {
                self.announced = true;
                out.push(Unit::Config(TrackConfig::Audio(self.config.clone())));
            }
            out.push(Unit::Frame {
                dts: pts,
                pts,
                keyframe: true,
                data: pes.payload.slice(p + header..p + header + size),
            });
            p += header + size;
        }
    }
}

fn drop(track: TrackId, error: AuError) -> Unit {
    Unit::Dropped(DropReason::AccessUnit { track, error })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A control header (with a start trim) and an Opus packet of `len` bytes.
    fn opus_au(toc: u8, len: usize, trim: bool) -> Vec<u8> {
        let mut v = vec![0x7f, if trim { 0xf0 } else { 0xe0 }];
        let mut n = len;
        while n >= 255 {
            v.push(0xff);
            n -= 255;
        }
        v.push(n as u8);
        if trim {
            v.extend([0, 0x10]);
        }
        v.push(toc);
        v.extend(std::iter::repeat_n(0xab, len - 1));
        v
    }

    #[test]
    fn opus_heads() {
        let (head, ch) = opus_head(None);
        assert_eq!(ch, 2);
        assert_eq!(
            &head[..],
            b"OpusHead\x01\x02\x00\x00\x80\xbb\x00\x00\x00\x00\x00"
        );
        let (head, ch) = opus_head(Some(6));
        assert_eq!(ch, 6);
        assert_eq!(&head[18..], &[1, 4, 2, 0, 4, 1, 2, 3, 5]);
        let (head, ch) = opus_head(Some(0));
        assert_eq!((ch, &head[18..]), (2, &[255, 2, 0, 0, 1][..]));
        assert_eq!(opus_head(Some(0x81)).1, 2);
    }

    #[test]
    fn several_packets_per_pes() {
        // CELT 20 ms (config 31, code 0), then 2 × 20 ms SILK (config 1, code 1) over 255
        // bytes (a 0xFF run in au_size), then CELT again.
        let mut payload = opus_au(31 << 3, 100, true);
        payload.extend(opus_au(1 << 3 | 1, 600, false));
        payload.extend(opus_au(31 << 3, 3, false));
        let mut t = OpusTrack::new(Some(2));
        let mut out = Vec::new();
        let pes = PesPacket {
            pts: Some(1000),
            dts: None,
            payload: Bytes::from(payload),
        };
        t.access_unit(TrackId::AUDIO, pes, &mut out);
        let got: Vec<(u64, usize)> = out
            .iter()
            .filter_map(|u| match u {
                Unit::Frame { pts, data, .. } => Some((*pts, data.len())),
                _ => None,
            })
            .collect();
        assert!(matches!(&out[0], Unit::Config(TrackConfig::Audio(a)) if a.channels == 2));
        assert_eq!(got, vec![(1000, 100), (2800, 600), (2800 + 3600, 3)]);
        // Garbage after a good packet; no timestamp at all.
        out.clear();
        let mut payload = opus_au(31 << 3, 5, false);
        payload.extend([0x12, 0x34]);
        t.access_unit(
            TrackId::AUDIO,
            PesPacket {
                pts: None,
                dts: None,
                payload: Bytes::from(payload),
            },
            &mut out,
        );
        assert!(
            matches!(&out[..], [Unit::Frame { pts: 8200, .. }, Unit::Dropped(_)]),
            "{out:?}"
        );
        assert_eq!(packet_samples(&[0x03]), None);
        assert_eq!(packet_samples(&[0x03, 0x02]), Some(960));
    }
}
