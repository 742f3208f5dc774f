//! A real S3-protocol server for tests: moto's server (PyPI `moto[server]`, installed by
//! `cargo xtask setup --test` into `~/.cache/weir-py` unless the system `python3` has it)
//! on a loopback port, in memory, killed on drop. It accepts any credentials; the test
//! talks to it over plain HTTP (create a bucket, list it).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::process::Process;
use crate::{TempDir, free_port, wait_until};

/// A running S3 server.
pub struct S3Server {
    proc: Option<Process>,
    /// Its port (`http://127.0.0.1:<port>`).
    pub port: u16,
    /// Its log lives here.
    pub dir: TempDir,
}

/// One object of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    /// Its key.
    pub key: String,
    /// Its size.
    pub size: u64,
}

/// The python that has moto's server: the project's venv, else the system's.
fn python() -> PathBuf {
    let venv = std::env::var_os("HOME")
        .map(|h| PathBuf::from(h).join(".cache/weir-py/bin/python3"))
        .filter(|p| p.exists());
    venv.unwrap_or_else(|| PathBuf::from("python3"))
}

/// Fails the test with a clear message when moto's server is not installed.
pub fn require_moto() {
    let found = Command::new(python())
        .args(["-c", "import moto.server, flask, flask_cors"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "moto's S3 server is not installed: run the project's setup (`cargo xtask setup --test`, \
         which pip-installs moto[server] into ~/.cache/weir-py) and try again"
    );
}

impl S3Server {
    /// Starts the server on a free port and waits until it answers.
    pub fn start() -> Self {
        Self::start_on(free_port())
    }

    /// Starts the server on `port` (one chosen before, e.g. for a node started first).
    pub fn start_on(port: u16) -> Self {
        require_moto();
        let dir = TempDir::new("s3");
        let mut cmd = Command::new(python());
        cmd.args([
            "-m",
            "moto.server",
            "-H",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ]);
        let mut proc = Process::spawn("moto", cmd, dir.0.join("moto.log"));
        proc.tail_on_panic = 30;
        let mut s = Self {
            proc: Some(proc),
            port,
            dir,
        };
        let up = wait_until(Duration::from_secs(30), || {
            s.answers() || s.proc.as_mut().is_some_and(|p| p.exited().is_some())
        }) && s.answers();
        assert!(
            up,
            "moto did not answer on {port} within 30 s:\n{}",
            s.log()
        );
        s
    }

    /// The endpoint URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn answers(&self) -> bool {
        crate::http::get_with_timeout(self.port, "/", Duration::from_secs(2)).is_ok()
    }

    /// Creates bucket `name`.
    pub fn create_bucket(&self, name: &str) {
        let r = crate::http::request(self.port, "PUT", &format!("/{name}")).expect("PUT bucket");
        assert_eq!(r.status, 200, "create bucket: {}", r.text());
    }

    /// The objects of `bucket` under `prefix` (ListObjectsV2; up to 1000).
    pub fn list(&self, bucket: &str, prefix: &str) -> Vec<Object> {
        let r = crate::http::get(
            self.port,
            &format!("/{bucket}?list-type=2&max-keys=1000&prefix={prefix}"),
        )
        .expect("list");
        assert_eq!(r.status, 200, "list: {}", r.text());
        let text = r.text();
        text.split("<Contents>")
            .skip(1)
            .filter_map(|c| {
                let tag = |t: &str| {
                    let a = c.find(&format!("<{t}>"))? + t.len() + 2;
                    let b = c[a..].find(&format!("</{t}>"))? + a;
                    Some(c[a..b].to_owned())
                };
                Some(Object {
                    key: tag("Key")?,
                    size: tag("Size")?.parse().ok()?,
                })
            })
            .collect()
    }

    /// Kills the server (its objects are gone: it keeps them in memory).
    pub fn kill(&mut self) {
        if let Some(p) = self.proc.as_mut() {
            p.kill();
        }
    }

    /// Its log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.0.join("moto.log")).unwrap_or_default()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.kill();
    }
}
