//! CPU time and memory of server processes, from /proc; stopping them.

use std::sync::OnceLock;

use anyhow::Context as _;

/// Clock ticks per second (`getconf CLK_TCK`, 100 when that cannot run).
fn ticks_per_sec() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// The fields of /proc/<pid>/stat after the command name (field 3 is index 0).
fn stat_fields(pid: u32) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    let rest = text.rsplit_once(')').map(|(_, r)| r).context("bad stat")?;
    Ok(rest.split_whitespace().map(str::to_owned).collect())
}

/// User + system CPU seconds of a process (all its threads).
pub fn cpu_secs(pid: u32) -> anyhow::Result<f64> {
    let f = stat_fields(pid)?;
    let ticks = |i: usize| -> anyhow::Result<f64> {
        Ok(f.get(i).context("short stat")?.parse::<u64>()? as f64)
    };
    Ok((ticks(11)? + ticks(12)?) / ticks_per_sec())
}

/// Resident set size of a process in bytes.
pub fn rss_bytes(pid: u32) -> anyhow::Result<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .context("no VmRSS")?;
    let kb: u64 = line.trim().trim_end_matches("kB").trim().parse()?;
    Ok(kb * 1024)
}

/// The direct children of a process.
pub fn children(pid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&p| {
            stat_fields(p)
                .ok()
                .and_then(|f| f.get(1)?.parse::<u32>().ok())
                == Some(pid)
        })
        .collect()
}

/// A server: one process, or a master and its workers (nginx).
#[derive(Debug, Clone, Copy)]
pub struct Server {
    /// The main process.
    pub pid: u32,
    /// Whether its children count too.
    pub with_children: bool,
}

impl Server {
    fn pids(&self) -> Vec<u32> {
        let mut p = vec![self.pid];
        if self.with_children {
            p.extend(children(self.pid));
        }
        p
    }

    /// CPU seconds of all its processes (a worker that exited is not counted).
    pub fn cpu_secs(&self) -> f64 {
        self.pids()
            .into_iter()
            .filter_map(|p| cpu_secs(p).ok())
            .sum()
    }

    /// Resident memory of all its processes.
    pub fn rss_bytes(&self) -> u64 {
        self.pids()
            .into_iter()
            .filter_map(|p| rss_bytes(p).ok())
            .sum()
    }
}

/// Sends SIGTERM to `child` and waits up to `grace` for it to exit; true when it did (or
/// had already). Otherwise what to kill is the caller's choice.
pub fn term_and_wait(child: &mut std::process::Child, grace: std::time::Duration) -> bool {
    if matches!(child.try_wait(), Ok(Some(_))) {
        return true;
    }
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = std::time::Instant::now() + grace;
    while std::time::Instant::now() < deadline {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_process() {
        let me = std::process::id();
        assert!(cpu_secs(me).expect("cpu") >= 0.0);
        assert!(rss_bytes(me).expect("rss") > 0);
    }
}
