//! `weir serve` / `weir dataplane`: start the node, report, stop on SIGINT/SIGTERM.

use std::sync::Arc;

use anyhow::Context as _;
use futures_util::future::select;
use weir_node::{Node, Shutdown};
use weir_streamkey::Revocations;

use crate::config::Config;
use crate::keys::{KeyAuth, load_signer};

/// Runs the node until a signal arrives.
pub fn run(config: Config) -> anyhow::Result<()> {
    let node = &config.node;
    weir_node::install_metrics();
    let signer = load_signer(node)?;
    let auth = Arc::new(KeyAuth::new(
        signer,
        Revocations::new(node.revocations_path()),
    ));
    let shutdown = Shutdown::new();
    let started = Node::start(node, auth, shutdown.clone()).context("starting the node")?;

    tracing::info!("weir {} node started", env!("CARGO_PKG_VERSION"));
    for (i, d) in started.drivers.iter().enumerate() {
        tracing::info!(shard = i, io = *d, "shard running on {d}");
    }
    let host = &node.public_host;
    tracing::info!(
        "RTMP ingest listening on {} (OBS server: rtmp://{host}:{}/{})",
        started.rtmp_addr,
        started.rtmp_addr.port(),
        node.rtmp_app
    );
    tracing::info!(
        "HTTP origin listening on {} (LL-HLS: http://{host}:{}/live/<channel>/index.m3u8, metrics: /metrics)",
        started.http_addr,
        started.http_addr.port()
    );
    tracing::info!("get a stream key with: weir key issue <channel>");

    wait_for_signal()?;
    tracing::info!("shutting down: ending playlists, closing connections");
    shutdown.trigger();
    started.join();
    tracing::info!("stopped");
    Ok(())
}

fn wait_for_signal() -> anyhow::Result<()> {
    let rt = compio::runtime::Runtime::new().context("signal runtime")?;
    rt.block_on(async {
        let int = std::pin::pin!(compio::signal::ctrl_c());
        let term = std::pin::pin!(compio::signal::unix::signal(libc::SIGTERM));
        match select(int, term).await {
            futures_util::future::Either::Left((r, _)) => r,
            futures_util::future::Either::Right((r, _)) => r,
        }
    })
    .context("waiting for a signal")
}
