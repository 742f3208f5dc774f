//! The processes of the chat bench: `weir serve` (one gateway, embedded store), or etcd +
//! Redis + `weir controlplane` + `weir chat` (two gateways sharing rooms through Redis),
//! each started with the chat limits the bench sets (see [`CHAT_LIMITS`]).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::api::procs::Etcd;
use crate::servers::{free_port, tail};

/// The gateway settings the bench passes (documented flags of `weir`): the per-user and
/// per-IP message rates and the per-IP connection rate are raised, since every client
/// of the bench comes from 127.0.0.1 and a few accounts write for many rooms, and so is
/// the per-address connection cap. Every other check (moderation pipeline, repeat filter,
/// queues, frame caps, the head deadline) is as shipped.
pub const CHAT_LIMITS: [(&str, &str); 6] = [
    ("--chat-rate-per-user", "100000"),
    ("--chat-rate-per-ip", "1000000"),
    ("--chat-connect-rate-per-ip", "1000000"),
    ("--api-rate-per-ip", "1e9"),
    ("--api-rate-per-user", "1e9"),
    ("--api-max-connections-per-ip", "0"),
];

/// Raises this process's open-file limit to `n` (soft and hard, with util-linux
/// `prlimit`; without the privilege, the soft limit to the hard one); children (the
/// gateways) inherit it. Returns the soft limit now in force.
pub fn raise_nofile(n: u64) -> anyhow::Result<u64> {
    let pid = std::process::id().to_string();
    let ok = Command::new("prlimit")
        .args(["--pid", &pid, &format!("--nofile={n}:{n}")])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        // Without CAP_SYS_RESOURCE: raise the soft limit to the hard one.
        let hard = std::fs::read_to_string("/proc/self/limits")?
            .lines()
            .find(|l| l.starts_with("Max open files"))
            .and_then(|l| l.split_whitespace().nth(4).map(str::to_owned))
            .context("reading Max open files")?;
        let _ = Command::new("prlimit")
            .args(["--pid", &pid, &format!("--nofile={hard}:")])
            .stderr(Stdio::null())
            .status();
    }
    let text = std::fs::read_to_string("/proc/self/limits")?;
    let soft = text
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse().ok())
        .context("reading Max open files")?;
    Ok(soft)
}

fn wait_for(log: &Path, needle: &str, child: &mut Child) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if std::fs::read_to_string(log)
            .unwrap_or_default()
            .contains(needle)
        {
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            bail!("process exited ({status}): {}", tail(log));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("timed out waiting for {needle:?}: {}", tail(log))
}

/// A process the bench started; killed when dropped.
pub struct Proc {
    child: Child,
    /// Its log.
    pub log: PathBuf,
}

