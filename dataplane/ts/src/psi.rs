//! Program-specific information: PSI sections reassembled from packets (bounded), their
//! CRC32, and the PAT and PMT fields the demuxer uses (ISO 13818-1 §2.4.4).

use crate::error::SectionError;

/// Largest PAT/PMT section: 3 header bytes + a `section_length` of at most 1021.
const MAX_SECTION: usize = 1024;

/// The MPEG-2 CRC32 (polynomial 0x04C11DB7, MSB first, initial value all ones, no final
/// xor). Over a whole section, CRC field included, it is 0.
pub(crate) fn crc32_mpeg2(data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = (i as u32) << 24;
            let mut k = 0;
            while k < 8 {
                c = if c & 0x8000_0000 != 0 {
                    (c << 1) ^ 0x04c1_1db7
                } else {
                    c << 1
                };
                k += 1;
            }
            table[i] = c;
            i += 1;
        }
        table
    };
    data.iter().fold(0xffff_ffff, |crc, &b| {
        (crc << 8) ^ TABLE[usize::from((crc >> 24) as u8 ^ b)]
    })
}

/// Reassembles the sections of one PID from packet payloads.
#[derive(Debug, Default)]
pub(crate) struct SectionAssembler {
    buf: Vec<u8>,
    /// A section has started and is being collected.
    active: bool,
}

impl SectionAssembler {
    /// Feeds one packet's payload; calls `section` with every complete section (header
    /// to CRC, not checked yet). A section claiming more than 1021 bytes is dropped.
    pub fn push(&mut self, pusi: bool, payload: &[u8], mut section: impl FnMut(&[u8])) {
        let mut data = payload;
        if pusi {
            let Some((&pointer, rest)) = data.split_first() else {
                return;
            };
            let pointer = usize::from(pointer).min(rest.len());
            if self.active {
                self.buf.extend_from_slice(&rest[..pointer]);
                self.emit(&mut section);
            }
            self.buf.clear();
            self.active = true;
            data = &rest[pointer..];
        } else if !self.active {
            return;
        }
        self.buf.extend_from_slice(data);
        self.emit(&mut section);
    }

    /// Forgets a partial section (packets were lost).
    pub fn reset(&mut self) {
        self.buf.clear();
        self.active = false;
    }

    fn emit(&mut self, section: &mut impl FnMut(&[u8])) {
        let mut start = 0;
        loop {
            let rest = &self.buf[start..];
            if rest.first() == Some(&0xff) {
                // Stuffing: no more sections until the next payload unit start.
                self.reset();
                return;
            }
            let Some(head) = rest.get(..3) else { break };
            let total = 3 + usize::from(u16::from_be_bytes([head[1] & 0x0f, head[2]]));
            if total > MAX_SECTION {
                self.reset();
                return;
            }
            let Some(whole) = rest.get(..total) else {
                break;
            };
            section(whole);
            start += total;
        }
        self.buf.drain(..start);
        if self.buf.len() > MAX_SECTION {
            self.reset();
        }
    }
}

/// A long-form section with its CRC checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Section<'a> {
    pub table_id: u8,
    /// `transport_stream_id` (PAT) or `program_number` (PMT).
    pub id: u16,
    pub current: bool,
    /// Between `last_section_number` and the CRC.
    pub body: &'a [u8],
}

/// Checks a section's syntax and CRC32.
pub(crate) fn parse_section(data: &[u8]) -> Result<Section<'_>, SectionError> {
    if data.len() < 12 || data[1] & 0x80 == 0 {
        return Err(SectionError::Malformed);
    }
    if crc32_mpeg2(data) != 0 {
        return Err(SectionError::Crc);
    }
    Ok(Section {
        table_id: data[0],
        id: u16::from_be_bytes([data[3], data[4]]),
        current: data[5] & 1 != 0,
        body: &data[8..data.len() - 4],
    })
}

/// The table ids we read.
pub(crate) const TABLE_PAT: u8 = 0x00;
pub(crate) const TABLE_PMT: u8 = 0x02;

/// The first program of a PAT body (program 0, the network PID, skipped):
/// `(program_number, pmt_pid)`.
pub(crate) fn first_program(body: &[u8]) -> Option<(u16, u16)> {
    body.chunks_exact(4)
        .map(|e| {
            (
                u16::from_be_bytes([e[0], e[1]]),
                u16::from_be_bytes([e[2] & 0x1f, e[3]]),
            )
        })
        .find(|&(program, _)| program != 0)
}

/// One elementary stream of a PMT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EsInfo {
    pub stream_type: u8,
    pub pid: u16,
    /// A registration descriptor with format identifier `Opus`.
    pub opus: bool,
    /// The Opus `channel_config_code` of a DVB extension descriptor (0x7f, tag 0x80).
    pub opus_channel_config: Option<u8>,
}

const DESC_REGISTRATION: u8 = 0x05;
const DESC_EXTENSION: u8 = 0x7f;
const EXT_OPUS: u8 = 0x80;

