//! [`ApiState`]: everything the resolvers and the HTTP layer share, and its configuration.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;
use weir_auth::Auth;
use weir_store::{Role, Store};

use crate::events::Event;
use crate::issuer::StreamKeyIssuer;
use crate::ratelimit::{Rate, RateLimiter};

/// Limits and policies of the API. `Debug` leaves the node token out.
#[derive(Clone)]
pub struct ApiConfig {
    /// Largest accepted request body in bytes.
    pub max_body_bytes: usize,
    /// Deepest accepted query.
    pub max_depth: usize,
    /// Highest accepted query complexity.
    pub max_complexity: usize,
    /// Requests per client IP.
    pub per_ip: Rate,
    /// Requests per authenticated user.
    pub per_user: Rate,
    /// `login` and `register` calls per client IP (each costs an argon2 hash), on top of
    /// `per_ip`; failed logins are also throttled per account (`weir_auth::throttle`).
    pub per_ip_login: Rate,
    /// How often a graphql-ws connection re-checks its access token and account (it is
    /// also checked at each operation, and at the token's expiry); the connection is
    /// closed (code 4401) once they are no longer valid.
    pub ws_recheck_interval: Duration,
    /// How often [`crate::serve_with_shutdown`] deletes expired records from the store
    /// (refresh tokens, revocations…); `None`: never.
    pub purge_interval: Option<Duration>,
    /// Whether `register` is open to anyone.
    pub open_registration: bool,
    /// Global role of self-registered accounts (creators by default).
    pub default_role: Role,
    /// How long a node's viewer count counts without a refresh.
    pub viewer_count_ttl: Duration,
    /// Whether GraphQL introspection is allowed (GraphiQL needs it).
    pub introspection: bool,
    /// Shared secret of data-plane nodes for the `/v1/node/*` API (split mode); `None`
    /// leaves that API unmounted.
    pub node_token: Option<String>,
    /// The listener's connection caps and request-head deadline (see `weir_serve`).
    pub listen: weir_serve::Limits,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 64 * 1024,
            max_depth: 10,
            max_complexity: 500,
            per_ip: Rate {
                burst: 120,
                per_second: 30.0,
            },
            per_user: Rate {
                burst: 60,
                per_second: 15.0,
            },
            per_ip_login: Rate {
                burst: 10,
                per_second: 0.2,
            },
            ws_recheck_interval: Duration::from_secs(30),
            purge_interval: Some(Duration::from_secs(600)),
            open_registration: true,
            default_role: Role::Owner,
            viewer_count_ttl: Duration::from_secs(30),
            introspection: true,
            node_token: None,
            listen: weir_serve::Limits::new("api"),
        }
    }
}

impl std::fmt::Debug for ApiConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiConfig")
            .field("max_body_bytes", &self.max_body_bytes)
            .field("max_depth", &self.max_depth)
            .field("max_complexity", &self.max_complexity)
            .field("per_ip", &self.per_ip)
            .field("per_user", &self.per_user)
            .field("per_ip_login", &self.per_ip_login)
            .field("ws_recheck_interval", &self.ws_recheck_interval)
            .field("purge_interval", &self.purge_interval)
            .field("open_registration", &self.open_registration)
            .field("default_role", &self.default_role)
            .field("viewer_count_ttl", &self.viewer_count_ttl)
            .field("introspection", &self.introspection)
            .field("listen", &self.listen)
            .field(
                "node_token",
                &self.node_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// Shared state of the API. Cheap to clone.
#[derive(Clone)]
pub struct ApiState {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub store: Store,
    pub auth: Auth,
    pub issuer: Arc<dyn StreamKeyIssuer>,
    pub config: ApiConfig,
    pub events: broadcast::Sender<Event>,
    pub ip_limiter: RateLimiter,
    pub user_limiter: RateLimiter,
    pub login_limiter: RateLimiter,
    pub prober: std::sync::OnceLock<Arc<dyn crate::DestinationProber>>,
    /// The studio compositor, when the binary set one.
    pub director: std::sync::OnceLock<Arc<dyn crate::StudioDirector>>,
    /// The clip maker, when the binary set one.
    pub clipper: std::sync::OnceLock<Arc<dyn crate::ClipMaker>>,
    /// The chat gateway, when the binary attached one.
    pub chat: std::sync::OnceLock<weir_chat::Gateway>,
    /// Where destination changes of live broadcasts go, when the binary set it.
    pub relays: std::sync::OnceLock<Arc<dyn crate::RelayDirector>>,
}

impl std::fmt::Debug for ApiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiState")
            .field("store", &self.inner.store)
            .field("config", &self.inner.config)
            .finish()
    }
}

impl ApiState {
    /// Builds the state. `auth` must be built over the same `store`.
    pub fn new(
        store: Store,
        auth: Auth,
        issuer: Arc<dyn StreamKeyIssuer>,
        config: ApiConfig,
    ) -> Self {
        let (events, _) = broadcast::channel(1024);
        Self {
            inner: Arc::new(Inner {
                ip_limiter: RateLimiter::new(config.per_ip),
                user_limiter: RateLimiter::new(config.per_user),
                login_limiter: RateLimiter::new(config.per_ip_login),
                chat: std::sync::OnceLock::new(),
                store,
                auth,
                issuer,
                config,
                events,
                prober: std::sync::OnceLock::new(),
                director: std::sync::OnceLock::new(),
                clipper: std::sync::OnceLock::new(),
                relays: std::sync::OnceLock::new(),
            }),
        }
    }

    /// Lets `testDestination` check destinations with `prober` (set once; later calls
    /// are ignored).
    pub fn set_destination_prober(&self, prober: Arc<dyn crate::DestinationProber>) {
        let _ = self.inner.prober.set(prober);
    }

    /// The destination prober, when the binary set one.
    pub fn destination_prober(&self) -> Option<&Arc<dyn crate::DestinationProber>> {
        self.inner.prober.get()
    }

    /// Lets the studio compose programs and go live with `director` (set once; later
    /// calls are ignored). Without one, studio sessions still work and `goLive` says
    /// this node has no studio compositor.
    pub fn set_studio_director(&self, director: Arc<dyn crate::StudioDirector>) {
        let _ = self.inner.director.set(director);
    }

    /// The studio director, when the binary set one.
    pub fn studio_director(&self) -> Option<&Arc<dyn crate::StudioDirector>> {
        self.inner.director.get()
    }

    /// Lets `createClip` cut clips with `maker` (set once; later calls are ignored).
    /// Without one, `createClip` says this deployment does not cut clips.
    pub fn set_clip_maker(&self, maker: Arc<dyn crate::ClipMaker>) {
        let _ = self.inner.clipper.set(maker);
    }

    /// The clip maker, when the binary set one.
    pub fn clip_maker(&self) -> Option<&Arc<dyn crate::ClipMaker>> {
        self.inner.clipper.get()
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The account service.
    pub fn auth(&self) -> &Auth {
        &self.inner.auth
    }

    /// The configuration.
    pub fn config(&self) -> &ApiConfig {
        &self.inner.config
    }

    /// A receiver of stream and viewer events (what subscriptions see).
    pub fn subscribe_events(&self) -> broadcast::Receiver<Event> {
        self.inner.events.subscribe()
    }
}

/// Whether a channel's playback needs a signed URL: signed URLs switched on, or access
/// restricted to subscribers.
pub fn requires_signature(e: &weir_store::Entitlement) -> bool {
    e.signed_urls || e.access != weir_store::Access::Public
}
