//! Clip makers for the control plane's `createClip`, which cut clips where the recording
//! is:
//!
//! - [`LocalClips`] (`weir serve`, and the node's side in a split deployment): the node's
//!   [`Clips`] on tokio's blocking pool (never on a shard).
//! - [`RemoteClips`] (`weir controlplane`): finds the recording's node (recording →
//!   stream → node) and calls its control listener (`studio_listen`, node token):
//!   `POST /v1/clips/make` with a [`ClipMake`] → `{"ok": true, "duration_ms"}`, and
//!   `POST /v1/clips/delete` with a [`ClipDelete`] and `POST /v1/recordings/delete` with a
//!   [`RecordingDelete`] → `{"ok": true}`; a refusal is `4xx {"error": why}`.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use weir_api::{ApiState, ClipFuture, ClipMaker, MadeClip};
use weir_node::clips::Clips;

use super::CallError;
use super::remote::post_json;

/// Longest wait for a node to cut a clip (it re-encodes the head, copies the rest).
const CUT_TIMEOUT: Duration = Duration::from_secs(120);

/// Cuts clips with the node's [`Clips`].
pub struct LocalClips(pub Arc<Clips>);

impl ClipMaker for LocalClips {
    fn make(
        &self,
        recording_id: &str,
        clip_id: &str,
        start_ms: u64,
        end_ms: u64,
    ) -> ClipFuture<MadeClip> {
        let clips = self.0.clone();
        let (recording, clip) = (recording_id.to_owned(), clip_id.to_owned());
        Box::pin(async move {
            let made = tokio::task::spawn_blocking(move || {
                clips.make_blocking(&recording, &clip, start_ms, end_ms)
            })
            .await
            .map_err(|e| format!("the clip maker stopped: {e}"))?
            .map_err(|e| e.to_string())?;
            Ok(MadeClip {
                duration_ms: made.duration_ms,
            })
        })
    }

    fn delete(&self, _recording_id: &str, clip_id: &str) -> ClipFuture<()> {
        let clips = self.0.clone();
        let clip = clip_id.to_owned();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || clips.delete_blocking(&clip))
                .await
                .map_err(|e| format!("the clip maker stopped: {e}"))?
                .map_err(|e| e.to_string())
        })
    }

    fn delete_recording(&self, recording_id: &str) -> ClipFuture<()> {
        let r = self
            .0
            .delete_recording(recording_id)
            .map_err(|e| e.to_string());
        Box::pin(async move { r })
    }

    fn max_ms(&self) -> u64 {
        self.0.max_ms()
    }
}

/// `POST /v1/clips/make`: cut a clip of one of the node's recordings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClipMake {
    /// The node's recording id.
    pub recording_id: String,
    /// The new clip's id.
    pub clip_id: String,
    /// Start, ms from the recording's first frame.
    pub start_ms: u64,
    /// End (exclusive), ms.
    pub end_ms: u64,
}

/// `POST /v1/clips/delete`: remove a clip's files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClipDelete {
    /// The clip's id.
    pub clip_id: String,
}

/// `POST /v1/recordings/delete`: remove a finished recording's files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordingDelete {
    /// The node's recording id.
    pub recording_id: String,
}

/// Cuts clips on the recording's node, over its control listener.
pub struct RemoteClips {
    state: ApiState,
    token: String,
}

impl RemoteClips {
    /// A maker over the nodes registered in `state`'s store, authenticated with the node
    /// token.
    pub fn new(state: ApiState, token: String) -> Self {
        Self { state, token }
    }
}

/// The control listener (`host:port`) of the node that holds `recording_id`.
async fn node_of(state: &ApiState, recording_id: &str) -> Result<String, String> {
    let store = state.store();
    let gone = |what: &str| format!("the recording's {what} is gone");
    let rec = store
        .get_recording(recording_id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| gone("index entry"))?;
    let node_id = store
        .get_stream(&rec.stream_id)
        .await
        .map_err(|e| e.to_string())?
        .and_then(|s| s.node_id)
        .ok_or_else(|| gone("stream"))?;
    control_listener(state, &node_id, "recording's node").await
}

/// The control listener (`host:port`) of node `node_id`, as its heartbeat announced it;
/// `whose` names the node in errors ("recording's node").
pub(super) async fn control_listener(
    state: &ApiState,
    node_id: &str,
    whose: &str,
) -> Result<String, String> {
    let node = state
        .store()
        .list_nodes()
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .find(|n| n.id == node_id)
        .ok_or_else(|| format!("the {whose} {node_id} is not reporting"))?;
    node.studio_url
        .as_deref()
        .and_then(|u| u.strip_prefix("http://"))
        .map(|hp| hp.trim_end_matches('/').to_owned())
        .ok_or_else(|| format!("the {whose} {node_id} takes no control calls"))
}

/// What the user reads when a call fails: the node's own sentence when it gave one.
fn reason(e: CallError) -> String {
    match e {
        CallError::Transient(t) => format!("the recording's node did not answer: {t}"),
        CallError::Permanent(t) => super::remote::refusal_sentence(t),
    }
}

impl RemoteClips {
    /// POSTs `call` to `path` on the node holding `recording_id`; `None` when no node
    /// holds it any more (and with `required`, that is an error).
    fn call<T: Serialize>(
        &self,
        recording_id: &str,
        path: &'static str,
        call: &T,
        required: bool,
    ) -> ClipFuture<Option<Value>> {
        let (state, token) = (self.state.clone(), self.token.clone());
        let recording = recording_id.to_owned();
        let body = serde_json::to_value(call).map_err(|e| e.to_string());
        Box::pin(async move {
            let body = body?;
            let node = match node_of(&state, &recording).await {
                Ok(n) => n,
                // A recording whose node is gone has no files left to remove there.
                Err(_) if !required => return Ok(None),
                Err(e) => return Err(e),
            };
            let (_, reply) = post_json(&node, &token, path, &body, CUT_TIMEOUT)
                .await
                .map_err(reason)?;
            Ok(Some(reply))
        })
    }
}

impl ClipMaker for RemoteClips {
    fn make(
        &self,
        recording_id: &str,
        clip_id: &str,
        start_ms: u64,
        end_ms: u64,
    ) -> ClipFuture<MadeClip> {
        let call = ClipMake {
            recording_id: recording_id.to_owned(),
            clip_id: clip_id.to_owned(),
            start_ms,
            end_ms,
        };
        let reply = self.call(recording_id, "/v1/clips/make", &call, true);
        Box::pin(async move {
            let duration_ms = reply
                .await?
                .as_ref()
                .and_then(|r| r.get("duration_ms"))
                .and_then(Value::as_u64)
                .ok_or("the node's answer has no duration")?;
            Ok(MadeClip { duration_ms })
        })
    }

    fn delete(&self, recording_id: &str, clip_id: &str) -> ClipFuture<()> {
        let call = ClipDelete {
            clip_id: clip_id.to_owned(),
        };
        let reply = self.call(recording_id, "/v1/clips/delete", &call, false);
        Box::pin(async move { reply.await.map(drop) })
    }

    fn delete_recording(&self, recording_id: &str) -> ClipFuture<()> {
        let call = RecordingDelete {
            recording_id: recording_id.to_owned(),
        };
        let reply = self.call(recording_id, "/v1/recordings/delete", &call, false);
        Box::pin(async move { reply.await.map(drop) })
    }

    fn max_ms(&self) -> u64 {
        // Each node checks its own `clip_max_ms` as well.
        weir_node::clips::DEFAULT_MAX_MS
    }
}
