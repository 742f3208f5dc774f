//! Node configuration (the `[node]` table of weir's TOML config).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// Which I/O driver the shards run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum IoBackend {
    /// io_uring, falling back to epoll when the kernel or a seccomp filter refuses it.
    #[default]
    Auto,
    /// io_uring only: startup fails if it is unavailable.
    IoUring,
    /// epoll (the `polling` driver), never io_uring.
    Epoll,
}

/// What a data-plane node listens on and how it packages.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    /// RTMP ingest listener.
    pub rtmp_listen: SocketAddr,
    /// HTTP origin listener (LL-HLS, metrics, health).
    pub http_listen: SocketAddr,
    /// A separate listener for `/metrics` only (e.g. a private address); the origin then
    /// stops serving it. `None`: `/metrics` on the origin.
    pub metrics_listen: Option<SocketAddr>,
    /// Number of shards (0 = one per available core).
    pub shards: usize,
    /// I/O driver.
    pub io_backend: IoBackend,
    /// Where state lives (stream key secret, revocations).
    pub data_dir: PathBuf,
    /// Host name put in printed URLs (`rtmp://HOST:1935/live`).
    pub public_host: String,
    /// RTMP application name publishers use.
    pub rtmp_app: String,
    /// LL-HLS part target in milliseconds.
    pub part_target_ms: u64,
    /// Segment target in milliseconds (segments are cut at the first keyframe after it).
    pub segment_target_ms: u64,
    /// `EXT-X-TARGETDURATION` in milliseconds (announced rounded up to whole seconds,
    /// fixed for a broadcast): a segment reaching it without a key frame is cut anyway.
    pub target_duration_ms: u64,
    /// Segments kept in each playlist's sliding window.
    pub window_segments: usize,
    /// How long a channel waits for its publisher to come back before the playlist ends.
    pub reconnect_grace_ms: u64,
    /// How long an ended stream stays readable before it is dropped (404 afterwards).
    pub ended_retention_ms: u64,
    /// Memory budget for media in MiB (packaged windows, bus buffers): at it, ended
    /// broadcasts are dropped early and new publishers refused. 0: half the machine's memory.
    pub memory_budget_mb: u64,
    /// Per-publisher bitrate cap in kbit/s, averaged over 5 s (every ingest protocol);
    /// a publisher over it is disconnected. 0: no cap.
    pub max_publish_kbps: u64,
    /// A second publisher on a live channel takes over instead of being refused.
    pub publisher_takeover: bool,
    /// Relays may connect to loopback, private and link-local destinations (off: a
    /// destination URL is user input, and these reach the operator's own network).
    pub relay_allow_internal: bool,
    /// A relay write that makes no progress this long cuts the destination (it retries).
    pub relay_write_timeout_ms: u64,
    /// A relay gathers what arrives within this many ms into one write per destination
    /// (fewer sends and wake-ups, less CPU; adds up to this much latency; default 40).
    /// 0: each wake-up writes at once.
    pub relay_batch_ms: u64,
    /// A relay's audio waits up to this many ms to go out with the next video frame in
    /// one write (about 30 sends a second instead of 77 at 30 fps + AAC; video is never
    /// delayed). 0: every frame is written as it comes.
    pub relay_audio_hold_ms: u64,
    /// Extra CA certificates (PEM) trusted for `rtmps://` destinations, besides
    /// Mozilla's roots (a private CA).
    pub relay_ca_file: Option<std::path::PathBuf>,
    /// Longest time a publishing RTMP connection may go without a complete message
    /// (bytes that complete none do not count) before it is closed.
    pub rtmp_idle_timeout_ms: u64,
    /// From accept to an accepted publish: handshake, `connect`, `publish` (the
    /// authorisation's own wait excluded). Slower connections are closed.
    pub rtmp_publish_timeout_ms: u64,
    /// Longest time a write to an RTMP peer may make no progress.
    pub rtmp_write_timeout_ms: u64,
    /// Largest RTMP command or data message (`connect`, `publish`, `onMetaData`), and
    /// before a publish is accepted the largest message of any kind; larger ones close
    /// the connection, refused on the chunk header before they are buffered.
    pub rtmp_max_command_bytes: usize,
    /// Most concurrent RTMP connections per client address (IPv6: per /64); 0: no limit.
    pub rtmp_max_connections_per_ip: u32,
    /// Most concurrent RTMP connections on the node.
    pub rtmp_max_connections_per_node: usize,
    /// Most concurrent HTTP connections per shard.
    pub http_max_connections: usize,
    /// Most concurrent HTTP connections on the node (all shards).
    pub http_max_connections_per_node: usize,
    /// Most concurrent HTTP connections per client address (IPv6: per /64); 0: no
    /// limit. Behind a CDN or a reverse proxy, raise it or set 0.
    pub http_max_connections_per_ip: u32,
    /// Time to receive a complete request head (and body): from accept for the first
    /// request, from its first byte for later ones. Bytes of a partial head do not
    /// extend it; a request that misses it gets 408.
    pub http_head_timeout_ms: u64,
    /// Keep-alive: longest wait for the next request.
    pub http_idle_timeout_ms: u64,
    /// Longest time a response write may make no progress (the viewer stopped
    /// reading) before the connection is reset and its buffers freed.
    pub http_write_timeout_ms: u64,
    /// First UDP port for WebRTC (WHIP/WHEP): shard `i` listens on this port + `i`
    /// (0: any free port per shard).
    pub webrtc_udp_port: u16,
    /// Address the WebRTC UDP sockets bind to.
    pub webrtc_bind_ip: std::net::IpAddr,
    /// Addresses announced to WebRTC clients as ICE candidates (1:1 NAT: the public
    /// IPs). Empty: the bind address, or the address of the default route when bound
    /// to all interfaces.
    pub webrtc_public_ips: Vec<std::net::IpAddr>,
    /// STUN and TURN servers handed to WebRTC clients in `Link` headers, each
    /// `URL[;username=…;credential=…]` or `URL;secret=…[;ttl=…]` (coturn's shared secret:
    /// short-lived credentials per answer); see `webrtc::ice_servers`.
    pub webrtc_ice_servers: Vec<String>,
    /// When WHEP viewers estimate their bandwidth (and pick simulcast layers by it):
    /// `auto` (default) where the source has several layers, `on`, `off`. Without it
    /// there is no layer switching and no pacing of their packets (lower latency and
    /// CPU). See `weir_webrtc::Bwe`.
    #[serde(deserialize_with = "bwe_setting")]
    pub webrtc_bwe: weir_webrtc::Bwe,
    /// Where the watch page (`/watch/<channel>`) finds the control plane's GraphQL API
    /// and chat: a base URL (`https://api.example.com`), or `:PORT` for the page's own
    /// host on that port. Empty: `:8090` (`weir serve` fills in its API port).
    pub watch_api: String,
    /// SRT ingest listener (UDP; every shard binds it with SO_REUSEPORT).
    pub srt_listen: SocketAddr,
    /// Receiver latency (TSBPD) the node asks SRT callers for, in milliseconds; the
    /// larger of this and the caller's own setting is used.
    pub srt_latency_ms: u64,
    /// Most concurrent SRT connections per shard.
    pub srt_max_connections: usize,
    /// Most concurrent SRT connections per client address (IPv6: per /64), node-wide;
    /// 0: no limit. Further callers are refused with SRT code 2402.
    pub srt_max_connections_per_ip: u32,
    /// Most concurrent WebRTC sessions (WHIP publishers and WHEP viewers) per client
    /// address (IPv6: per /64); 0: no limit. Further offers get 503 + Retry-After.
    pub webrtc_max_sessions_per_ip: u32,
    /// Most concurrent WebRTC sessions on the node.
    pub webrtc_max_sessions: usize,
    /// Longest wait of a publishing connection before its next read while its shard is
    /// busy (reads then carry several frames); 0 reads at once always. See `pacer`.
    pub ingest_batch_max_ms: u64,
    /// Record every broadcast to `<data_dir>/recordings/` (VOD at `/vod/<id>/`).
    pub record: bool,
    /// Delete finished recordings that ended more than this many days ago (0: keep).
    pub record_retention_days: u32,
    /// Delete the oldest finished recordings while all of them take more than this
    /// many bytes (0: no limit).
    pub record_max_bytes: u64,
    /// Object store recordings are copied to, `s3://<bucket>[/<prefix>]`; empty: the
    /// local disk only. Credentials: `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`.
    pub record_store: String,
    /// Endpoint of an S3-compatible server for `record_store` (empty: AWS).
    pub record_store_endpoint: String,
    /// Region of the `record_store` bucket (empty: `AWS_REGION`, else `us-east-1`).
    pub record_store_region: String,
    /// Allow a plain-HTTP `record_store_endpoint`.
    pub record_store_allow_http: bool,
    /// Keep recordings' media files on the local disk once they are in `record_store`;
    /// false: a finished, uploaded recording keeps only its index and is served from
    /// the store.
    pub record_keep_local: bool,
    /// Longest clip of a recording, ms (`createClip` refuses longer ones).
    pub clip_max_ms: u64,
    /// The transcode ladder (`[node.ladder]`).
    pub ladder: LadderSettings,
    /// Studio programs: canvas width (even).
    pub studio_width: u32,
    /// Studio programs: canvas height (even).
    pub studio_height: u32,
    /// Studio programs: frames per second.
    pub studio_fps: u32,
    /// Studio programs: video bitrate, kbit/s (the encoder follows `[node.ladder] encoder`).
    pub studio_video_kbps: u32,
}

