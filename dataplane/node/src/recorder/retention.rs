//! Which recordings a retention sweep deletes (sans-IO).
//!
//! Two limits, either or both (0 turns one off): `record_retention_days` deletes every
//! finished recording that ended longer ago than that; `record_max_bytes` then deletes
//! finished recordings, oldest first, until the total on disk (recordings still being
//! made included) is under the limit. A recording still being made is never deleted,
//! even when it alone is over the limit.

/// What the sweep knows of one recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The recording id.
    pub id: String,
    /// When it started (UNIX ms): the oldest go first.
    pub started_ms: u64,
    /// When it ended; None while it is being made.
    pub ended_ms: Option<u64>,
    /// Bytes on disk.
    pub bytes: u64,
}

/// The retention limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Retention {
    /// Keep finished recordings this many days (0: forever).
    pub days: u32,
    /// Keep at most this many bytes of recordings (0: no limit).
    pub max_bytes: u64,
}

impl Retention {
    /// True when neither limit is set.
    pub fn is_off(&self) -> bool {
        self.days == 0 && self.max_bytes == 0
    }
}

/// The ids to delete now, oldest first.
pub fn select(candidates: &[Candidate], limits: Retention, now_ms: u64) -> Vec<String> {
    let mut by_age: Vec<&Candidate> = candidates.iter().collect();
    by_age.sort_by(|a, b| (a.started_ms, &a.id).cmp(&(b.started_ms, &b.id)));
    let max_age_ms = u64::from(limits.days).saturating_mul(86_400_000);
    let mut total: u64 = candidates.iter().map(|c| c.bytes).sum();
    let mut out = Vec::new();
    for c in by_age {
        let Some(ended) = c.ended_ms else {
            continue;
        };
        let expired = limits.days > 0 && now_ms.saturating_sub(ended) > max_age_ms;
        let over = limits.max_bytes > 0 && total > limits.max_bytes;
        if expired || over {
            total = total.saturating_sub(c.bytes);
            out.push(c.id.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: u64 = 86_400_000;

    fn c(id: &str, started_day: u64, ended: bool, bytes: u64) -> Candidate {
        Candidate {
            id: id.into(),
            started_ms: started_day * DAY,
            ended_ms: ended.then_some(started_day * DAY + 3_600_000),
            bytes,
        }
    }

    #[test]
    fn off_deletes_nothing() {
        let all = [c("a", 1, true, 10), c("b", 2, true, 10)];
        assert!(select(&all, Retention::default(), 100 * DAY).is_empty());
        assert!(Retention::default().is_off());
    }

    #[test]
    fn age_deletes_what_ended_too_long_ago() {
        let all = [
            c("new", 9, true, 1),
            c("old", 1, true, 1),
            c("older", 0, true, 1),
            c("live", 0, false, 1),
        ];
        let r = Retention {
            days: 7,
            max_bytes: 0,
        };
        assert_eq!(select(&all, r, 10 * DAY), ["older", "old"]);
    }

    #[test]
    fn size_deletes_oldest_first_but_never_a_recording_in_progress() {
        let all = [
            c("d", 4, false, 50),
            c("b", 2, true, 30),
            c("a", 1, true, 30),
            c("c", 3, true, 30),
        ];
        let r = Retention {
            days: 0,
            max_bytes: 100,
        };
        // 140 in all: a goes (110), b goes (80).
        assert_eq!(select(&all, r, 5 * DAY), ["a", "b"]);
        let r = Retention {
            days: 0,
            max_bytes: 10,
        };
        assert_eq!(select(&all, r, 5 * DAY), ["a", "b", "c"], "d is being made");
    }
}
