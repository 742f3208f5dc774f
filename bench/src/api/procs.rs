//! The processes the API benchmark starts: etcd, `weir serve`, `weir controlplane`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;

fn free_port() -> anyhow::Result<u16> {
    crate::servers::free_port()
}

fn temp_dir(tag: &str) -> anyhow::Result<PathBuf> {
    let d = std::env::temp_dir().join(format!("weir-bench-api-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d)?;
    Ok(d)
}

fn wait_for(log: &PathBuf, needle: &str, child: &mut Child) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if std::fs::read_to_string(log)
            .unwrap_or_default()
            .contains(needle)
        {
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            anyhow::bail!("process exited ({status}): {}", crate::servers::tail(log));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    anyhow::bail!(
        "timed out waiting for {needle:?}: {}",
        crate::servers::tail(log)
    )
}

/// A running weir process.
pub struct Weir {
    child: Child,
    dir: PathBuf,
    /// GraphQL port.
    pub api_port: u16,
    /// Node API token (controlplane).
    pub node_token: String,
}

impl Weir {
    fn start(mode: &str, extra: &[String], env: &[(&str, String)]) -> anyhow::Result<Self> {
        let bin = std::env::var("WEIR_BIN").unwrap_or_else(|_| "target/release/weir".into());
        let dir = temp_dir(mode)?;
        let api_port = free_port()?;
        let log = dir.join("weir.log");
        let mut cmd = Command::new(&bin);
        cmd.arg("--data-dir")
            .arg(dir.join("data"))
            .args(["--rtmp-listen", &format!("127.0.0.1:{}", free_port()?)])
            .args(["--http-listen", &format!("127.0.0.1:{}", free_port()?)])
            .args(["--webrtc-udp-port", "0", "--webrtc-public-ips", "127.0.0.1"])
            .args(["--srt-listen", "127.0.0.1:0"])
            .args(["--api-listen", &format!("127.0.0.1:{api_port}")])
            .args([
                "--shards",
                "1",
                "--api-rate-per-ip",
                "1e9",
                "--api-rate-per-user",
                "1e9",
                "--api-max-connections-per-ip",
                "0",
            ])
            .args(extra)
            .arg(mode)
            .env("WEIR_LOG", "warn,weir=info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().with_context(|| format!("starting {bin}"))?;
        wait_for(&log, "GraphQL API listening", &mut child)?;
        let node_token = env
            .iter()
            .find(|(k, _)| *k == "WEIR_NODE_TOKEN")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        Ok(Self {
            child,
            dir,
            api_port,
            node_token,
        })
    }

    /// `weir serve` with one shard.
    pub fn serve() -> anyhow::Result<Self> {
        Self::start("serve", &[], &[])
    }

    /// `weir controlplane` on etcd.
    pub fn controlplane(etcd: &str) -> anyhow::Result<Self> {
        Self::start(
            "controlplane",
            &["--etcd-endpoints".into(), etcd.to_owned()],
            &[
                ("WEIR_NODE_TOKEN", "bench-node-token".to_owned()),
                (
                    "WEIR_STREAM_KEY_SECRET",
                    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff".to_owned(),
                ),
            ],
        )
    }

    /// The process id (for CPU accounting).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Weir {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A throwaway etcd on loopback.
pub struct Etcd {
    child: Child,
    dir: PathBuf,
    /// Client URL.
    pub endpoint: String,
}

impl Etcd {
    /// Starts etcd (Debian `etcd-server`).
    pub fn start() -> anyhow::Result<Self> {
        let dir = temp_dir("etcd")?;
        let (client, peer) = (free_port()?, free_port()?);
        let endpoint = format!("http://127.0.0.1:{client}");
        let log = dir.join("etcd.log");
        let mut child = Command::new("etcd")
            .args(["--data-dir", &dir.join("data").display().to_string()])
            .args([
                "--listen-client-urls",
                &endpoint,
                "--advertise-client-urls",
                &endpoint,
            ])
            .args(["--listen-peer-urls", &format!("http://127.0.0.1:{peer}")])
            .args([
                "--initial-advertise-peer-urls",
                &format!("http://127.0.0.1:{peer}"),
            ])
            .args([
                "--initial-cluster",
                &format!("default=http://127.0.0.1:{peer}"),
            ])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .context("starting etcd (Debian etcd-server; cargo xtask setup --test installs it)")?;
        wait_for(&log, "ready to serve client requests", &mut child)?;
        Ok(Self {
            child,
            dir,
            endpoint,
        })
    }

    /// The process id (for CPU accounting).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
