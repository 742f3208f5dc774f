//! PES packets: reassembly from packet payloads (bounded) and the header fields the
//! demuxer uses (ISO 13818-1 §2.4.3.6).
//!
//! A PES starts with a payload unit start and ends when its declared length is reached
//! or, for unbounded ones (length 0, as ffmpeg and OBS write video), at the next payload
//! unit start of its PID or at the end of input.

use bytes::{Bytes, BytesMut};

use crate::error::PesError;

/// A PES being collected.
#[derive(Debug, Default)]
pub(crate) struct PesAssembler {
    buf: BytesMut,
    /// Collecting (a payload unit start was seen and the PES is not complete yet).
    active: bool,
}

/// What feeding a payload produced.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum PesOutput {
    /// A complete PES packet (header included).
    Complete(Bytes),
    /// The PES ended before its declared length.
    Truncated,
    /// The PES would grow past the limit: dropped, and payload ignored until the next
    /// payload unit start.
    TooLarge,
}

impl PesAssembler {
    /// Bytes held.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Feeds one packet's payload. `limit` bounds the PES size; `out` receives a PES
    /// this payload completed or ended (a payload unit start ends the previous one).
    pub fn push(
        &mut self,
        pusi: bool,
        payload: &[u8],
        limit: usize,
        mut out: impl FnMut(PesOutput),
    ) {
        if pusi {
            if let Some(o) = self.end() {
                out(o);
            }
            self.active = true;
        } else if !self.active {
            return;
        }
        if self.buf.len() + payload.len() > limit {
            self.reset();
            out(PesOutput::TooLarge);
            return;
        }
        self.buf.extend_from_slice(payload);
        if let Some(total) = self.declared_total()
            && self.buf.len() >= total
        {
            let pes = self.buf.split_to(total).freeze();
            self.reset();
            out(PesOutput::Complete(pes));
        }
    }

    /// End of input (or of the PES by other means): the PES in progress, if any.
    pub fn end(&mut self) -> Option<PesOutput> {
        if !self.active {
            return None;
        }
        let out = match self.declared_total() {
            None if self.buf.len() >= 6 => PesOutput::Complete(self.buf.split().freeze()),
            _ => PesOutput::Truncated,
        };
        self.reset();
        Some(out)
    }

    /// Drops the PES in progress; true if there was one.
    pub fn reset(&mut self) -> bool {
        self.buf.clear();
        std::mem::take(&mut self.active)
    }

    /// `6 + PES_packet_length` once known, `None` while unknown or unbounded.
    fn declared_total(&self) -> Option<usize> {
        let len = self.buf.get(4..6)?;
        let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
        (len > 0).then_some(6 + len)
    }
}

/// A parsed PES packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PesPacket {
    /// The 33-bit presentation timestamp.
    pub pts: Option<u64>,
    /// The 33-bit decode timestamp (only present with a PTS).
    pub dts: Option<u64>,
    /// The elementary stream bytes.
    pub payload: Bytes,
}

/// Stream ids without the optional PES header (program stream map, padding, private
/// stream 2, ECM, EMM, DSMCC, H.222.1 type E, program stream directory).
fn has_optional_header(stream_id: u8) -> bool {
    !matches!(
        stream_id,
        0xbc | 0xbe | 0xbf | 0xf0 | 0xf1 | 0xf2 | 0xf8 | 0xff
    )
}

/// Reads a PES packet's header.
pub(crate) fn parse_pes(pes: Bytes) -> Result<PesPacket, PesError> {
    if pes.len() < 9 || pes[..3] != [0, 0, 1] || !has_optional_header(pes[3]) {
        return Err(PesError::StartCode);
    }
    if pes[6] & 0xc0 != 0x80 {
        return Err(PesError::StartCode);
    }
    let flags = pes[7] >> 6;
    let header_len = usize::from(pes[8]);
    let start = 9 + header_len;
    if start > pes.len() {
        return Err(PesError::Header);
    }
    let header = &pes[9..start];
    let timestamp = |at: usize| header.get(at..at + 5).map(read_timestamp);
    let (pts, dts) = match flags {
        0b10 => (Some(timestamp(0).ok_or(PesError::Header)?), None),
        0b11 => (
            Some(timestamp(0).ok_or(PesError::Header)?),
            Some(timestamp(5).ok_or(PesError::Header)?),
        ),
        // 00: none; 01 is forbidden: treated as none.
        _ => (None, None),
    };
    Ok(PesPacket {
        pts,
        dts,
        payload: pes.slice(start..),
    })
}

