//! Configuration loading: defaults < TOML file < environment < flags.

use std::path::Path;

use anyhow::Context as _;
use serde::Deserialize;
use weir_node::{IoBackend, NodeConfig};

use crate::cli::{Backend, NodeArgs};

/// The whole configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The `[node]` table.
    pub node: NodeConfig,
    /// The `[control]` table.
    pub control: ControlConfig,
}

/// Control-plane settings (the `[control]` table). Secrets come from the environment:
/// `WEIR_NODE_TOKEN`, `WEIR_STREAM_KEY_SECRET`, `WEIR_STREAM_KEY_PUBLIC`, `WEIR_JWT_SECRET`, `WEIR_SECRET_KEY`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ControlConfig {
    /// GraphQL API listener.
    pub api_listen: std::net::SocketAddr,
    /// etcd endpoints for `weir controlplane`.
    pub etcd_endpoints: Vec<String>,
    /// The control plane a `weir dataplane` reports to.
    pub control_plane: Option<String>,
    /// This node's id (default: `node-<http port>`).
    pub node_id: Option<String>,
    /// Where a `weir dataplane` takes its control plane's studio calls (compose, go
    /// live, end), authenticated with the node token; port 0 picks one. The node
    /// reports `http://<public_host>:<port>` in its heartbeats.
    pub studio_listen: std::net::SocketAddr,
    /// What a data-plane node does with a correctly signed key while its control plane
    /// cannot be reached (so revocations made since are unknown to it).
    pub unreachable_keys: UnreachableKeys,
    /// GraphQL requests per second per client IP (burst 4×).
    pub rate_per_ip: f64,
    /// Open connections per client address (IPv6: per /64) on the control plane's
    /// listeners (API, chat, a node's control listener); 0: no limit.
    pub max_connections_per_ip: u32,
    /// A request head must arrive within this (also the keep-alive idle limit) on those
    /// listeners, ms.
    pub head_timeout_ms: u64,
    /// On those listeners a response write (or a WebSocket message) that makes no
    /// progress for this long ends the connection, ms.
    pub write_timeout_ms: u64,
    /// GraphQL requests per second per signed-in user (burst 4×).
    pub rate_per_user: f64,
    /// Redis (`host:port`) through which chat gateways share rooms; `None`: rooms live
    /// in this process only (one gateway).
    pub chat_redis: Option<String>,
    /// Listener of `weir chat` (the gateway alone).
    pub chat_listen: std::net::SocketAddr,
    /// Chat messages per second per user, across rooms (burst 5×).
    pub chat_rate_per_user: f64,
    /// Chat messages per second per client address, across rooms (burst 4×).
    pub chat_rate_per_ip: f64,
    /// Chat websocket connections (and `auth` / `moderate` messages) per second per
    /// client address (burst 15×).
    pub chat_connect_rate_per_ip: f64,
}

/// Publish policy of a data-plane node whose control plane is unreachable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum UnreachableKeys {
    /// Fail open: a correctly signed key that is not on the node's local revocation list
    /// publishes (availability first; a key revoked meanwhile works until the control
    /// plane is back).
    Open,
    /// Fail closed: no key publishes until the control plane answers (revocation first).
    Closed,
}

impl ControlConfig {
    /// The connection limits of control-plane listener `name` (`api`, `chat`,
    /// `node-control`).
    pub fn listen_limits(&self, name: &'static str) -> weir_serve::Limits {
        weir_serve::Limits {
            per_ip: self.max_connections_per_ip,
            // A request's body gets as long as its head.
            head_timeout: std::time::Duration::from_millis(self.head_timeout_ms.max(500)),
            body_timeout: std::time::Duration::from_millis(self.head_timeout_ms.max(500)),
            write_timeout: std::time::Duration::from_millis(self.write_timeout_ms.max(500)),
            ..weir_serve::Limits::new(name)
        }
    }
}

impl Default for ControlConfig {
    fn default() -> Self {
        Self {
            api_listen: std::net::SocketAddr::from(([0, 0, 0, 0], 8090)),
            etcd_endpoints: vec!["http://127.0.0.1:2379".to_owned()],
            control_plane: None,
            node_id: None,
            studio_listen: std::net::SocketAddr::from(([0, 0, 0, 0], 8092)),
            unreachable_keys: UnreachableKeys::Open,
            rate_per_ip: 30.0,
            max_connections_per_ip: 256,
            head_timeout_ms: 10_000,
            write_timeout_ms: 15_000,
            rate_per_user: 15.0,
            chat_redis: None,
            chat_listen: std::net::SocketAddr::from(([0, 0, 0, 0], 8091)),
            chat_rate_per_user: 1.0,
            chat_rate_per_ip: 5.0,
            chat_connect_rate_per_ip: 2.0,
        }
    }
}

