//! The chat bench's tables, and the section of bench/README.md they go to.

use std::fmt::Write as _;
use std::path::Path;

use super::{Config, Scenario, procs::CHAT_LIMITS};

const BEGIN: &str = "<!-- chat-results:begin (written by weir-bench chat) -->";
const END: &str = "<!-- chat-results:end -->";

/// Markdown: the run, the per-step table, the per-scenario table.
pub fn render(cfg: &Config, results: &[Scenario]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "`cargo xtask bench chat{}` — {}.\n",
        if cfg.quick { " --quick" } else { "" },
        crate::report::machine()
    );
    let _ = writeln!(
        s,
        "Gateway flags set by the bench: {}; everything else as shipped. {} s per step after 2 s of warm-up.\n",
        CHAT_LIMITS
            .iter()
            .map(|(k, v)| format!("`{k} {v}`"))
            .collect::<Vec<_>>()
            .join(", "),
        cfg.step_secs
    );
    s.push_str(
        "| scenario | target deliveries/s | msgs/s in (acked) | deliveries/s | gateway cores | deliveries per gateway core-s | p50 / p99 / max ms | bench client cores | Redis+etcd cores | others' cores |\n",
    );
    s.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for r in results {
        for st in &r.steps {
            let _ = writeln!(
                s,
                "| {} | {:.0} | {:.0} ({:.0}) | {:.0} | {:.2} | {:.0} | {:.1} / {:.1} / {:.1} | {:.2} | {:.2} | {:.2} |",
                r.name,
                st.target,
                st.offered,
                st.accepted,
                st.deliveries,
                st.gateway_cores,
                st.deliveries / st.gateway_cores.max(1e-9),
                st.p50,
                st.p99,
                st.max,
                st.client_cores,
                st.helper_cores,
                st.other_cores,
            );
        }
    }
    s.push_str(
        "\n| scenario | gateways | rooms × connections | joined (s) | gateway RSS before → idle (MiB) | KiB per idle connection | sent / acked / refused | messages lost | repeated | connections dropped |\n",
    );
    s.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for r in results {
        let _ = writeln!(
            s,
            "| {} | {} | {} × {} | {} ({:.1}) | {:.1} → {:.1} | {:.2} | {} / {} / {}{} | {} | {} | {}{} |",
            r.name,
            r.gateways,
            r.rooms,
            r.connections / r.rooms,
            r.joined,
            r.connect_secs,
            r.rss_before as f64 / 1048576.0,
            r.rss_idle as f64 / 1048576.0,
            r.rss_idle.saturating_sub(r.rss_before) as f64 / 1024.0 / r.joined.max(1) as f64,
            r.sent,
            r.acked,
            r.refused,
            if r.codes.is_empty() {
                String::new()
            } else {
                format!(" ({})", r.codes)
            },
            r.lost,
            r.repeated,
            r.dropped,
            if r.drop_codes.is_empty() {
                String::new()
            } else {
                format!(" (close codes {})", r.drop_codes)
            },
        );
    }
    s
}

/// Replaces the chat section of the README (appends one when there is none).
pub fn write(readme: &Path, text: &str) -> anyhow::Result<()> {
    if !crate::report::replace_marked(readme, BEGIN, END, text)? {
        let old = std::fs::read_to_string(readme).unwrap_or_default();
        std::fs::write(
            readme,
            format!("{}\n\n{BEGIN}\n{text}{END}\n", old.trim_end()),
        )?;
    }
    Ok(())
}
