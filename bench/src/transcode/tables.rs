//! The results: one line per run, the summary tables and the notes.

use crate::stats::Latency;
use std::fmt::Write as _;

use super::*;

pub(super) fn describe(run: &Run, cfg: &Config) -> String {
    let mut s = format!(
        "{}: {:.2} cores (bench {:.2}, others {:.2}); lag {:.0} → {:.0} ms, {:.3} s/s",
        run.kind.label(),
        run.cores,
        run.bench_cores,
        run.others_cores(),
        run.lag_early_ms,
        run.lag_late_ms,
        run.rate
    );
    if let Some(l) = &run.lag {
        let _ = write!(
            s,
            "; ingest → available p50 {:.0} / p95 {:.0} / max {:.0} ms",
            l.p50, l.p95, l.max
        );
    }
    if run.kind.is_weir() && run.kind != RunKind::WeirBase {
        let _ = write!(
            s,
            "; overloads {}, input dropped {}",
            run.overloads, run.input_dropped
        );
    }
    let _ = write!(
        s,
        " → {}",
        if run.real_time(cfg.lag_limit_ms) {
            "real time"
        } else {
            "NOT real time"
        }
    );
    if let Some(e) = &run.error {
        let _ = write!(s, "; error: {e}");
    }
    s
}

pub(super) const ORDER: [RunKind; 6] = [
    RunKind::WeirBase,
    RunKind::WeirLadder,
    RunKind::Ffmpeg,
    RunKind::WeirPassthrough,
    RunKind::FfmpegPassthrough,
    RunKind::WeirPerTitle,
];

pub(super) fn mean(v: impl Iterator<Item = f64>) -> f64 {
    let v: Vec<f64> = v.filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        f64::NAN
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

pub(super) fn spread(runs: &[&Run]) -> String {
    let v: Vec<f64> = runs
        .iter()
        .map(|r| r.cores)
        .filter(|x| x.is_finite())
        .collect();
    if v.len() < 2 {
        return String::new();
    }
    let (lo, hi) = v
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
            (a.min(x), b.max(x))
        });
    format!(" ({lo:.2}–{hi:.2})")
}

/// The result tables (markdown).
pub fn tables(runs: &[Run], cfg: &Config) -> String {
    let of = |k: RunKind| runs.iter().filter(|r| r.kind == k).collect::<Vec<_>>();
    let cores = |k: RunKind| mean(of(k).iter().map(|r| r.cores));
    let base = cores(RunKind::WeirBase);
    let mut t = String::new();
    t.push_str(
        "| run | CPU (cores) | net of baseline | lag early → late (ms) | media s/s | \
         360p ingest → available p50 / p95 / max (ms) | others' CPU | real time |\n\
         |---|---:|---:|---:|---:|---:|---:|---|\n",
    );
    for k in ORDER {
        let rs = of(k);
        if rs.is_empty() {
            continue;
        }
        let c = cores(k);
        let net = if k.is_weir() && k != RunKind::WeirBase {
            format!("{:.2}", c - base)
        } else {
            String::new()
        };
        let lag = {
            let ls: Vec<&Latency> = rs.iter().filter_map(|r| r.lag.as_ref()).collect();
            if ls.is_empty() {
                String::new()
            } else {
                format!(
                    "{:.0} / {:.0} / {:.0}",
                    mean(ls.iter().map(|l| l.p50)),
                    mean(ls.iter().map(|l| l.p95)),
                    ls.iter().map(|l| l.max).fold(f64::NAN, f64::max)
                )
            }
        };
        let _ = writeln!(
            t,
            "| {}{} | {c:.2}{} | {net} | {:.0} → {:.0} | {:.3} | {lag} | {:.2} | {} |",
            k.label(),
            if k == RunKind::WeirBase {
                " (source only)"
            } else {
                ""
            },
            spread(&rs),
            mean(rs.iter().map(|r| r.lag_early_ms)),
            mean(rs.iter().map(|r| r.lag_late_ms)),
            mean(rs.iter().map(|r| r.rate)),
            mean(rs.iter().map(|r| r.others_cores())),
            if rs.iter().all(|r| r.real_time(cfg.lag_limit_ms)) {
                "yes"
            } else {
                "**no**"
            }
        );
    }
    t.push_str(
        "\nEvery run (CPU per media s = cores ÷ media s per s; clean = real time with others ≤ \
         quiet + 0.2 cores):\n\n\
         | round | run | CPU (cores) | CPU per media s | others' CPU | lag early → late (ms) | \
         media s/s | real time | clean |\n|---:|---|---:|---:|---:|---:|---:|---|---|\n",
    );
    for r in runs {
        let _ = writeln!(
            t,
            "| {} | {} | {:.2} | {:.2} | {:.2} | {:.0} → {:.0} | {:.3} | {} | {} |",
            r.round + 1,
            r.kind.label(),
            r.cores,
            r.cores_per_media_s(),
            r.others_cores(),
            r.lag_early_ms,
            r.lag_late_ms,
            r.rate,
            if r.real_time(cfg.lag_limit_ms) {
                "yes"
            } else {
                "no"
            },
            if r.clean(cfg) { "yes" } else { "no" }
        );
    }
    t.push_str(
        "\n| ladder | basis | weir net (cores) | weir gross | ffmpeg | ffmpeg / weir net | \
         ffmpeg / weir gross |\n|---|---|---:|---:|---:|---:|---:|\n",
    );
    for (name, w, f) in [
        (
            "1080/720/480/360 all encoded",
            RunKind::WeirLadder,
            RunKind::Ffmpeg,
        ),
        (
            "1080 passthrough + 720/480/360",
            RunKind::WeirPassthrough,
            RunKind::FfmpegPassthrough,
        ),
    ] {
        let clean = |k: RunKind| {
            of(k)
                .into_iter()
                .filter(|r| r.clean(cfg))
                .collect::<Vec<_>>()
        };
        let (cw, cf) = (clean(w), clean(f));
        let (ws, fs, basis) = if !cw.is_empty() && !cf.is_empty() {
            let basis = format!("clean runs ({} weir, {} ffmpeg)", cw.len(), cf.len());
            (cw, cf, basis)
        } else {
            (
                of(w),
                of(f),
                "all runs, per media s (**contended**: no clean pair)".to_owned(),
            )
        };
        let wg = mean(ws.iter().map(|r| r.cores_per_media_s()));
        let fc = mean(fs.iter().map(|r| r.cores_per_media_s()));
        let wn = wg - base;
        let _ = writeln!(
            t,
            "| {name} | {basis} | {wn:.2} | {wg:.2} | {fc:.2} | {:.2}× | {:.2}× |",
            fc / wn,
            fc / wg
        );
    }
    t
}

/// Notes under the tables: warnings seen, errors.
pub(super) fn notes(runs: &[Run]) -> String {
    let mut s = String::new();
    for r in runs {
        if let Some(e) = &r.error {
            let _ = writeln!(s, "- {}: error: {e}", r.kind.label());
        }
        if r.overloads > 0 || r.input_dropped > 0 {
            let _ = writeln!(
                s,
                "- {}: {} overload(s) (rungs dropped), {} input frames dropped: its CPU \
                 figure understates a full ladder",
                r.kind.label(),
                r.overloads,
                r.input_dropped
            );
        }
        for w in r.warnings.iter().take(3) {
            let _ = writeln!(s, "- {}: log: `{}`", r.kind.label(), w.trim());
        }
    }
    s
}
