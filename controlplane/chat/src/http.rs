//! The gateway's HTTP routes (merge them into the control plane's axum router):
//!
//! - `GET /v1/chat/{channel}` — websocket upgrade (`?token=`, `Authorization: Bearer`,
//!   `?since=<id>`);
//! - `GET /v1/chat/{channel}/history?before=<id>&limit=<n>` — a page of history;
//! - `POST /v1/moderation/{channel}/actions` — a moderator action (bearer token);
//! - `GET /v1/moderation/{channel}/audit?limit=<n>` — the audit log (moderators);
//! - `GET /web/chat.html` — the chat panel page (`web/chat.html`), and `/web/chat.js`, the
//!   chat module it shares with the node's watch page.
//!
//! `{channel}` is a channel id or slug. Errors are `{"error": {"code", "message"}}`.
//! Serve the router with connect info (`into_make_service_with_connect_info::<SocketAddr>`)
//! so per-address limits see client addresses.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts, Path, Query, Request, State, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use crate::error::ChatError;
use crate::gateway::{Caller, Gateway, is_moderator};
use crate::protocol::{Action, Code};
use crate::ws::{ConnParams, serve_socket};

/// Hard cap of axum's websocket reader; the protocol's own cap
/// ([`GatewayConfig::max_frame_bytes`](crate::GatewayConfig)) is checked below it so the
/// client gets a clean close code.
const WS_HARD_CAP: usize = 64 * 1024;
/// Read buffer of a websocket. tungstenite zero-fills it on the first read, so every
/// idle connection holds it whole (its default, 128 KiB, was most of a connection's
/// memory). Client frames are small (a chat line, `auth`, a moderation action): 1 KiB
/// takes them in one read; a larger frame grows the buffer to its length (up to the
/// protocol's 4 KiB, then the hard cap refuses it).
const WS_READ_BUFFER: usize = 1024;
/// Frames queued together are written with one flush, up to this many bytes (the
/// connection's writer drains its queue up to [`crate::ws::COALESCE_BYTES`]); tungstenite
/// keeps the buffer's capacity, so it stays small.
const WS_WRITE_BUFFER: usize = crate::ws::COALESCE_BYTES;

/// Serves [`routes`] alone (`weir chat`) on `listener` under `limits` until `shutdown`
/// completes, with `GET /metrics` answered by `metrics` (Prometheus text) when given.
pub async fn serve(
    listener: tokio::net::TcpListener,
    gw: Gateway,
    limits: weir_serve::Limits,
    metrics: Option<fn() -> String>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut app = routes(gw);
    if let Some(render) = metrics {
        app = app.route(
            "/metrics",
            get(move || async move {
                (
                    [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                    render(),
                )
            }),
        );
    }
    weir_serve::serve(listener, app, limits, shutdown).await
}

/// The chat routes over `gw`.
pub fn routes(gw: Gateway) -> Router {
    Router::new()
        .route("/v1/chat/{channel}", get(chat_ws))
        .route("/v1/chat/{channel}/history", get(history))
        .route("/v1/moderation/{channel}/actions", post(action))
        .route("/v1/moderation/{channel}/audit", get(audit))
        .route("/web/chat.html", get(page))
        .route("/web/chat.js", get(script))
        .with_state(gw)
}

fn status_of(code: Code) -> StatusCode {
    match code {
        Code::Unauthenticated | Code::TokenExpired => StatusCode::UNAUTHORIZED,
        Code::Forbidden => StatusCode::FORBIDDEN,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    }
}

struct HttpError(ChatError);

impl From<ChatError> for HttpError {
    fn from(e: ChatError) -> Self {
        Self(e)
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let code = self.0.code();
        if matches!(code, Code::Unavailable | Code::Internal) {
            tracing::warn!(error = %self.0, "chat request failed");
        }
        let body = serde_json::json!({
            "error": { "code": code, "message": self.0.public_message() }
        });
        let mut r = (status_of(code), Json(body)).into_response();
        if let ChatError::RateLimited(ms) = self.0 {
            let secs = ms.div_ceil(1000).max(1);
            if let Ok(v) = header::HeaderValue::from_str(&secs.to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        r
    }
}

/// The rate-limit key of an address: itself for IPv4, its /64 for IPv6.
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

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    v.strip_prefix("Bearer ")
        .or_else(|| v.strip_prefix("bearer "))
        .map(str::trim)
}

fn token<'a>(headers: &'a HeaderMap, query_token: Option<&'a str>) -> Option<&'a str> {
    bearer(headers).or(query_token).filter(|t| !t.is_empty())
}

async fn caller(
    gw: &Gateway,
    headers: &HeaderMap,
    query_token: Option<&str>,
) -> Result<Option<Caller>, HttpError> {
    match token(headers, query_token) {
        Some(t) => Ok(Some(gw.authenticate(t).await?)),
        None => Ok(None),
    }
}

async fn must_moderate(
    gw: &Gateway,
    headers: &HeaderMap,
    channel: &str,
) -> Result<(weir_store::Channel, Caller), HttpError> {
    let who = caller(gw, headers, None).await?.ok_or_else(|| {
        ChatError::Auth(Code::Unauthenticated, "a bearer token is required".into())
    })?;
    let channel = gw.channel(channel).await?;
    if !is_moderator(&who, &channel) {
        return Err(
            ChatError::Forbidden("only the channel's moderators may do this".into()).into(),
        );
    }
    Ok((channel, who))
}

/// The chat page: its inline glue and the shared chat module (`/web/chat.js`), talking
/// to websockets.
const PAGE_CSP: &str = "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'unsafe-inline'; \
     connect-src ws: wss:; img-src data:; base-uri 'none'; form-action 'none'";

async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, PAGE_CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        include_str!("../../../web/chat.html"),
    )
        .into_response()
}

