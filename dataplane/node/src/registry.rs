//! The streams a node carries, shared by every shard.
//!
//! A channel has at most one [`Stream`] (one broadcast) at a time. Its media flow over
//! the bus ([`weir_bus::Broadcast`]): the ingest publishes, the LL-HLS packager task
//! (see `hls_task`) subscribes and publishes snapshots to [`HlsDelivery`], which any
//! shard's HTTP requests read. The registry decides who may publish (admission, takeover,
//! the reconnect grace period) and reports lifecycle events and viewer counts.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use weir_bus::{Broadcast, BusConfig, Publisher, SubscribeOptions, Subscriber};
use weir_hls::{HlsConfig, LiveStream};

use crate::delivery::HlsDelivery;
use crate::hooks::{BroadcastInfo, PublishRefusal, StreamEvents};
use crate::ladder_task::{LadderJob, LadderStatus};
use crate::renditions::RenditionSlot;
use crate::shutdown::Shutdown;

/// Viewer counts are re-sent at least this often even when unchanged.
const VIEWER_REPORT_EVERY: Duration = Duration::from_secs(10);

/// One broadcast on one channel.
#[derive(Debug)]
pub struct Stream {
    /// The channel name.
    pub channel: String,
    /// Identifies this broadcast in object URLs so caches never mix two broadcasts; 128
    /// random bits, so the broadcast directory is also the capability to play it.
    pub broadcast_id: String,
    /// Channel, control-plane id and broadcast id, as reported in events.
    pub info: BroadcastInfo,
    /// The multivariant playlist needs a signed URL (the channel's playback policy).
    pub signed_playback: AtomicBool,
    /// The broadcast's media.
    pub bus: Broadcast,
    /// Its H.264 video has B-frames (composition offsets): WebRTC cannot play it as is.
    pub video_reorders: AtomicBool,
    /// WHEP viewers connected on this node.
    pub webrtc_viewers: AtomicU64,
    /// What viewers read: the LL-HLS snapshot, its waiters and the viewer meter (one
    /// muxed playlist; unused when the broadcast is packaged as renditions).
    pub hls: HlsDelivery,
    /// The renditions, for a broadcast packaged one track per playlist (a ladder).
    pub renditions: RenditionSlot,
    /// The ladder's output, when this broadcast is transcoded: its packager reads this
    /// instead of [`Self::bus`].
    pub renditions_bus: Option<Broadcast>,
    /// What the ladder is doing (rungs, encoder, overload).
    pub ladder: Mutex<LadderStatus>,
    /// A broadcast packaged as it came also got a one-track-per-playlist packager of its
    /// source (started by the first DASH request, see [`Registry::package_tracks`]).
    pub tracks_packaged: AtomicBool,
    /// The destinations its relays follow (see [`Registry::set_relays`]).
    pub relays: crate::relay::RelaySlot,
    state: Mutex<StreamState>,
}

/// Publisher bookkeeping of a broadcast.
#[derive(Debug)]
struct StreamState {
    publisher: Option<(u64, Shutdown)>,
    left_at: Option<Instant>,
    ended_at: Option<Instant>,
    reported_viewers: Option<(u64, Instant)>,
    /// The current publisher's bitrate (see `ingest_cap`); reset with each publisher.
    meter: Option<crate::ingest_cap::BitrateMeter>,
}

impl Stream {
    /// True once the broadcast ended (its playlists carry `EXT-X-ENDLIST`).
    pub fn is_ended(&self) -> bool {
        self.state.lock().ended_at.is_some()
    }

    /// Ends the broadcast now; false when it had already ended.
    fn end(&self, now: Instant) -> bool {
        let mut st = self.state.lock();
        if let Some((_, kick)) = st.publisher.take() {
            kick.trigger();
        }
        if st.ended_at.is_some() {
            return false;
        }
        st.ended_at = Some(now);
        drop(st);
        self.bus.end();
        self.relays.wake();
        if let Some(bus) = &self.renditions_bus {
            bus.end();
        }
        true
    }

    /// Viewers of the LL-HLS, over every rendition.
    pub fn hls_viewers(&self) -> u64 {
        match self.renditions.get() {
            Some(set) => set.viewers(),
            None => self.hls.viewers(),
        }
    }

