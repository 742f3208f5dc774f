//! A real single-member etcd server (Debian package `etcd-server`) on free loopback ports
//! with a temporary data directory; it can be killed and restarted on the same data and
//! ports.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::process::Process;
use crate::{TempDir, free_port, wait_until};

/// A running etcd.
pub struct Etcd {
    proc: Option<Process>,
    /// Client port (`http://127.0.0.1:<client_port>`).
    pub client_port: u16,
    /// Peer port.
    pub peer_port: u16,
    /// Data directory and log live here.
    pub dir: TempDir,
}

/// Fails the test with a clear message when `etcd` is not installed.
pub fn require_etcd() {
    let found = Command::new("etcd")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "the `etcd` binary is not installed: run the project's setup (`cargo xtask setup --test`, \
         which installs the Debian package etcd-server) and try again"
    );
}

impl Etcd {
    /// Starts etcd and waits (up to 20 s) until it reports healthy.
    pub fn start() -> Self {
        require_etcd();
        let mut etcd = Self {
            proc: None,
            client_port: free_port(),
            peer_port: free_port(),
            dir: TempDir::new("etcd"),
        };
        etcd.spawn();
        etcd
    }

    /// The client URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    fn spawn(&mut self) {
        let client = self.url();
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let mut cmd = Command::new("etcd");
        // Keep the caller's ETCD_* settings out of the test server.
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("ETCD_") {
                cmd.env_remove(k);
            }
        }
        cmd.args(["--name", "weir-e2e", "--data-dir"])
            .arg(self.dir.0.join("data"))
            .args(["--listen-client-urls", &client])
            .args(["--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &format!("weir-e2e={peer}")])
            .args(["--log-level", "warn"]);
        let mut proc = Process::spawn("etcd", cmd, self.dir.0.join("etcd.log"));
        proc.tail_on_panic = 40;
        self.proc = Some(proc);
        let up = wait_until(Duration::from_secs(20), || {
            self.healthy() || self.proc.as_mut().is_some_and(|p| p.exited().is_some())
        }) && self.healthy();
        assert!(
            up,
            "etcd did not become healthy on {client} within 20 s:\n{}",
            self.log()
        );
    }

    /// Whether `/health` answers `"health":"true"`.
    pub fn healthy(&self) -> bool {
        crate::http::get_with_timeout(self.client_port, "/health", Duration::from_secs(2))
            .is_ok_and(|r| r.status == 200 && r.text().contains("\"health\":\"true\""))
    }

    /// SIGKILL: no graceful shutdown, leases not revoked.
    pub fn kill(&mut self) {
        if let Some(p) = self.proc.as_mut() {
            p.kill();
        }
    }

    /// Starts etcd again on the same data directory and ports (after [`Etcd::kill`]).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Whether the process is running.
    pub fn running(&mut self) -> bool {
        self.proc.as_mut().is_some_and(Process::running)
    }

    /// The log (both runs).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.0.join("etcd.log")).unwrap_or_default()
    }
}
