//! The node's side of the studio director, the clip maker and the relay director in a
//! split deployment: a small HTTP listener (`studio_listen`, authenticated with the node
//! token) that takes the control plane's calls (see [`super::studio_wire`],
//! [`super::clips`] and [`super::relays`]) and hands them to the node's own
//! [`super::studio::Director`], [`super::clips::LocalClips`] and [`weir_node::Relays`],
//! exactly as `weir serve` does in-process.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::de::DeserializeOwned;
use serde_json::json;
use weir_api::{ClipMaker, ProgramScene, StudioDirector};

use super::clips::{ClipDelete, ClipMake, RecordingDelete};
use super::relays::RelaySet;
use super::studio_wire::{End, GoLive, MAX_BODY, WireScene};

struct Served {
    director: Arc<dyn StudioDirector>,
    clips: Arc<dyn ClipMaker>,
    relays: weir_node::Relays,
    token: String,
}

/// Serves the studio calls on `listener` until `stopped` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    director: Arc<dyn StudioDirector>,
    clips: Arc<dyn ClipMaker>,
    relays: weir_node::Relays,
    token: String,
    limits: weir_serve::Limits,
    stopped: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/v1/studio/compose", post(compose))
        .route("/v1/studio/go-live", post(go_live))
        .route("/v1/studio/end", post(end))
        .route("/v1/clips/make", post(clip_make))
        .route("/v1/clips/delete", post(clip_delete))
        .route("/v1/recordings/delete", post(recording_delete))
        .route("/v1/relays/set", post(relays_set))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(Arc::new(Served {
            director,
            clips,
            relays,
            token,
        }));
    weir_serve::serve(listener, app, limits, stopped).await
}

/// Binds the listener (before the node starts, so the heartbeat can name it).
pub async fn bind(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    use anyhow::Context as _;
    tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen for studio calls on {addr}"))
}

fn refuse(status: StatusCode, why: impl Into<String>) -> Response {
    (status, Json(json!({ "error": why.into() }))).into_response()
}

/// The bearer token, compared in constant time.
fn authorised(headers: &HeaderMap, token: &str) -> bool {
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    given.len() == token.len()
        && given
            .bytes()
            .zip(token.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// Checks the token and parses the body.
fn request<T: DeserializeOwned>(
    s: &Served,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<T, Box<Response>> {
    if !authorised(headers, &s.token) {
        return Err(Box::new(refuse(
            StatusCode::UNAUTHORIZED,
            "a node token is required",
        )));
    }
    serde_json::from_slice(body).map_err(|e| {
        Box::new(refuse(
            StatusCode::BAD_REQUEST,
            format!("bad studio call: {e}"),
        ))
    })
}

fn answer(r: Result<(), String>) -> Response {
    match r {
        Ok(()) => Json(json!({ "ok": true })).into_response(),
        Err(why) => refuse(StatusCode::UNPROCESSABLE_ENTITY, why),
    }
}

async fn compose(State(s): State<Arc<Served>>, headers: HeaderMap, body: Bytes) -> Response {
    let wire: WireScene = match request(&s, &headers, &body) {
        Ok(w) => w,
        Err(r) => return *r,
    };
    match ProgramScene::try_from(wire) {
        Ok(scene) => answer(s.director.compose(scene).await),
        Err(why) => refuse(StatusCode::BAD_REQUEST, why),
    }
}

async fn go_live(State(s): State<Arc<Served>>, headers: HeaderMap, body: Bytes) -> Response {
    match request::<GoLive>(&s, &headers, &body) {
        Ok(g) => answer(s.director.go_live(&g.broadcast_id, &g.stream_key).await),
        Err(r) => *r,
    }
}

async fn end(State(s): State<Arc<Served>>, headers: HeaderMap, body: Bytes) -> Response {
    match request::<End>(&s, &headers, &body) {
        Ok(e) => answer(s.director.end(&e.broadcast_id).await),
        Err(r) => *r,
    }
}

async fn clip_make(State(s): State<Arc<Served>>, headers: HeaderMap, body: Bytes) -> Response {
    let c: ClipMake = match request(&s, &headers, &body) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    match s
        .clips
        .make(&c.recording_id, &c.clip_id, c.start_ms, c.end_ms)
        .await
    {
        Ok(made) => Json(json!({ "ok": true, "duration_ms": made.duration_ms })).into_response(),
        Err(why) => refuse(StatusCode::UNPROCESSABLE_ENTITY, why),
    }
}

async fn clip_delete(State(s): State<Arc<Served>>, headers: HeaderMap, body: Bytes) -> Response {
    match request::<ClipDelete>(&s, &headers, &body) {
        Ok(c) => answer(s.clips.delete("", &c.clip_id).await),
        Err(r) => *r,
    }
}

async fn recording_delete(
    State(s): State<Arc<Served>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match request::<RecordingDelete>(&s, &headers, &body) {
        Ok(r) => answer(s.clips.delete_recording(&r.recording_id).await),
        Err(r) => *r,
    }
}

async fn relays_set(State(s): State<Arc<Served>>, headers: HeaderMap, body: Bytes) -> Response {
    match request::<RelaySet>(&s, &headers, &body) {
        Ok(set) => {
            let channel = set.channel_id.clone();
            let applied = s.relays.set(&channel, set.targets());
            Json(json!({ "ok": true, "applied": applied })).into_response()
        }
        Err(r) => *r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_node_token_is_accepted() {
        let mut h = HeaderMap::new();
        assert!(!authorised(&h, "secret"));
        h.insert(
            header::AUTHORIZATION,
            "Bearer secreT".parse().expect("header"),
        );
        assert!(!authorised(&h, "secret"));
        h.insert(
            header::AUTHORIZATION,
            "Bearer secret2".parse().expect("header"),
        );
        assert!(!authorised(&h, "secret"));
        h.insert(
            header::AUTHORIZATION,
            "Bearer secret".parse().expect("header"),
        );
        assert!(authorised(&h, "secret"));
    }
}
