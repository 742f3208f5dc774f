//! Where a process's CPU goes, by thread name (/proc/<pid>/task/*/stat).
//!
//! Thread names in weir's studio are GStreamer's streaming threads and the threads they
//! create (which inherit the creator's name): a participant's appsrc thread runs its
//! parser and decoder (and the decoder's frame threads), the encoder queue's thread runs
//! x264 (and x264's own threads), GStreamer's shared task pool (`pool-weir`) does the
//! compositor's per-pad conversion, scaling and blending. The grouping is by these names,
//! so it is a diagnostic, not an accounting contract.

use std::collections::HashMap;

/// What a thread does, from its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Group {
    /// Compositing: conversion, scaling, blending (task pool, compositor's own thread).
    Compose,
    /// Video encoding (x264).
    Encode,
    /// Participants' parsing and decoding.
    Decode,
    /// Audio mixing and AAC.
    Audio,
    /// Everything else (shards, studio task, control plane, packaging).
    Other,
}

/// The groups in table order.
pub const GROUPS: [Group; 5] = [
    Group::Compose,
    Group::Encode,
    Group::Decode,
    Group::Audio,
    Group::Other,
];

/// The group of a thread named `name` (Linux truncates names to 15 bytes).
pub fn classify(name: &str) -> Group {
    if name.starts_with("pool-") || name.starts_with("compositor") {
        Group::Compose
    } else if name.starts_with("queue0") {
        Group::Encode
    } else if name.starts_with("participant") {
        Group::Decode
    } else if name.starts_with("audiomixer") || name.starts_with("audiotestsrc") {
        Group::Audio
    } else {
        Group::Other
    }
}

/// CPU ticks of every thread of `pid`, by (thread id, name).
pub fn snapshot(pid: u32) -> HashMap<(u32, String), u64> {
    let mut out = HashMap::new();
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for entry in dir.flatten() {
        let Some(tid) = entry
            .file_name()
            .to_str()
            .and_then(|t| t.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(text) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        if let Some((name, ticks)) = parse_stat(&text) {
            out.insert((tid, name), ticks);
        }
    }
    out
}

/// The name and utime + stime (ticks) of a `stat` line.
pub fn parse_stat(text: &str) -> Option<(String, u64)> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let name = text.get(open + 1..close)?.to_owned();
    let f: Vec<&str> = text.get(close + 2..)?.split_whitespace().collect();
    let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some((name, ticks))
}

/// Each group's share of the CPU ticks between two snapshots (0 to 1; all 0 when idle).
pub fn shares(
    before: &HashMap<(u32, String), u64>,
    after: &HashMap<(u32, String), u64>,
) -> Vec<(Group, f64)> {
    let mut by: HashMap<Group, u64> = HashMap::new();
    for (k, &t) in after {
        let d = t.saturating_sub(before.get(k).copied().unwrap_or(0));
        *by.entry(classify(&k.1)).or_default() += d;
    }
    let total: u64 = by.values().sum();
    GROUPS
        .iter()
        .map(|g| {
            let t = by.get(g).copied().unwrap_or(0);
            (
                *g,
                if total == 0 {
                    0.0
                } else {
                    t as f64 / total as f64
                },
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_studio_threads() {
        assert_eq!(classify("pool-weir"), Group::Compose);
        assert_eq!(classify("compositor0:src"), Group::Compose);
        assert_eq!(classify("queue0:src"), Group::Encode);
        assert_eq!(classify("participant12-sr"), Group::Decode);
        assert_eq!(classify("audiomixer0:src"), Group::Audio);
        assert_eq!(classify("weir-shard-0"), Group::Other);
    }

    #[test]
    fn parses_stat_and_sums_groups() {
        let line = "42 (queue0:src) S 1 2 3 4 5 6 7 8 9 10 150 50 0 0 20 0";
        assert_eq!(parse_stat(line), Some(("queue0:src".into(), 200)));
        assert_eq!(parse_stat("garbage"), None);
        let key = |n: &str| (1u32, n.to_owned());
        let before = HashMap::from([(key("pool-weir"), 100u64)]);
        let after = HashMap::from([(key("pool-weir"), 300u64), ((2, "x".into()), 100)]);
        let c = shares(&before, &after);
        assert_eq!(c[0], (Group::Compose, 2.0 / 3.0));
        assert_eq!(c[4], (Group::Other, 1.0 / 3.0));
        assert!(shares(&after, &after).iter().all(|(_, s)| *s == 0.0));
    }

    #[test]
    fn reads_own_threads() {
        assert!(!snapshot(std::process::id()).is_empty());
    }
}
