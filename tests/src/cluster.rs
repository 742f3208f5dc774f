//! Split deployment: `weir controlplane` and `weir dataplane` as separate processes, with
//! the shared secrets they need.

use std::time::Duration;

use crate::process::Process;
use crate::{TempDir, free_port, weir_command};

/// Log line of an API that is ready.
pub const API_READY: &str = "GraphQL API listening on";

/// Secrets shared by the control plane and its data-plane nodes.
#[derive(Debug, Clone)]
pub struct Secrets {
    /// `WEIR_NODE_TOKEN`.
    pub node_token: String,
    /// `WEIR_STREAM_KEY_SECRET` (64 hex characters): the control plane's only.
    pub stream_key_secret: String,
    /// `WEIR_STREAM_KEY_PUBLIC`: what data-plane nodes check keys with (from `weir key public`).
    pub stream_key_public: String,
}

impl Secrets {
    /// Fresh values (unpredictable enough for a test); the public key is printed by
    /// `weir key public`, as an operator would get it.
    pub fn generate() -> Self {
        let stream_key_secret = random_hex(32);
        let dir = TempDir::new("key-public");
        let out = weir_command()
            .args(["key", "public", "--data-dir"])
            .arg(dir.0.join("data"))
            .env("WEIR_STREAM_KEY_SECRET", &stream_key_secret)
            .output()
            .expect("run weir key public");
        assert!(
            out.status.success(),
            "weir key public failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stream_key_public = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        assert_eq!(stream_key_public.len(), 64, "{stream_key_public:?}");
        Self {
            node_token: format!("node-token-{}", random_hex(16)),
            stream_key_secret,
            stream_key_public,
        }
    }

    /// What a control plane is given.
    pub fn control_plane_env(&self) -> [(&'static str, String); 2] {
        [
            ("WEIR_NODE_TOKEN", self.node_token.clone()),
            ("WEIR_STREAM_KEY_SECRET", self.stream_key_secret.clone()),
        ]
    }

    /// What a data-plane node is given: the node token and the public key, no secret to
    /// sign keys with.
    pub fn data_plane_env(&self) -> [(&'static str, String); 2] {
        [
            ("WEIR_NODE_TOKEN", self.node_token.clone()),
            ("WEIR_STREAM_KEY_PUBLIC", self.stream_key_public.clone()),
        ]
    }
}

/// `n` random bytes as hex, from the std hasher's random keys.
pub fn random_hex(n: usize) -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut out = String::new();
    let mut i = 0u64;
    while out.len() < n * 2 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(i);
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default(),
        );
        out.push_str(&format!("{:016x}", h.finish()));
        i += 1;
    }
    out.truncate(n * 2);
    out
}

/// A running `weir controlplane`.
pub struct ControlPlane {
    pub proc: Process,
    pub api_port: u16,
    pub dir: TempDir,
}

impl ControlPlane {
    /// Starts it against `etcd_endpoints` and waits (30 s) for the API to listen.
    /// `env` adds variables (e.g. `WEIR_BOOTSTRAP_ADMIN`).
    pub fn start(etcd_endpoints: &[String], secrets: &Secrets, env: &[(&str, &str)]) -> Self {
        let dir = TempDir::new("controlplane");
        let api_port = free_port();
        let mut cmd = weir_command();
        cmd.arg("controlplane")
            .args(["--api-listen", &format!("127.0.0.1:{api_port}")])
            .args(["--etcd-endpoints", &etcd_endpoints.join(",")])
            .arg("--data-dir")
            .arg(dir.0.join("data"))
            .envs(secrets.control_plane_env())
            .envs(env.iter().copied());
        let mut proc = Process::spawn("weir controlplane", cmd, dir.0.join("controlplane.log"));
        assert!(
            proc.wait_log(API_READY, Duration::from_secs(30)),
            "weir controlplane did not log {API_READY:?} within 30 s (exit: {:?}; its log follows)",
            proc.exited(),
        );
        Self {
            proc,
            api_port,
            dir,
        }
    }

    /// The URL data-plane nodes are given.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.api_port)
    }
}

/// A running `weir dataplane`.
pub struct DataPlane {
    pub proc: Process,
    pub node_id: String,
    pub rtmp_port: u16,
    pub http_port: u16,
    pub dir: TempDir,
}

impl DataPlane {
    /// Starts a node of `control_plane` (its URL) and waits (30 s) for the HTTP origin.
    pub fn start(control_plane: &str, node_id: &str, secrets: &Secrets, extra: &[&str]) -> Self {
        let dir = TempDir::new("dataplane");
        let rtmp_port = free_port();
        let http_port = free_port();
        let mut cmd = weir_command();
        cmd.arg("dataplane")
            .args(["--control-plane", control_plane])
            .args(["--node-id", node_id])
            .args(["--rtmp-listen", &format!("127.0.0.1:{rtmp_port}")])
            .args(["--http-listen", &format!("127.0.0.1:{http_port}")])
            .args(["--webrtc-udp-port", "0", "--webrtc-public-ips", "127.0.0.1"])
            .args([
                "--srt-listen",
                "127.0.0.1:0",
                "--studio-listen",
                "127.0.0.1:0",
            ])
            .args(["--public-host", "127.0.0.1"])
            .arg("--data-dir")
            .arg(dir.0.join("data"))
            .args(extra)
            .envs(secrets.data_plane_env());
        let mut proc = Process::spawn("weir dataplane", cmd, dir.0.join("dataplane.log"));
        assert!(
            proc.wait_log("HTTP origin listening", Duration::from_secs(30)),
            "weir dataplane did not start within 30 s (exit: {:?}; its log follows)",
            proc.exited(),
        );
        Self {
            proc,
            node_id: node_id.to_owned(),
            rtmp_port,
            http_port,
            dir,
        }
    }

    /// `rtmp://127.0.0.1:<port>/live/<key>`.
    pub fn rtmp_url(&self, key: &str) -> String {
        format!("rtmp://127.0.0.1:{}/live/{key}", self.rtmp_port)
    }
}
