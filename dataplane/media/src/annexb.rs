//! Annex B byte streams (start-code delimited NAL units, as in MPEG-TS and raw `.h264`
//! files) and the 4-byte length-prefixed form the bus carries.

/// The NAL units of an Annex B byte stream, in order, without start codes.
///
/// Bytes before the first start code are skipped; trailing zero bytes of a NAL unit
/// (`trailing_zero_8bits`, the leading zero of a 4-byte start code) are not part of it;
/// empty NAL units are skipped.
pub fn annexb_nals(data: &[u8]) -> AnnexBNals<'_> {
    let pos = find_start_code(data, 0).map_or(data.len(), |(_, payload)| payload);
    AnnexBNals { data, pos }
}

/// Iterator returned by [`annexb_nals`].
#[derive(Debug, Clone)]
pub struct AnnexBNals<'a> {
    data: &'a [u8],
    /// Where the next NAL unit starts (just after a start code), or `data.len()`.
    pos: usize,
}

impl<'a> Iterator for AnnexBNals<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        while self.pos < self.data.len() {
            let start = self.pos;
            let (end, next) =
                find_start_code(self.data, start).unwrap_or((self.data.len(), self.data.len()));
            self.pos = next;
            let mut nal = &self.data[start..end];
            while let [rest @ .., 0] = nal {
                nal = rest;
            }
            if !nal.is_empty() {
                return Some(nal);
            }
        }
        None
    }
}

/// The first `00 00 01` at or after `from`: (its offset, the offset just after it).
fn find_start_code(data: &[u8], from: usize) -> Option<(usize, usize)> {
    let mut i = from;
    while i + 2 < data.len() {
        match data[i + 2] {
            1 if data[i] == 0 && data[i + 1] == 0 => return Some((i, i + 3)),
            0 => i += 1,
            // No start code can begin at i, i+1 or i+2.
            _ => i += 3,
        }
    }
    None
}

/// Appends `nal` to `out` with a 4-byte big-endian length prefix (AVCC/HVCC sample format).
/// NAL units of 4 GiB or more cannot be framed and are not appended (returns false).
pub fn push_length_prefixed(out: &mut Vec<u8>, nal: &[u8]) -> bool {
    let Ok(len) = u32::try_from(nal.len()) else {
        return false;
    };
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(nal);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_three_and_four_byte_start_codes() {
        let data = [
            9, 9, 0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 0, 1, 0x65, 0, 0, 3, 0, 1, 0,
            0,
        ];
        let nals: Vec<&[u8]> = annexb_nals(&data).collect();
        assert_eq!(
            nals,
            vec![&[0x67, 1, 2][..], &[0x68, 3], &[0x65, 0, 0, 3, 0, 1]]
        );
    }

    #[test]
    fn degenerate_inputs() {
        assert_eq!(annexb_nals(&[]).count(), 0);
        assert_eq!(annexb_nals(&[0, 0, 1]).count(), 0);
        assert_eq!(annexb_nals(&[0, 0, 1, 0, 0, 1, 0, 0, 0, 1]).count(), 0);
        assert_eq!(annexb_nals(&[1, 2, 3, 4]).count(), 0);
        assert_eq!(
            annexb_nals(&[0, 0, 1, 5]).collect::<Vec<_>>(),
            vec![&[5][..]]
        );
    }

    #[test]
    fn length_prefix() {
        let mut out = Vec::new();
        assert!(push_length_prefixed(&mut out, &[0x65, 1]));
        assert_eq!(out, [0, 0, 0, 2, 0x65, 1]);
    }
}
