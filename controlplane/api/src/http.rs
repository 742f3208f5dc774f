//! The HTTP layer: `POST /graphql` (JSON), `GET /graphql` (graphql-ws upgrade, or GraphiQL
//! for browsers), with the body limit, rate limits and authentication in front of the schema;
//! CORS for any origin (bearer tokens only, see [`router`]).
//!
//! graphql-ws connections get the same limits per operation (see [`crate::ws`]) and are
//! closed once their token or account is no longer valid.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use async_graphql::Data;
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::Router;
use axum::extract::ws::{CloseFrame, Message};
use axum::extract::{ConnectInfo, FromRequestParts, Request, State, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use futures_util::{SinkExt, StreamExt};
use weir_auth::Principal;

use crate::error::{ApiError, code};
use crate::graphiql;
use crate::schema::{ApiSchema, build_schema};
use crate::state::ApiState;
use crate::ws::{WsSession, watchdog};

struct App {
    state: ApiState,
    schema: ApiSchema,
}

/// The API's routes: `/graphql` (POST queries and mutations, GET websocket subscriptions
/// with the graphql-ws protocol, GET GraphiQL page), and `/v1/node/*` for data-plane nodes
/// when a node token is configured. Serve it with connect info (as [`serve`] does with
/// `weir_serve`; or `into_make_service_with_connect_info::<SocketAddr>()`) so per-IP
/// limits see clients.
pub fn router(state: ApiState) -> Router {
    let schema = build_schema(&state);
    let nodes = crate::node_api::routes(state.clone());
    let studio = crate::studio::routes(state.clone());
    let app = Arc::new(App { state, schema });
    Router::new()
        .route(
            "/graphql",
            get(graphql_get).post(graphql_post).options(preflight),
        )
        .layer(axum::middleware::map_response(allow_any_origin))
        .with_state(app)
        .merge(nodes)
        .merge(studio)
}

/// `/graphql` answers any origin: it authenticates with bearer tokens only (no cookies),
/// so a page elsewhere cannot act for anyone whose token it does not hold. Pages served
/// by the data-plane node (the watch page, another port or host) call it this way.
async fn allow_any_origin(mut res: Response) -> Response {
    res.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        header::HeaderValue::from_static("*"),
    );
    res
}

/// The CORS preflight of a cross-origin `POST /graphql` (JSON body, bearer token).
async fn preflight() -> Response {
    (
        StatusCode::NO_CONTENT,
        [
            (header::ACCESS_CONTROL_ALLOW_METHODS, "GET, POST, OPTIONS"),
            (
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                "authorization, content-type",
            ),
            (header::ACCESS_CONTROL_MAX_AGE, "86400"),
        ],
    )
        .into_response()
}

/// Serves [`router`] on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, state: ApiState) -> std::io::Result<()> {
    serve_with_shutdown(listener, state, std::future::pending()).await
}

/// Serves [`router`] on `listener` until `shutdown` completes (then drains connections).
pub async fn serve_with_shutdown(
    listener: tokio::net::TcpListener,
    state: ApiState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with_routes(listener, state, Router::new(), shutdown).await
}

/// [`serve_with_shutdown`] with `extra` routes merged beside the API's (other services
/// of the control plane on the same port, e.g. the chat gateway). The routes must not
/// overlap; they see the client address as `ConnectInfo<SocketAddr>`.
pub async fn serve_with_routes(
    listener: tokio::net::TcpListener,
    state: ApiState,
    extra: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "GraphQL API listening on /graphql");
    }
    let janitor = state.config().purge_interval.map(|every| {
        let store = state.store().clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                match store.purge_expired().await {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(purged = n, "expired records deleted"),
                    Err(e) => tracing::warn!(error = %e, "purging expired records failed"),
                }
            }
        })
    });
    let limits = state.config().listen.clone();
    let served = weir_serve::serve(listener, router(state).merge(extra), limits, shutdown).await;
    if let Some(j) = janitor {
        j.abort();
    }
    served
}

/// A JSON error response in GraphQL's shape.
fn error_response(status: StatusCode, e: ApiError) -> Response {
    let body = serde_json::json!({
        "errors": [{ "message": e.message, "extensions": { "code": e.code } }]
    });
    (status, axum::Json(body)).into_response()
}

/// The rate-limit key of a client address: the address for IPv4, its /64 for IPv6 (one
/// host usually holds a whole /64, so per-address keys would be free to multiply).
fn ip_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

fn client_ip(req: &Request) -> String {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| ip_key(c.0.ip()))
        .unwrap_or_else(|| "local".into())
}

