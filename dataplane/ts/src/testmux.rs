//! A minimal MPEG-TS muxer for unit tests: PES packets, PSI sections, packetisation.

use std::collections::HashMap;

use crate::packet::{PACKET_SIZE, SYNC};
use crate::psi::crc32_mpeg2;

/// The 5-byte field of a 33-bit timestamp, with `prefix` in the top nibble.
fn timestamp(prefix: u8, t: u64) -> [u8; 5] {
    [
        prefix << 4 | ((t >> 29) as u8 & 0x0e) | 1,
        (t >> 22) as u8,
        (t >> 14) as u8 | 1,
        (t >> 7) as u8,
        (t << 1) as u8 | 1,
    ]
}

/// A PES packet; `bounded` writes PES_packet_length (else 0, as for video).
pub(crate) fn pes_packet(
    stream_id: u8,
    pts: Option<u64>,
    dts: Option<u64>,
    payload: &[u8],
    bounded: bool,
) -> Vec<u8> {
    let mut header = Vec::new();
    let flags = match (pts, dts) {
        (Some(p), Some(d)) => {
            header.extend(timestamp(3, p));
            header.extend(timestamp(1, d));
            0xc0
        }
        (Some(p), None) => {
            header.extend(timestamp(2, p));
            0x80
        }
        _ => 0,
    };
    let len = if bounded {
        3 + header.len() + payload.len()
    } else {
        0
    };
    let mut out = vec![0, 0, 1, stream_id];
    out.extend((len as u16).to_be_bytes());
    out.extend([0x80, flags, header.len() as u8]);
    out.extend(header);
    out.extend_from_slice(payload);
    out
}

/// A long-form PSI section with its CRC.
pub(crate) fn section(table_id: u8, id: u16, version: u8, body: &[u8]) -> Vec<u8> {
    let len = 5 + body.len() + 4;
    let mut s = vec![table_id, 0xb0 | (len >> 8) as u8, len as u8];
    s.extend(id.to_be_bytes());
    s.extend([0xc1 | version << 1, 0, 0]);
    s.extend_from_slice(body);
    let crc = crc32_mpeg2(&s);
    s.extend(crc.to_be_bytes());
    s
}

/// A PAT with program 1 on `pmt_pid`.
pub(crate) fn pat(pmt_pid: u16) -> Vec<u8> {
    let mut body = vec![0, 1];
    body.extend((0xe000 | pmt_pid).to_be_bytes());
    section(0, 1, 0, &body)
}

/// A PMT of program 1: `(stream_type, pid, descriptors)`.
pub(crate) fn pmt(version: u8, streams: &[(u8, u16, &[u8])]) -> Vec<u8> {
    let pcr = streams.first().map_or(0x1fff, |s| s.1);
    let mut body = Vec::new();
    body.extend((0xe000 | pcr).to_be_bytes());
    body.extend([0xf0, 0]);
    for (stream_type, pid, desc) in streams {
        body.push(*stream_type);
        body.extend((0xe000 | pid).to_be_bytes());
        body.extend((0xf000 | desc.len() as u16).to_be_bytes());
        body.extend_from_slice(desc);
    }
    section(2, 1, version, &body)
}

/// Packetises payloads per PID with running continuity counters.
#[derive(Debug, Default)]
pub(crate) struct Mux {
    cc: HashMap<u16, u8>,
    /// The stream so far.
    pub out: Vec<u8>,
}

impl Mux {
    /// One PSI section (pointer field 0).
    pub fn psi(&mut self, pid: u16, section: &[u8]) {
        let mut data = vec![0];
        data.extend_from_slice(section);
        self.unit(pid, &data, false);
    }

    /// A payload unit (a PES) split into packets; the last is padded with an adaptation
    /// field. `discontinuity` flags the first packet.
    pub fn unit(&mut self, pid: u16, data: &[u8], discontinuity: bool) {
        self.packets(pid, data, true, discontinuity);
    }

    /// Packets carrying `data`; the first has the payload unit start flag if `start`
    /// and the discontinuity indicator if `discontinuity`.
    pub fn packets(&mut self, pid: u16, data: &[u8], start: bool, discontinuity: bool) {
        let mut first = true;
        let mut rest = data;
        while first || !rest.is_empty() {
            let flag = first && discontinuity;
            let room = if flag { 182 } else { 184 };
            let (chunk, tail) = rest.split_at(rest.len().min(room));
            rest = tail;
            let cc = self.cc.entry(pid).or_insert(15);
            *cc = (*cc + 1) & 0x0f;
            let mut p = vec![SYNC, (pid >> 8) as u8 & 0x1f, pid as u8, 0x10 | *cc];
            if first && start {
                p[1] |= 0x40;
            }
            let room = PACKET_SIZE - 4;
            if chunk.len() < room {
                p[3] |= 0x20;
                let af_len = room - chunk.len() - 1;
                p.push(af_len as u8);
                if af_len > 0 {
                    p.push(if flag { 0x80 } else { 0 });
                    p.extend(std::iter::repeat_n(0xff, af_len - 1));
                }
            }
            p.extend_from_slice(chunk);
            assert_eq!(p.len(), PACKET_SIZE);
            self.out.extend(p);
            first = false;
        }
    }

    /// Continues the continuity counters of `other`.
    pub fn cc_from(&mut self, other: &Mux) {
        self.cc = other.cc.clone();
    }

    /// Skips a continuity counter value on `pid` (a lost packet).
    pub fn lose(&mut self, pid: u16) {
        let cc = self.cc.entry(pid).or_insert(15);
        *cc = (*cc + 1) & 0x0f;
    }
}

/// An ADTS frame (AAC-LC) carrying `payload`.
pub(crate) fn adts(rate_index: u8, channels: u8, payload: &[u8], crc: bool) -> Vec<u8> {
    let header_len = if crc { 9 } else { 7 };
    let len = header_len + payload.len();
    let mut h = vec![
        0xff,
        0xf0 | u8::from(!crc),
        0x40 | rate_index << 2 | channels >> 2,
        (channels & 3) << 6 | (len >> 11) as u8,
        (len >> 3) as u8,
        ((len & 7) << 5) as u8 | 0x1f,
        0xfc,
    ];
    if crc {
        h.extend([0x12, 0x34]);
    }
    h.extend_from_slice(payload);
    h
}
