//! The final table (ratios against the peer) and the results section of bench/README.md.

use std::fmt::Write as _;
use std::path::Path;

use crate::Config;
use crate::egress::Egress;
use crate::live::{Capacity, StreamRun};
use crate::servers::Kind;

/// Everything measured in one run.
#[derive(Debug, Default)]
pub struct Results {
    /// Scenario 1.
    pub latency: Vec<(Kind, StreamRun)>,
    /// Scenario 2.
    pub egress: Vec<Egress>,
    /// Scenario 3.
    pub capacity: Vec<Capacity>,
}

fn find<T>(v: &[T], kind: Kind, k: impl Fn(&T) -> Kind) -> Option<&T> {
    v.iter().find(|x| k(x) == kind)
}

/// `weir vs peer` as a factor where > 1 means weir is better.
fn ratio(weir: f64, peer: f64, higher_is_better: bool) -> String {
    let r = if higher_is_better {
        weir / peer
    } else {
        peer / weir
    };
    if r.is_finite() && r > 0.0 {
        format!("{r:.2}×")
    } else {
        "–".into()
    }
}

fn row(t: &mut String, name: &str, w: f64, p: f64, digits: usize, higher: bool) {
    let _ = writeln!(
        t,
        "| {name} | {w:.digits$} | {p:.digits$} | {} |",
        ratio(w, p, higher)
    );
}

/// The publishers-per-core ratio, marked as a bound where a ramp ended without failing.
fn bounded_ratio(w: &Capacity, p: &Capacity) -> String {
    let r = ratio(w.max_ok as f64, p.max_ok as f64, true);
    match (w.capped.is_some(), p.capped.is_some()) {
        (true, false) if r != "–" => format!("≥{r}"),
        (false, true) if r != "–" => format!("≤{r}"),
        (true, true) => "–".into(),
        _ => r,
    }
}

/// The results table in Markdown (readable as plain text too).
pub fn table(r: &Results, cfg: &Config) -> String {
    let mut t = String::new();
    t.push_str("| metric | weir | nginx-rtmp | weir vs peer |\n|---|---:|---:|---:|\n");
    if let (Some((_, w)), Some((_, p))) = (
        find(&r.latency, Kind::Weir, |x| x.0),
        find(&r.latency, Kind::Nginx, |x| x.0),
    ) {
        let (w, p) = (&w.latency, &p.latency);
        row(&mut t, "latency p50 (ms)", w.p50, p.p50, 0, false);
        row(&mut t, "latency p95 (ms)", w.p95, p.p95, 0, false);
        row(&mut t, "latency p99 (ms)", w.p99, p.p99, 0, false);
        let _ = writeln!(
            t,
            "| object duration (ms): part / segment | {:.0} | {:.0} | |",
            w.object_ms, p.object_ms
        );
        let target = cfg.part_target_ms as f64 + 50.0;
        let _ = writeln!(
            t,
            "| target p95 ≤ part + 50 ms = {target:.0} ms | {} | | |",
            if w.p95 <= target { "met" } else { "NOT met" }
        );
    }
    if let (Some(w), Some(p)) = (
        find(&r.egress, Kind::Weir, |x| x.kind),
        find(&r.egress, Kind::Nginx, |x| x.kind),
    ) {
        for (lw, lp) in w.levels.iter().zip(&p.levels) {
            let v = lw.viewers;
            row(
                &mut t,
                &format!("{v} viewers: media objects/s (parts vs segments)"),
                lw.media_per_s,
                lp.media_per_s,
                0,
                true,
            );
            row(
                &mut t,
                &format!("{v} viewers: server CPU (cores)"),
                lw.cpu_cores,
                lp.cpu_cores,
                2,
                false,
            );
            row(
                &mut t,
                &format!("{v} viewers: media objects per core-s"),
                lw.media_per_core_s(),
                lp.media_per_core_s(),
                0,
                true,
            );
            row(
                &mut t,
                &format!("{v} viewers: responses per core-s"),
                lw.responses_per_core_s(),
                lp.responses_per_core_s(),
                0,
                true,
            );
            row(
                &mut t,
                &format!("{v} viewers: MB per core-s"),
                lw.mb_per_core_s(),
                lp.mb_per_core_s(),
                0,
                true,
            );
            row(
                &mut t,
                &format!("{v} viewers: KiB per viewer"),
                lw.bytes_per_viewer / 1024.0,
                lp.bytes_per_viewer / 1024.0,
                1,
                false,
            );
            if let Some((p50, p99)) = lw.wake_ms {
                let _ = writeln!(
                    t,
                    "| {v} viewers: part available → delivered, weir p50 / p99 (ms, bucket bounds) | {p50} / {p99} | | |"
                );
            }
        }
    }
    if let (Some(w), Some(p)) = (
        find(&r.capacity, Kind::Weir, |x| x.kind),
        find(&r.capacity, Kind::Nginx, |x| x.kind),
    ) {
        let show =
            |c: &Capacity| format!("{}{}", if c.capped.is_some() { "≥" } else { "" }, c.max_ok);
        let note = match (w.capped, p.capped) {
            (Some(a), _) | (None, Some(a)) => format!(" (≥: {a})"),
            (None, None) => String::new(),
        };
        let _ = writeln!(
            t,
            "| publishers per core{note} | {} | {} | {} |",
            show(w),
            show(p),
            bounded_ratio(w, p)
        );
        if let (Some(cw), Some(cp)) = (w.cpu_per_publisher_ms(), p.cpu_per_publisher_ms()) {
            row(
                &mut t,
                "server CPU per publisher (core-ms/s)",
                cw,
                cp,
                2,
                false,
            );
            row(
                &mut t,
                "publishers per core, from CPU per publisher (estimate)",
                1000.0 / cw,
                1000.0 / cp,
                0,
                true,
            );
        }
    }
    t
}

