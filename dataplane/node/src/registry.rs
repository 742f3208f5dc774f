//! The streams a node carries, shared by every shard.
//!
//! A channel has at most one [`Stream`] (one broadcast) at a time. Its packager sits
//! behind a mutex: the ingest shard pushes frames, any shard reads playlists and
//! objects, and viewers blocked on a reload wait on [`Stream::changed`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use event_listener::Event;
use parking_lot::Mutex;
use weir_hls::{HlsConfig, LiveStream};

use crate::shutdown::Shutdown;

/// Decides whether a publisher may publish; implemented by the binary (stream keys).
pub trait PublishAuth: Send + Sync + 'static {
    /// Checks the publishing name sent by an RTMP client for application `app` and
    /// returns the channel it publishes to. Never logs the key.
    fn authorize(&self, app: &str, stream_name: &str) -> Result<String, PublishRefusal>;
}

/// Why a publish was refused; `code` is the RTMP status code sent to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishRefusal {
    /// RTMP `onStatus` code, e.g. `NetStream.Publish.BadName`.
    pub code: &'static str,
    /// Human-readable reason (safe to log and to send: no secrets).
    pub reason: String,
}

/// One broadcast on one channel.
#[derive(Debug)]
pub struct Stream {
    /// The channel name.
    pub channel: String,
    /// Identifies this broadcast in object URLs so caches never mix two broadcasts.
    pub broadcast_id: String,
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
#[derive(Debug)]
pub struct Registry {
    streams: Mutex<HashMap<String, Arc<Stream>>>,
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
    /// An empty registry.
    pub fn new(hls: HlsConfig, grace: Duration, retention: Duration, takeover: bool) -> Self {
        Self {
            streams: Mutex::new(HashMap::new()),
            hls,
            grace,
            retention,
            takeover,
        }
    }

    /// The stream currently on `channel`, live or recently ended.
    pub fn get(&self, channel: &str) -> Option<Arc<Stream>> {
        self.streams.lock().get(channel).cloned()
    }

    /// A publisher (connection `conn`, closed by triggering `kick`) wants `channel`.
    pub fn begin_publish(
        &self,
        channel: &str,
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
        let stream = Arc::new(Stream {
            channel: channel.to_owned(),
            broadcast_id: format!("b{:x}", wallclock_ms()),
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
                return true;
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
        )
    }

    #[test]
    fn second_publisher_is_refused_unless_takeover() {
        let r = registry(false);
        let a = r.begin_publish("c", 1, Shutdown::new()).expect("first");
        let err = r
            .begin_publish("c", 2, Shutdown::new())
            .expect_err("second");
        assert_eq!(err.code, "NetStream.Publish.BadName");
        assert!(!a.resumed);

        let r = registry(true);
        let kick = Shutdown::new();
        r.begin_publish("c", 1, kick.clone()).expect("first");
        let b = r.begin_publish("c", 2, Shutdown::new()).expect("takeover");
        assert!(kick.is_triggered());
        assert!(b.resumed);
    }

    #[test]
    fn reconnect_within_grace_resumes_and_after_grace_ends() {
        let r = registry(false);
        let t0 = Instant::now();
        let a = r.begin_publish("c", 1, Shutdown::new()).expect("first");
        r.end_publish(&a.stream, 1, t0);
        r.tick(t0 + Duration::from_secs(5));
        let b = r.begin_publish("c", 2, Shutdown::new()).expect("again");
        assert!(b.resumed);
        assert_eq!(a.stream.broadcast_id, b.stream.broadcast_id);
        r.end_publish(&b.stream, 2, t0 + Duration::from_secs(6));
        r.tick(t0 + Duration::from_secs(17));
        assert!(b.stream.state.lock().hls.is_ended());
        assert!(r.get("c").is_some(), "ended streams stay readable");
        r.tick(t0 + Duration::from_secs(80));
        assert!(r.get("c").is_none());
    }

    #[test]
    fn a_stale_publisher_leaving_does_not_end_the_new_one() {
        let r = registry(true);
        let t0 = Instant::now();
        let a = r.begin_publish("c", 1, Shutdown::new()).expect("first");
        let _b = r.begin_publish("c", 2, Shutdown::new()).expect("takeover");
        r.end_publish(&a.stream, 1, t0);
        r.tick(t0 + Duration::from_secs(30));
        assert!(!a.stream.state.lock().hls.is_ended());
    }
}
