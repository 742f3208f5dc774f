//! Starting and stopping the servers under test: weir and the peer, nginx-rtmp.

use std::fmt::Write as _;
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::procstat;

/// The nginx RTMP module shipped by Debian's `libnginx-mod-rtmp`.
const RTMP_MODULE: &str = "/usr/lib/nginx/modules/ngx_rtmp_module.so";

/// A free loopback port (bound, then released: a small race we accept).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Which server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// weir (LL-HLS, blocking reload).
    Weir,
    /// nginx-rtmp (HLS from files served by nginx).
    Nginx,
}

impl Kind {
    /// Display name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Weir => "weir",
            Self::Nginx => "nginx-rtmp",
        }
    }
}

/// How the servers are started.
#[derive(Debug, Clone)]
pub struct Setup {
    /// The `weir` binary.
    pub weir_bin: PathBuf,
    /// Scratch directory of this run.
    pub work: PathBuf,
    /// LL-HLS part target of weir in ms.
    pub part_target_ms: u64,
    /// Segments in weir's sliding window.
    pub window_segments: usize,
    /// CPU the servers are pinned to (None: not pinned).
    pub server_cpu: Option<usize>,
}

/// A running server.
pub struct Server {
    /// Which one.
    pub kind: Kind,
    child: Child,
    /// RTMP listen address.
    pub rtmp: SocketAddr,
    /// HTTP listen address.
    pub http: SocketAddr,
    weir_bin: PathBuf,
    data_dir: PathBuf,
    log: PathBuf,
}

fn pinned(cpu: Option<usize>, program: &Path) -> Command {
    match cpu {
        Some(c) => {
            let mut cmd = Command::new("taskset");
            cmd.arg("-c").arg(c.to_string()).arg(program);
            cmd
        }
        None => Command::new(program),
    }
}

fn wait_port(addr: SocketAddr, child: &mut Child, log: &Path) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            bail!("server exited with {status}; log: {}", tail(log));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("{addr} did not open in 20 s; log: {}", tail(log))
}

/// The last lines of a log file.
pub fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

impl Server {
    /// Starts weir with `shards` shards.
    pub fn weir(setup: &Setup, shards: usize, tag: &str) -> anyhow::Result<Self> {
        let (rtmp, http) = (loopback(free_port()?), loopback(free_port()?));
        let data_dir = setup.work.join(format!("weir-{tag}"));
        std::fs::create_dir_all(&data_dir)?;
        let log = setup.work.join(format!("weir-{tag}.log"));
        let mut child = pinned(setup.server_cpu, &setup.weir_bin)
            .arg("serve")
            .arg("--data-dir")
            .arg(&data_dir)
            .args(["--rtmp-listen", &rtmp.to_string()])
            .args(["--http-listen", &http.to_string()])
            .args(["--webrtc-udp-port", "0", "--webrtc-public-ips", "127.0.0.1"])
            .args(["--srt-listen", "127.0.0.1:0"])
            .args(["--shards", &shards.to_string()])
            // Every load-generator connection comes from loopback: no per-address caps.
            .args(["--http-max-connections-per-ip", "0"])
            .args(["--rtmp-max-connections-per-ip", "0"])
            .args(["--part-target-ms", &setup.part_target_ms.to_string()])
            .args(["--window-segments", &setup.window_segments.to_string()])
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", setup.weir_bin.display()))?;
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
        let mut server = Self {
            kind: Kind::Weir,
            child,
            rtmp,
            http,
            weir_bin: setup.weir_bin.clone(),
            data_dir,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if ready_rx.recv_timeout(Duration::from_millis(100)).is_ok() {
                break;
            }
            if let Some(status) = server.child.try_wait()? {
                bail!("weir exited with {status}; log: {}", tail(&server.log));
            }
            if Instant::now() > deadline {
                bail!("weir not ready in 20 s; log: {}", tail(&server.log));
            }
        }
        wait_port(server.http, &mut server.child, &server.log)?;
        Ok(server)
    }

    /// Starts nginx with the RTMP module, HLS on, one worker.
    pub fn nginx(setup: &Setup, tag: &str) -> anyhow::Result<Self> {
        let (rtmp, http) = (loopback(free_port()?), loopback(free_port()?));
        let dir = setup.work.join(format!("nginx-{tag}"));
        let hls = dir.join("hls");
        std::fs::create_dir_all(&hls)?;
        anyhow::ensure!(
            Path::new(RTMP_MODULE).exists(),
            "{RTMP_MODULE} is missing: install libnginx-mod-rtmp"
        );
        let conf = dir.join("nginx.conf");
        std::fs::write(&conf, nginx_conf(&dir, rtmp, http, setup.server_cpu))?;
        let log = dir.join("error.log");
        let mut child = pinned(setup.server_cpu, Path::new("nginx"))
            .arg("-p")
            .arg(&dir)
            .arg("-e")
            .arg(&log)
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting nginx")?;
        wait_port(rtmp, &mut child, &log)?;
        wait_port(http, &mut child, &log)?;
        Ok(Self {
            kind: Kind::Nginx,
            child,
            rtmp,
            http,
            weir_bin: setup.weir_bin.clone(),
            data_dir: dir,
            log,
        })
    }

