//! The streams a node carries, shared by every shard.
//!
//! A channel has at most one [`Stream`] (one broadcast) at a time. Its packager sits
//! behind a mutex: the ingest shard pushes frames, any shard reads playlists and
//! objects, and viewers blocked on a reload wait on [`Stream::changed`].

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use event_listener::Event;
use parking_lot::Mutex;
use weir_hls::{HlsConfig, LiveStream};

use crate::hooks::{BroadcastInfo, PublishRefusal, StreamEvents};
use crate::shutdown::Shutdown;

/// A viewer stops counting this long after its last playlist request.
pub const VIEWER_TTL: Duration = Duration::from_secs(6);
/// Most viewer sessions tracked per stream (beyond, new sessions are not counted).
pub const MAX_VIEWER_SESSIONS: usize = 200_000;
/// Viewer counts are re-sent at least this often even when unchanged.
const VIEWER_REPORT_EVERY: Duration = Duration::from_secs(10);

/// One broadcast on one channel.
#[derive(Debug)]
pub struct Stream {
    /// The channel name.
    pub channel: String,
    /// Identifies this broadcast in object URLs so caches never mix two broadcasts.
    pub broadcast_id: String,
    /// Channel, control-plane id and broadcast id, as reported in events.
    pub info: BroadcastInfo,
    /// Viewer sessions (from the multivariant playlist) and when each was last seen.
    pub viewers: Mutex<ViewerSessions>,
    /// Playlists need a signed URL (the channel's playback policy, set at publish).
    pub signed_playback: AtomicBool,
    /// Notified whenever a part is added or the stream ends.
    pub changed: Event,
    /// The packager and publisher bookkeeping.
    pub state: Mutex<StreamState>,
    /// The target duration, for blocking-reload time-outs.
    pub segment_target: Duration,
}

/// Mutable state of a broadcast.
#[derive(Debug)]
pub struct StreamState {
    /// The LL-HLS packager.
    pub hls: LiveStream,
    publisher: Option<(u64, Shutdown)>,
    left_at: Option<Instant>,
    ended_at: Option<Instant>,
}

impl Stream {
    /// Wakes every viewer waiting on this stream.
    pub fn notify(&self) {
        self.changed.notify(usize::MAX);
    }

    /// Whether a viewer session requested a playlist within the last [`VIEWER_TTL`].
    pub fn viewer_active(&self, session: u64, now: Instant) -> bool {
        self.viewers
            .lock()
            .seen
            .get(&session)
            .is_some_and(|last| now.saturating_duration_since(*last) < VIEWER_TTL)
    }

    /// A viewer session requested a playlist.
    pub fn touch_viewer(&self, session: u64, now: Instant) {
        let mut v = self.viewers.lock();
        if v.seen.len() < MAX_VIEWER_SESSIONS || v.seen.contains_key(&session) {
            v.seen.insert(session, now);
        }
    }
}

/// Viewer sessions of one broadcast.
#[derive(Debug, Default)]
pub struct ViewerSessions {
    seen: HashMap<u64, Instant>,
    reported: Option<(u64, Instant)>,
}

impl ViewerSessions {
    /// Drops stale sessions; returns the count if it should be reported now.
    fn expire(&mut self, now: Instant) -> Option<u64> {
        self.seen
            .retain(|_, last| now.saturating_duration_since(*last) < VIEWER_TTL);
        let count = self.seen.len() as u64;
        let due = match self.reported {
            None => count > 0,
            Some((c, at)) => c != count || now.duration_since(at) >= VIEWER_REPORT_EVERY,
        };
        if due {
            self.reported = Some((count, now));
            Some(count)
        } else {
            None
        }
    }

    /// Sessions currently counted.
    pub fn count(&self) -> usize {
        self.seen.len()
    }
}

/// How a publish attempt was admitted.
#[derive(Debug)]
pub struct Admission {
    /// The stream to push frames into.
    pub stream: Arc<Stream>,
    /// True when this continues a broadcast whose publisher had left (grace period).
    pub resumed: bool,
}

/// The node's streams.
pub struct Registry {
    streams: Mutex<HashMap<String, Arc<Stream>>>,
    events: Arc<dyn StreamEvents>,
    hls: HlsConfig,
    grace: Duration,
    retention: Duration,
    takeover: bool,
}

