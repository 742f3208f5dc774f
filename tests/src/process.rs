//! A child process whose stderr (and stdout) go to a log file: wait for log lines, kill it
//! (SIGKILL) or stop it (SIGTERM), always reaped on drop.

use std::fs::OpenOptions;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::wait_until;

/// A running child with its output in `log`.
pub struct Process {
    child: Option<Child>,
    /// A name for messages (`weir controlplane`, `etcd`).
    pub name: String,
    log: PathBuf,
    /// How many trailing log lines to print when the test panics (0: all).
    pub tail_on_panic: usize,
}

impl Process {
    /// Spawns `cmd` with stdout and stderr appended to `log` (so a restart keeps the
    /// earlier output) and stdin closed.
    pub fn spawn(name: &str, mut cmd: Command, log: PathBuf) -> Self {
        let open = || {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log)
                .unwrap_or_else(|e| panic!("log file {}: {e}", log.display()))
        };
        cmd.stdin(Stdio::null()).stdout(open()).stderr(open());
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {name} ({:?}): {e}", cmd.get_program()));
        Self {
            child: Some(child),
            name: name.to_owned(),
            log,
            tail_on_panic: 0,
        }
    }

    /// Wraps an already spawned child.
    pub fn from_child(name: &str, child: Child, log: PathBuf) -> Self {
        Self {
            child: Some(child),
            name: name.to_owned(),
            log,
            tail_on_panic: 0,
        }
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The whole log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Path of the log file.
    pub fn log_path(&self) -> &std::path::Path {
        &self.log
    }

    /// Waits until the log contains `needle`; false at the deadline or when the process
    /// has exited without printing it.
    pub fn wait_log(&mut self, needle: &str, timeout: Duration) -> bool {
        self.wait_log_count(needle, 1, timeout)
    }

    /// Waits until `needle` occurs at least `n` times in the log.
    pub fn wait_log_count(&mut self, needle: &str, n: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.log().matches(needle).count() >= n {
                return true;
            }
            if Instant::now() > deadline || self.exited().is_some() {
                return self.log().matches(needle).count() >= n;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The exit status once the process has ended (and `None` while it runs).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        self.child.is_some() && self.exited().is_none()
    }

    /// SIGKILL, then reap.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Sends SIGTERM and waits for the exit; returns the exit success (`None`: it did
    /// not exit in time and was killed, or was not running).
    pub fn terminate(&mut self, timeout: Duration) -> Option<bool> {
        let mut child = self.child.take()?;
        signal(child.id(), libc::SIGTERM);
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status.success());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for the process to exit by itself; `None` (and the process killed) when it
    /// is still running at the deadline.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let mut status = None;
        wait_until(timeout, || {
            status = self.exited();
            status.is_some()
        });
        if status.is_none() {
            self.kill();
        } else {
            self.child = None;
        }
        status
    }

    fn log_for_panic(&self) -> String {
        let log = self.log();
        if self.tail_on_panic == 0 {
            return log;
        }
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(self.tail_on_panic)..].join("\n")
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("---- {} log ----\n{}", self.name, self.log_for_panic());
        }
    }
}

/// Sends `sig` to a process we started.
pub fn signal(pid: u32, sig: libc::c_int) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    // SAFETY: sending a signal to our own child process.
    #[allow(unsafe_code)]
    unsafe {
        libc::kill(pid, sig);
    }
}