    /// The process(es) to measure.
    pub fn procs(&self) -> procstat::Server {
        procstat::Server {
            pid: self.child.id(),
            with_children: self.kind == Kind::Nginx,
        }
    }

    /// The RTMP stream name to publish `channel` with (weir: a fresh stream key).
    pub fn stream_name(&self, channel: &str) -> anyhow::Result<String> {
        if self.kind == Kind::Nginx {
            return Ok(channel.to_owned());
        }
        let out = Command::new(&self.weir_bin)
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(["key", "issue", channel])
            .stderr(Stdio::null())
            .output()
            .context("running weir key issue")?;
        anyhow::ensure!(
            out.status.success(),
            "weir key issue failed: {}",
            out.status
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("Stream key:"))
            .map(|k| k.trim().to_owned())
            .context("weir key issue printed no stream key")
    }

    /// The playlist a player opens for `channel`.
    pub fn playlist_path(&self, channel: &str) -> String {
        match self.kind {
            Kind::Weir => format!("/live/{channel}/index.m3u8"),
            Kind::Nginx => format!("/hls/{channel}.m3u8"),
        }
    }

    /// Stops the server (SIGTERM, then SIGKILL after 5 s).
    pub fn stop(mut self) {
        self.terminate();
    }

    fn terminate(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let workers = procstat::children(self.child.id());
        if procstat::term_and_wait(&mut self.child, Duration::from_secs(5)) {
            return;
        }
        for w in workers {
            let _ = Command::new("kill")
                .args(["-KILL", &w.to_string()])
                .status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.terminate();
    }
}

fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .map(|u| u.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

fn nginx_conf(dir: &Path, rtmp: SocketAddr, http: SocketAddr, cpu: Option<usize>) -> String {
    let d = dir.display();
    let mut c = String::new();
    let _ = writeln!(c, "load_module {RTMP_MODULE};");
    c.push_str(
        "daemon off;\nmaster_process on;\nworker_processes 1;\nworker_rlimit_nofile 65536;\n",
    );
    if let Some(cpu) = cpu {
        let mask: String = (0..=cpu)
            .rev()
            .map(|i| if i == cpu { '1' } else { '0' })
            .collect();
        let _ = writeln!(c, "worker_cpu_affinity {mask};");
    }
    if running_as_root() {
        c.push_str("user root;\n");
    }
    let _ = writeln!(c, "pid {d}/nginx.pid;\nerror_log {d}/error.log warn;");
    c.push_str("events { worker_connections 16384; }\n");
    let _ = write!(
        c,
        "rtmp {{\n  server {{\n    listen {rtmp};\n    chunk_size 4096;\n    application live {{\n      \
         live on;\n      record off;\n      hls on;\n      hls_path {d}/hls;\n      hls_fragment 1s;\n      \
         hls_playlist_length 10s;\n    }}\n  }}\n}}\n"
    );
    let _ = write!(
        c,
        "http {{\n  access_log off;\n  sendfile on;\n  tcp_nopush on;\n  tcp_nodelay on;\n  \
         keepalive_timeout 65;\n  keepalive_requests 1000000;\n  \
         client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n  \
         uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n  \
         types {{ application/vnd.apple.mpegurl m3u8; video/mp2t ts; }}\n  \
         server {{\n    listen {http};\n    location /hls/ {{\n      alias {d}/hls/;\n      \
         add_header Cache-Control no-cache;\n    }}\n  }}\n}}\n"
    );
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nginx_conf_has_the_pieces() {
        let c = nginx_conf(Path::new("/tmp/x"), loopback(1935), loopback(8080), Some(0));
        assert!(c.starts_with("load_module "));
        assert!(c.contains("worker_cpu_affinity 1;"));
        assert!(c.contains("hls_path /tmp/x/hls;"));
        assert!(c.contains("listen 127.0.0.1:8080;"));
        let c = nginx_conf(Path::new("/t"), loopback(1), loopback(2), Some(2));
        assert!(c.contains("worker_cpu_affinity 100;"));
    }
}