/// Per-step details of the scenarios, in Markdown.
pub fn details(r: &Results) -> String {
    let mut t = String::new();
    if !r.capacity.is_empty() {
        t.push_str("Publisher ramp (latency on stream 0; bound: weir part target + 150 ms, nginx-rtmp 1.5 × its K=1 p95):\n\n");
        t.push_str("| server | K | p50 ms | p95 ms | bound ms | max publisher lag ms | behind | server CPU | bench CPU | result |\n");
        t.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n");
        for c in &r.capacity {
            for (run, ok) in &c.steps {
                let _ = writeln!(
                    t,
                    "| {} | {} | {:.0} | {:.0} | {:.0} | {} | {} | {:.2} | {:.2} | {} |",
                    c.kind.name(),
                    run.publishers,
                    run.latency.p50,
                    run.latency.p95,
                    c.bound_ms,
                    run.max_lag.as_millis(),
                    run.behind,
                    run.server_cores,
                    run.client_cores,
                    if *ok { "ok" } else { "degraded" }
                );
            }
        }
        t.push('\n');
    }
    if !r.egress.is_empty() {
        t.push_str("Egress baseline (publisher only, no viewers):\n\n| server | CPU (cores) | RSS (MiB) |\n|---|---:|---:|\n");
        for e in &r.egress {
            let _ = writeln!(
                t,
                "| {} | {:.3} | {:.1} |",
                e.kind.name(),
                e.cpu0,
                e.rss0 as f64 / 1048576.0
            );
        }
        t.push_str("\n| server | viewers | following | responses/s | MB/s | RSS (MiB) | errors |\n|---|---:|---:|---:|---:|---:|---:|\n");
        for e in &r.egress {
            for l in &e.levels {
                let _ = writeln!(
                    t,
                    "| {} | {} | {} | {:.0} | {:.1} | {:.1} | {} |",
                    e.kind.name(),
                    l.viewers,
                    l.active,
                    l.responses_per_s,
                    l.bytes_per_s / 1e6,
                    l.rss as f64 / 1048576.0,
                    l.errors
                );
            }
        }
        t.push('\n');
    }
    t
}

fn command(program: &str, args: &[&str]) -> String {
    std::process::Command::new(program)
        .args(args)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// Date, cores, kernel and CPU of this machine.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_default();
    format!(
        "{} · nproc {} · kernel {} · {cpu}",
        command("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        command("nproc", &["--all"]),
        command("uname", &["-r"]),
    )
}

const BEGIN: &str = "<!-- results:begin (written by weir-bench) -->";
const END: &str = "<!-- results:end -->";

/// Replaces the results section of the README (appends one if there is none).
pub fn write_readme(path: &Path, section: &str) -> anyhow::Result<()> {
    if !replace_marked(path, BEGIN, END, section)? {
        let old = std::fs::read_to_string(path).unwrap_or_default();
        std::fs::write(
            path,
            format!("{}\n{BEGIN}\n{section}{END}\n", old.trim_end()),
        )?;
    }
    Ok(())
}

/// Replaces what stands between the markers `begin` and `end` of the file at `path` with
/// `section` (markers kept); false, and nothing written, when the markers are not there.
pub fn replace_marked(path: &Path, begin: &str, end: &str, section: &str) -> anyhow::Result<bool> {
    let old = std::fs::read_to_string(path).unwrap_or_default();
    let (Some(a), Some(b)) = (old.find(begin), old.find(end)) else {
        return Ok(false);
    };
    if b < a {
        return Ok(false);
    }
    let rest = &old[b + end.len()..];
    std::fs::write(path, format!("{}{begin}\n{section}{end}{rest}", &old[..a]))?;
    Ok(true)
}