/// A rung given as `NAME:HEIGHT:KBPS`.
fn parse_rung(text: &str) -> anyhow::Result<weir_node::RungSetting> {
    let bad =
        || anyhow::anyhow!("ladder rung {text:?}: expected NAME:HEIGHT:KBPS, e.g. 720p:720:3000");
    let mut it = text.trim().split(':');
    let (Some(name), Some(height), Some(kbps), None) = (it.next(), it.next(), it.next(), it.next())
    else {
        return Err(bad());
    };
    Ok(weir_node::RungSetting {
        name: name.to_owned(),
        height: height.parse().map_err(|_| bad())?,
        video_kbps: kbps.parse().map_err(|_| bad())?,
        max_fps: None,
    })
}

/// `watch_api` is empty, `:PORT`, or an http(s) base URL.
fn check_watch_api(v: &str) -> anyhow::Result<()> {
    let port_only = v
        .strip_prefix(':')
        .is_some_and(|p| p.parse::<u16>().is_ok_and(|p| p > 0));
    let url = (v.starts_with("http://") || v.starts_with("https://"))
        && !v.contains(|c: char| c.is_whitespace() || "\"'<>`".contains(c));
    anyhow::ensure!(
        v.is_empty() || port_only || url,
        "watch_api must be \":PORT\" or an http(s) URL such as https://api.example.com, not {v:?}"
    );
    Ok(())
}

