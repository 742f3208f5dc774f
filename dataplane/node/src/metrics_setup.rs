//! The Prometheus recorder; the HTTP origin serves its rendering at `/metrics`.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the global Prometheus recorder once (later calls are no-ops).
pub fn install_metrics() {
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new();
        // Delivery latency as a histogram (cumulative buckets: a bench can take the
        // difference over its own window), fine below 50 ms.
        let builder = builder
            .set_buckets_for_metric(
                Matcher::Full(crate::http::conn::WAKE_TO_DELIVERY.to_owned()),
                &[
                    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0,
                ],
            )
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
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
