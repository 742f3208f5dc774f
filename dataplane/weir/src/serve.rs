//! The long-running commands: `weir serve`, `weir dataplane`, `weir controlplane`.
//! Each starts, reports what listens where, and stops cleanly on SIGINT/SIGTERM.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use futures_util::future::select;
use weir_node::{NoEvents, Node, Shutdown, StartedNode, StreamEvents};
use weir_streamkey::{KeyVerifier, Revocations};

use crate::config::Config;
use crate::control::setup::{StoreKind, build_state, chat_gateway, serve_api};
use crate::control::{self, Backend, Bridge, NodeIdentity};
use crate::keys::{KeyAuth, load_signer, load_verifier};

fn tokio_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("weir-control")
        .enable_all()
        .build()
        .context("control-plane runtime")
}

fn identity(config: &Config, started_http: std::net::SocketAddr, shards: usize) -> NodeIdentity {
    let id = config
        .control
        .node_id
        .clone()
        .unwrap_or_else(|| format!("node-{}", started_http.port()));
    NodeIdentity {
        id,
        address: format!("{}:{}", config.node.public_host, started_http.port()),
        shards: shards as u32,
        studio_url: None,
    }
}

/// Starts the data-plane node with an optional control-plane bridge.
fn start_node(
    config: &Config,
    verifier: KeyVerifier,
    bridge: Option<Bridge>,
    shutdown: &Shutdown,
) -> anyhow::Result<(StartedNode, Arc<KeyAuth>)> {
    let node = &config.node;
    weir_node::install_metrics();
    let revocations = Arc::new(Revocations::new(node.revocations_path()));
    let events: Arc<dyn StreamEvents> = match &bridge {
        Some(b) => Arc::new(b.clone()),
        None => Arc::new(NoEvents),
    };
    let auth = Arc::new(KeyAuth::new(
        verifier,
        revocations,
        bridge,
        config.control.unreachable_keys,
    ));
    let started =
        Node::start(node, auth.clone(), events, shutdown.clone()).context("starting the node")?;
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
    let metrics = started.metrics_addr.map_or_else(
        || "/metrics".to_owned(),
        |a| format!("http://{a}/metrics only"),
    );
    tracing::info!(
        "HTTP origin listening on {} (LL-HLS: http://{host}:{}/live/<channel>/index.m3u8, metrics: {metrics})",
        started.http_addr,
        started.http_addr.port()
    );
    tracing::info!(
        "SRT ingest listening on UDP {} (latency {} ms): srt://{host}:{}?streamid=<stream key>",
        started.srt_addr,
        node.srt_latency_ms,
        started.srt_addr.port()
    );
    if started.ladder.is_empty() {
        tracing::info!(
            "transcode ladder off (--ladder or [node.ladder] enabled = true turns it on)"
        );
    } else {
        tracing::info!(
            "transcode ladder on: {} (never above the source{}{}); encoder chosen per broadcast: NVENC when present, else x264",
            started.ladder.join(", "),
            if node.ladder.passthrough_top {
                "; the source itself on top"
            } else {
                ""
            },
            if node.ladder.per_title {
                "; per-title bitrates from the content's complexity"
            } else {
                ""
            }
        );
    }
    if node.record {
        tracing::info!(
            "recording every broadcast to {} (VOD: http://{host}:{}/vod/<recording id>/index.m3u8; retention: {} days, {} bytes, 0 = no limit)",
            node.data_dir.join("recordings").display(),
            started.http_addr.port(),
            node.record_retention_days,
            node.record_max_bytes
        );
    } else {
        tracing::info!(
            "recording off unless a channel turns it on (--record or [node] record = true records every broadcast)"
        );
    }
    let ports: Vec<String> = started
        .webrtc_addrs
        .iter()
        .map(|a| a.port().to_string())
        .collect();
    let ips: Vec<String> = started
        .webrtc_public_ips
        .iter()
        .map(|ip| ip.to_string())
        .collect();
    tracing::info!(
        "Watch page: http://{host}:{}/watch/<channel> (player, chat; API and chat at {})",
        started.http_addr.port(),
        if node.watch_api.is_empty() {
            ":8090"
        } else {
            &node.watch_api
        }
    );
    tracing::info!(
        "WebRTC on UDP {} (one port per shard, ICE-lite; announced as {}): WHIP http://{host}:{}/whip/<stream key>, WHEP /whep/<channel>, pages /web/whip.html and /web/whep.html",
        ports.join(","),
        ips.join(","),
        started.http_addr.port()
    );
    Ok((started, auth))
}