/// Reads the file (if any) and applies overrides.
pub fn load(path: Option<&Path>, args: &NodeArgs) -> anyhow::Result<Config> {
    let mut config = match path {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("reading config {}", p.display()))?;
            toml::from_str(&text).with_context(|| format!("parsing config {}", p.display()))?
        }
        None => Config::default(),
    };
    let n = &mut config.node;
    let a = args.clone();
    if let Some(v) = a.rtmp_listen {
        n.rtmp_listen = v;
    }
    if let Some(v) = a.http_listen {
        n.http_listen = v;
    }
    if let Some(v) = a.shards {
        n.shards = v;
    }
    if let Some(v) = a.srt_listen {
        n.srt_listen = v;
    }
    if let Some(v) = a.srt_latency_ms {
        n.srt_latency_ms = v;
    }
    if let Some(v) = a.ladder {
        n.ladder.enabled = v;
    }
    if let Some(v) = a.ladder_per_title {
        n.ladder.per_title = v;
    }
    if let Some(rungs) = &a.ladder_rungs {
        n.ladder.rungs = rungs
            .iter()
            .map(|r| parse_rung(r))
            .collect::<anyhow::Result<_>>()?;
    }
    if let Some(v) = a.webrtc_udp_port {
        n.webrtc_udp_port = v;
    }
    if let Some(v) = a.webrtc_public_ips {
        n.webrtc_public_ips = v;
    }
    if let Some(v) = &a.webrtc_ice_servers {
        n.webrtc_ice_servers = v.clone();
    }
    if let Some(v) = a.webrtc_bwe {
        n.webrtc_bwe = v;
    }
    if let Some(v) = &a.watch_api {
        n.watch_api = v.clone();
    }
    if let Some(v) = a.io_backend {
        n.io_backend = match v {
            Backend::Auto => IoBackend::Auto,
            Backend::IoUring => IoBackend::IoUring,
            Backend::Epoll => IoBackend::Epoll,
        };
    }
    if let Some(v) = a.data_dir {
        n.data_dir = v;
    }
    if let Some(v) = a.public_host {
        n.public_host = v;
    }
    if let Some(v) = a.part_target_ms {
        n.part_target_ms = v;
    }
    if let Some(v) = a.segment_target_ms {
        n.segment_target_ms = v;
    }
    if let Some(v) = a.target_duration_ms {
        n.target_duration_ms = v;
    }
    if let Some(v) = a.window_segments {
        n.window_segments = v;
    }
    if let Some(v) = a.ingest_batch_max_ms {
        n.ingest_batch_max_ms = v;
    }
    if let Some(v) = a.reconnect_grace_ms {
        n.reconnect_grace_ms = v;
    }
    if a.metrics_listen.is_some() {
        n.metrics_listen = a.metrics_listen;
    }
    if let Some(v) = a.memory_budget_mb {
        n.memory_budget_mb = v;
    }
    if let Some(v) = a.max_publish_kbps {
        n.max_publish_kbps = v;
    }
    if let Some(v) = a.publisher_takeover {
        n.publisher_takeover = v;
    }
    if let Some(v) = a.relay_allow_internal {
        n.relay_allow_internal = v;
    }
    if let Some(v) = a.relay_batch_ms {
        n.relay_batch_ms = v;
    }
    if let Some(v) = a.relay_write_timeout_ms {
        n.relay_write_timeout_ms = v;
    }
    if let Some(v) = a.relay_audio_hold_ms {
        n.relay_audio_hold_ms = v;
    }
    if a.relay_ca_file.is_some() {
        n.relay_ca_file = a.relay_ca_file;
    }
    if let Some(v) = a.record {
        n.record = v;
    }
    if let Some(v) = a.record_retention_days {
        n.record_retention_days = v;
    }
    if let Some(v) = a.record_max_bytes {
        n.record_max_bytes = v;
    }
    if let Some(v) = &a.record_store {
        n.record_store = v.clone();
    }
    if let Some(v) = &a.record_store_endpoint {
        n.record_store_endpoint = v.clone();
    }
    if let Some(v) = &a.record_store_region {
        n.record_store_region = v.clone();
    }
    if let Some(v) = a.record_store_allow_http {
        n.record_store_allow_http = v;
    }
    if let Some(v) = a.record_keep_local {
        n.record_keep_local = v;
    }
    if let Some(v) = a.rtmp_idle_timeout_ms {
        n.rtmp_idle_timeout_ms = v;
    }
    if let Some(v) = a.rtmp_publish_timeout_ms {
        n.rtmp_publish_timeout_ms = v;
    }
    if let Some(v) = a.rtmp_write_timeout_ms {
        n.rtmp_write_timeout_ms = v;
    }
    if let Some(v) = a.rtmp_max_command_bytes {
        n.rtmp_max_command_bytes = v;
    }
    if let Some(v) = a.rtmp_max_connections_per_ip {
        n.rtmp_max_connections_per_ip = v;
    }
    if let Some(v) = a.rtmp_max_connections_per_node {
        n.rtmp_max_connections_per_node = v;
    }
    if let Some(v) = a.http_max_connections {
        n.http_max_connections = v;
    }
    if let Some(v) = a.srt_max_connections_per_ip {
        n.srt_max_connections_per_ip = v;
    }
    if let Some(v) = a.webrtc_max_sessions_per_ip {
        n.webrtc_max_sessions_per_ip = v;
    }
    if let Some(v) = a.webrtc_max_sessions {
        n.webrtc_max_sessions = v;
    }
    if let Some(v) = a.http_max_connections_per_node {
        n.http_max_connections_per_node = v;
    }
    if let Some(v) = a.http_max_connections_per_ip {
        n.http_max_connections_per_ip = v;
    }
    if let Some(v) = a.http_head_timeout_ms {
        n.http_head_timeout_ms = v;
    }
    if let Some(v) = a.http_idle_timeout_ms {
        n.http_idle_timeout_ms = v;
    }
    if let Some(v) = a.http_write_timeout_ms {
        n.http_write_timeout_ms = v;
    }
    let c = &mut config.control;
    if let Some(v) = a.api_listen {
        c.api_listen = v;
    }
    if let Some(v) = a.etcd_endpoints {
        c.etcd_endpoints = v;
    }
    if a.control_plane.is_some() {
        c.control_plane = a.control_plane;
    }
    if a.node_id.is_some() {
        c.node_id = a.node_id;
    }
    if let Some(v) = a.studio_listen {
        c.studio_listen = v;
    }
    if let Some(v) = a.unreachable_keys {
        c.unreachable_keys = v;
    }
    if let Some(v) = a.api_rate_per_ip {
        c.rate_per_ip = v;
    }
    if let Some(v) = a.api_rate_per_user {
        c.rate_per_user = v;
    }
    if let Some(v) = a.api_max_connections_per_ip {
        c.max_connections_per_ip = v;
    }
    if let Some(v) = a.api_head_timeout_ms {
        c.head_timeout_ms = v;
    }
    if let Some(v) = a.api_write_timeout_ms {
        c.write_timeout_ms = v;
    }
    if let Some(v) = &a.chat_redis {
        let v = v.trim();
        c.chat_redis = (!v.is_empty()).then(|| v.to_owned());
    }
    if let Some(v) = a.chat_listen {
        c.chat_listen = v;
    }
    for (flag, given, field) in [
        (
            "--chat-rate-per-user",
            a.chat_rate_per_user,
            &mut c.chat_rate_per_user,
        ),
        (
            "--chat-rate-per-ip",
            a.chat_rate_per_ip,
            &mut c.chat_rate_per_ip,
        ),
        (
            "--chat-connect-rate-per-ip",
            a.chat_connect_rate_per_ip,
            &mut c.chat_connect_rate_per_ip,
        ),
    ] {
        if let Some(v) = given {
            anyhow::ensure!(v.is_finite() && v > 0.0, "{flag} must be a positive number");
            *field = v;
        }
    }
    check_watch_api(&config.node.watch_api)?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watch_api_is_a_port_or_an_http_url() {
        for ok in [
            "",
            ":8090",
            "https://api.example.com",
            "http://10.0.0.2:8090/",
        ] {
            assert!(check_watch_api(ok).is_ok(), "{ok}");
        }
        for bad in [
            ":0",
            ":x",
            "api.example.com",
            "javascript:alert(1)",
            "https://a\"b",
        ] {
            assert!(check_watch_api(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_sample_config_is_valid_and_matches_the_defaults() {
        let p = Path::new(&std::env::var_os("CARGO_MANIFEST_DIR").expect("run by cargo test"))
            .join("../../deploy/weir.toml");
        let c = load(Some(&p), &NodeArgs::default()).expect("deploy/weir.toml loads");
        let d = NodeConfig::default();
        assert_eq!(c.node.rtmp_listen, d.rtmp_listen);
        assert_eq!(c.node.part_target_ms, d.part_target_ms);
        assert_eq!(c.node.window_segments, d.window_segments);
        assert_eq!(c.control.api_listen, ControlConfig::default().api_listen);
        assert_eq!(c.node.ladder, d.ladder);
        assert_eq!(c.node.http_head_timeout_ms, d.http_head_timeout_ms);
        assert_eq!(c.node.http_idle_timeout_ms, d.http_idle_timeout_ms);
        assert_eq!(c.node.http_write_timeout_ms, d.http_write_timeout_ms);
        assert_eq!(
            c.node.http_max_connections_per_ip,
            d.http_max_connections_per_ip
        );
        assert_eq!(
            c.node.http_max_connections_per_node,
            d.http_max_connections_per_node
        );
        assert_eq!(c.node.rtmp_publish_timeout_ms, d.rtmp_publish_timeout_ms);
        assert_eq!(c.node.rtmp_write_timeout_ms, d.rtmp_write_timeout_ms);
        assert_eq!(c.node.rtmp_max_command_bytes, d.rtmp_max_command_bytes);
        assert_eq!(
            c.node.rtmp_max_connections_per_ip,
            d.rtmp_max_connections_per_ip
        );
        assert_eq!(
            c.node.rtmp_max_connections_per_node,
            d.rtmp_max_connections_per_node
        );
        assert!(c.node.ladder.codec_config().is_ok());
        assert_eq!(c.node.record, d.record);
        assert_eq!(c.node.record_retention_days, d.record_retention_days);
        assert_eq!(c.node.record_max_bytes, d.record_max_bytes);
        assert_eq!(c.node.record_store, d.record_store);
        assert_eq!(c.node.record_keep_local, d.record_keep_local);
    }

    #[test]
    fn recording_from_flags() {
        let args = NodeArgs {
            record: Some(true),
            record_retention_days: Some(30),
            record_max_bytes: Some(1 << 40),
            ..NodeArgs::default()
        };
        let n = load(None, &args).expect("load").node;
        assert!(n.record);
        assert_eq!((n.record_retention_days, n.record_max_bytes), (30, 1 << 40));
        assert!(n.record_keep_local && n.record_store.is_empty());
        let args = NodeArgs {
            record_store: Some("s3://b/p".into()),
            record_store_endpoint: Some("http://127.0.0.1:9".into()),
            record_store_allow_http: Some(true),
            record_keep_local: Some(false),
            ..NodeArgs::default()
        };
        let r = load(None, &args).expect("load").node.recording().store;
        assert_eq!(
            (r.url.as_str(), r.endpoint.as_str()),
            ("s3://b/p", "http://127.0.0.1:9")
        );
        assert!(r.allow_http && !r.keep_local);
    }

    #[test]
    fn ladder_rungs_from_the_command_line() {
        let args = NodeArgs {
            ladder: Some(true),
            ladder_rungs: Some(vec!["720p:720:3000".into(), " 360p:360:700".into()]),
            ..NodeArgs::default()
        };
        let c = load(None, &args).expect("load");
        assert!(c.node.ladder.enabled);
        let names: Vec<_> = c
            .node
            .ladder
            .rungs
            .iter()
            .map(|r| (r.name.as_str(), r.height, r.video_kbps))
            .collect();
        assert_eq!(names, [("720p", 720, 3000), ("360p", 360, 700)]);
        for bad in ["720p:720", "720p:x:3000", "a:1:2:3"] {
            let args = NodeArgs {
                ladder_rungs: Some(vec![bad.into()]),
                ..NodeArgs::default()
            };
            assert!(load(None, &args).is_err(), "{bad}");
        }
        // A rung named like the audio rendition, or with a '/', is refused.
        let mut l = c.node.ladder.clone();
        l.rungs[0].name = "audio".into();
        assert!(l.codec_config().is_err());
        l.rungs[0].name = "../x".into();
        assert!(l.codec_config().is_err());
    }

    #[test]
    fn deadlines_and_limits_from_flags() {
        let args = NodeArgs {
            http_head_timeout_ms: Some(2000),
            http_write_timeout_ms: Some(3000),
            http_max_connections_per_ip: Some(0),
            rtmp_publish_timeout_ms: Some(1500),
            rtmp_max_command_bytes: Some(8192),
            rtmp_max_connections_per_node: Some(7),
            srt_max_connections_per_ip: Some(3),
            webrtc_max_sessions_per_ip: Some(4),
            webrtc_max_sessions: Some(5),
            webrtc_bwe: Some(weir_node::Bwe::Off),
            ..NodeArgs::default()
        };
        let n = load(None, &args).expect("load").node;
        assert_eq!(
            (n.http_head_timeout_ms, n.http_write_timeout_ms),
            (2000, 3000)
        );
        assert_eq!(n.http_max_connections_per_ip, 0);
        assert_eq!(n.rtmp_publish_timeout_ms, 1500);
        assert_eq!(n.rtmp_max_command_bytes, 8192);
        assert_eq!(n.rtmp_max_connections_per_node, 7);
        assert_eq!(
            (
                n.srt_max_connections_per_ip,
                n.webrtc_max_sessions_per_ip,
                n.webrtc_max_sessions
            ),
            (3, 4, 5)
        );
        assert_eq!(NodeConfig::default().webrtc_bwe, weir_node::Bwe::Auto);
        assert_eq!(n.webrtc_bwe, weir_node::Bwe::Off);
        assert_eq!(
            n.http_idle_timeout_ms,
            NodeConfig::default().http_idle_timeout_ms
        );
    }

    #[test]
    fn file_then_flags() {
        let dir = std::env::temp_dir().join(format!("weir-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let p = dir.join("weir.toml");
        std::fs::write(
            &p,
            "[node]\nrtmp_listen = \"127.0.0.1:1940\"\npart_target_ms = 300\n",
        )
        .expect("write");
        let args = NodeArgs {
            part_target_ms: Some(250),
            ..NodeArgs::default()
        };
        let c = load(Some(&p), &args).expect("load");
        assert_eq!(c.node.rtmp_listen.port(), 1940);
        assert_eq!(c.node.part_target_ms, 250);
        std::fs::write(&p, "[node]\nbogus = 1\n").expect("write");
        assert!(load(Some(&p), &NodeArgs::default()).is_err());
        // `webrtc_bwe` takes auto/on/off, and the booleans of earlier versions.
        for (text, want) in [
            ("\"auto\"", weir_node::Bwe::Auto),
            ("\"off\"", weir_node::Bwe::Off),
            ("true", weir_node::Bwe::On),
            ("false", weir_node::Bwe::Off),
        ] {
            std::fs::write(&p, format!("[node]\nwebrtc_bwe = {text}\n")).expect("write");
            let c = load(Some(&p), &NodeArgs::default()).expect("load");
            assert_eq!(c.node.webrtc_bwe, want, "{text}");
        }
        std::fs::write(&p, "[node]\nwebrtc_bwe = \"sometimes\"\n").expect("write");
        assert!(load(Some(&p), &NodeArgs::default()).is_err());
        let _ = std::fs::remove_dir_all(dir);
    }
}
