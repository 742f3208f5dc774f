//! Percentiles and the frame → object latency mapping.

use std::time::Instant;

use crate::poller::Object;

/// Latency percentiles of one measurement, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Latency {
    /// Frames measured.
    pub n: usize,
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Best (negative would mean frames were mapped to the wrong objects).
    pub min: f64,
    /// Worst.
    pub max: f64,
    /// Mean duration of the objects (part or segment) in ms.
    pub object_ms: f64,
    /// Frames sent after the last object the client downloaded (not measured).
    pub unmatched: usize,
}

/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Maps each frame (media time since the first frame, send time) to the object that
/// holds it — objects start at media time 0 and follow each other, so an object's
/// start is the sum of the durations before it — and measures download-complete minus
/// send. Frames before `skip_s` are left out (start-up of the client).
pub fn latency(
    sends: &[(f64, Instant)],
    objects: &[Object],
    skip_s: f64,
) -> anyhow::Result<Latency> {
    let mut objects = objects.to_vec();
    objects.sort_by_key(|o| o.key);
    objects.dedup_by_key(|o| o.key);
    for w in objects.windows(2) {
        let (a, b) = (w[0].key, w[1].key);
        anyhow::ensure!(
            b == (a.0, a.1 + 1) || b == (a.0 + 1, 0),
            "the client missed objects between {a:?} and {b:?}"
        );
    }
    let mut starts = Vec::with_capacity(objects.len());
    let mut t = 0.0;
    for o in &objects {
        starts.push(t);
        t += o.duration;
    }
    let end = t;
    let mut values = Vec::with_capacity(sends.len());
    let mut unmatched = 0;
    for &(media, sent) in sends.iter().filter(|s| s.0 >= skip_s) {
        // Half a millisecond of slack for durations printed in whole milliseconds.
        let at = media + 0.0005;
        if at >= end {
            unmatched += 1;
            continue;
        }
        let i = starts.partition_point(|&s| s <= at).saturating_sub(1);
        let done = objects[i].done;
        let ms = if done >= sent {
            done.duration_since(sent).as_secs_f64() * 1000.0
        } else {
            -(sent.duration_since(done).as_secs_f64() * 1000.0)
        };
        values.push(ms);
    }
    values.sort_by(f64::total_cmp);
    let object_ms = if objects.is_empty() {
        0.0
    } else {
        end * 1000.0 / objects.len() as f64
    };
    Ok(Latency {
        n: values.len(),
        p50: percentile(&values, 50.0),
        p95: percentile(&values, 95.0),
        p99: percentile(&values, 99.0),
        min: values.first().copied().unwrap_or(f64::NAN),
        max: values.last().copied().unwrap_or(f64::NAN),
        object_ms,
        unmatched,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 95.0), 95.0);
        assert_eq!(percentile(&v, 100.0), 100.0);
        assert!(percentile(&[], 50.0).is_nan());
    }

    #[test]
    fn maps_frames_to_objects() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let objects = vec![
            Object {
                key: (0, 0),
                duration: 0.2,
                done: at(250),
            },
            Object {
                key: (0, 1),
                duration: 0.2,
                done: at(450),
            },
            Object {
                key: (1, 0),
                duration: 0.1,
                done: at(560),
            },
        ];
        let sends = vec![
            (0.0, at(0)),
            (0.1, at(100)),
            (0.2, at(200)),
            (0.45, at(450)),
            (0.5, at(500)),
        ];
        let l = latency(&sends, &objects, 0.0).expect("ok");
        assert_eq!(l.n, 4);
        assert_eq!(l.unmatched, 1);
        assert!((l.max - 250.0).abs() < 1e-6);
        assert!((l.p50 - 150.0).abs() < 1e-6);
        let mut skipped = objects[2].clone();
        skipped.key = (1, 1);
        let gap = vec![objects[0].clone(), skipped];
        assert!(latency(&sends, &gap, 0.0).is_err());
    }
}