/// `weir serve`: node + GraphQL API + embedded storage in one process.
pub fn all_in_one(mut config: Config) -> anyhow::Result<()> {
    // The watch page talks to this process's API unless told otherwise.
    let api_port = config.control.api_listen.port();
    if config.node.watch_api.is_empty() && api_port != 0 {
        config.node.watch_api = format!(":{api_port}");
    }
    let rt = tokio_runtime()?;
    let data_dir = config.node.data_dir.clone();
    let signer = load_signer(&config.node)?;
    let verifier = signer.verifier().clone();
    let revocations = Arc::new(Revocations::new(config.node.revocations_path()));
    let state = rt.block_on(build_state(
        StoreKind::Embedded(&data_dir.join("control")),
        &data_dir,
        signer,
        revocations,
        None,
        &config.control,
    ))?;
    state.set_destination_prober(Arc::new(control::probe::Prober {
        allow_internal: config.node.relay_allow_internal,
        ca_file: config.node.relay_ca_file.clone(),
    }));
    // The bridge needs the node's address, the node needs the bridge: start the bridge
    // with the configured address (the port is fixed unless 0).
    let shards = config.node.shard_count();
    let ident = identity(&config, config.node.http_listen, shards);
    let bridge = rt.block_on(async { control::start(Backend::Local(state.clone()), ident) });
    let shutdown = Shutdown::new();
    let (started, auth) = start_node(&config, verifier, Some(bridge), &shutdown)?;
    state.set_studio_director(Arc::new(control::studio::Director {
        hub: started.studio.clone(),
        auth,
    }));
    state.set_clip_maker(Arc::new(control::clips::LocalClips(started.clips.clone())));
    state.set_relay_director(Arc::new(control::relays::LocalRelays(
        started.relays.clone(),
    )));
    let stop_api = Arc::new(tokio::sync::Notify::new());
    let chat = rt.block_on(async { chat_gateway(&state, &config.control) })?;
    state.set_chat(chat.clone());
    let api = rt.block_on(serve_api(
        config.control.api_listen,
        &config.node.public_host,
        state,
        Some(chat.clone()),
        stop_api.clone(),
    ))?;
    tracing::info!("get a stream key with: weir key issue <channel>, or over GraphQL");
    wait_for_signal()?;
    tracing::info!("shutting down: ending playlists, closing connections");
    shutdown.trigger();
    started.join();
    stop_control(rt, true, Some((stop_api, api)), Some(chat));
    Ok(())
}

/// `weir dataplane`: the node, reporting to a control plane when one is configured
/// (and then taking its studio calls on `studio_listen`).
pub fn dataplane(config: Config) -> anyhow::Result<()> {
    let shutdown = Shutdown::new();
    let rt = tokio_runtime()?;
    let mut studio = None;
    let bridge = match &config.control.control_plane {
        Some(url) => {
            let token = std::env::var("WEIR_NODE_TOKEN")
                .context("WEIR_NODE_TOKEN must be set to talk to the control plane")?;
            let remote = control::Remote::new(url, token.clone())?;
            let listener =
                rt.block_on(control::studio_server::bind(config.control.studio_listen))?;
            let port = listener.local_addr()?.port();
            let mut ident = identity(&config, config.node.http_listen, config.node.shard_count());
            ident.studio_url = Some(format!("http://{}:{port}", config.node.public_host));
            tracing::info!(control_plane = %url, node = %ident.id, "reporting to the control plane");
            tracing::info!(
                "studio calls from the control plane on {}:{port} (node token; clips and relay changes too)",
                config.control.studio_listen.ip()
            );
            studio = Some((listener, token));
            Some(rt.block_on(async { control::start(Backend::Remote(remote), ident) }))
        }
        None => None,
    };
    // Reporting to a control plane: the public key only. Standalone: this node's own keys.
    let verifier = if bridge.is_some() {
        load_verifier()?
    } else {
        load_signer(&config.node)?.verifier().clone()
    };
    let (started, auth) = start_node(&config, verifier, bridge, &shutdown)?;
    let stop_studio = Arc::new(tokio::sync::Notify::new());
    let studio = studio.map(|(listener, token)| {
        let director = Arc::new(control::studio::Director {
            hub: started.studio.clone(),
            auth,
        });
        let clips = Arc::new(control::clips::LocalClips(started.clips.clone()));
        let relays = started.relays.clone();
        let limits = config.control.listen_limits("node-control");
        let stop = stop_studio.clone();
        rt.spawn(async move {
            let stopped = async move { stop.notified().await };
            let served = control::studio_server::serve(
                listener, director, clips, relays, token, limits, stopped,
            );
            if let Err(e) = served.await {
                tracing::error!(error = %e, "studio listener stopped");
            }
        })
    });
    if config.control.control_plane.is_none() {
        tracing::info!("get a stream key with: weir key issue <channel>");
    }
    wait_for_signal()?;
    tracing::info!("shutting down: ending playlists, closing connections");
    stop_studio.notify_one();
    shutdown.trigger();
    started.join();
    if let Some(task) = studio {
        let _ = rt.block_on(async { tokio::time::timeout(Duration::from_secs(5), task).await });
    }
    stop_control(rt, true, None, None);
    Ok(())
}