/// Verifies a bearer token and loads the account (so disabled users and role changes
/// take effect at once, not at token expiry); refuses tokens whose session was revoked
/// (logout, refresh-token reuse). Returns the caller and the token's expiry (Unix s).
pub(crate) async fn authenticate_with_expiry(
    state: &ApiState,
    token: &str,
) -> Result<(Principal, u64), ApiError> {
    let claims = state.auth().verify_access_claims(token.trim())?;
    let user = state
        .store()
        .get_user(&claims.sub)
        .await?
        .filter(|u| !u.disabled)
        .ok_or_else(|| ApiError::new(code::UNAUTHENTICATED, "account is not active"))?;
    if let Some(sid) = &claims.sid
        && state.auth().is_session_revoked(sid).await?
    {
        return Err(weir_auth::AuthError::SessionRevoked.into());
    }
    let who = Principal {
        user_id: user.id,
        username: user.username,
        role: user.role,
    };
    Ok((who, claims.exp))
}

/// [`authenticate_with_expiry`] without the expiry.
pub(crate) async fn authenticate(state: &ApiState, token: &str) -> Result<Principal, ApiError> {
    authenticate_with_expiry(state, token).await.map(|(w, _)| w)
}

fn bearer(headers: &HeaderMap) -> Option<Result<&str, ApiError>> {
    let v = headers.get(header::AUTHORIZATION)?;
    Some(
        v.to_str()
            .ok()
            .and_then(|s| {
                s.strip_prefix("Bearer ")
                    .or_else(|| s.strip_prefix("bearer "))
            })
            .ok_or_else(|| {
                ApiError::new(
                    code::UNAUTHENTICATED,
                    "Authorization must be 'Bearer <token>'",
                )
            }),
    )
}

/// Who a bearer token names: an account, or a studio participant.
#[derive(Debug, Clone)]
pub(crate) enum Caller {
    /// An account's access token.
    User(Principal),
    /// A studio participant token.
    Participant(crate::studio::StudioGuest),
}

impl Caller {
    /// The rate-limit key.
    fn limit_key(&self) -> &str {
        match self {
            Caller::User(p) => &p.user_id,
            Caller::Participant(g) => &g.participant_id,
        }
    }

    /// Puts the caller into a request's or connection's data.
    pub(crate) fn insert_into(self, data: &mut Data) {
        match self {
            Caller::User(p) => data.insert(p),
            Caller::Participant(g) => data.insert(g),
        }
    }
}

/// Authenticates an access token or a studio participant token.
pub(crate) async fn authenticate_any(state: &ApiState, token: &str) -> Result<Caller, ApiError> {
    if crate::studio::token::looks_like(crate::studio::token::Kind::Participant, token.trim()) {
        crate::studio::authenticate_participant(state, token)
            .await
            .map(Caller::Participant)
    } else {
        authenticate(state, token).await.map(Caller::User)
    }
}

/// Authenticates from headers and applies the per-user limit.
async fn caller(app: &App, headers: &HeaderMap) -> Result<Option<Caller>, Response> {
    let Some(token) = bearer(headers) else {
        return Ok(None);
    };
    let who = match token {
        Ok(t) => authenticate_any(&app.state, t).await,
        Err(e) => Err(e),
    }
    .map_err(|e| error_response(StatusCode::UNAUTHORIZED, e))?;
    if !app.state.inner.user_limiter.check(who.limit_key()) {
        return Err(rate_limited());
    }
    Ok(Some(who))
}

fn rate_limited() -> Response {
    let mut r = error_response(
        StatusCode::TOO_MANY_REQUESTS,
        ApiError::new(code::RATE_LIMITED, "too many requests, slow down"),
    );
    r.headers_mut()
        .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
    r
}

async fn graphql_post(State(app): State<Arc<App>>, req: Request) -> Response {
    let ip = client_ip(&req);
    if !app.state.inner.ip_limiter.check(&ip) {
        return rate_limited();
    }
    let who = match caller(&app, req.headers()).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let limit = app.state.config().max_body_bytes;
    let too_large = || {
        error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::new(
                code::PAYLOAD_TOO_LARGE,
                format!("request body is larger than {limit} bytes"),
            ),
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return too_large();
    }
    let Ok(bytes) = axum::body::to_bytes(req.into_body(), limit).await else {
        return too_large();
    };
    let request: async_graphql::Request = match serde_json::from_slice(&bytes) {
        Ok(r) => r,
        Err(e) => {
            let msg = if bytes.first() == Some(&b'[') {
                "batched requests are not supported".to_string()
            } else {
                format!("body must be a JSON GraphQL request: {e}")
            };
            return error_response(
                StatusCode::BAD_REQUEST,
                ApiError::new(code::BAD_REQUEST, msg),
            );
        }
    };
    let query = request.query.clone();
    let mut request = request.data(ClientIp(ip));
    if let Some(w) = who {
        w.insert_into(&mut request.data);
    }
    let mut resp = app.schema.execute(request).await;
    add_missing_codes(&mut resp, &query);
    axum::Json(resp).into_response()
}