/// UNIX time in milliseconds.
pub fn wallclock_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Registry {
    /// An empty registry reporting to `events`.
    pub fn new(
        hls: HlsConfig,
        grace: Duration,
        retention: Duration,
        takeover: bool,
        events: Arc<dyn StreamEvents>,
    ) -> Self {
        Self {
            streams: Mutex::new(HashMap::new()),
            events,
            hls,
            grace,
            retention,
            takeover,
        }
    }

    /// Where lifecycle events go.
    pub fn events(&self) -> &dyn StreamEvents {
        &*self.events
    }

    /// The stream currently on `channel`, live or recently ended.
    pub fn get(&self, channel: &str) -> Option<Arc<Stream>> {
        self.streams.lock().get(channel).cloned()
    }

    /// A publisher (connection `conn`, closed by triggering `kick`) wants `channel`.
    pub fn begin_publish(
        &self,
        channel: &str,
        channel_id: &str,
        conn: u64,
        kick: Shutdown,
    ) -> Result<Admission, PublishRefusal> {
        let mut streams = self.streams.lock();
        if let Some(stream) = streams.get(channel) {
            let mut st = stream.state.lock();
            if st.ended_at.is_none() {
                let resumed = match st.publisher.take() {
                    Some((_, old)) if self.takeover => {
                        old.trigger();
                        st.hls.pause();
                        true
                    }
                    Some(current) => {
                        st.publisher = Some(current);
                        return Err(PublishRefusal {
                            code: "NetStream.Publish.BadName",
                            reason: format!("channel {channel} is already being published"),
                        });
                    }
                    None => true,
                };
                st.hls.resume();
                st.publisher = Some((conn, kick));
                st.left_at = None;
                drop(st);
                return Ok(Admission {
                    stream: stream.clone(),
                    resumed,
                });
            }
        }
        // Object URLs live under the broadcast id: random, so they cannot be guessed
        // (signed playback protects the playlists that name them).
        let mut id = [0u8; 8];
        let broadcast_id = match weir_streamkey::random_bytes(&mut id) {
            Ok(()) => format!("b{:016x}", u64::from_be_bytes(id)),
            Err(_) => format!("b{:x}", wallclock_ms()),
        };
        let stream = Arc::new(Stream {
            channel: channel.to_owned(),
            info: BroadcastInfo {
                channel: channel.to_owned(),
                channel_id: channel_id.to_owned(),
                broadcast_id: broadcast_id.clone(),
            },
            broadcast_id,
            viewers: Mutex::new(ViewerSessions::default()),
            signed_playback: AtomicBool::new(false),
            changed: Event::new(),
            state: Mutex::new(StreamState {
                hls: LiveStream::new(self.hls.clone()),
                publisher: Some((conn, kick)),
                left_at: None,
                ended_at: None,
            }),
            segment_target: self.hls.segment_target,
        });
        if let Some(old) = streams.insert(channel.to_owned(), stream.clone()) {
            old.notify();
        }
        self.events.stream_started(&stream.info, "rtmp");
        metrics::gauge!("weir_streams").set(streams.len() as f64);
        Ok(Admission {
            stream,
            resumed: false,
        })
    }

    /// Publisher `conn` left `stream`: the grace period starts.
    pub fn end_publish(&self, stream: &Stream, conn: u64, now: Instant) {
        let mut st = stream.state.lock();
        if matches!(st.publisher, Some((c, _)) if c == conn) {
            st.publisher = None;
            st.left_at = Some(now);
            st.hls.pause();
        }
        drop(st);
        stream.notify();
    }

    /// Ends streams whose grace ran out and forgets those ended long ago.
    pub fn tick(&self, now: Instant) {
        let mut streams = self.streams.lock();
        streams.retain(|channel, stream| {
            let mut st = stream.state.lock();
            if let Some(left) = st.left_at
                && st.ended_at.is_none()
                && now.duration_since(left) >= self.grace
            {
                st.hls.end();
                st.ended_at = Some(now);
                tracing::info!(%channel, "publisher did not come back: playlist ended");
                drop(st);
                stream.notify();
                self.events.viewers(&stream.info, 0);
                self.events.stream_ended(&stream.info);
                return true;
            }
            if st.ended_at.is_none()
                && let Some(count) = stream.viewers.lock().expire(now)
            {
                self.events.viewers(&stream.info, count);
            }
            match st.ended_at {
                Some(ended) if now.duration_since(ended) >= self.retention => {
                    tracing::debug!(%channel, "ended stream dropped");
                    false
                }
                _ => true,
            }
        });
        metrics::gauge!("weir_streams").set(streams.len() as f64);
        let bytes: usize = streams
            .values()
            .map(|s| s.state.lock().hls.memory_bytes())
            .sum();
        let viewers: usize = streams.values().map(|s| s.viewers.lock().count()).sum();
        metrics::gauge!("weir_viewers").set(viewers as f64);
        metrics::gauge!("weir_packaged_bytes").set(bytes as f64);
    }

    /// Ends every stream now (graceful shutdown): players see EXT-X-ENDLIST.
    pub fn end_all(&self, now: Instant) {
        for stream in self.streams.lock().values() {
            let mut st = stream.state.lock();
            if let Some((_, kick)) = st.publisher.take() {
                kick.trigger();
            }
            if st.ended_at.is_none() {
                st.hls.end();
                st.ended_at = Some(now);
                self.events.viewers(&stream.info, 0);
                self.events.stream_ended(&stream.info);
            }
            drop(st);
            stream.notify();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry(takeover: bool) -> Registry {
        Registry::new(
            HlsConfig::default(),
            Duration::from_secs(10),
            Duration::from_secs(60),
            takeover,
            Arc::new(crate::hooks::NoEvents),
        )
    }

    #[test]
    fn second_publisher_is_refused_unless_takeover() {
        let r = registry(false);
        let a = r
            .begin_publish("c", "c", 1, Shutdown::new())
            .expect("first");
        let err = r
            .begin_publish("c", "c", 2, Shutdown::new())
            .expect_err("second");
        assert_eq!(err.code, "NetStream.Publish.BadName");
        assert!(!a.resumed);

        let r = registry(true);
        let kick = Shutdown::new();
        r.begin_publish("c", "c", 1, kick.clone()).expect("first");
        let b = r
            .begin_publish("c", "c", 2, Shutdown::new())
            .expect("takeover");
        assert!(kick.is_triggered());
        assert!(b.resumed);
    }

    #[test]
    fn reconnect_within_grace_resumes_and_after_grace_ends() {
        let r = registry(false);
        let t0 = Instant::now();
        let a = r
            .begin_publish("c", "c", 1, Shutdown::new())
            .expect("first");
        r.end_publish(&a.stream, 1, t0);
        r.tick(t0 + Duration::from_secs(5));
        let b = r
            .begin_publish("c", "c", 2, Shutdown::new())
            .expect("again");
        assert!(b.resumed);
        assert_eq!(a.stream.broadcast_id, b.stream.broadcast_id);
        r.end_publish(&b.stream, 2, t0 + Duration::from_secs(6));
        r.tick(t0 + Duration::from_secs(17));
        assert!(b.stream.state.lock().hls.is_ended());
        assert!(r.get("c").is_some(), "ended streams stay readable");
        r.tick(t0 + Duration::from_secs(80));
        assert!(r.get("c").is_none());
    }

    #[derive(Default)]
    struct Recorder(Mutex<Vec<String>>);

    impl StreamEvents for Recorder {
        fn stream_started(&self, b: &BroadcastInfo, _: &'static str) {
            self.0.lock().push(format!("started {}", b.channel));
        }
        fn stream_live(&self, b: &BroadcastInfo, _: String, _: u32, _: u32) {
            self.0.lock().push(format!("live {}", b.channel));
        }
        fn stream_ended(&self, b: &BroadcastInfo) {
            self.0.lock().push(format!("ended {}", b.channel));
        }
        fn viewers(&self, b: &BroadcastInfo, n: u64) {
            self.0.lock().push(format!("viewers {} {n}", b.channel));
        }
    }

    #[test]
    fn lifecycle_and_viewer_counts_are_reported() {
        let events = Arc::new(Recorder::default());
        let r = Registry::new(
            HlsConfig::default(),
            Duration::from_secs(1),
            Duration::from_secs(60),
            false,
            events.clone(),
        );
        let t0 = Instant::now();
        let a = r
            .begin_publish("c", "id-c", 1, Shutdown::new())
            .expect("publish");
        a.stream.touch_viewer(1, t0);
        a.stream.touch_viewer(2, t0);
        a.stream.touch_viewer(2, t0 + Duration::from_secs(1));
        r.tick(t0 + Duration::from_secs(2));
        assert_eq!(a.stream.viewers.lock().count(), 2);
        r.tick(t0 + Duration::from_millis(2500)); // unchanged: not re-sent
        r.tick(t0 + Duration::from_secs(6)); // viewer 1 expired
        r.end_publish(&a.stream, 1, t0 + Duration::from_secs(7));
        r.tick(t0 + Duration::from_secs(9));
        assert_eq!(
            *events.0.lock(),
            [
                "started c",
                "viewers c 2",
                "viewers c 1",
                "viewers c 0",
                "ended c"
            ]
        );
    }

    #[test]
    fn a_stale_publisher_leaving_does_not_end_the_new_one() {
        let r = registry(true);
        let t0 = Instant::now();
        let a = r
            .begin_publish("c", "c", 1, Shutdown::new())
            .expect("first");
        let _b = r
            .begin_publish("c", "c", 2, Shutdown::new())
            .expect("takeover");
        r.end_publish(&a.stream, 1, t0);
        r.tick(t0 + Duration::from_secs(30));
        assert!(!a.stream.state.lock().hls.is_ended());
    }
}