/// Which H.264 encoder a ladder uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LadderEncoder {
    /// NVENC when this machine's GPU has it (probed at run time), else x264.
    #[default]
    Auto,
    /// x264 on the CPU.
    X264,
    /// NVENC only: a ladder fails to start where there is none.
    Nvenc,
}

/// One rendition of the ladder (`[[node.ladder.rungs]]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RungSetting {
    /// Rendition name, used in playlist URLs (`720p`): letters, digits, `-`, `_`.
    pub name: String,
    /// Output height (even); the width follows the source's aspect ratio.
    pub height: u16,
    /// Video bitrate in kbit/s.
    pub video_kbps: u32,
    /// Frame-rate cap (frames are dropped to stay under it).
    #[serde(default)]
    pub max_fps: Option<u32>,
}

/// The transcode ladder for the node's broadcasts (`[node.ladder]`).
///
/// With a ladder, every H.264 broadcast is decoded once and encoded at each rung not
/// taller than the source (keyframes at the source's), and its LL-HLS is a multivariant
/// playlist over those renditions plus one audio rendition. Sources the ladder cannot
/// take (not H.264, no GStreamer) are packaged as they come.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LadderSettings {
    /// Transcode every broadcast on this node.
    pub enabled: bool,
    /// The rung at the source's height is the source itself (no re-encode), and a
    /// source taller than every rung is offered as it is on top.
    pub passthrough_top: bool,
    /// Encoder choice.
    pub encoder: LadderEncoder,
    /// The rungs, any order (default 1080p 6000k, 720p 3000k, 480p 1200k, 360p 700k).
    pub rungs: Vec<RungSetting>,
    /// When the encoder falls behind live, switch the top encoded rungs off until it
    /// keeps up (default on). Off: every rung stays, however late.
    pub shed_rungs_when_behind: bool,
    /// Per-title bitrates: the encoded rungs' bitrates follow the content's measured
    /// complexity (0.3 to 1.5 × each rung's `video_kbps`), re-measured while live
    /// (default off: the table's bitrates).
    pub per_title: bool,
}