/// A 33-bit timestamp from its 5-byte field (marker bits ignored).
fn read_timestamp(b: &[u8]) -> u64 {
    (u64::from(b[0] >> 1) & 0x07) << 30
        | u64::from(b[1]) << 22
        | u64::from(b[2] >> 1) << 15
        | u64::from(b[3]) << 7
        | u64::from(b[4] >> 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testmux::pes_packet;

    fn collect(a: &mut PesAssembler, pusi: bool, payload: &[u8], limit: usize) -> Vec<PesOutput> {
        let mut v = Vec::new();
        a.push(pusi, payload, limit, |o| v.push(o));
        v
    }

    #[test]
    fn header_with_pts_and_dts() {
        let pes = pes_packet(0xe0, Some((1 << 33) - 1), Some(12_345), b"abc", false);
        let p = parse_pes(Bytes::from(pes)).expect("valid");
        assert_eq!(p.pts, Some((1 << 33) - 1));
        assert_eq!(p.dts, Some(12_345));
        assert_eq!(&p.payload[..], b"abc");
        let pes = pes_packet(0xc0, Some(90_000), None, b"x", true);
        let p = parse_pes(Bytes::from(pes)).expect("valid");
        assert_eq!((p.pts, p.dts), (Some(90_000), None));
    }

    #[test]
    fn malformed_headers() {
        assert_eq!(
            parse_pes(Bytes::from_static(&[0, 0, 2, 0xe0, 0, 0, 0x80, 0, 0])),
            Err(PesError::StartCode)
        );
        assert_eq!(
            parse_pes(Bytes::from_static(&[0, 0, 1, 0xbe, 0, 3, 0xff, 0xff, 0xff])),
            Err(PesError::StartCode)
        );
        assert_eq!(
            parse_pes(Bytes::from_static(&[
                0, 0, 1, 0xe0, 0, 0, 0x80, 0x80, 5, 0x21
            ])),
            Err(PesError::Header)
        );
        assert_eq!(
            parse_pes(Bytes::from_static(&[
                0, 0, 1, 0xe0, 0, 0, 0x80, 0xc0, 5, 0x21, 0, 1, 0, 1
            ])),
            Err(PesError::Header)
        );
    }

    #[test]
    fn bounded_pes_completes_at_its_length() {
        let pes = pes_packet(0xc0, Some(1), None, &[7; 300], true);
        let mut a = PesAssembler::default();
        assert!(collect(&mut a, true, &pes[..184], 1 << 20).is_empty());
        let out = collect(&mut a, false, &pes[184..], 1 << 20);
        assert_eq!(out, vec![PesOutput::Complete(Bytes::from(pes.clone()))]);
        assert_eq!(a.len(), 0);
        // Payload until the next start is ignored.
        assert!(collect(&mut a, false, &[1, 2, 3], 1 << 20).is_empty());
        // A bounded PES cut short by the next start.
        assert!(collect(&mut a, true, &pes[..184], 1 << 20).is_empty());
        let out = collect(&mut a, true, &pes[..184], 1 << 20);
        assert_eq!(out, vec![PesOutput::Truncated]);
        assert_eq!(a.end(), Some(PesOutput::Truncated));
        assert_eq!(a.end(), None);
    }

    #[test]
    fn unbounded_pes_ends_at_the_next_start_and_is_capped() {
        let pes = pes_packet(0xe0, Some(1), None, &[7; 300], false);
        let mut a = PesAssembler::default();
        assert!(collect(&mut a, true, &pes[..184], 1000).is_empty());
        assert!(collect(&mut a, false, &pes[184..], 1000).is_empty());
        let out = collect(&mut a, true, &pes[..184], 1000);
        assert_eq!(out, vec![PesOutput::Complete(Bytes::from(pes.clone()))]);
        assert_eq!(
            collect(&mut a, false, &[0; 900], 1000),
            vec![PesOutput::TooLarge]
        );
        assert!(collect(&mut a, false, &[0; 10], 1000).is_empty());
        assert_eq!(a.end(), None);
        assert!(collect(&mut a, true, &pes, 1000).is_empty());
        assert!(a.reset());
        assert!(!a.reset());
    }
}