/// The elementary streams of a PMT body, in order.
pub(crate) fn pmt_streams(body: &[u8]) -> Result<Vec<EsInfo>, SectionError> {
    let field = |at: usize| -> Result<usize, SectionError> {
        let b = body.get(at..at + 2).ok_or(SectionError::Malformed)?;
        Ok(usize::from(u16::from_be_bytes([b[0] & 0x0f, b[1]])))
    };
    // PCR_PID (2), program_info_length (2), program descriptors.
    let mut p = 4 + field(2)?;
    let mut out = Vec::new();
    while p < body.len() {
        let head = body.get(p..p + 5).ok_or(SectionError::Malformed)?;
        let info_len = field(p + 3)?;
        let descriptors = body
            .get(p + 5..p + 5 + info_len)
            .ok_or(SectionError::Malformed)?;
        let mut es = EsInfo {
            stream_type: head[0],
            pid: u16::from_be_bytes([head[1] & 0x1f, head[2]]),
            opus: false,
            opus_channel_config: None,
        };
        let mut d = descriptors;
        while let [tag, len, rest @ ..] = d {
            let Some(value) = rest.get(..usize::from(*len)) else {
                break;
            };
            match (*tag, value) {
                (DESC_REGISTRATION, [b'O', b'p', b'u', b's', ..]) => es.opus = true,
                (DESC_EXTENSION, [EXT_OPUS, code, ..]) => es.opus_channel_config = Some(*code),
                _ => {}
            }
            d = &rest[value.len()..];
        }
        out.push(es);
        p += 5 + info_len;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PAT from ffmpeg: program 1 at PMT PID 0x1000.
    const PAT: &[u8] = &[
        0x00, 0xb0, 0x0d, 0x00, 0x01, 0xc1, 0x00, 0x00, 0x00, 0x01, 0xf0, 0x00, 0x2a, 0xb1, 0x04,
        0xb2,
    ];

    #[test]
    fn crc_of_a_real_pat() {
        assert_eq!(crc32_mpeg2(b"123456789"), 0x0376_e6e7);
        assert_eq!(crc32_mpeg2(PAT), 0);
        let s = parse_section(PAT).expect("valid");
        assert_eq!((s.table_id, s.id, s.current), (TABLE_PAT, 1, true));
        assert_eq!(first_program(s.body), Some((1, 0x1000)));
        let mut bad = PAT.to_vec();
        bad[9] ^= 1;
        assert_eq!(parse_section(&bad), Err(SectionError::Crc));
        assert_eq!(parse_section(&PAT[..8]), Err(SectionError::Malformed));
    }

    #[test]
    fn reassembles_sections_across_packets() {
        let mut sections = Vec::new();
        let mut a = SectionAssembler::default();
        // Pointer field 0, the PAT split over two payloads, then stuffing.
        let mut first = vec![0];
        first.extend_from_slice(&PAT[..5]);
        a.push(true, &first, |s| sections.push(s.to_vec()));
        let mut second = PAT[5..].to_vec();
        second.extend([0xff; 20]);
        a.push(false, &second, |s| sections.push(s.to_vec()));
        // Ignored: no section in progress.
        a.push(false, PAT, |s| sections.push(s.to_vec()));
        // A pointer skipping the tail of a section we never saw, then two sections.
        let mut third = vec![3, 1, 2, 3];
        third.extend_from_slice(PAT);
        third.extend_from_slice(PAT);
        a.push(true, &third, |s| sections.push(s.to_vec()));
        assert_eq!(sections, vec![PAT.to_vec(); 3]);
        // A section claiming 4000 bytes is dropped.
        a.push(true, &[0, 2, 0xbf, 0xa0, 0, 0], |s| {
            sections.push(s.to_vec())
        });
        assert_eq!(sections.len(), 3);
    }

    #[test]
    fn pmt_streams_with_descriptors() {
        let body = [
            0xe1, 0x00, 0xf0, 0x00, // PCR PID 0x100, no program descriptors
            0x1b, 0xe1, 0x00, 0xf0, 0x00, // H.264 on 0x100
            0x06, 0xe1, 0x01, 0xf0, 0x0a, // private data on 0x101 with:
            0x05, 0x04, b'O', b'p', b'u', b's', // registration "Opus"
            0x7f, 0x02, 0x80, 0x02, // extension: Opus channel config 2
        ];
        let es = pmt_streams(&body).expect("valid");
        assert_eq!(es.len(), 2);
        assert_eq!(
            (es[0].stream_type, es[0].pid, es[0].opus),
            (0x1b, 0x100, false)
        );
        assert_eq!(
            es[1],
            EsInfo {
                stream_type: 6,
                pid: 0x101,
                opus: true,
                opus_channel_config: Some(2)
            }
        );
        assert_eq!(pmt_streams(&body[..12]), Err(SectionError::Malformed));
        assert_eq!(pmt_streams(&body[..2]), Err(SectionError::Malformed));
    }
}