impl Default for LadderSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            passthrough_top: true,
            encoder: LadderEncoder::Auto,
            shed_rungs_when_behind: true,
            per_title: false,
            rungs: weir_codec::default_ladder()
                .into_iter()
                .map(|r| RungSetting {
                    name: r.name,
                    height: r.height,
                    video_kbps: r.video_bitrate_kbps,
                    max_fps: r.max_fps,
                })
                .collect(),
        }
    }
}

impl LadderSettings {
    /// The encoder choice (`auto` takes NVENC where it works).
    pub fn encoder_choice(&self) -> weir_codec::EncoderChoice {
        match self.encoder {
            LadderEncoder::Auto => weir_codec::EncoderChoice::Auto,
            LadderEncoder::X264 => weir_codec::EncoderChoice::X264,
            LadderEncoder::Nvenc => weir_codec::EncoderChoice::Nvenc,
        }
    }

    /// The codec engine's configuration, or why these settings are unusable.
    pub fn codec_config(&self) -> Result<weir_codec::LadderConfig, String> {
        if let Some(r) = self.rungs.iter().find(|r| {
            r.name.is_empty()
                || !r
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                || r.name == crate::renditions::AUDIO_RENDITION
        }) {
            return Err(format!(
                "ladder rung name {:?}: use letters, digits, '-' or '_' (and not \"{}\")",
                r.name,
                crate::renditions::AUDIO_RENDITION
            ));
        }
        let config = weir_codec::LadderConfig {
            rungs: self
                .rungs
                .iter()
                .map(|r| weir_codec::Rung {
                    name: r.name.clone(),
                    height: r.height,
                    video_bitrate_kbps: r.video_kbps,
                    max_fps: r.max_fps,
                })
                .collect(),
            passthrough_top: self.passthrough_top,
            encoder: self.encoder_choice(),
            overload: self
                .shed_rungs_when_behind
                .then(weir_codec::OverloadConfig::default),
            per_title: self.per_title.then(weir_codec::PerTitleConfig::default),
            ..weir_codec::LadderConfig::default()
        };
        config.validate().map_err(|e| e.to_string())?;
        Ok(config)
    }
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            rtmp_listen: SocketAddr::from(([0, 0, 0, 0], 1935)),
            http_listen: SocketAddr::from(([0, 0, 0, 0], 8080)),
            metrics_listen: None,
            shards: 0,
            io_backend: IoBackend::Auto,
            data_dir: PathBuf::from(".weir-data"),
            public_host: "localhost".to_owned(),
            rtmp_app: "live".to_owned(),
            part_target_ms: 200,
            segment_target_ms: 2000,
            target_duration_ms: 4000,
            window_segments: 12,
            reconnect_grace_ms: 10_000,
            ended_retention_ms: 60_000,
            memory_budget_mb: 0,
            max_publish_kbps: 80_000,
            publisher_takeover: false,
            relay_allow_internal: false,
            relay_write_timeout_ms: 15_000,
            relay_batch_ms: crate::relay::DEFAULT_BATCH_MS,
            relay_audio_hold_ms: crate::relay::DEFAULT_AUDIO_HOLD_MS,
            relay_ca_file: None,
            rtmp_idle_timeout_ms: 15_000,
            rtmp_publish_timeout_ms: 10_000,
            rtmp_write_timeout_ms: 15_000,
            rtmp_max_command_bytes: 64 << 10,
            rtmp_max_connections_per_ip: 10,
            rtmp_max_connections_per_node: 5_000,
            http_max_connections: 10_000,
            http_max_connections_per_node: 100_000,
            http_max_connections_per_ip: 100,
            http_head_timeout_ms: 10_000,
            http_idle_timeout_ms: 30_000,
            http_write_timeout_ms: 15_000,
            ingest_batch_max_ms: 40,
            webrtc_udp_port: 8189,
            webrtc_bind_ip: std::net::IpAddr::from([0, 0, 0, 0]),
            webrtc_public_ips: Vec::new(),
            webrtc_ice_servers: Vec::new(),
            webrtc_bwe: weir_webrtc::Bwe::Auto,
            watch_api: String::new(),
            srt_listen: SocketAddr::from(([0, 0, 0, 0], 9000)),
            srt_latency_ms: 120,
            srt_max_connections: 1000,
            srt_max_connections_per_ip: 10,
            webrtc_max_sessions_per_ip: 100,
            webrtc_max_sessions: 10_000,
            record: false,
            record_retention_days: 0,
            record_max_bytes: 0,
            record_store: String::new(),
            record_store_endpoint: String::new(),
            record_store_region: String::new(),
            record_store_allow_http: false,
            record_keep_local: true,
            clip_max_ms: crate::clips::DEFAULT_MAX_MS,
            ladder: LadderSettings::default(),
            studio_width: 1280,
            studio_height: 720,
            studio_fps: 30,
            studio_video_kbps: 3000,
        }
    }
}

