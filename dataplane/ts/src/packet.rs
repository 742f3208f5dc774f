//! One 188-byte transport stream packet: header and adaptation field (ISO 13818-1 §2.4.3).

/// Size of a transport stream packet.
pub(crate) const PACKET_SIZE: usize = 188;
/// The sync byte every packet starts with.
pub(crate) const SYNC: u8 = 0x47;
/// The null packet PID (stuffing).
pub(crate) const NULL_PID: u16 = 0x1fff;

/// The fields of a packet the demuxer uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Packet<'a> {
    /// `transport_error_indicator`.
    pub tei: bool,
    /// `payload_unit_start_indicator`.
    pub pusi: bool,
    /// The 13-bit PID.
    pub pid: u16,
    /// `transport_scrambling_control` is not 0.
    pub scrambled: bool,
    /// The packet carries a payload (adaptation_field_control 01 or 11); only those
    /// advance the continuity counter.
    pub has_payload: bool,
    /// `continuity_counter`.
    pub cc: u8,
    /// The adaptation field's `discontinuity_indicator`.
    pub discontinuity: bool,
    /// The payload (empty without one).
    pub payload: &'a [u8],
}

/// Why a packet was unreadable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PacketError {
    /// The first byte is not 0x47.
    Sync,
    /// The adaptation field is longer than the packet, or the control is reserved (00).
    AdaptationField,
}

/// Parses a packet's header and adaptation field.
pub(crate) fn parse(p: &[u8; PACKET_SIZE]) -> Result<Packet<'_>, PacketError> {
    if p[0] != SYNC {
        return Err(PacketError::Sync);
    }
    let afc = (p[3] >> 4) & 0b11;
    let mut packet = Packet {
        tei: p[1] & 0x80 != 0,
        pusi: p[1] & 0x40 != 0,
        pid: u16::from_be_bytes([p[1] & 0x1f, p[2]]),
        scrambled: p[3] & 0xc0 != 0,
        has_payload: afc & 0b01 != 0,
        cc: p[3] & 0x0f,
        discontinuity: false,
        payload: &[],
    };
    let mut start = 4;
    match afc {
        0b00 => return Err(PacketError::AdaptationField),
        0b01 => {}
        _ => {
            let len = usize::from(p[4]);
            // With a payload the field leaves at least one byte of it (183 - 1).
            let max = if packet.has_payload { 182 } else { 183 };
            if len > max {
                return Err(PacketError::AdaptationField);
            }
            if len > 0 {
                packet.discontinuity = p[5] & 0x80 != 0;
            }
            start = 5 + len;
        }
    }
    if packet.has_payload {
        packet.payload = &p[start..];
    }
    Ok(packet)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(header: [u8; 4], rest: &[u8]) -> [u8; PACKET_SIZE] {
        let mut p = [0xffu8; PACKET_SIZE];
        p[..4].copy_from_slice(&header);
        p[4..4 + rest.len()].copy_from_slice(rest);
        p
    }

    #[test]
    fn payload_only() {
        let p = packet([0x47, 0x41, 0x00, 0x17], &[1, 2, 3]);
        let h = parse(&p).expect("valid");
        assert!(h.pusi && !h.tei && !h.scrambled && h.has_payload && !h.discontinuity);
        assert_eq!((h.pid, h.cc), (0x100, 7));
        assert_eq!(h.payload.len(), 184);
        assert_eq!(&h.payload[..3], &[1, 2, 3]);
    }

    #[test]
    fn adaptation_field_with_discontinuity_and_payload() {
        let p = packet([0x47, 0x81, 0x01, 0x3a], &[2, 0x80, 0x00, 9]);
        let h = parse(&p).expect("valid");
        assert!(h.tei && !h.pusi && h.discontinuity && h.has_payload);
        assert_eq!((h.pid, h.cc), (0x101, 0xa));
        assert_eq!(h.payload.len(), 181);
        assert_eq!(h.payload[0], 9);
    }

    #[test]
    fn adaptation_field_only_and_errors() {
        let p = packet([0x47, 0x1f, 0xff, 0x20], &[183, 0]);
        let h = parse(&p).expect("valid");
        assert!(!h.has_payload && h.payload.is_empty());
        assert_eq!(h.pid, NULL_PID);
        assert_eq!(
            parse(&packet([0x47, 0, 0, 0x30], &[183])),
            Err(PacketError::AdaptationField)
        );
        assert_eq!(
            parse(&packet([0x47, 0, 0, 0x00], &[])),
            Err(PacketError::AdaptationField)
        );
        assert_eq!(
            parse(&packet([0x46, 0, 0, 0x10], &[])),
            Err(PacketError::Sync)
        );
        let p = packet([0x47, 0, 0, 0xd0], &[]);
        assert!(parse(&p).expect("valid").scrambled);
    }
}
