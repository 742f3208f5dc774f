//! The Prometheus recorder; the HTTP origin serves its rendering at `/metrics`.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the global Prometheus recorder once (later calls are no-ops).
pub fn install_metrics() {
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        // Another recorder may already be installed (tests): keep ours for rendering.
        let _ = metrics::set_global_recorder(recorder);
        handle
    });
}

/// The current metrics in Prometheus text format.
pub fn render() -> String {
    match HANDLE.get() {
        Some(h) => {
            h.run_upkeep();
            h.render()
        }
        None => String::new(),
    }
}
