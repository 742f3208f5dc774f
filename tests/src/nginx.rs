//! Debian's nginx as a caching reverse proxy in front of a node: a stand-in CDN edge with
//! request collapsing (`proxy_cache_lock`), run unprivileged-style from a temp dir (own
//! config, pid file, logs, cache and temp paths), in the foreground, one process.
//!
//! Its access log records, per request, whether it went upstream, so a test can count
//! what reached the origin.

use std::fmt::Write as _;
use std::process::Command;
use std::time::Duration;

use crate::{Process, TempDir, free_port, require_nginx, wait_until};

/// A running caching proxy.
pub struct CachingProxy {
    proc: Process,
    /// The loopback port it listens on.
    pub port: u16,
    /// The origin's port.
    pub upstream: u16,
    pub dir: TempDir,
}

/// One access-log line.
#[derive(Debug, Clone)]
pub struct LogEntry {
    /// When nginx finished the request (Unix seconds, ms resolution).
    pub time: f64,
    pub status: u16,
    /// `$upstream_cache_status`: `MISS`, `HIT`, `EXPIRED`, `UPDATING`, `BYPASS`, … or `-`.
    pub cache: String,
    /// `$upstream_addr`: `-` when nginx answered from its cache.
    pub upstream_addr: String,
    /// Seconds nginx spent on the request.
    pub request_time: f64,
    pub uri: String,
    pub bytes: u64,
}

impl LogEntry {
    /// Whether nginx sent this request to the origin.
    pub fn went_upstream(&self) -> bool {
        !self.upstream_addr.is_empty() && self.upstream_addr != "-"
    }

    /// A media playlist reload that blocks (`_HLS_msn`).
    pub fn is_blocking_playlist(&self) -> bool {
        self.uri.contains(".m3u8") && self.uri.contains("_HLS_msn=")
    }

    /// A part (`part-M-I.m4s`).
    pub fn is_part(&self) -> bool {
        self.uri
            .split('?')
            .next()
            .and_then(|p| p.rsplit('/').next())
            .is_some_and(|n| n.starts_with("part-"))
    }
}

/// The nginx configuration: one process in the foreground, everything under `dir`.
pub fn config(dir: &std::path::Path, port: u16, upstream: u16) -> String {
    let d = dir.display();
    let mut c = String::new();
    c.push_str("daemon off;\nmaster_process off;\nworker_processes 1;\n");
    c.push_str("worker_rlimit_nofile 16384;\n");
    let _ = writeln!(c, "pid {d}/nginx.pid;\nerror_log {d}/error.log warn;");
    c.push_str("events { worker_connections 8192; }\n");
    let _ = write!(
        c,
        r#"http {{
  log_format cache '$msec $status $upstream_cache_status "$upstream_addr" $request_time "$request_uri" $body_bytes_sent';
  access_log {d}/access.log cache;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  keepalive_timeout 65;
  proxy_cache_path {d}/cache levels=1:2 keys_zone=hls:16m max_size=512m inactive=2m use_temp_path=off;
  upstream origin {{
    server 127.0.0.1:{upstream};
    keepalive 64;
  }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_buffering on;
      proxy_read_timeout 20s;
      proxy_cache hls;
      proxy_cache_key $scheme$proxy_host$request_uri;
      # Collapse identical requests: one goes upstream, the others wait for its answer.
      proxy_cache_lock on;
      proxy_cache_lock_age 5s;
      proxy_cache_lock_timeout 5s;
      # Only for answers without Cache-Control/Expires: the origin's Cache-Control rules
      # (no-cache playlists, max-age=2 blocking reloads, immutable objects).
      proxy_cache_valid 200 1s;
      add_header X-Cache-Status $upstream_cache_status always;
    }}
  }}
}}
"#
    );
    c
}

impl CachingProxy {
    /// Starts nginx on a free loopback port in front of 127.0.0.1:`upstream`.
    pub fn start(upstream: u16) -> Self {
        require_nginx();
        let dir = TempDir::new("nginx");
        let port = free_port();
        let conf = dir.0.join("nginx.conf");
        std::fs::write(&conf, config(&dir.0, port, upstream)).expect("write nginx.conf");
        for sub in ["cache", "body", "proxy", "fastcgi", "uwsgi", "scgi"] {
            std::fs::create_dir_all(dir.0.join(sub)).expect("nginx dir");
        }
        let mut cmd = Command::new("nginx");
        // -e: the error log before the config is read (Debian's default is under /var/log).
        cmd.arg("-p")
            .arg(&dir.0)
            .arg("-e")
            .arg(dir.0.join("error.log"))
            .arg("-c")
            .arg(&conf);
        let mut proc = Process::spawn("nginx", cmd, dir.0.join("nginx.out"));
        let up = wait_until(Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        let error_log = std::fs::read_to_string(dir.0.join("error.log")).unwrap_or_default();
        assert!(
            up && proc.running(),
            "nginx did not start on 127.0.0.1:{port}:\n{}\nerror.log:\n{error_log}",
            proc.log()
        );
        Self {
            proc,
            port,
            upstream,
            dir,
        }
    }

    /// The access log so far.
    pub fn access_log(&self) -> Vec<LogEntry> {
        let text = std::fs::read_to_string(self.dir.0.join("access.log")).unwrap_or_default();
        text.lines().filter_map(parse_log_line).collect()
    }

    /// nginx's error log so far.
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.0.join("error.log")).unwrap_or_default()
    }

    /// Stops nginx.
    pub fn stop(&mut self) {
        self.proc.terminate(Duration::from_secs(5));
    }
}

impl Drop for CachingProxy {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = self.error_log();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!(
                "---- nginx error.log (last 40 lines) ----\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        self.proc.kill();
    }
}

/// Parses a line of the `cache` log format.
pub fn parse_log_line(line: &str) -> Option<LogEntry> {
    // $msec $status $cache "$upstream_addr" $request_time "$request_uri" $bytes
    let (time, rest) = line.split_once(' ')?;
    let (status, rest) = rest.split_once(' ')?;
    let (cache, rest) = rest.split_once(' ')?;
    let rest = rest.strip_prefix('"')?;
    let (upstream_addr, rest) = rest.split_once("\" ")?;
    let (request_time, rest) = rest.split_once(' ')?;
    let rest = rest.strip_prefix('"')?;
    let (uri, bytes) = rest.rsplit_once("\" ")?;
    Some(LogEntry {
        time: time.parse().ok()?,
        status: status.parse().ok()?,
        cache: cache.to_owned(),
        upstream_addr: upstream_addr.to_owned(),
        request_time: request_time.parse().unwrap_or(0.0),
        uri: uri.to_owned(),
        bytes: bytes.trim().parse().unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_log_lines() {
        let e = parse_log_line(
            r#"1764625000.123 200 MISS "127.0.0.1:8080" 0.201 "/live/a/b/media.m3u8?_HLS_msn=3&_HLS_part=1" 812"#,
        )
        .expect("parse");
        assert!(e.went_upstream() && e.is_blocking_playlist() && !e.is_part());
        assert_eq!((e.status, e.bytes), (200, 812));
        let e = parse_log_line(r#"1764625000.5 200 HIT "-" 0.000 "/live/a/b/part-3-1.m4s" 9000"#)
            .expect("parse");
        assert!(!e.went_upstream() && e.is_part());
        let c = config(std::path::Path::new("/t"), 1, 2);
        assert!(c.contains("proxy_cache_lock on;") && c.contains("server 127.0.0.1:2;"));
    }
}
