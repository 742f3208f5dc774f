//! A weir process for the scenarios that need a config file or extra flags (transcode,
//! SRT), and a client that follows one variant of its LL-HLS from the first part.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};

use crate::http::Client;
use crate::playlist::{Follower, Start, dir_of, parse_media, with_query};
use crate::poller::{Object, Timeline};
use crate::servers::{free_port, tail};

/// A weir process started by the transcode and SRT scenarios (with a config file and
/// extra flags, which `servers::Server` does not take).
pub struct Weir {
    /// The process.
    pub child: Child,
    /// RTMP listen address.
    pub rtmp: SocketAddr,
    /// HTTP listen address.
    pub http: SocketAddr,
    /// GraphQL API address.
    pub api: SocketAddr,
    bin: PathBuf,
    data_dir: PathBuf,
    /// Its log (stderr).
    pub log: PathBuf,
}

impl Weir {
    /// Starts `weir serve --shards 1 --part-target-ms 200 --window-segments 60`, with the
    /// TOML `config` and `extra` flags, and waits until its HTTP origin listens.
    pub fn start(
        bin: &Path,
        work: &Path,
        tag: &str,
        config: Option<&str>,
        extra: &[String],
    ) -> anyhow::Result<Self> {
        let rtmp = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let http = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let api = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let data_dir = work.join(format!("weir-{tag}"));
        std::fs::create_dir_all(&data_dir)?;
        let log = work.join(format!("weir-{tag}.log"));
        let mut cmd = Command::new(bin);
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(&data_dir)
            .args(["--rtmp-listen", &rtmp.to_string()])
            .args(["--http-listen", &http.to_string()])
            // Not the default 8090: other weir processes on this machine may hold it.
            .args(["--api-listen", &api.to_string()])
            .args(["--webrtc-udp-port", "0", "--webrtc-public-ips", "127.0.0.1"])
            .args(["--shards", "1", "--part-target-ms", "200"])
            // Long enough a window that a client joining late still finds the first part.
            .args(["--window-segments", "60"]);
        // Every load-generator connection comes from loopback: no per-address caps
        // (unless the scenario sets them).
        for cap in [
            "--http-max-connections-per-ip",
            "--rtmp-max-connections-per-ip",
            "--api-max-connections-per-ip",
        ] {
            if !extra.iter().any(|a| a == cap) {
                cmd.args([cap, "0"]);
            }
        }
        if !extra.iter().any(|a| a == "--srt-listen") {
            cmd.args(["--srt-listen", "127.0.0.1:0"]);
        }
        cmd.args(extra);
        if let Some(toml) = config {
            let path = work.join(format!("weir-{tag}.toml"));
            std::fs::write(&path, toml)?;
            cmd.arg("--config").arg(path);
        }
        let mut child = cmd
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let stderr = child.stderr.take().context("no stderr")?;
        let (ready_tx, ready_rx) = mpsc::channel();
        let mut file = std::fs::File::create(&log)?;
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("HTTP origin listening") {
                    let _ = ready_tx.send(());
                }
                let _ = writeln!(file, "{line}");
            }
        });
        let mut w = Self {
            child,
            rtmp,
            http,
            api,
            bin: bin.to_owned(),
            data_dir,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while ready_rx.recv_timeout(Duration::from_millis(100)).is_err() {
            if let Some(status) = w.child.try_wait()? {
                bail!("weir exited with {status}; log: {}", tail(&w.log));
            }
            ensure!(
                Instant::now() < deadline,
                "weir not ready in 20 s; log: {}",
                tail(&w.log)
            );
        }
        while TcpStream::connect_timeout(&http, Duration::from_millis(200)).is_err() {
            ensure!(Instant::now() < deadline, "{http} did not open in 20 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(w)
    }

    /// A stream key for `channel` (`weir key issue`).
    pub fn key(&self, channel: &str) -> anyhow::Result<String> {
        let out = Command::new(&self.bin)
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(["key", "issue", channel])
            .stderr(Stdio::null())
            .output()
            .context("running weir key issue")?;
        ensure!(out.status.success(), "weir key issue: {}", out.status);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("Stream key:"))
            .map(|k| k.trim().to_owned())
            .context("weir key issue printed no stream key")
    }

    /// A counter of /metrics (summed over its label sets), 0 when absent.
    pub fn counter(&self, name: &str) -> u64 {
        let mut c = Client::new(self.http, Duration::from_secs(5));
        let Ok(r) = c.get("/metrics") else {
            return 0;
        };
        r.text()
            .lines()
            .filter(|l| {
                l.strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with([' ', '{']))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64
    }

    /// WARN lines of the log about the ladder or the transcoder.
    pub fn warnings(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("WARN") || l.contains("ERROR"))
            .filter(|l| {
                let l = l.to_ascii_lowercase();
                l.contains("ladder") || l.contains("transcod") || l.contains("rung")
            })
            .map(str::to_owned)
            .collect()
    }

    /// Stops it (SIGTERM, SIGKILL after 8 s).
    pub fn stop(mut self) {
        self.terminate();
    }

    fn terminate(&mut self) {
        if !crate::procstat::term_and_wait(&mut self.child, Duration::from_secs(8)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Drop for Weir {
    fn drop(&mut self) {
        self.terminate();
    }
}

/// Follows the media playlist of the variant whose URI contains `variant` (the first
/// variant when None) from its first part, with blocking reloads, recording when each
/// part finished downloading.
pub fn follow(
    http: SocketAddr,
    multivariant: &str,
    variant: Option<&str>,
    stop: &AtomicBool,
    timeline: &Timeline,
) -> anyhow::Result<()> {
    let mut client = Client::new(http, Duration::from_secs(15));
    let uri = loop {
        if stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        let r = client.get(multivariant)?;
        if r.status == 200 {
            let text = r.text();
            let found = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .find(|l| variant.is_none_or(|v| l.contains(v)))
                .map(str::to_owned);
            if let Some(u) = found {
                break u;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let media_path = format!("{}{uri}", dir_of(multivariant));
    let dir = dir_of(&media_path).to_owned();
    let mut follower = Follower::default();
    let mut query: Option<String> = None;
    while !stop.load(Ordering::Relaxed) {
        let url = match &query {
            Some(q) => with_query(&media_path, q),
            None => media_path.clone(),
        };
        let r = client.get(&url)?;
        match r.status {
            200 => {}
            503 | 404 => {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
            s => bail!("GET {url} answered {s}"),
        }
        let pl = parse_media(&r.text())?;
        for f in follower.new_parts(&pl, Start::First) {
            let r = client.get(&format!("{dir}{}", f.uri))?;
            ensure!(r.status == 200, "GET {} answered {}", f.uri, r.status);
            let done = Instant::now();
            timeline
                .lock()
                .map_err(|_| anyhow::anyhow!("poisoned"))?
                .push(Object {
                    key: f.key,
                    duration: f.duration,
                    done,
                });
        }
        if pl.ended {
            break;
        }
        query = follower.blocking_query();
    }
    Ok(())
}
