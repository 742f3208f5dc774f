//! The control plane's studio director in a split deployment: each studio broadcast's
//! program runs on one data-plane node, and the scene, "go live" and "end" reach it over
//! HTTP (see [`super::studio_wire`]).
//!
//! The node is chosen at the broadcast's first scene: among the nodes whose heartbeat
//! names a studio listener, the one ingesting the fewest streams; the broadcast stays on
//! it until it ends. The on-stage participants' streams must reach that node (with one
//! node, or a load balancer that keeps a broadcast's guests together); the pin lives in
//! this process, so after a control-plane restart the next scene picks again.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::Value;
use weir_api::{ApiState, DirectorFuture, ProgramScene, StudioDirector};
use weir_store::Node;

use super::CallError;
use super::remote::post_json;
use super::studio_wire::{End, GoLive, WireScene};

/// Longest wait for a node's answer (it starts a compositor on the first scene).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(20);

/// Sends studio calls to the nodes.
#[derive(Clone)]
pub struct RemoteDirector {
    inner: Arc<Inner>,
}

struct Inner {
    state: ApiState,
    token: String,
    /// Broadcast id → node id.
    pinned: Mutex<HashMap<String, String>>,
}

impl RemoteDirector {
    /// A director over the nodes registered in `state`'s store, authenticated with the
    /// node token.
    pub fn new(state: ApiState, token: String) -> Self {
        Self {
            inner: Arc::new(Inner {
                state,
                token,
                pinned: Mutex::new(HashMap::new()),
            }),
        }
    }
}

/// `host:port` of a studio URL (`http://host:port`).
fn host_port(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("http://")?.trim_end_matches('/');
    (rest.contains(':') && !rest.contains('/')).then_some(rest)
}

/// The node to run a new program on: the least busy of those with a studio.
fn choose(nodes: &[Node]) -> Option<&Node> {
    nodes
        .iter()
        .filter(|n| n.studio_url.as_deref().and_then(host_port).is_some())
        .min_by_key(|n| (n.load.streams, n.load.viewers))
}

/// What the host reads when a call fails.
fn reason(e: CallError) -> String {
    match e {
        CallError::Transient(t) => format!("the studio node did not answer: {t}"),
        CallError::Permanent(t) => super::remote::refusal_sentence(t),
    }
}

/// One call to the node at `url`.
async fn call(url: String, token: String, path: &'static str, body: Value) -> Result<(), String> {
    let hp = host_port(&url).ok_or_else(|| format!("bad studio URL {url:?}"))?;
    post_json(hp, &token, path, &body, ANSWER_TIMEOUT)
        .await
        .map(drop)
        .map_err(reason)
}

impl Inner {
    /// The studio URL of the broadcast's node, choosing and pinning one if `place`.
    async fn node_of(&self, broadcast: &str, place: bool) -> Result<Option<String>, String> {
        let nodes = self
            .state
            .store()
            .list_nodes()
            .await
            .map_err(|e| format!("cannot list the nodes: {e}"))?;
        let pinned = self.pinned.lock().get(broadcast).cloned();
        if let Some(id) = pinned {
            return nodes
                .iter()
                .find(|n| n.id == id)
                .and_then(|n| n.studio_url.clone())
                .map(Some)
                .ok_or_else(|| format!("the studio's node {id} is gone"));
        }
        if !place {
            return Ok(None);
        }
        let node = choose(&nodes).ok_or_else(|| {
            "no data-plane node runs a studio (is one reporting with a node token?)".to_owned()
        })?;
        tracing::info!(studio = broadcast, node = %node.id, "studio program placed");
        self.pinned
            .lock()
            .insert(broadcast.to_owned(), node.id.clone());
        Ok(node.studio_url.clone())
    }

    /// One call to the broadcast's node (placing the broadcast first if `place`).
    async fn send(
        &self,
        broadcast: &str,
        place: bool,
        path: &'static str,
        body: Value,
    ) -> Result<bool, String> {
        match self.node_of(broadcast, place).await? {
            Some(url) => call(url, self.token.clone(), path, body)
                .await
                .map(|()| true),
            None => Ok(false),
        }
    }
}

fn json<T: serde::Serialize>(v: &T) -> Result<Value, String> {
    serde_json::to_value(v).map_err(|e| e.to_string())
}

impl StudioDirector for RemoteDirector {
    fn compose(&self, scene: ProgramScene) -> DirectorFuture {
        let inner = self.inner.clone();
        Box::pin(async move {
            let body = json(&WireScene::from(&scene))?;
            inner
                .send(&scene.broadcast_id, true, "/v1/studio/compose", body)
                .await
                .map(drop)
        })
    }

    fn go_live(&self, broadcast_id: &str, stream_key: &str) -> DirectorFuture {
        let inner = self.inner.clone();
        let call = GoLive {
            broadcast_id: broadcast_id.to_owned(),
            stream_key: stream_key.to_owned(),
        };
        Box::pin(async move {
            let sent = inner
                .send(
                    &call.broadcast_id,
                    false,
                    "/v1/studio/go-live",
                    json(&call)?,
                )
                .await?;
            if sent {
                Ok(())
            } else {
                Err(format!(
                    "no program is composed for studio broadcast {}",
                    call.broadcast_id
                ))
            }
        })
    }

    fn end(&self, broadcast_id: &str) -> DirectorFuture {
        let inner = self.inner.clone();
        let call = End {
            broadcast_id: broadcast_id.to_owned(),
        };
        Box::pin(async move {
            let sent = inner
                .send(&call.broadcast_id, false, "/v1/studio/end", json(&call)?)
                .await;
            inner.pinned.lock().remove(&call.broadcast_id);
            sent.map(drop)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_store::NodeLoad;

    fn node(id: &str, streams: u32, studio: Option<&str>) -> Node {
        Node {
            id: id.into(),
            address: "10.0.0.1:8080".into(),
            shards: 2,
            version: "0".into(),
            load: NodeLoad {
                streams,
                ..NodeLoad::default()
            },
            last_seen: 0,
            studio_url: studio.map(str::to_owned),
        }
    }

    #[test]
    fn programs_go_to_the_least_busy_node_with_a_studio() {
        let nodes = [
            node("a", 0, None),
            node("b", 5, Some("http://10.0.0.2:8092")),
            node("c", 2, Some("http://10.0.0.3:8092")),
            node("d", 1, Some("https://10.0.0.4:8092/x")),
        ];
        assert_eq!(choose(&nodes).map(|n| n.id.as_str()), Some("c"));
        assert!(choose(&nodes[..1]).is_none());
    }

    #[test]
    fn a_node_refusal_reads_as_its_own_sentence() {
        let e = CallError::Permanent(r#"422: {"error":"program studio-x is not running"}"#.into());
        assert_eq!(reason(e), "program studio-x is not running");
        assert!(
            reason(CallError::Transient("connect timed out".into())).contains("did not answer")
        );
    }
}