/// The client's IP, available to resolvers.
#[derive(Debug, Clone)]
pub struct ClientIp(pub String);

/// Gives every error without a code one: parse failures, validation failures (unknown
/// fields, depth and complexity limits), anything else internal.
fn add_missing_codes(resp: &mut async_graphql::Response, query: &str) {
    if resp.errors.iter().all(|e| {
        e.extensions
            .as_ref()
            .is_some_and(|x| x.get("code").is_some())
    }) {
        return;
    }
    let fallback = if async_graphql::parser::parse_query(query).is_err() {
        code::GRAPHQL_PARSE_FAILED
    } else if resp.data == async_graphql::Value::Null {
        code::GRAPHQL_VALIDATION_FAILED
    } else {
        code::INTERNAL
    };
    for e in &mut resp.errors {
        let ext = e.extensions.get_or_insert_with(Default::default);
        if ext.get("code").is_none() {
            ext.set("code", fallback);
        }
    }
}

async fn graphql_get(State(app): State<Arc<App>>, req: Request) -> Response {
    let is_ws = req
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if !is_ws {
        return Html(graphiql::PAGE).into_response();
    }
    let ip = client_ip(&req);
    if !app.state.inner.ip_limiter.check(&ip) {
        return rate_limited();
    }
    let header_caller = match caller(&app, req.headers()).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let (mut parts, _body) = req.into_parts();
    let protocol = match GraphQLProtocol::from_request_parts(&mut parts, &()).await {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(u) => u,
        Err(e) => return e.into_response(),
    };
    let schema = app.schema.clone();
    let state = app.state.clone();
    let header_token = req_headers_token(&parts.headers);
    upgrade
        .protocols(async_graphql::http::ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| async move {
            let session = Arc::new(WsSession::new(ip.clone(), header_token));
            let mut data = Data::default();
            data.insert(ClientIp(ip));
            data.insert(session.clone());
            if let Some(w) = header_caller {
                w.insert_into(&mut data);
            }
            let watch = tokio::spawn(watchdog(state.clone(), session.clone()));
            let (mut sink, stream) = socket.split();
            // The connection ends when the client leaves, or when the session is closed
            // (the watchdog or an operation found the token or account no longer valid):
            // its input then ends, and the server sends the close frame below.
            let closing = session.clone();
            let stream = stream.take_until(async move { closing.closed().await });
            let init_session = session.clone();
            GraphQLWebSocket::new_with_pair(&mut sink, stream, schema, protocol)
                .with_data(data)
                .on_connection_init(move |payload| connection_init(state, init_session, payload))
                .serve()
                .await;
            watch.abort();
            if let Some((code, reason)) = session.close_reason() {
                tracing::info!(code, %reason, "graphql-ws session closed by the server");
                let frame = CloseFrame {
                    code,
                    reason: reason.into(),
                };
                let _ = sink.send(Message::Close(Some(frame))).await;
                let _ = sink.close().await;
            }
        })
}

/// The raw bearer token of the upgrade request, if well formed.
fn req_headers_token(headers: &HeaderMap) -> Option<String> {
    match bearer(headers) {
        Some(Ok(t)) => Some(t.trim().to_string()),
        _ => None,
    }
}

/// Reads `Authorization` (or `authorization`, or `token`) from the graphql-ws
/// `connection_init` payload. No token: an anonymous connection (subscriptions then fail
/// with `UNAUTHENTICATED`). A bad token: the connection is refused. A good one is kept by
/// the session, which re-checks it.
async fn connection_init(
    state: ApiState,
    session: Arc<WsSession>,
    payload: serde_json::Value,
) -> async_graphql::Result<Data> {
    let mut data = Data::default();
    let token = ["Authorization", "authorization"]
        .iter()
        .find_map(|k| payload.get(*k).and_then(|v| v.as_str()))
        .map(|s| s.strip_prefix("Bearer ").unwrap_or(s).to_string())
        .or_else(|| {
            payload
                .get("token")
                .and_then(|v| v.as_str())
                .map(str::to_string)
        });
    if let Some(t) = token {
        let who = authenticate_any(&state, &t).await?;
        session.set_token(t.trim().to_string());
        who.insert_into(&mut data);
    }
    Ok(data)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match self.code {
            code::UNAUTHENTICATED => StatusCode::UNAUTHORIZED,
            code::RATE_LIMITED => StatusCode::TOO_MANY_REQUESTS,
            code::PAYLOAD_TOO_LARGE => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::BAD_REQUEST,
        };
        error_response(status, self)
    }
}
