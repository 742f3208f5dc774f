//! Debian's nginx-rtmp (`libnginx-mod-rtmp`) as a relay destination: one process in the
//! foreground from a temp dir, application `live`, stoppable and restartable on the
//! same port (a destination going away mid-stream).

use std::fmt::Write as _;
use std::process::Command;
use std::time::Duration;

use crate::{Process, TempDir, free_port, require_nginx, wait_until};

/// The nginx RTMP module shipped by Debian's `libnginx-mod-rtmp`.
pub const RTMP_MODULE: &str = "/usr/lib/nginx/modules/ngx_rtmp_module.so";

/// A running (or stopped) nginx-rtmp server.
pub struct RtmpServer {
    proc: Option<Process>,
    /// The loopback port it listens on.
    pub port: u16,
    dir: TempDir,
}

fn config(dir: &std::path::Path, port: u16) -> String {
    let d = dir.display();
    let mut c = String::new();
    let _ = writeln!(c, "load_module {RTMP_MODULE};");
    c.push_str("daemon off;\nmaster_process off;\nworker_processes 1;\n");
    let _ = writeln!(c, "pid {d}/nginx.pid;\nerror_log {d}/error.log info;");
    c.push_str("events { worker_connections 1024; }\n");
    let _ = write!(
        c,
        "rtmp {{\n  server {{\n    listen 127.0.0.1:{port};\n    chunk_size 4096;\n    \
         application live {{\n      live on;\n      record off;\n    }}\n  }}\n}}\n"
    );
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
            dir: TempDir::new("nginx-rtmp"),
        };
        s.restart();
        s
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
        std::fs::write(&conf, config(&self.dir.0, self.port)).expect("write nginx.conf");
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