    /// Bytes the published LL-HLS snapshots refer to.
    pub fn packaged_bytes(&self) -> usize {
        self.hls.snapshot().memory_bytes() + self.renditions.get().map_or(0, |s| s.memory_bytes())
    }

    /// The viewer count, if it should be reported now.
    fn viewers_due(&self, now: Instant) -> Option<u64> {
        let count = self.hls_viewers() + self.webrtc_viewers.load(Ordering::Relaxed);
        let mut st = self.state.lock();
        let due = match st.reported_viewers {
            None => count > 0,
            Some((c, at)) => c != count || now.duration_since(at) >= VIEWER_REPORT_EVERY,
        };
        due.then(|| {
            st.reported_viewers = Some((count, now));
            count
        })
    }
}

/// The LL-HLS packager of a new broadcast, for the caller to run (see `hls_task`).
#[derive(Debug)]
pub struct Packaging {
    /// The packager.
    pub hls: LiveStream,
    /// Its subscription to the broadcast (to the renditions, with a ladder).
    pub subscriber: Subscriber,
    /// The ladder to run beside it, when the broadcast is transcoded.
    pub ladder: Option<LadderJob>,
}

/// How a publish attempt was admitted.
#[derive(Debug)]
pub struct Admission {
    /// The stream published to.
    pub stream: Arc<Stream>,
    /// Where the ingest publishes its tracks and frames.
    pub publisher: Publisher,
    /// True when this continues a broadcast whose publisher had left (grace period).
    pub resumed: bool,
    /// For a new broadcast: its packager, to be run by the caller.
    pub packaging: Option<Packaging>,
}

