//! Finds 188-byte packets in a byte stream split anywhere, and resynchronises on the
//! 0x47 sync byte after garbage.
//!
//! While in sync, a packet is taken as soon as its 188 bytes are there (no added
//! latency, and a good packet followed by garbage is kept). Out of sync (at the start, or
//! after a byte that should have been a sync byte was not), a candidate 0x47 is only
//! taken when the byte 188 further on is 0x47 too, so garbage that happens to contain
//! 0x47 rarely passes. Leftover state is under two packets.

use crate::packet::{PACKET_SIZE, SYNC};

/// What the framer found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Chunk<'a> {
    /// A whole packet.
    Packet(&'a [u8; PACKET_SIZE]),
    /// Bytes skipped while looking for the sync byte (reported before the next packet).
    Skipped(usize),
}

/// The packet framer.
#[derive(Debug, Default)]
pub(crate) struct Framer {
    /// Bytes not consumed yet (less than two packets between calls).
    buf: Vec<u8>,
    locked: bool,
}

impl Framer {
    /// Appends `data` and calls `out` for every whole packet and every run of skipped bytes.
    pub fn push(&mut self, data: &[u8], mut out: impl FnMut(Chunk<'_>)) {
        self.buf.extend_from_slice(data);
        let skipped = self.drain(false, &mut out);
        if skipped > 0 {
            out(Chunk::Skipped(skipped));
        }
    }

    /// End of input: takes a last packet that had no successor to confirm it and skips
    /// the rest.
    pub fn finish(&mut self, mut out: impl FnMut(Chunk<'_>)) {
        let skipped = self.drain(true, &mut out) + self.buf.len();
        self.buf.clear();
        self.locked = false;
        if skipped > 0 {
            out(Chunk::Skipped(skipped));
        }
    }

    /// Emits packets (each preceded by the bytes skipped before it); returns the bytes
    /// skipped after the last one.
    fn drain(&mut self, at_end: bool, out: &mut impl FnMut(Chunk<'_>)) -> usize {
        let mut pos = 0;
        let mut skipped = 0;
        while let Some(rest) = self.buf.get(pos..).filter(|r| r.len() >= PACKET_SIZE) {
            if rest[0] == SYNC {
                let confirmed = match rest.get(PACKET_SIZE) {
                    _ if self.locked => true,
                    Some(&next) => next == SYNC,
                    None if at_end => true,
                    // Wait for the next packet's first byte.
                    None => break,
                };
                if confirmed {
                    self.locked = true;
                    if skipped > 0 {
                        out(Chunk::Skipped(std::mem::take(&mut skipped)));
                    }
                    if let Some(p) = rest.first_chunk::<PACKET_SIZE>() {
                        out(Chunk::Packet(p));
                    }
                    pos += PACKET_SIZE;
                    continue;
                }
            }
            self.locked = false;
            let step = rest[1..]
                .iter()
                .position(|&b| b == SYNC)
                .map_or(rest.len(), |i| i + 1);
            pos += step;
            skipped += step;
        }
        self.buf.drain(..pos);
        skipped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packets(n: u8) -> Vec<u8> {
        (0..n)
            .flat_map(|i| {
                let mut p = vec![i; PACKET_SIZE];
                p[0] = SYNC;
                p
            })
            .collect()
    }

    fn run(chunks: &[&[u8]]) -> (Vec<u8>, usize) {
        let mut f = Framer::default();
        let mut seen = Vec::new();
        let mut skipped = 0;
        let mut out = |c: Chunk<'_>| match c {
            Chunk::Packet(p) => seen.push(p[1]),
            Chunk::Skipped(n) => skipped += n,
        };
        for c in chunks {
            f.push(c, &mut out);
        }
        f.finish(&mut out);
        (seen, skipped)
    }

    #[test]
    fn any_split_gives_the_same_packets() {
        let data = packets(7);
        for split in [1, 7, 187, 188, 189, 500, 1316] {
            let chunks: Vec<&[u8]> = data.chunks(split).collect();
            assert_eq!(run(&chunks), ((0..7).collect(), 0), "split {split}");
        }
    }

    #[test]
    fn resyncs_after_garbage() {
        let mut data = vec![1, 2, SYNC, 3];
        data.extend(packets(3));
        data.extend([9, SYNC, 9]);
        data.extend(packets(2));
        let (seen, skipped) = run(&[&data]);
        assert_eq!(seen, vec![0, 1, 2, 0, 1]);
        assert_eq!(skipped, 7);
    }

    #[test]
    fn a_truncated_tail_is_skipped() {
        let data = packets(2);
        let (seen, skipped) = run(&[&data[..PACKET_SIZE + 100]]);
        assert_eq!(seen, vec![0]);
        assert_eq!(skipped, 100);
    }
}