impl Proc {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One gateway: its process and the port its websockets are on.
pub struct Gateway {
    /// The process.
    pub proc: Proc,
    /// `ws://127.0.0.1:<port>/v1/chat/…`.
    pub port: u16,
}

/// What a scenario runs against.
pub struct Cluster {
    /// The gateways (one or two).
    pub gateways: Vec<Gateway>,
    /// GraphQL port (accounts, channels).
    pub api_port: u16,
    /// Redis and etcd, when shared (for their CPU).
    pub helpers: Vec<(String, u32)>,
    _redis: Option<Proc>,
    _etcd: Option<Etcd>,
    dir: PathBuf,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.gateways.clear();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn weir_bin() -> PathBuf {
    std::env::var_os("WEIR_BIN")
        .map(PathBuf::from)
        .or_else(|| Some(std::env::current_exe().ok()?.parent()?.join("weir")))
        .unwrap_or_else(|| PathBuf::from("target/release/weir"))
}

fn weir(dir: &Path, name: &str, args: &[String], env: &[(&str, String)]) -> anyhow::Result<Proc> {
    let bin = weir_bin();
    let log = dir.join(format!("{name}.log"));
    let mut cmd = Command::new(&bin);
    cmd.arg("--data-dir")
        .arg(dir.join(format!("{name}-data")))
        .args(["--public-host", "127.0.0.1"])
        .args(CHAT_LIMITS.iter().flat_map(|(k, v)| [*k, *v]))
        .args(args)
        .env("WEIR_LOG", "warn,weir=info,weir_chat=info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log)?);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    Ok(Proc { child, log })
}

fn node_args() -> anyhow::Result<Vec<String>> {
    Ok([
        "--rtmp-listen".to_owned(),
        format!("127.0.0.1:{}", free_port()?),
        "--http-listen".to_owned(),
        format!("127.0.0.1:{}", free_port()?),
        "--webrtc-udp-port".to_owned(),
        "0".to_owned(),
        "--webrtc-public-ips".to_owned(),
        "127.0.0.1".to_owned(),
        "--srt-listen".to_owned(),
        "127.0.0.1:0".to_owned(),
        "--shards".to_owned(),
        "1".to_owned(),
    ]
    .into())
}

fn scratch(tag: &str) -> anyhow::Result<PathBuf> {
    let d = std::env::temp_dir().join(format!("weir-bench-chat-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d)?;
    Ok(d)
}

impl Cluster {
    /// `weir serve --shards 1`: one gateway on the API port, embedded store.
    pub fn single() -> anyhow::Result<Self> {
        let dir = scratch("single")?;
        let api_port = free_port()?;
        let mut args = node_args()?;
        args.extend([
            "--api-listen".to_owned(),
            format!("127.0.0.1:{api_port}"),
            "serve".to_owned(),
        ]);
        let mut p = weir(&dir, "serve", &args, &[])?;
        wait_for(&p.log.clone(), "Chat gateway listening", &mut p.child)?;
        Ok(Self {
            gateways: vec![Gateway {
                proc: p,
                port: api_port,
            }],
            api_port,
            helpers: Vec::new(),
            _redis: None,
            _etcd: None,
            dir,
        })
    }

    /// etcd, Redis, `weir controlplane` (gateway 1, API) and `weir chat` (gateway 2).
    pub fn shared() -> anyhow::Result<Self> {
        let dir = scratch("shared")?;
        let etcd = Etcd::start()?;
        let redis_port = free_port()?;
        let redis_log = dir.join("redis.log");
        let redis = Proc {
            child: Command::new("redis-server")
                .args(["--port", &redis_port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .arg("--dir")
                .arg(&dir)
                .stdout(std::fs::File::create(&redis_log)?)
                .stderr(Stdio::null())
                .spawn()
                .context("starting redis-server (Debian redis-server)")?,
            log: redis_log,
        };
        let redis_addr = format!("127.0.0.1:{redis_port}");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(&redis_addr).is_err() {
            if Instant::now() > deadline {
                bail!("redis-server did not listen: {}", tail(&redis.log));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let env = [
            ("WEIR_JWT_SECRET", "6265".repeat(16)),
            ("WEIR_CHAT_REDIS", redis_addr.clone()),
            ("WEIR_NODE_TOKEN", "bench-node-token".to_owned()),
            (
                "WEIR_STREAM_KEY_SECRET",
                "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff".to_owned(),
            ),
        ];
        let api_port = free_port()?;
        let etcd_args = ["--etcd-endpoints".to_owned(), etcd.endpoint.clone()];
        let mut args = etcd_args.to_vec();
        args.extend(node_args()?);
        args.extend([
            "--api-listen".to_owned(),
            format!("127.0.0.1:{api_port}"),
            "controlplane".to_owned(),
        ]);
        let mut cp = weir(&dir, "controlplane", &args, &env)?;
        wait_for(&cp.log.clone(), "Chat gateway listening", &mut cp.child)?;
        let chat_port = free_port()?;
        let mut args = etcd_args.to_vec();
        args.extend(node_args()?);
        args.extend([
            "--chat-listen".to_owned(),
            format!("127.0.0.1:{chat_port}"),
            "chat".to_owned(),
        ]);
        let mut gw = weir(&dir, "chat", &args, &env)?;
        wait_for(
            &gw.log.clone(),
            "subscribed to Redis fan-out",
            &mut gw.child,
        )?;
        wait_for(
            &cp.log.clone(),
            "subscribed to Redis fan-out",
            &mut cp.child,
        )?;
        let helpers = vec![
            ("redis".to_owned(), redis.pid()),
            ("etcd".to_owned(), etcd.pid()),
        ];
        Ok(Self {
            gateways: vec![
                Gateway {
                    proc: cp,
                    port: api_port,
                },
                Gateway {
                    proc: gw,
                    port: chat_port,
                },
            ],
            api_port,
            helpers,
            _redis: Some(redis),
            _etcd: Some(etcd),
            dir,
        })
    }

    /// CPU seconds of the gateways.
    pub fn gateway_cpu(&self) -> f64 {
        self.gateways
            .iter()
            .filter_map(|g| crate::procstat::cpu_secs(g.proc.pid()).ok())
            .sum()
    }

    /// RSS of the gateways, bytes.
    pub fn gateway_rss(&self) -> u64 {
        self.gateways
            .iter()
            .filter_map(|g| crate::procstat::rss_bytes(g.proc.pid()).ok())
            .sum()
    }

    /// CPU seconds of Redis and etcd.
    pub fn helper_cpu(&self) -> f64 {
        self.helpers
            .iter()
            .filter_map(|(_, p)| crate::procstat::cpu_secs(*p).ok())
            .sum()
    }

    /// The gateways' logs' last lines (for errors).
    pub fn logs(&self) -> String {
        self.gateways
            .iter()
            .map(|g| tail(&g.proc.log))
            .collect::<Vec<_>>()
            .join("\n---\n")
    }
}