/// `webrtc_bwe` in TOML: `"auto"`, `"on"`, `"off"`, or a boolean (`true` is `on`).
fn bwe_setting<'de, D: serde::Deserializer<'de>>(d: D) -> Result<weir_webrtc::Bwe, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Setting {
        Bool(bool),
        Text(String),
    }
    match Setting::deserialize(d)? {
        Setting::Bool(true) => Ok(weir_webrtc::Bwe::On),
        Setting::Bool(false) => Ok(weir_webrtc::Bwe::Off),
        Setting::Text(t) => t.parse().map_err(serde::de::Error::custom),
    }
}

impl NodeConfig {
    /// How relays to destinations behave.
    pub fn relay(&self) -> crate::relay::RelayConfig {
        crate::relay::RelayConfig {
            allow_internal: self.relay_allow_internal,
            write_timeout: std::time::Duration::from_millis(self.relay_write_timeout_ms.max(1000)),
            ca_file: self.relay_ca_file.clone(),
            batch: std::time::Duration::from_millis(self.relay_batch_ms.min(1000)),
            audio_hold: std::time::Duration::from_millis(self.relay_audio_hold_ms.min(1000)),
            ..crate::relay::RelayConfig::default()
        }
    }

    /// The shard count actually used.
    pub fn shard_count(&self) -> usize {
        if self.shards > 0 {
            self.shards
        } else {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        }
    }

