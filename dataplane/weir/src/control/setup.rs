//! Building the control plane in this process: storage, secrets, accounts, the API.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use base64::Engine as _;
use weir_api::ratelimit::Rate;
use weir_api::{ApiConfig, ApiState, StreamKeyIssuer};

use crate::config::ControlConfig;
use weir_auth::{Auth, AuthConfig, Role};
use weir_store::{EmbeddedKv, EtcdKv, Kv, SecretBox, Store};
use weir_streamkey::{KeySigner, Revocations};

/// Where the control plane keeps its state.
pub enum StoreKind<'a> {
    /// redb files in this directory (single node, `weir serve`).
    Embedded(&'a Path),
    /// etcd (`weir controlplane`).
    Etcd(&'a [String]),
}

/// Issues keys with the node's signer; revocations also go to the local list.
struct Issuer {
    signer: KeySigner,
    revocations: Arc<Revocations>,
}

impl StreamKeyIssuer for Issuer {
    fn issue(&self, channel: &str) -> (String, String) {
        match self.signer.issue(channel) {
            Ok((key, meta)) => (meta.key_id, key),
            Err(e) => {
                // An unusable secret never verifies: the caller sees a key that is refused.
                tracing::error!(error = %e, %channel, "cannot issue a stream key");
                ("invalid".to_owned(), String::new())
            }
        }
    }

    fn revoke(&self, key_id: &str) {
        if let Err(e) = self.revocations.revoke(key_id) {
            tracing::error!(error = %e, "cannot write the local revocation list");
        }
    }

    fn sign_playback(&self, channel: &str, expires_at: u64) -> String {
        self.signer.sign_playback(channel, expires_at)
    }
}

/// Reads a secret from `env`, else from `file` (created with `make` on first use).
fn secret(env: &str, file: &Path, make: impl FnOnce() -> String) -> anyhow::Result<String> {
    if let Ok(v) = std::env::var(env) {
        return Ok(v);
    }
    if let Ok(v) = std::fs::read_to_string(file) {
        return Ok(v.trim().to_owned());
    }
    let v = make();
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(file)
            .with_context(|| format!("creating {}", file.display()))?;
        writeln!(f, "{v}")?;
    }
    Ok(v)
}

fn random_b64() -> String {
    let mut b = [0u8; 32];
    let _ = weir_streamkey::random_bytes(&mut b);
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// Builds the API state: storage, secrets, accounts, and the bootstrap admin
/// (`WEIR_BOOTSTRAP_ADMIN=username:email:password`).
pub async fn build_state(
    kind: StoreKind<'_>,
    data_dir: &Path,
    signer: KeySigner,
    revocations: Arc<Revocations>,
    node_token: Option<String>,
    control: &ControlConfig,
) -> anyhow::Result<ApiState> {
    let kv: Arc<dyn Kv> = match kind {
        StoreKind::Embedded(dir) => {
            Arc::new(EmbeddedKv::open(dir).context("opening the embedded store")?)
        }
        StoreKind::Etcd(endpoints) => Arc::new(
            EtcdKv::connect(endpoints, "/weir")
                .await
                .with_context(|| format!("connecting to etcd at {}", endpoints.join(",")))?,
        ),
    };
    let key = secret("WEIR_SECRET_KEY", &data_dir.join("secret.key"), random_b64)?;
    let secrets =
        SecretBox::from_base64(&key).context("WEIR_SECRET_KEY must be 32 base64 bytes")?;
    let jwt = secret("WEIR_JWT_SECRET", &data_dir.join("jwt.secret"), random_b64)?;
    let store = Store::new(kv, secrets);
    let auth = Auth::new(store.clone(), AuthConfig::new(jwt.into_bytes()));
    if let Ok(spec) = std::env::var("WEIR_BOOTSTRAP_ADMIN") {
        let mut parts = spec.splitn(3, ':');
        if let (Some(user), Some(email), Some(password)) =
            (parts.next(), parts.next(), parts.next())
        {
            match auth.register(user, email, password, Role::Admin).await {
                Ok(_) => tracing::info!(%user, "bootstrap admin created"),
                Err(e) => {
                    tracing::info!(%user, error = %e, "bootstrap admin not created (exists?)")
                }
            }
        } else {
            anyhow::bail!("WEIR_BOOTSTRAP_ADMIN must be username:email:password");
        }
    }
    let issuer = Arc::new(Issuer {
        signer,
        revocations,
    });
    let rate = |per_second: f64| Rate {
        burst: (per_second * 4.0).clamp(1.0, f64::from(u32::MAX)) as u32,
        per_second,
    };
    let config = ApiConfig {
        node_token,
        per_ip: rate(control.rate_per_ip),
        per_user: rate(control.rate_per_user),
        listen: control.listen_limits("api"),
        ..ApiConfig::default()
    };
    Ok(ApiState::new(store, auth, issuer, config))
}

/// The chat gateway over the API's store and accounts: rooms shared with other
/// gateways through `redis` when given, else in this process. Call inside the runtime.
pub fn chat_gateway(
    state: &ApiState,
    control: &crate::config::ControlConfig,
) -> anyhow::Result<weir_chat::Gateway> {
    let (store, auth) = (state.store().clone(), state.auth().clone());
    let redis = control.chat_redis.as_deref();
    let d = weir_chat::GatewayConfig::default();
    // The default bursts scaled with the rate (1/s burst 5, 5/s burst 20, 2/s burst 30).
    let scaled = |r: weir_chat::bucket::Rate, per_second: f64| weir_chat::bucket::Rate {
        burst: (f64::from(r.burst) / r.per_second * per_second).clamp(1.0, f64::from(u32::MAX))
            as u32,
        per_second,
    };
    let cfg = weir_chat::GatewayConfig {
        per_user: scaled(d.per_user, control.chat_rate_per_user),
        per_ip: scaled(d.per_ip, control.chat_rate_per_ip),
        per_ip_connects: scaled(d.per_ip_connects, control.chat_connect_rate_per_ip),
        ..d
    };
    Ok(match redis {
        Some(addr) => {
            let target = weir_chat::RedisTarget::parse(addr)?;
            tracing::info!(redis = %target, "chat rooms shared through Redis");
            weir_chat::Gateway::with_fanout(store, auth, cfg, move |hub| {
                weir_chat::RedisFanout::start(target, "weir:chat", hub)
            })
        }
        None => weir_chat::Gateway::new(store, auth, cfg),
    })
}

/// Binds the API listener and serves it (with the chat gateway's routes beside it, when
/// given) until `stop` is notified.
pub async fn serve_api(
    addr: SocketAddr,
    public_host: &str,
    state: ApiState,
    chat: Option<weir_chat::Gateway>,
    stop: Arc<tokio::sync::Notify>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    tracing::info!(
        "GraphQL API listening on {local} (http://{public_host}:{}/graphql, GraphiQL in a browser)",
        local.port()
    );
    let extra = chat.map(|gw| {
        tracing::info!(
            "Chat gateway listening on ws://{public_host}:{}/v1/chat/<channel> (history: GET /v1/chat/<channel>/history, moderation: POST /v1/moderation/<channel>/actions)",
            local.port()
        );
        weir_chat::routes(gw)
    });
    Ok(tokio::spawn(async move {
        let stopped = async move { stop.notified().await };
        let served = match extra {
            Some(routes) => weir_api::serve_with_routes(listener, state, routes, stopped).await,
            None => weir_api::serve_with_shutdown(listener, state, stopped).await,
        };
        if let Err(e) = served {
            tracing::error!(error = %e, "GraphQL API stopped");
        }
    }))
}
