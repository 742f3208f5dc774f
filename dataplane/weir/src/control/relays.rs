//! Relay directors for destination changes while live (see `weir_api::RelayDirector`):
//!
//! - [`LocalRelays`] (`weir serve`, and the node's side in a split deployment): the
//!   node's own [`Relays`];
//! - [`RemoteRelays`] (`weir controlplane`): calls the control listener of the node
//!   carrying the stream (node token): `POST /v1/relays/set` with a [`RelaySet`] →
//!   `{"ok": true, "applied": bool}` (`applied` is false when the broadcast is no longer
//!   live there). The destination keys travel in the body, as in the publish
//!   authorisation.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use weir_api::{ApiState, DirectorFuture, RelayDestination, RelayDirector};
use weir_node::{MAX_RELAYS, RelayTarget, Relays};
use weir_store::Stream;

use super::CallError;
use super::remote::post_json;

/// Longest wait for a node to take a destination list.
const SET_TIMEOUT: Duration = Duration::from_secs(10);

/// `POST /v1/relays/set`: the live broadcast of `channel_id` relays to exactly these.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelaySet {
    /// The control plane's channel id.
    pub channel_id: String,
    /// Every enabled destination of the channel (at most [`MAX_RELAYS`]).
    pub destinations: Vec<RelayDestination>,
}

impl RelaySet {
    /// The node's relay targets.
    pub fn targets(self) -> Vec<RelayTarget> {
        targets(self.destinations)
    }
}

/// The node's relay target for a destination the control plane hands out.
pub fn relay_target(d: RelayDestination) -> RelayTarget {
    RelayTarget {
        id: d.id,
        name: d.name,
        url: d.url,
        stream_key: d.stream_key,
    }
}

/// At most [`MAX_RELAYS`] relay targets.
fn targets(destinations: Vec<RelayDestination>) -> Vec<RelayTarget> {
    destinations
        .into_iter()
        .take(MAX_RELAYS)
        .map(relay_target)
        .collect()
}

/// Applies destination lists with the node's own [`Relays`].
pub struct LocalRelays(pub Relays);

impl RelayDirector for LocalRelays {
    fn set(&self, stream: &Stream, destinations: Vec<RelayDestination>) -> DirectorFuture {
        let applied = self.0.set(&stream.channel_id, targets(destinations));
        if !applied {
            tracing::debug!(channel = %stream.channel_id, "destinations changed for a broadcast this node does not relay");
        }
        Box::pin(async { Ok(()) })
    }
}

/// Sends destination lists to the node carrying the stream, over its control listener.
pub struct RemoteRelays {
    state: ApiState,
    token: String,
}

impl RemoteRelays {
    /// A director over the nodes registered in `state`'s store, authenticated with the
    /// node token.
    pub fn new(state: ApiState, token: String) -> Self {
        Self { state, token }
    }
}

impl RelayDirector for RemoteRelays {
    fn set(&self, stream: &Stream, destinations: Vec<RelayDestination>) -> DirectorFuture {
        let (state, token) = (self.state.clone(), self.token.clone());
        let node_id = stream.node_id.clone();
        let set = RelaySet {
            channel_id: stream.channel_id.clone(),
            destinations,
        };
        Box::pin(async move {
            let node_id = node_id.ok_or("the stream has no node")?;
            let node = super::clips::control_listener(&state, &node_id, "stream's node").await?;
            let body = serde_json::to_value(&set).map_err(|e| e.to_string())?;
            match post_json(&node, &token, "/v1/relays/set", &body, SET_TIMEOUT).await {
                Ok(_) => Ok(()),
                Err(CallError::Transient(t)) => {
                    Err(format!("the stream's node did not answer: {t}"))
                }
                Err(CallError::Permanent(t)) => Err(super::remote::refusal_sentence(t)),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_relay_set_keeps_its_keys_out_of_debug_and_is_capped() {
        let d = |i: usize| RelayDestination {
            id: format!("d{i}"),
            name: "YouTube".into(),
            url: "rtmp://a.rtmp.youtube.com/live2".into(),
            stream_key: "secret-key".into(),
        };
        let set = RelaySet {
            channel_id: "ch".into(),
            destinations: (0..MAX_RELAYS + 8).map(d).collect(),
        };
        assert!(!format!("{set:?}").contains("secret-key"));
        let json = serde_json::to_string(&set).expect("json");
        let back: RelaySet = serde_json::from_str(&json).expect("parse");
        assert_eq!(back, set);
        let targets = back.targets();
        assert_eq!(targets.len(), MAX_RELAYS);
        assert_eq!(targets[0].stream_key, "secret-key");
    }
}
