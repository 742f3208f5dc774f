//! How busy the machine is: CPU jiffies, the wait for a quiet machine, the load average.

use crate::{procstat, progress};
use std::time::{Duration, Instant};

use super::*;

/// Busy and total jiffies of all CPUs (`/proc/stat`).
pub(super) fn machine_ticks() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = text.lines().find(|l| l.starts_with("cpu ")) else {
        return (0, 0);
    };
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest is inside user).
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    (total.saturating_sub(idle), total)
}

pub(super) fn cpus() -> f64 {
    std::thread::available_parallelism().map_or(1, |n| n.get()) as f64
}

/// CPU counters at one instant.
#[derive(Debug, Clone, Copy)]
pub(super) struct Sample {
    pub(super) at: Instant,
    pub(super) process: f64,
    pub(super) bench: f64,
    pub(super) machine: (u64, u64),
}

impl Sample {
    pub(super) fn take(pid: u32) -> anyhow::Result<Self> {
        Ok(Self {
            at: Instant::now(),
            process: procstat::cpu_secs(pid)?,
            bench: procstat::cpu_secs(std::process::id())?,
            machine: machine_ticks(),
        })
    }

    /// (process, bench, machine) cores from `self` to `later`.
    pub(super) fn cores(&self, later: &Self) -> (f64, f64, f64) {
        let secs = later.at.duration_since(self.at).as_secs_f64().max(1e-3);
        let (busy, total) = (
            later.machine.0.saturating_sub(self.machine.0),
            later.machine.1.saturating_sub(self.machine.1),
        );
        let machine = if total == 0 {
            f64::NAN
        } else {
            busy as f64 / total as f64 * cpus()
        };
        (
            (later.process - self.process) / secs,
            (later.bench - self.bench) / secs,
            machine,
        )
    }
}

/// The machine is shared (builds of other work): waits, up to `--wait-quiet-secs`, until
/// the CPU used by everything but this bench stays at or under `--quiet-cores` for 2 s.
pub(super) fn wait_quiet(cfg: &Config) {
    let deadline = Instant::now() + Duration::from_secs_f64(cfg.wait_quiet_secs);
    let mut said = false;
    loop {
        let (b0, m0) = (
            procstat::cpu_secs(std::process::id()).unwrap_or(0.0),
            machine_ticks(),
        );
        std::thread::sleep(Duration::from_secs(2));
        let (b1, m1) = (
            procstat::cpu_secs(std::process::id()).unwrap_or(0.0),
            machine_ticks(),
        );
        let total = m1.1.saturating_sub(m0.1).max(1) as f64;
        let busy = m1.0.saturating_sub(m0.0) as f64 / total * cpus();
        let others = (busy - (b1 - b0) / 2.0).max(0.0);
        if others <= cfg.quiet_cores {
            if said {
                progress!("  the machine is quiet ({others:.2} cores used by others)");
            }
            return;
        }
        if Instant::now() >= deadline {
            if cfg.wait_quiet_secs > 0.0 {
                progress!(
                    "  still {others:.2} cores used by others after {:.0} s: running anyway",
                    cfg.wait_quiet_secs
                );
            }
            return;
        }
        if !said {
            progress!(
                "  waiting for the machine to be quiet: {others:.2} cores used by others (≤ {:.2} wanted)",
                cfg.quiet_cores
            );
            said = true;
        }
    }
}

pub(super) fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}