/// The chat client and message log the chat page and the node's watch page share.
async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        include_str!("../../../web/chat.js"),
    )
        .into_response()
}

/// Query of the websocket route.
#[derive(Debug, Deserialize)]
struct WsQuery {
    token: Option<String>,
    since: Option<u64>,
}

async fn chat_ws(
    State(gw): State<Gateway>,
    Path(channel): Path<String>,
    Query(q): Query<WsQuery>,
    req: Request,
) -> Result<Response, HttpError> {
    let (mut parts, _body) = req.into_parts();
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(u) => u,
        Err(e) => return Ok(e.into_response()),
    };
    let ip = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "local".to_string(), |c| ip_key(c.0.ip()));
    if let Err(ms) = gw.admit_connection(&ip) {
        return Err(ChatError::RateLimited(ms).into());
    }
    let channel = gw.channel(&channel).await?;
    let caller = caller(&gw, &parts.headers, q.token.as_deref()).await?;
    let params = ConnParams {
        channel,
        token: caller
            .as_ref()
            .and(token(&parts.headers, q.token.as_deref()))
            .map(str::to_string),
        caller,
        ip,
        since: q.since,
    };
    Ok(upgrade
        .max_message_size(WS_HARD_CAP)
        .max_frame_size(WS_HARD_CAP)
        .read_buffer_size(WS_READ_BUFFER)
        .write_buffer_size(WS_WRITE_BUFFER)
        .on_upgrade(move |socket| serve_socket(gw, socket, params)))
}

/// Query of the history route.
#[derive(Debug, Deserialize)]
struct HistoryQuery {
    before: Option<u64>,
    limit: Option<usize>,
}

async fn history(
    State(gw): State<Gateway>,
    Path(channel): Path<String>,
    Query(q): Query<HistoryQuery>,
) -> Result<Response, HttpError> {
    let channel = gw.channel(&channel).await?;
    let page = gw
        .history(&channel.id, q.before, q.limit.unwrap_or(50))
        .await?;
    Ok(Json(page).into_response())
}

async fn action(
    State(gw): State<Gateway>,
    Path(channel): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, HttpError> {
    let (channel, who) = must_moderate(&gw, &headers, &channel).await?;
    let a: Action = serde_json::from_slice(&body)
        .map_err(|e| ChatError::BadRequest(format!("body must be a moderation action: {e}")))?;
    gw.moderate(&channel, &who, a).await?;
    Ok(Json(serde_json::json!({ "ok": true })).into_response())
}

/// Query of the audit route.
#[derive(Debug, Deserialize)]
struct AuditQuery {
    limit: Option<usize>,
}

async fn audit(
    State(gw): State<Gateway>,
    Path(channel): Path<String>,
    Query(q): Query<AuditQuery>,
    headers: HeaderMap,
) -> Result<Response, HttpError> {
    let (channel, _) = must_moderate(&gw, &headers, &channel).await?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let entries = gw.chat_store().audit_log(&channel.id, limit).await?;
    Ok(Json(serde_json::json!({ "entries": entries })).into_response())
}
