//! Delivery of one broadcast's LL-HLS to viewers on any shard.
//!
//! The packager task renders a [`Snapshot`] once per change (per part) and hands it to
//! [`HlsDelivery::publish`]; requests read the current snapshot (one short lock to clone an
//! `Arc`) and never touch the packager. A blocked reload or a request for the hinted part
//! parks under the [`Position`] it needs; a publish wakes only the waiters whose position
//! was reached (all of them when the stream ends), not every waiter on every part.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use event_listener::Event;
use parking_lot::Mutex;
use weir_hls::{Position, Snapshot};

/// The published state of one broadcast's LL-HLS.
#[derive(Debug)]
pub struct HlsDelivery {
    current: Mutex<Current>,
    waiters: Mutex<BTreeMap<Position, Arc<Event>>>,
    meter: ViewerMeter,
}

#[derive(Debug)]
struct Current {
    snapshot: Arc<Snapshot>,
    /// When `snapshot` was published.
    published_at: Instant,
}

impl HlsDelivery {
    /// Delivery starting from `snapshot`.
    pub fn new(snapshot: Arc<Snapshot>) -> Self {
        Self {
            current: Mutex::new(Current {
                snapshot,
                published_at: Instant::now(),
            }),
            waiters: Mutex::new(BTreeMap::new()),
            meter: ViewerMeter::default(),
        }
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.lock().snapshot.clone()
    }

    /// A new snapshot: stored, then the waiters it satisfies are woken.
    pub fn publish(&self, snapshot: Arc<Snapshot>) {
        let position = snapshot.position();
        let ended = snapshot.is_ended();
        *self.current.lock() = Current {
            snapshot,
            published_at: Instant::now(),
        };
        let woken: Vec<Arc<Event>> = {
            let mut w = self.waiters.lock();
            if ended {
                std::mem::take(&mut *w).into_values().collect()
            } else {
                let later = w.split_off(&Position {
                    msn: position.msn,
                    part: position.part.saturating_add(1),
                });
                std::mem::replace(&mut *w, later).into_values().collect()
            }
        };
        for event in woken {
            event.notify(usize::MAX);
        }
    }

    /// Waits until the stream reaches `needed` (or ends), at most until `deadline`.
    /// Returns the snapshot that satisfied it and when it was published, or `None` on
    /// time-out.
    pub async fn wait_for(
        &self,
        needed: Position,
        deadline: Instant,
    ) -> Option<(Arc<Snapshot>, Instant)> {
        let satisfied = |s: &Snapshot| s.position() >= needed || s.is_ended();
        let current = || {
            let c = self.current.lock();
            (c.snapshot.clone(), c.published_at)
        };
        loop {
            let (snapshot, at) = current();
            if satisfied(&snapshot) {
                return Some((snapshot, at));
            }
            // Listen, then look again, so a publish in between is not missed. (An entry
            // left behind when that second look succeeds goes at the next publish that
            // reaches it.)
            let listener = self.waiters.lock().entry(needed).or_default().listen();
            let (snapshot, at) = current();
            if satisfied(&snapshot) {
                return Some((snapshot, at));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || compio::time::timeout(left, listener).await.is_err() {
                return None;
            }
        }
    }

    /// Waiter positions parked now.
    #[cfg(test)]
    pub fn parked_positions(&self) -> usize {
        self.waiters.lock().len()
    }

    /// A viewer fetched part `part` of segment `msn` (or, with `None`, the whole segment).
    pub fn fetched(&self, msn: u64, part: Option<u64>) {
        self.meter.fetched(msn, part);
    }

    /// Viewers now, from the fetches of a recent segment (see [`ViewerMeter`]).
    pub fn viewers(&self) -> u64 {
        self.meter.viewers(self.snapshot().position().msn)
    }
}

/// Segments whose fetches are remembered.
const METER_SEGMENTS: usize = 8;
/// Parts per segment counted (a segment has target/part-target parts: 20 at 4 s / 200 ms).
const METER_PARTS: usize = 64;

/// Counts viewers from media fetches, without any per-viewer state or URL.
///
/// A player fetches every part of a segment (LL-HLS) or the segment itself (legacy HLS)
/// once. So the viewers of segment S are its segment fetches plus the fetches of its most
/// fetched part. The count uses the segment completed before the newest complete one:
/// by then every player following live has fetched it. Forging viewers therefore costs
/// what real viewers cost (downloading the media), and the playlist URL is the same for
/// every viewer, so a CDN in front collapses identical requests. Behind a CDN the origin
/// counts the CDN's fetches (about one per edge), not viewers: count at the CDN.
#[derive(Debug, Default)]
struct ViewerMeter {
    segments: Mutex<VecDeque<SegmentFetches>>,
}

#[derive(Debug)]
struct SegmentFetches {
    msn: u64,
    whole: u32,
    parts: [u32; METER_PARTS],
}

impl ViewerMeter {
    fn fetched(&self, msn: u64, part: Option<u64>) {
        let mut segs = self.segments.lock();
        let at = match segs.iter().position(|s| s.msn == msn) {
            Some(at) => at,
            None => {
                if segs.back().is_some_and(|s| s.msn > msn) {
                    return; // an old segment (a player far behind): not counted
                }
                if segs.len() == METER_SEGMENTS {
                    segs.pop_front();
                }
                segs.push_back(SegmentFetches {
                    msn,
                    whole: 0,
                    parts: [0; METER_PARTS],
                });
                segs.len() - 1
            }
        };
        let seg = &mut segs[at];
        match part {
            None => seg.whole = seg.whole.saturating_add(1),
            Some(i) => {
                if let Some(n) = usize::try_from(i).ok().and_then(|i| seg.parts.get_mut(i)) {
                    *n = n.saturating_add(1);
                }
            }
        }
    }

