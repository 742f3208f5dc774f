//! The node-facing HTTP API for split deployments: data-plane nodes post stream lifecycle
//! events, viewer counts and heartbeats, and ask whether a stream key may publish. It is
//! mounted only when [`crate::ApiConfig::node_token`] is set, and every call must carry
//! `Authorization: Bearer <node_token>`.
//!
//! - `POST /v1/node/events`, one JSON event per request, tagged by `type`:
//!   `stream_started {channel_id, protocol, node_id?}` → the stream;
//!   `stream_live {stream_id, renditions?}` → the stream;
//!   `stream_transcoder {stream_id, transcoder}` → the stream (the ladder's encoder,
//!   rungs, dropped rungs and failure, see `weir_store::TranscoderStatus`);
//!   `stream_relay {stream_id, relay}` → the stream (one destination's relay state,
//!   see `weir_store::RelayStatus`);
//!   `stream_relays {stream_id, relays: [relay…]}` → the stream (several at once, in
//!   one write; destinations beyond the stream's cap are left out);
//!   `stream_ended {stream_id}` → the stream;
//!   `recording_started {stream_id, recording_id, location, playback_url?}` → the
//!   recording (listed, not finished yet);
//!   `recording_finished {recording_id, channel_id, location, playback_url?, started_at?,
//!   duration_ms, size_bytes, segments}` → the recording;
//!   `recording_deleted {recording_id}` → `{"deleted": bool}` (the node's retention);
//!   `viewer_count {channel_id, node_id, count}` → `{"total": n}`;
//!   `heartbeat {node, ttl_secs}` → the node.
//! - `POST /v1/node/authorize {key_id}` → `200 {"channel_id": …, "signed_playback": bool,
//!   "transcode": bool | null, "record": bool | null, "destinations": [{id, name, url,
//!   stream_key}]}` (null: the node's own default; destinations: the enabled ones, keys in the clear — this
//!   API is for nodes only) or `403`. A studio participant's key (see
//!   [`crate::ApiState::studio_publish`]) answers its own stream as `channel_id`, no
//!   transcode, no destinations, no signed playback, `record` as the broadcast's isolated
//!   tracks setting; `403 {"error": why}` once the participant left or the broadcast ended.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Deserialize;
use serde_json::json;
use weir_store::{Node, RelayStatus, Rendition, StoreError, TranscoderStatus};

use crate::events::{RecordingFinished, RecordingStarted};
use crate::state::ApiState;

/// An event a node reports.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum NodeEvent {
    /// A publisher connected.
    StreamStarted {
        /// Channel.
        channel_id: String,
        /// Ingest protocol.
        protocol: String,
        /// Reporting node.
        node_id: Option<String>,
    },
    /// Media is flowing.
    StreamLive {
        /// Stream.
        stream_id: String,
        /// Renditions.
        #[serde(default)]
        renditions: Vec<Rendition>,
    },
    /// The stream's transcoder changed what it does (started, overloaded, recovered,
    /// new per-title bitrates, failed).
    StreamTranscoder {
        /// Stream.
        stream_id: String,
        /// Its status.
        transcoder: TranscoderStatus,
    },
    /// A relay to one of the channel's destinations changed state.
    StreamRelay {
        /// Stream.
        stream_id: String,
        /// Its state.
        relay: RelayStatus,
    },
    /// Several relays of the stream reported at once (the latest per destination wins).
    StreamRelays {
        /// Stream.
        stream_id: String,
        /// Their states.
        relays: Vec<RelayStatus>,
    },
    /// The publisher left.
    StreamEnded {
        /// Stream.
        stream_id: String,
    },
    /// The node began recording a stream.
    RecordingStarted(RecordingStarted),
    /// The node finished a recording.
    RecordingFinished(RecordingFinished),
    /// The node's retention sweep deleted a recording.
    RecordingDeleted {
        /// Recording.
        recording_id: String,
    },
    /// Viewers of a channel on the reporting node.
    ViewerCount {
        /// Channel.
        channel_id: String,
        /// Node.
        node_id: String,
        /// Count.
        count: u64,
    },
    /// Registration or heartbeat.
    Heartbeat {
        /// The node and its load.
        node: Node,
        /// Lease length in seconds.
        ttl_secs: u64,
    },
}

#[derive(Deserialize)]
struct Authorize {
    key_id: String,
}

/// Routes under `/v1/node`, or an empty router when no node token is configured.
pub(crate) fn routes(state: ApiState) -> Router {
    if state.config().node_token.is_none() {
        return Router::new();
    }
    Router::new()
        .route("/v1/node/events", post(events))
        .route("/v1/node/authorize", post(authorize))
        .with_state(Arc::new(state))
}

fn err(status: StatusCode, msg: &str) -> Response {
    (status, Json(json!({ "error": msg }))).into_response()
}

