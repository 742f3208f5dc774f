//! Just enough STUN (RFC 8489) to route a datagram to its session before any session
//! has seen its sender: the `USERNAME` of a binding request is `<our ufrag>:<their
//! ufrag>`, and our ufrag names the session. Everything else about STUN is str0m's.

/// STUN magic cookie (RFC 8489 6).
const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xa4, 0x42];
/// USERNAME attribute type.
const ATTR_USERNAME: u16 = 0x0006;
/// Longest USERNAME (RFC 8489 14.3: < 513 bytes).
const MAX_USERNAME: usize = 512;

/// The kind of a datagram on a WebRTC port (RFC 7983 demultiplexing on the first byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatagramKind {
    /// STUN (0–3).
    Stun,
    /// DTLS (20–63).
    Dtls,
    /// RTP or RTCP (128–191).
    Rtp,
    /// Anything else (dropped).
    Unknown,
}

/// Classifies a datagram by its first byte.
pub fn classify(datagram: &[u8]) -> DatagramKind {
    match datagram.first() {
        Some(0..=3) => DatagramKind::Stun,
        Some(20..=63) => DatagramKind::Dtls,
        Some(128..=191) => DatagramKind::Rtp,
        _ => DatagramKind::Unknown,
    }
}

/// For a STUN binding request, the local ufrag its `USERNAME` names (the part before
/// `:`); `None` for anything else or anything malformed. Reads at most the declared
/// message length and never allocates.
pub fn local_ufrag(datagram: &[u8]) -> Option<&str> {
    if datagram.len() < 20 || datagram[4..8] != MAGIC_COOKIE {
        return None;
    }
    // Binding request: method 0x001, class request.
    if u16::from_be_bytes([datagram[0], datagram[1]]) != 0x0001 {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([datagram[2], datagram[3]]));
    let mut attrs = datagram.get(20..20 + len)?;
    while attrs.len() >= 4 {
        let kind = u16::from_be_bytes([attrs[0], attrs[1]]);
        let alen = usize::from(u16::from_be_bytes([attrs[2], attrs[3]]));
        let value = attrs.get(4..4 + alen)?;
        if kind == ATTR_USERNAME {
            if alen > MAX_USERNAME {
                return None;
            }
            let name = std::str::from_utf8(value).ok()?;
            return name.split_once(':').map(|(ours, _)| ours);
        }
        let padded = (alen + 3) & !3;
        attrs = attrs.get(4 + padded..)?;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding_request(username: &[u8]) -> Vec<u8> {
        let mut attrs = Vec::new();
        // A PRIORITY attribute first, then USERNAME (padded).
        attrs.extend_from_slice(&[0x00, 0x24, 0, 4, 1, 2, 3, 4]);
        attrs.extend_from_slice(&ATTR_USERNAME.to_be_bytes());
        attrs.extend_from_slice(&(username.len() as u16).to_be_bytes());
        attrs.extend_from_slice(username);
        while attrs.len() % 4 != 0 {
            attrs.push(0);
        }
        let mut m = vec![0x00, 0x01];
        m.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
        m.extend_from_slice(&MAGIC_COOKIE);
        m.extend_from_slice(&[7; 12]);
        m.extend_from_slice(&attrs);
        m
    }

    #[test]
    fn finds_our_ufrag() {
        let m = binding_request(b"serverfrag:abc");
        assert_eq!(local_ufrag(&m), Some("serverfrag"));
        assert_eq!(classify(&m), DatagramKind::Stun);
    }

    #[test]
    fn rejects_malformed() {
        let m = binding_request(b"nocolon");
        assert_eq!(local_ufrag(&m), None);
        let mut m = binding_request(b"a:b");
        m[3] = 200; // declared length past the end
        assert_eq!(local_ufrag(&m), None);
        let mut m = binding_request(b"a:b");
        m[1] = 0x11; // an indication, not a request
        assert_eq!(local_ufrag(&m), None);
        assert_eq!(local_ufrag(&[0; 10]), None);
        assert_eq!(classify(&[0x80, 0]), DatagramKind::Rtp);
        assert_eq!(classify(&[22, 0]), DatagramKind::Dtls);
        assert_eq!(classify(&[0xff]), DatagramKind::Unknown);
    }

    #[test]
    fn random_input_never_panics() {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for n in 0..4000usize {
            let mut m = binding_request(b"u:v");
            for b in m.iter_mut().skip(2) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                if x.is_multiple_of(5) {
                    *b = x as u8;
                }
            }
            m.truncate(n % (m.len() + 1));
            let _ = local_ufrag(&m);
        }
    }
}