/// `weir controlplane`: the GraphQL API and node API on etcd.
pub fn controlplane(config: Config) -> anyhow::Result<()> {
    let token = std::env::var("WEIR_NODE_TOKEN")
        .context("WEIR_NODE_TOKEN must be set: data-plane nodes authenticate with it")?;
    let token_for_studio = token.clone();
    let rt = tokio_runtime()?;
    let data_dir = config.node.data_dir.clone();
    let signer = load_signer(&config.node)?;
    let revocations = Arc::new(Revocations::new(config.node.revocations_path()));
    let endpoints = config.control.etcd_endpoints.clone();
    let state = rt.block_on(build_state(
        StoreKind::Etcd(&endpoints),
        &data_dir,
        signer,
        revocations,
        Some(token),
        &config.control,
    ))?;
    state.set_destination_prober(Arc::new(control::probe::Prober {
        allow_internal: config.node.relay_allow_internal,
        ca_file: config.node.relay_ca_file.clone(),
    }));
    state.set_clip_maker(Arc::new(control::clips::RemoteClips::new(
        state.clone(),
        token_for_studio.clone(),
    )));
    state.set_relay_director(Arc::new(control::relays::RemoteRelays::new(
        state.clone(),
        token_for_studio.clone(),
    )));
    state.set_studio_director(Arc::new(control::studio_remote::RemoteDirector::new(
        state.clone(),
        token_for_studio,
    )));
    tracing::info!(etcd = %endpoints.join(","), "control plane state in etcd");
    let stop_api = Arc::new(tokio::sync::Notify::new());
    let chat = rt.block_on(async { chat_gateway(&state, &config.control) })?;
    state.set_chat(chat.clone());
    let api = rt.block_on(serve_api(
        config.control.api_listen,
        &config.node.public_host,
        state,
        Some(chat.clone()),
        stop_api.clone(),
    ))?;
    wait_for_signal()?;
    tracing::info!("shutting down");
    stop_control(rt, false, Some((stop_api, api)), Some(chat));
    Ok(())
}

/// `weir chat`: the chat gateway alone, on etcd and Redis (scale-out beside a control
/// plane, with the same `WEIR_JWT_SECRET`).
pub fn chat(config: Config) -> anyhow::Result<()> {
    if config.control.chat_redis.is_none() {
        anyhow::bail!(
            "weir chat needs --chat-redis (WEIR_CHAT_REDIS): gateways share rooms through Redis"
        );
    }
    let rt = tokio_runtime()?;
    let data_dir = config.node.data_dir.clone();
    let signer = load_signer(&config.node)?;
    let revocations = Arc::new(Revocations::new(config.node.revocations_path()));
    let endpoints = config.control.etcd_endpoints.clone();
    let state = rt.block_on(build_state(
        StoreKind::Etcd(&endpoints),
        &data_dir,
        signer,
        revocations,
        None,
        &config.control,
    ))?;
    weir_node::install_metrics();
    let gw = rt.block_on(async { chat_gateway(&state, &config.control) })?;
    let addr = config.control.chat_listen;
    let listener = rt
        .block_on(tokio::net::TcpListener::bind(addr))
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    tracing::info!(
        etcd = %endpoints.join(","),
        "Chat gateway listening on ws://{}:{}/v1/chat/<channel> (metrics: /metrics)",
        config.node.public_host,
        local.port()
    );
    let stop = Arc::new(tokio::sync::Notify::new());
    let served = {
        let (gw, stop) = (gw.clone(), stop.clone());
        let limits = config.control.listen_limits("chat");
        rt.spawn(async move {
            let stopped = async move { stop.notified().await };
            let metrics = Some(weir_node::render_metrics as fn() -> String);
            if let Err(e) = weir_chat::http::serve(listener, gw, limits, metrics, stopped).await {
                tracing::error!(error = %e, "chat gateway stopped");
            }
        })
    };
    wait_for_signal()?;
    tracing::info!("shutting down");
    stop_control(rt, false, Some((stop, served)), Some(gw));
    Ok(())
}

/// Stops the control side: gives the bridge a moment to report the streams the node just
/// ended (`flush`), stores the chat's pending messages and closes its connections,
/// drains the API (if any), then the runtime.
fn stop_control(
    rt: tokio::runtime::Runtime,
    flush: bool,
    api: Option<(Arc<tokio::sync::Notify>, tokio::task::JoinHandle<()>)>,
    chat: Option<weir_chat::Gateway>,
) {
    if flush {
        rt.block_on(async { tokio::time::sleep(Duration::from_millis(500)).await });
    }
    if let Some(chat) = chat {
        let stored = rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(5), chat.shutdown()).await
        });
        if stored.is_err() {
            tracing::warn!("chat: pending messages not stored within 5 s");
        }
    }
    if let Some((stop, task)) = api {
        // A stored permit: the API sees it even if it is not waiting at this instant.
        stop.notify_one();
        let _ = rt.block_on(async { tokio::time::timeout(Duration::from_secs(3), task).await });
    }
    rt.shutdown_timeout(Duration::from_secs(2));
    tracing::info!("stopped");
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
