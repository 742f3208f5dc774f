//! Debian's nginx-rtmp (`libnginx-mod-rtmp`) as a relay destination: one process in the
//! foreground from a temp dir, application `live`, stoppable and restartable on the
//! same port (a destination going away mid-stream).

use std::fmt::Write as _;
use std::process::Command;
use std::time::Duration;

use crate::{Process, TempDir, free_port, require_nginx, wait_until};

/// The nginx RTMP module shipped by Debian's `libnginx-mod-rtmp`.
pub const RTMP_MODULE: &str = "/usr/lib/nginx/modules/ngx_rtmp_module.so";
/// The nginx stream module (TLS in front of RTMP: RTMPS), Debian's `libnginx-mod-stream`.
pub const STREAM_MODULE: &str = "/usr/lib/nginx/modules/ngx_stream_module.so";

/// A running (or stopped) nginx-rtmp server.
pub struct RtmpServer {
    proc: Option<Process>,
    /// The loopback port it listens on (RTMP).
    pub port: u16,
    /// With [`RtmpServer::start_tls`]: the RTMPS port (TLS terminated by nginx `stream`).
    pub tls_port: Option<u16>,
    dir: TempDir,
}

fn config(dir: &std::path::Path, port: u16, tls_port: Option<u16>) -> String {
    let d = dir.display();
    let mut c = String::new();
    let _ = writeln!(c, "load_module {RTMP_MODULE};");
    if tls_port.is_some() {
        let _ = writeln!(c, "load_module {STREAM_MODULE};");
    }
    c.push_str("daemon off;\nmaster_process off;\nworker_processes 1;\n");
    let _ = writeln!(c, "pid {d}/nginx.pid;\nerror_log {d}/error.log info;");
    c.push_str("events { worker_connections 1024; }\n");
    let _ = write!(
        c,
        "rtmp {{\n  server {{\n    listen 127.0.0.1:{port};\n    chunk_size 4096;\n    \
         application live {{\n      live on;\n      record off;\n    }}\n  }}\n}}\n"
    );
    if let Some(tls) = tls_port {
        let _ = write!(
            c,
            "stream {{\n  server {{\n    listen 127.0.0.1:{tls} ssl;\n    \
             ssl_certificate {d}/cert.pem;\n    ssl_certificate_key {d}/key.pem;\n    \
             proxy_pass 127.0.0.1:{port};\n  }}\n}}\n"
        );
    }
    c
}

impl RtmpServer {
    /// Starts nginx-rtmp on a free loopback port.
    pub fn start() -> Self {
        require_nginx();
        assert!(
            std::path::Path::new(RTMP_MODULE).exists(),
            "{RTMP_MODULE} is missing: run `cargo xtask setup --test` (Debian package libnginx-mod-rtmp)"
        );
        let mut s = Self {
            proc: None,
            port: free_port(),
            tls_port: None,
            dir: TempDir::new("nginx-rtmp"),
        };
        s.restart();
        s
    }

    /// Starts nginx-rtmp behind TLS (nginx `stream`, a certificate for 127.0.0.1 from a
    /// test CA made with openssl): an RTMPS destination. The CA is at
    /// [`RtmpServer::cert_path`] for the relay to trust.
    pub fn start_tls() -> Self {
        require_nginx();
        assert!(
            std::path::Path::new(STREAM_MODULE).exists(),
            "{STREAM_MODULE} is missing: run `cargo xtask setup --test` (Debian package libnginx-mod-stream)"
        );
        let dir = TempDir::new("nginx-rtmps");
        // A test CA (what the relay trusts) and a certificate for 127.0.0.1 it signed.
        let p = |f: &str| dir.0.join(f).display().to_string();
        std::fs::write(
            dir.0.join("leaf.ext"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
        )
        .expect("leaf.ext");
        let steps: [Vec<String>; 3] = [
            [
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            ]
            .iter()
            .map(|s| s.to_string())
            .chain(["-subj".into(), "/CN=weir test CA".into()])
            .chain(["-keyout".into(), p("ca.key"), "-out".into(), p("ca.pem")])
            .collect(),
            [
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                "/CN=127.0.0.1",
            ]
            .iter()
            .map(|s| s.to_string())
            .chain(["-keyout".into(), p("key.pem"), "-out".into(), p("leaf.csr")])
            .collect(),
            ["x509", "-req", "-days", "2", "-CAcreateserial"]
                .iter()
                .map(|s| s.to_string())
                .chain(["-in".into(), p("leaf.csr"), "-CA".into(), p("ca.pem")])
                .chain([
                    "-CAkey".into(),
                    p("ca.key"),
                    "-extfile".into(),
                    p("leaf.ext"),
                ])
                .chain(["-out".into(), p("cert.pem")])
                .collect(),
        ];
        let ok = steps.iter().all(|args| {
            Command::new("openssl")
                .args(args)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        });
        assert!(ok, "openssl could not make a test certificate");
        let mut s = Self {
            proc: None,
            port: free_port(),
            tls_port: Some(free_port()),
            dir,
        };
        s.restart();
        s
    }

    /// The test CA that signed a TLS server's certificate (what a client trusts).
    pub fn cert_path(&self) -> std::path::PathBuf {
        self.dir.0.join("ca.pem")
    }

    /// `rtmps://127.0.0.1:TLS_PORT/live` for a TLS server.
    pub fn tls_url(&self) -> Option<String> {
        self.tls_port.map(|p| format!("rtmps://127.0.0.1:{p}/live"))
    }

    /// `rtmp://127.0.0.1:PORT/live`: the destination URL (the key goes apart).
    pub fn url(&self) -> String {
        format!("rtmp://127.0.0.1:{}/live", self.port)
    }

    /// Where a player reads the stream published with `key`.
    pub fn play_url(&self, key: &str) -> String {
        format!("{}/{key}", self.url())
    }

    /// (Re)starts it on its port.
    pub fn restart(&mut self) {
        let conf = self.dir.0.join("nginx.conf");
        std::fs::write(&conf, config(&self.dir.0, self.port, self.tls_port))
            .expect("write nginx.conf");
        let mut cmd = Command::new("nginx");
        cmd.arg("-p")
            .arg(&self.dir.0)
            .arg("-e")
            .arg(self.dir.0.join("error.log"))
            .arg("-c")
            .arg(&conf);
        let mut proc = Process::spawn("nginx-rtmp", cmd, self.dir.0.join("nginx.out"));
        let port = self.port;
        let up = wait_until(Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        assert!(
            up && proc.running(),
            "nginx-rtmp did not start on 127.0.0.1:{port}:\n{}\nerror.log:\n{}",
            proc.log(),
            self.error_log()
        );
        self.proc = Some(proc);
    }

    /// Freezes it (SIGSTOP): connections stay open and nothing is read, as from a
    /// destination that accepted the stream and then stalled.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Lets a paused server go on (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, sig: &str) {
        let pid = self
            .proc
            .as_ref()
            .and_then(Process::pid)
            .expect("nginx runs");
        let ok = Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill {sig} {pid}");
    }

    /// Stops it (the port closes; connected publishers are cut).
    pub fn stop(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill();
        }
    }

    /// nginx's error log so far (connections, publishes).
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.0.join("error.log")).unwrap_or_default()
    }
}

impl Drop for RtmpServer {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = self.error_log();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            eprintln!(
                "---- nginx-rtmp :{} error.log (last 30 lines) ----\n{}",
                self.port,
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        self.stop();
    }
}
