//! The Prometheus recorder; the HTTP origin serves its rendering at `/metrics`.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// How often histogram samples are folded into their buckets.
const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

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
        // A histogram keeps every sample until upkeep folds it into its buckets, which
        // `render` does on a scrape: on a node nobody scrapes, each blocking reload's
        // sample stayed in memory for good (~8 bytes per request, gigabytes a day on a
        // busy origin). Fold them in on a timer, as `PrometheusBuilder::install` would.
        let upkeep = handle.clone();
        let started = std::thread::Builder::new()
            .name("weir-metrics-upkeep".to_owned())
            .spawn(move || {
                loop {
                    std::thread::sleep(UPKEEP_EVERY);
                    upkeep.run_upkeep();
                }
            });
        if let Err(e) = started {
            tracing::warn!(error = %e, "metrics upkeep thread did not start: histograms grow until scraped");
        }
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

/// Whether the HTTP origin answers `/metrics` (false once a separate metrics listener
/// is configured: the metrics are then not public).
static ON_ORIGIN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// True when the origin serves `/metrics`.
pub fn on_origin() -> bool {
    ON_ORIGIN.load(std::sync::atomic::Ordering::Relaxed)
}

/// Serves `/metrics` on `listener` alone (`[node] metrics_listen`), on a thread of its
/// own, one short request at a time: a request head of at most 8 KiB within 5 s, then the
/// rendering; anything else is 404. The origin stops answering `/metrics`.
pub fn serve_separately(
    listener: std::net::TcpListener,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    ON_ORIGIN.store(false, std::sync::atomic::Ordering::Relaxed);
    std::thread::Builder::new()
        .name("weir-metrics".to_owned())
        .spawn(move || {
            for conn in listener.incoming() {
                match conn {
                    Ok(s) => {
                        if let Err(e) = answer(s) {
                            tracing::debug!(error = %e, "metrics request failed");
                        }
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "metrics accept failed");
                        std::thread::sleep(std::time::Duration::from_millis(50));
                    }
                }
            }
        })
}

fn answer(mut s: std::net::TcpStream) -> std::io::Result<()> {
    use std::io::{Read as _, Write as _};
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() || head.len() > 8192 {
            return Ok(());
        }
        s.set_read_timeout(Some(left))?;
        let n = s.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
    let (status, body) = if line.starts_with(b"GET /metrics ") || line.starts_with(b"GET /metrics?")
    {
        ("200 OK", render())
    } else {
        ("404 Not Found", "only /metrics here\n".to_owned())
    };
    s.set_write_timeout(Some(std::time::Duration::from_secs(5)))?;
    write!(
        s,
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}