    /// Viewers of segment `live_msn - 2` (`live_msn` is the segment in progress).
    fn viewers(&self, live_msn: u64) -> u64 {
        let Some(msn) = live_msn.checked_sub(2) else {
            return 0;
        };
        let segs = self.segments.lock();
        segs.iter().find(|s| s.msn == msn).map_or(0, |s| {
            u64::from(s.whole) + u64::from(s.parts.iter().copied().max().unwrap_or(0))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use weir_hls::{HlsConfig, LiveStream};
    use weir_media::{Codec, Frame, TrackId, VideoConfig};

    /// A video-only stream with 100 ms frames (two per 200 ms part), key frame every 2 s.
    fn stream() -> LiveStream {
        let mut s = LiveStream::new(HlsConfig {
            media_playlist_uri: "b1/media.m3u8".to_owned(),
            ..HlsConfig::default()
        });
        s.set_tracks(
            Some(VideoConfig {
                codec: Codec::H264,
                width: 640,
                height: 360,
                record: Bytes::from_static(&[1, 0x64, 0, 0x1f, 0xff, 0xe0, 0, 0xe1, 0]),
            }),
            None,
        );
        s
    }

    fn frame(n: i64) -> Frame {
        Frame {
            track: TrackId::VIDEO,
            dts: n * 9000,
            pts: n * 9000,
            keyframe: n % 20 == 0,
            data: Bytes::from_static(&[0, 0, 0, 1, 0x65]),
        }
    }

    #[test]
    fn a_publish_wakes_only_the_waiters_it_satisfies() {
        let rt = compio::runtime::Runtime::new().expect("runtime");
        rt.block_on(async {
            let mut hls = stream();
            let d = Arc::new(HlsDelivery::new(hls.snapshot()));
            let deadline = Instant::now() + std::time::Duration::from_secs(5);
            let near = Position { msn: 0, part: 1 };
            let far = Position { msn: 0, part: 4 };
            let (a, b) = (d.clone(), d.clone());
            let near_task = compio::runtime::spawn(async move { a.wait_for(near, deadline).await });
            let far_task = compio::runtime::spawn(async move { b.wait_for(far, deadline).await });
            compio::time::sleep(std::time::Duration::from_millis(20)).await;
            assert_eq!(d.parked_positions(), 2);
            let mut n = 0;
            while hls.snapshot().position() < near {
                hls.push_frame(0, frame(n));
                n += 1;
            }
            d.publish(hls.snapshot());
            let (got, _) = near_task.await.expect("near").expect("satisfied");
            assert!(got.position() >= near);
            assert_eq!(d.parked_positions(), 1, "the far waiter was not woken");
            hls.end();
            d.publish(hls.snapshot());
            let (got, _) = far_task.await.expect("far").expect("woken by the end");
            assert!(got.is_ended());
            assert_eq!(d.parked_positions(), 0);
        });
    }

    #[test]
    fn the_multivariant_playlist_points_into_the_broadcast_directory() {
        let mut hls = stream();
        for n in 0..30 {
            hls.push_frame(0, frame(n));
        }
        let d = HlsDelivery::new(hls.snapshot());
        let text = d.snapshot().multivariant_playlist().expect("tracks");
        let text = String::from_utf8(text.to_vec()).expect("utf8");
        assert!(text.contains("\nb1/media.m3u8\n"), "{text}");
    }

    #[test]
    fn viewers_are_counted_from_a_recent_segment() {
        let m = ViewerMeter::default();
        // Two LL-HLS players fetch every part of segments 3 and 4; one legacy player
        // fetches segment 3 whole; a third LL player joins in the middle of segment 3.
        for msn in 3..5 {
            for part in 0..10 {
                m.fetched(msn, Some(part));
                m.fetched(msn, Some(part));
                if msn == 4 || part >= 5 {
                    m.fetched(msn, Some(part));
                }
            }
        }
        m.fetched(3, None);
        assert_eq!(m.viewers(5), 4, "segment 3: 3 LL players + 1 legacy");
        assert_eq!(m.viewers(6), 3, "segment 4");
        assert_eq!(m.viewers(9), 0, "nobody fetched segment 7");
        assert_eq!(m.viewers(1), 0);
    }

    #[test]
    fn the_meter_is_bounded_and_ignores_old_segments() {
        let m = ViewerMeter::default();
        for msn in 0..100 {
            m.fetched(msn, Some(0));
            m.fetched(msn, Some(10_000)); // out of range: ignored
        }
        m.fetched(5, Some(0)); // far behind: not counted, no new slot
        assert_eq!(m.segments.lock().len(), METER_SEGMENTS);
        assert_eq!(m.viewers(99), 1);
    }
}