/// The node's streams.
pub struct Registry {
    streams: Mutex<HashMap<String, Arc<Stream>>>,
    events: Arc<dyn StreamEvents>,
    hls: HlsConfig,
    bus: BusConfig,
    grace: Duration,
    retention: Duration,
    takeover: bool,
    /// The ladder a transcoded broadcast gets.
    ladder: weir_codec::LadderConfig,
    /// Whether broadcasts are transcoded unless their channel says otherwise.
    ladder_default: bool,
    /// How relays to destinations behave.
    relay: crate::relay::RelayConfig,
    /// Records broadcasts (when the node or the channel says so).
    recorder: Option<Arc<crate::recorder::Recorder>>,
    /// Whether broadcasts are recorded unless their channel says otherwise.
    record_default: bool,
    /// Clips of the recordings.
    clips: Option<Arc<crate::clips::Clips>>,
    /// Where the watch page finds the control plane (see `NodeConfig::watch_api`).
    watch_api: String,
    /// The RTMP port encoders publish to, as the dashboard shows it (`:PORT`).
    ingest: String,
    /// The node-wide memory budget for media and connections (see `budget`).
    budget: crate::budget::MemoryBudget,
    /// Per-publisher bitrate cap in bits per second (0: none; see `ingest_cap`).
    max_publish_bps: u64,
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
            bus: BusConfig::default(),
            grace,
            retention,
            takeover,
            ladder: weir_codec::LadderConfig::default(),
            ladder_default: false,
            relay: crate::relay::RelayConfig::default(),
            recorder: None,
            record_default: false,
            clips: None,
            watch_api: String::new(),
            ingest: String::new(),
            budget: crate::budget::MemoryBudget::from_mb(0),
            max_publish_bps: 0,
        }
    }

    /// Sets the per-publisher bitrate cap (`[node] max_publish_kbps`; 0: none).
    pub fn set_publish_cap(&mut self, kbps: u64) {
        self.max_publish_bps = kbps.saturating_mul(1000);
    }

    /// Sets the memory budget for media and connections (`[node] memory_budget_mb`).
    pub fn set_memory_budget(&mut self, budget: crate::budget::MemoryBudget) {
        self.budget = budget;
    }

    /// The node-wide memory budget; connections charge their buffers to it
    /// ([`crate::budget::MemoryBudget::charge`]).
    pub fn budget(&self) -> &crate::budget::MemoryBudget {
        &self.budget
    }

    /// The per-publisher bitrate cap in bits per second (0: none).
    pub fn max_publish_bps(&self) -> u64 {
        self.max_publish_bps
    }

    /// Sets where the watch page finds the control plane (`[node] watch_api`).
    pub fn set_watch_api(&mut self, api: String) {
        self.watch_api = api;
    }

    /// Sets the RTMP ingest the dashboard tells encoders about (`:PORT` on the page's host).
    pub fn set_ingest(&mut self, ingest: String) {
        self.ingest = ingest;
    }

    /// The RTMP ingest the dashboard shows: `:PORT` (on the host the page came from).
    pub fn ingest(&self) -> &str {
        if self.ingest.is_empty() {
            ":1935"
        } else {
            &self.ingest
        }
    }

    /// Where the watch page finds the control plane: a base URL or `:PORT`.
    pub fn watch_api(&self) -> &str {
        if self.watch_api.is_empty() {
            ":8090"
        } else {
            &self.watch_api
        }
    }

    /// Records new broadcasts with `recorder`: all of them when `by_default` (`[node]
    /// record`) unless their channel says otherwise ([`PublishGrant::record`]).
    ///
    /// [`PublishGrant::record`]: crate::PublishGrant::record
    pub fn set_recorder(&mut self, recorder: Arc<crate::recorder::Recorder>, by_default: bool) {
        self.recorder = Some(recorder);
        self.record_default = by_default;
    }

    /// Makes clips of the recordings with `clips`.
    pub fn set_clips(&mut self, clips: Arc<crate::clips::Clips>) {
        self.clips = Some(clips);
    }

    /// The node's clips.
    pub fn clips(&self) -> Option<&Arc<crate::clips::Clips>> {
        self.clips.as_ref()
    }

    /// The recorder, when recording is on.
    pub fn recorder(&self) -> Option<&crate::recorder::Recorder> {
        self.recorder.as_deref()
    }

    /// Records a newly admitted broadcast (on the calling shard) when its channel's
    /// setting, or else the node's, says so. A publisher resuming a broadcast keeps its
    /// recording.
    pub fn start_recording(&self, admission: &Admission, record: Option<bool>) {
        if let Some(r) = &self.recorder
            && admission.packaging.is_some()
            && record.unwrap_or(self.record_default)
        {
            r.start(&admission.stream);
        }
    }

    /// How relays to destinations behave.
    pub fn set_relay(&mut self, relay: crate::relay::RelayConfig) {
        self.relay = relay;
    }

    /// The relay settings.
    pub fn relay_config(&self) -> &crate::relay::RelayConfig {
        &self.relay
    }

    /// Pushes a newly admitted broadcast to its channel's destinations (one task each,
    /// on the calling shard), and lets later changes to them reach it
    /// ([`Self::set_relays`]). A publisher resuming a broadcast keeps the relays it had.
    pub fn start_relays(
        self: &Arc<Self>,
        admission: &Admission,
        destinations: Vec<crate::relay::RelayTarget>,
    ) {
        if admission.packaging.is_some() {
            crate::relay::start(self, &admission.stream, destinations);
        }
    }

    /// The live broadcast of the control plane's channel `channel_id` now relays to
    /// exactly `destinations` (from any thread; applied on its shard at once). False
    /// when no live broadcast of that channel is relayed from this node.
    pub fn set_relays(
        &self,
        channel_id: &str,
        destinations: Vec<crate::relay::RelayTarget>,
    ) -> bool {
        let stream = self
            .streams
            .lock()
            .values()
            .find(|s| s.info.channel_id == channel_id && !s.is_ended())
            .cloned();
        stream.is_some_and(|s| s.relays.set(destinations))
    }

    /// The ladder of transcoded broadcasts, and whether broadcasts are transcoded when
    /// their channel does not say (a channel's setting wins: [`PublishGrant::transcode`]).
    ///
    /// [`PublishGrant::transcode`]: crate::PublishGrant::transcode
    pub fn set_ladder(&mut self, ladder: weir_codec::LadderConfig, by_default: bool) {
        self.ladder = ladder;
        self.ladder_default = by_default;
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
        protocol: &'static str,
        transcode: Option<bool>,
    ) -> Result<Admission, PublishRefusal> {
        let mut streams = self.streams.lock();
        if let Some(stream) = streams.get(channel) {
            let mut st = stream.state.lock();
            if st.ended_at.is_none() {
                let resumed = match st.publisher.take() {
                    Some((_, old)) if self.takeover => {
                        old.trigger();
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
                // The registry decides who publishes: a connection that is going away
                // may still hold its bus handle for a moment, so take over on the bus.
                let publisher = stream.bus.publish(true).map_err(|e| PublishRefusal {
                    code: "NetStream.Publish.Failed",
                    reason: e.to_string(),
                })?;
                st.publisher = Some((conn, kick));
                st.left_at = None;
                st.meter = None;
                drop(st);
                return Ok(Admission {
                    stream: stream.clone(),
                    publisher,
                    resumed,
                    packaging: None,
                });
            }
        }
        // A new broadcast (a publisher coming back to its own is not new): only within the
        // memory budget.
        self.budget.admit(channel)?;
        // Object URLs live under the broadcast id: random, so they cannot be guessed
        // (signed playback protects the multivariant playlist that names them).
        let mut id = [0u8; 16];
        let broadcast_id = match weir_streamkey::random_bytes(&mut id) {
            Ok(()) => format!("b{:032x}", u128::from_be_bytes(id)),
            Err(e) => {
                return Err(PublishRefusal {
                    code: "NetStream.Publish.Failed",
                    reason: format!("no randomness for a broadcast id: {e}"),
                });
            }
        };
        let bus = Broadcast::new(self.bus);
        let refused = |e: weir_bus::BusError| PublishRefusal {
            code: "NetStream.Publish.Failed",
            reason: e.to_string(),
        };
        let subscriber = bus
            .subscribe(SubscribeOptions::default())
            .map_err(refused)?;
        let publisher = bus.publish(false).map_err(refused)?;
        let ladder = match transcode.unwrap_or(self.ladder_default) {
            true => Some(&self.ladder),
            false => None,
        };
        let (renditions_bus, subscriber, ladder) = match ladder {
            Some(config) => {
                let renditions = Broadcast::new(self.bus);
                let packager = renditions
                    .subscribe(SubscribeOptions::default())
                    .map_err(refused)?;
                let job = LadderJob {
                    source: subscriber,
                    renditions: renditions.clone(),
                    config: config.clone(),
                };
                (Some(renditions), packager, Some(job))
            }
            None => (None, subscriber, None),
        };
        let hls = LiveStream::new(HlsConfig {
            media_playlist_uri: format!("{broadcast_id}/{}", weir_hls::MEDIA_PLAYLIST),
            ..self.hls.clone()
        });
        let stream = Arc::new(Stream {
            channel: channel.to_owned(),
            info: BroadcastInfo {
                channel: channel.to_owned(),
                channel_id: channel_id.to_owned(),
                broadcast_id: broadcast_id.clone(),
            },
            hls: HlsDelivery::new(hls.snapshot()),
            broadcast_id,
            signed_playback: AtomicBool::new(false),
            bus,
            renditions: RenditionSlot::default(),
            renditions_bus,
            ladder: Mutex::new(LadderStatus::default()),
            video_reorders: AtomicBool::new(false),
            webrtc_viewers: AtomicU64::new(0),
            tracks_packaged: AtomicBool::new(false),
            relays: crate::relay::RelaySlot::default(),
            state: Mutex::new(StreamState {
                publisher: Some((conn, kick)),
                left_at: None,
                ended_at: None,
                reported_viewers: None,
                meter: None,
            }),
        });
        if let Some(old) = streams.insert(channel.to_owned(), stream.clone()) {
            old.end(Instant::now());
        }
        self.events.stream_started(&stream.info, protocol);
        metrics::gauge!("weir_streams").set(streams.len() as f64);
        Ok(Admission {
            stream,
            publisher,
            resumed: false,
            packaging: Some(Packaging {
                hls,
                subscriber,
                ladder,
            }),
        })
    }

    /// DASH for a broadcast packaged as it came (one muxed playlist): starts, once, a
    /// packager of its source bus that cuts each track into its own CMAF playlist (the
    /// objects DASH lists; on the calling shard, joining at the latest key frame), so
    /// the MPD appears in [`Stream::renditions`] within a segment. HLS keeps the muxed
    /// playlist. False when the broadcast is transcoded (it has renditions already) or
    /// its bus cannot be joined.
    pub fn package_tracks(&self, stream: &Arc<Stream>) -> bool {
        if stream.renditions_bus.is_some() {
            return false;
        }
        if stream.tracks_packaged.swap(true, Ordering::AcqRel) {
            return true;
        }
        let Ok(subscriber) = stream.bus.subscribe(SubscribeOptions::default()) else {
            stream.tracks_packaged.store(false, Ordering::Release);
            return false;
        };
        tracing::info!(channel = %stream.channel, "DASH requested: packaging the broadcast's tracks one per playlist");
        compio::runtime::spawn(crate::renditions_task::run(
            stream.clone(),
            self.hls.clone(),
            subscriber,
            None,
        ))
        .detach();
        true
    }

    /// Publisher `conn` left `stream`: the grace period starts.
    pub fn end_publish(&self, stream: &Stream, conn: u64, now: Instant) {
        let mut st = stream.state.lock();
        if matches!(st.publisher, Some((c, _)) if c == conn) {
            st.publisher = None;
            st.left_at = Some(now);
        }
    }

    /// Ends streams whose grace ran out, reports viewer counts and forgets streams
    /// ended long ago.
    pub fn tick(&self, now: Instant) {
        let mut streams = self.streams.lock();
        streams.retain(|channel, stream| {
            let st = stream.state.lock();
            let (left_at, ended_at) = (st.left_at, st.ended_at);
            drop(st);
            if let Some(left) = left_at
                && ended_at.is_none()
                && now.duration_since(left) >= self.grace
            {
                stream.end(now);
                tracing::info!(%channel, "publisher did not come back: playlist ended");
                self.events.viewers(&stream.info, 0);
                self.events.stream_ended(&stream.info);
                return true;
            }
            if ended_at.is_none()
                && let Some(count) = stream.viewers_due(now)
            {
                self.events.viewers(&stream.info, count);
            }
            match ended_at {
                Some(ended) if now.duration_since(ended) >= self.retention => {
                    tracing::debug!(%channel, "ended stream dropped");
                    false
                }
                _ => true,
            }
        });
        let (mut packaged, mut bus, mut viewers) = (0, 0, 0);
        let mut ended = Vec::new();
        for (channel, s) in streams.iter() {
            self.check_bitrate(channel, s, now);
            let p = s.packaged_bytes();
            let b =
                s.bus.memory_bytes() + s.renditions_bus.as_ref().map_or(0, Broadcast::memory_bytes);
            packaged += p;
            bus += b;
            match s.state.lock().ended_at {
                Some(at) => ended.push((at, p + b, channel.clone())),
                None => viewers += s.hls_viewers(),
            }
        }
        // Over the budget (media and connection buffers): ended broadcasts go first,
        // oldest first; live ones and open connections never.
        let mut media = packaged + bus;
        let connections = self.budget.connection_bytes();
        let shed = crate::budget::shed(media + connections, self.budget.limit(), ended);
        for channel in &shed {
            if let Some(s) = streams.remove(channel) {
                media = media.saturating_sub(s.packaged_bytes() + s.bus.memory_bytes());
                tracing::info!(%channel, "memory budget: ended broadcast dropped early");
                metrics::counter!("weir_memory_budget_shed_total").increment(1);
            }
        }
        self.budget.record(media);
        metrics::gauge!("weir_streams").set(streams.len() as f64);
        metrics::gauge!("weir_viewers").set(viewers as f64);
        metrics::gauge!("weir_packaged_bytes").set(packaged as f64);
        metrics::gauge!("weir_bus_bytes").set(bus as f64);
    }

    /// Cuts `stream`'s publisher when a whole window of its ingest went over the cap.
    fn check_bitrate(&self, channel: &str, stream: &Stream, now: Instant) {
        let bytes = stream.bus.bytes_published();
        let mut st = stream.state.lock();
        if self.max_publish_bps == 0 || st.publisher.is_none() || st.ended_at.is_some() {
            st.meter = None;
            return;
        }
        let meter = st
            .meter
            .get_or_insert_with(|| crate::ingest_cap::BitrateMeter::new(now, bytes));
        let Some(bps) = meter.sample(now, bytes) else {
            return;
        };
        if bps <= self.max_publish_bps {
            return;
        }
        if let Some((_, kick)) = st.publisher.take() {
            kick.trigger();
            st.left_at = Some(now);
            st.meter = None;
            metrics::counter!("weir_publish_cut_total", "reason" => "bitrate").increment(1);
            tracing::warn!(
                %channel,
                kbps = bps / 1000,
                cap_kbps = self.max_publish_bps / 1000,
                "publisher over the bitrate cap: connection closed"
            );
        }
    }

    /// Ends every stream now (graceful shutdown): players see EXT-X-ENDLIST.
    pub fn end_all(&self, now: Instant) {
        for stream in self.streams.lock().values() {
            if stream.end(now) {
                self.events.viewers(&stream.info, 0);
                self.events.stream_ended(&stream.info);
            }
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
            .begin_publish("c", "c", 1, Shutdown::new(), "rtmp", None)
            .expect("first");
        let err = r
            .begin_publish("c", "c", 2, Shutdown::new(), "rtmp", None)
            .expect_err("second");
        assert_eq!(err.code, "NetStream.Publish.BadName");
        assert!(!a.resumed);
        let hls = &a.packaging.as_ref().expect("a new broadcast").hls;
        assert_eq!(
            hls.config().media_playlist_uri,
            format!("{}/media.m3u8", a.stream.broadcast_id),
            "the variant URI names the broadcast directory"
        );

        let r = registry(true);
        let kick = Shutdown::new();
        r.begin_publish("c", "c", 1, kick.clone(), "rtmp", None)
            .expect("first");
        let b = r
            .begin_publish("c", "c", 2, Shutdown::new(), "rtmp", None)
            .expect("takeover");
        assert!(kick.is_triggered());
        assert!(b.resumed);
    }

    #[test]
    fn reconnect_within_grace_resumes_and_after_grace_ends() {
        let r = registry(false);
        let t0 = Instant::now();
        let a = r
            .begin_publish("c", "c", 1, Shutdown::new(), "rtmp", None)
            .expect("first");
        r.end_publish(&a.stream, 1, t0);
        r.tick(t0 + Duration::from_secs(5));
        let b = r
            .begin_publish("c", "c", 2, Shutdown::new(), "rtmp", None)
            .expect("again");
        assert!(b.resumed);
        assert_eq!(a.stream.broadcast_id, b.stream.broadcast_id);
        r.end_publish(&b.stream, 2, t0 + Duration::from_secs(6));
        r.tick(t0 + Duration::from_secs(17));
        assert!(b.stream.is_ended());
        assert!(
            b.stream.bus.is_ended(),
            "the bus ended too: the packager ends the playlist"
        );
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
        fn stream_live(&self, b: &BroadcastInfo, _: Vec<crate::hooks::RenditionInfo>) {
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
    fn lifecycle_is_reported() {
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
            .begin_publish("c", "id-c", 1, Shutdown::new(), "rtmp", None)
            .expect("publish");
        r.tick(t0 + Duration::from_secs(2)); // no viewers yet: nothing sent
        r.end_publish(&a.stream, 1, t0 + Duration::from_secs(7));
        r.tick(t0 + Duration::from_secs(9));
        assert_eq!(*events.0.lock(), ["started c", "viewers c 0", "ended c"]);
    }

    #[test]
    fn a_stale_publisher_leaving_does_not_end_the_new_one() {
        let r = registry(true);
        let t0 = Instant::now();
        let a = r
            .begin_publish("c", "c", 1, Shutdown::new(), "rtmp", None)
            .expect("first");
        let _b = r
            .begin_publish("c", "c", 2, Shutdown::new(), "rtmp", None)
            .expect("takeover");
        r.end_publish(&a.stream, 1, t0);
        r.tick(t0 + Duration::from_secs(30));
        assert!(!a.stream.is_ended());
        assert!(
            !a.publisher.is_current(),
            "the displaced publisher no longer publishes"
        );
    }
}
