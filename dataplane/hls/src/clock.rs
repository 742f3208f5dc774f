//! Audio sample timing: nominal frame durations in the track timescale, resynchronised
//! to the incoming timestamps when they drift by more than one frame.

use weir_media::{AacConfig, AudioConfig, Codec, TIMESCALE};

/// Where an audio frame goes on the track's timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Placement {
    /// The frame lies more than one frame before where the timeline already is: drop it.
    Stale,
    /// Decode time and duration, in the track timescale. `gap` is true when the timeline
    /// jumped forward to catch up with the timestamps (the previous sample, when still
    /// buffered, should be lengthened to `decode`).
    At {
        decode: u64,
        duration: u32,
        gap: bool,
    },
}

/// Places audio frames back to back with nominal durations.
#[derive(Debug, Clone)]
pub(crate) struct AudioClock {
    codec: Codec,
    timescale: u32,
    /// The nominal frame duration (AAC: 1024, or 2048 with SBR; others: last seen).
    nominal: u32,
    next: Option<u64>,
    last_in: Option<u64>,
}

impl AudioClock {
    pub(crate) fn new(config: &AudioConfig, timescale: u32) -> Self {
        let nominal = match config.codec {
            Codec::Aac => match AacConfig::parse(&config.record) {
                Ok(c) if matches!(c.object_type, 5 | 29) && config.sample_rate > c.sample_rate => {
                    2048
                }
                _ => 1024,
            },
            _ => (timescale / 50).max(1), // 20 ms until packets say otherwise
        };
        Self {
            codec: config.codec,
            timescale,
            nominal,
            next: None,
            last_in: None,
        }
    }

    /// The track timescale.
    pub(crate) fn timescale(&self) -> u32 {
        self.timescale
    }

    /// Where the timeline is (the decode time of the next frame), if started.
    #[cfg(test)]
    pub(crate) fn next(&self) -> Option<u64> {
        self.next
    }

    /// Converts bus ticks to this track's timescale.
    pub(crate) fn to_track(&self, ticks: i64) -> u64 {
        let t = i128::from(ticks.max(0)) * i128::from(self.timescale) / i128::from(TIMESCALE);
        u64::try_from(t).unwrap_or(u64::MAX)
    }

    /// Places a frame whose bus decode time is `ticks`.
    pub(crate) fn place(&mut self, ticks: i64, data: &[u8]) -> Placement {
        let t = self.to_track(ticks);
        let duration = match self.codec {
            Codec::Aac => self.nominal,
            Codec::Opus => opus_samples(data).unwrap_or(self.nominal),
            _ => self.nominal,
        };
        if self.codec != Codec::Aac
            && let Some(d) = self.last_in.and_then(|l| t.checked_sub(l))
            && d > 0
            && d < u64::from(self.timescale)
        {
            self.nominal = d as u32;
        }
        self.last_in = Some(t);
        let (decode, gap) = match self.next {
            None => (t, false),
            Some(expected) if t + u64::from(duration) < expected => return Placement::Stale,
            Some(expected) if t > expected + u64::from(duration) => (t, true),
            Some(expected) => (expected, false),
        };
        self.next = Some(decode + u64::from(duration));
        Placement::At {
            decode,
            duration,
            gap,
        }
    }
}

/// Samples (at 48 kHz) in an Opus packet, from its TOC byte (RFC 6716 3.1).
pub(crate) fn opus_samples(packet: &[u8]) -> Option<u32> {
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
        _ => u32::from(packet.get(1)? & 0x3f),
    };
    let total = frame * frames;
    (total > 0 && total <= 5760).then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn aac() -> AudioClock {
        let cfg = AudioConfig {
            codec: Codec::Aac,
            sample_rate: 44_100,
            channels: 2,
            record: Bytes::from_static(&[0x12, 0x10]),
        };
        AudioClock::new(&cfg, 44_100)
    }

    fn at(decode: u64, duration: u32, gap: bool) -> Placement {
        Placement::At {
            decode,
            duration,
            gap,
        }
    }

    #[test]
    fn aac_uses_nominal_durations_and_resyncs() {
        let mut c = aac();
        // 1024 samples at 44.1 kHz is 2089.8 ticks; timestamps rounded to ms jitter.
        assert_eq!(c.place(90_000, &[]), at(44_100, 1024, false));
        assert_eq!(c.place(92_070, &[]), at(45_124, 1024, false));
        assert_eq!(c.place(94_230, &[]), at(46_148, 1024, false));
        // A 100 ms hole: the timeline jumps to the timestamp.
        assert_eq!(c.place(105_000, &[]), at(51_450, 1024, true));
        // A frame far in the past is dropped.
        assert_eq!(c.place(90_000, &[]), Placement::Stale);
        assert_eq!(c.next(), Some(52_474));
    }

    #[test]
    fn opus_durations_come_from_the_toc() {
        assert_eq!(opus_samples(&[0xfc]), Some(960)); // CELT FB 20 ms, one frame
        assert_eq!(opus_samples(&[(1 << 3) | 3, 3]), Some(2880)); // SILK 20 ms, code 3, 3 frames
        assert_eq!(opus_samples(&[0x03]), None);
        assert_eq!(opus_samples(&[]), None);
    }
}