    /// The LL-HLS packaging settings.
    pub fn hls(&self) -> weir_hls::HlsConfig {
        weir_hls::HlsConfig {
            part_target: Duration::from_millis(self.part_target_ms.max(50)),
            segment_target: Duration::from_millis(self.segment_target_ms.max(500)),
            window: self.window_segments.max(3),
            target_duration: Duration::from_millis(self.target_duration_ms.max(1000)),
            ..weir_hls::HlsConfig::default()
        }
    }

    /// The deadlines of HTTP connections (each at least 100 ms).
    pub fn http_timeouts(&self) -> crate::http::conn::HttpTimeouts {
        let ms = |v: u64| Duration::from_millis(v.max(100));
        crate::http::conn::HttpTimeouts {
            head: ms(self.http_head_timeout_ms),
            idle: ms(self.http_idle_timeout_ms),
            write: ms(self.http_write_timeout_ms),
        }
    }

    /// The SRT listener settings.
    pub fn srt(&self) -> weir_srt::SrtConfig {
        weir_srt::SrtConfig {
            latency: Duration::from_millis(self.srt_latency_ms.clamp(20, 8000)),
            max_connections: self.srt_max_connections,
            ..weir_srt::SrtConfig::default()
        }
    }

    /// The studio compositor's program format (key frames every segment target).
    pub fn studio(&self) -> weir_codec::ComposeConfig {
        weir_codec::ComposeConfig {
            width: self.studio_width.clamp(160, 3840) & !1,
            height: self.studio_height.clamp(90, 2160) & !1,
            fps: self.studio_fps.clamp(1, 60),
            video_kbps: self.studio_video_kbps.clamp(100, 50_000),
            gop_seconds: self.segment_target_ms.div_ceil(1000).clamp(1, 10) as u32,
            encoder: self.ladder.encoder_choice(),
            ..weir_codec::ComposeConfig::default()
        }
    }

    /// The recorder's settings.
    pub fn recording(&self) -> crate::recorder::RecordConfig {
        crate::recorder::RecordConfig {
            root: self.data_dir.join("recordings"),
            segment_target: Duration::from_millis(self.segment_target_ms.max(500)),
            target_duration: Duration::from_millis(self.target_duration_ms.max(1000)),
            retention: crate::recorder::Retention {
                days: self.record_retention_days,
                max_bytes: self.record_max_bytes,
            },
            store: crate::recorder::StoreConfig {
                url: self.record_store.trim().to_owned(),
                endpoint: self.record_store_endpoint.trim().to_owned(),
                region: self.record_store_region.trim().to_owned(),
                allow_http: self.record_store_allow_http,
                keep_local: self.record_keep_local,
            },
        }
    }

    /// Path of the stream key secret.
    pub fn key_secret_path(&self) -> PathBuf {
        self.data_dir.join("stream-key.secret")
    }

    /// Path of the revoked key list.
    pub fn revocations_path(&self) -> PathBuf {
        self.data_dir.join("revoked-keys")
    }
}