fn store_err(e: StoreError) -> Response {
    match e {
        StoreError::NotFound(w) => err(StatusCode::NOT_FOUND, &format!("{w} not found")),
        StoreError::Conflict(m) => err(StatusCode::CONFLICT, &m),
        StoreError::Invalid(m) => err(StatusCode::BAD_REQUEST, &m),
        other => {
            tracing::error!(error = %other, "node API storage error");
            err(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
    }
}

fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Checks the node token and reads a JSON body within the size limit.
async fn read<T: serde::de::DeserializeOwned>(
    state: &ApiState,
    req: Request,
) -> Result<T, Response> {
    let expected = state.config().node_token.as_deref().unwrap_or_default();
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if expected.is_empty() || !same(given.as_bytes(), expected.as_bytes()) {
        return Err(err(StatusCode::UNAUTHORIZED, "bad node token"));
    }
    let limit = state.config().max_body_bytes;
    let bytes = axum::body::to_bytes(req.into_body(), limit)
        .await
        .map_err(|_| err(StatusCode::PAYLOAD_TOO_LARGE, "body too large"))?;
    serde_json::from_slice(&bytes).map_err(|e| err(StatusCode::BAD_REQUEST, &e.to_string()))
}

async fn events(State(state): State<Arc<ApiState>>, req: Request) -> Response {
    let ev: NodeEvent = match read(&state, req).await {
        Ok(e) => e,
        Err(r) => return r,
    };
    let result = match ev {
        NodeEvent::StreamStarted {
            channel_id,
            protocol,
            node_id,
        } => state
            .stream_started(&channel_id, &protocol, node_id.as_deref())
            .await
            .map(|s| json!(s)),
        NodeEvent::StreamLive {
            stream_id,
            renditions,
        } => state
            .stream_live(&stream_id, renditions)
            .await
            .map(|s| json!(s)),
        NodeEvent::StreamTranscoder {
            stream_id,
            transcoder,
        } => state
            .stream_transcoder(&stream_id, transcoder)
            .await
            .map(|s| json!(s)),
        NodeEvent::StreamRelay { stream_id, relay } => state
            .stream_relay(&stream_id, relay)
            .await
            .map(|s| json!(s)),
        NodeEvent::StreamRelays { stream_id, relays } => state
            .stream_relays(&stream_id, relays)
            .await
            .map(|s| json!(s)),
        NodeEvent::StreamEnded { stream_id } => {
            state.stream_ended(&stream_id).await.map(|s| json!(s))
        }
        NodeEvent::RecordingStarted(r) => state.recording_started(r).await.map(|r| json!(r)),
        NodeEvent::RecordingFinished(f) => state.recording_finished(f).await.map(|r| json!(r)),
        NodeEvent::RecordingDeleted { recording_id } => state
            .recording_deleted(&recording_id)
            .await
            .map(|deleted| json!({ "deleted": deleted })),
        NodeEvent::ViewerCount {
            channel_id,
            node_id,
            count,
        } => state
            .viewer_count(&channel_id, &node_id, count)
            .await
            .map(|total| json!({ "total": total })),
        NodeEvent::Heartbeat { node, ttl_secs } => state
            .node_heartbeat(node, Duration::from_secs(ttl_secs.clamp(1, 3600)))
            .await
            .map(|n| json!(n)),
    };
    match result {
        Ok(v) => Json(v).into_response(),
        Err(e) => store_err(e),
    }
}

async fn authorize(State(state): State<Arc<ApiState>>, req: Request) -> Response {
    let a: Authorize = match read(&state, req).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    match state.studio_publish(&a.key_id).await {
        Ok(Some(crate::studio::StudioPublish::Allowed {
            participant_id,
            record,
            ..
        })) => {
            return Json(json!({
                "channel_id": participant_id,
                "signed_playback": false,
                "transcode": false,
                "record": record,
                "destinations": [],
            }))
            .into_response();
        }
        Ok(Some(crate::studio::StudioPublish::Refused(why))) => {
            return err(StatusCode::FORBIDDEN, why);
        }
        Ok(None) => {}
        Err(e) => return store_err(e),
    }
    match state.authorize_publish(&a.key_id).await {
        Ok(Some(channel_id)) => {
            let policy = async {
                let signed = state.playback_signed(&channel_id).await?;
                let transcode = state.channel_transcode(&channel_id).await?;
                let record = state.channel_record(&channel_id).await?;
                let destinations = state.relay_destinations(&channel_id).await?;
                Ok::<_, StoreError>((signed, transcode, record, destinations))
            };
            match policy.await {
                Ok((signed, transcode, record, destinations)) => Json(json!({
                    "channel_id": channel_id,
                    "signed_playback": signed,
                    "transcode": transcode,
                    "record": record,
                    "destinations": destinations,
                }))
                .into_response(),
                Err(e) => store_err(e),
            }
        }
        Ok(None) => err(StatusCode::FORBIDDEN, "stream key unknown or revoked"),
        Err(e) => store_err(e),
    }
}
