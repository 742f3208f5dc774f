//! 33-bit 90 kHz timestamp arithmetic.

/// The 33 bits of an MPEG timestamp.
pub(crate) const TS_MASK: u64 = (1 << 33) - 1;

/// `base` advanced by `samples` at `rate` Hz, in 90 kHz ticks, wrapped to 33 bits.
pub(crate) fn advance(base: u64, samples: u64, rate: u32) -> u64 {
    let ticks = samples.saturating_mul(90_000) / u64::from(rate.max(1));
    base.wrapping_add(ticks) & TS_MASK
}

/// The signed difference `pts - dts` of two 33-bit timestamps, taking the wrap into
/// account: what [`weir_media::TimestampNormalizer::normalize_90k`] takes as `cts_ticks`.
pub fn composition_offset(dts: u64, pts: u64) -> i64 {
    let d = pts.wrapping_sub(dts) & TS_MASK;
    // d < 2^33: exact.
    if d >= 1 << 32 {
        d as i64 - (1 << 33)
    } else {
        d as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps() {
        assert_eq!(advance(TS_MASK, 1024, 48_000), 1919);
        assert_eq!(advance(0, 1024, 44_100), 2089);
        assert_eq!(composition_offset(100, 3103), 3003);
        assert_eq!(composition_offset(3103, 100), -3003);
        assert_eq!(composition_offset(TS_MASK - 999, 2002), 3002);
        assert_eq!(composition_offset(2002, TS_MASK - 999), -3002);
    }
}
