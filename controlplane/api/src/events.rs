//! The event-ingest API the data plane calls (directly in `weir serve`, through the
//! binary's node-facing endpoint in split mode): stream lifecycle and viewer counts. Each
//! call updates the store and notifies GraphQL subscribers.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use weir_store::{Node, RelayStatus, Rendition, StoreError, Stream, StreamState, TranscoderStatus};

use crate::state::ApiState;

/// Something subscribers may want to know.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A stream changed state (or started).
    StreamState(Box<Stream>),
    /// A channel's total viewer count changed.
    Viewers {
        /// Channel.
        channel_id: String,
        /// Total over nodes.
        count: u64,
    },
}

/// A destination as the node that relays to it needs it: with its stream key in the
/// clear (sent only to nodes; `Debug` leaves it out).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayDestination {
    /// Destination id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Ingest URL.
    pub url: String,
    /// Its stream key (secret).
    pub stream_key: String,
}

impl std::fmt::Debug for RelayDestination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayDestination")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl ApiState {
    fn emit(&self, e: Event) {
        // No receivers is fine.
        let _ = self.inner.events.send(e);
    }

    /// A publisher connected on `node_id` for `channel_id` (its key already checked).
    /// Returns the new session, in state `starting`.
    pub async fn stream_started(
        &self,
        channel_id: &str,
        protocol: &str,
        node_id: Option<&str>,
    ) -> Result<Stream, StoreError> {
        if self.store().get_channel(channel_id).await?.is_none() {
            return Err(StoreError::NotFound("channel"));
        }
        let s = self
            .store()
            .start_stream(channel_id, protocol, node_id)
            .await?;
        tracing::info!(stream_id = %s.id, channel_id, protocol, "stream starting");
        self.emit(Event::StreamState(Box::new(s.clone())));
        Ok(s)
    }

    /// Media is flowing: the session goes `live`, with its renditions.
    pub async fn stream_live(
        &self,
        stream_id: &str,
        renditions: Vec<Rendition>,
    ) -> Result<Stream, StoreError> {
        if !renditions.is_empty() {
            self.store()
                .set_stream_renditions(stream_id, renditions)
                .await?;
        }
        let s = self
            .store()
            .set_stream_state(stream_id, StreamState::Live)
            .await?;
        tracing::info!(stream_id, channel_id = %s.channel_id, "stream live");
        self.emit(Event::StreamState(Box::new(s.clone())));
        Ok(s)
    }

    /// The stream's transcoder reports what it does (rungs, encoder, overload, failure).
    /// Reports for an ended stream are dropped (a late one must not revive it).
    pub async fn stream_transcoder(
        &self,
        stream_id: &str,
        status: TranscoderStatus,
    ) -> Result<Stream, StoreError> {
        let Some(current) = self.store().get_stream(stream_id).await? else {
            return Err(StoreError::NotFound("stream"));
        };
        if current.state == StreamState::Ended {
            return Ok(current);
        }
        let s = self
            .store()
            .set_stream_transcoder(stream_id, status)
            .await?;
        if let Some(t) = &s.transcoder {
            tracing::debug!(
                stream_id,
                channel_id = %s.channel_id,
                encoder = t.encoder.as_deref().unwrap_or("none"),
                dropped_rungs = t.dropped_rungs,
                failure = t.failure.as_deref().unwrap_or(""),
                "stream transcoder reported"
            );
        }
        self.emit(Event::StreamState(Box::new(s.clone())));
        Ok(s)
    }

    /// A relay of the stream changed state. Reports for an ended stream are dropped
    /// unless they say the relay stopped or failed.
    pub async fn stream_relay(
        &self,
        stream_id: &str,
        status: RelayStatus,
    ) -> Result<Stream, StoreError> {
        let Some(current) = self.store().get_stream(stream_id).await? else {
            return Err(StoreError::NotFound("stream"));
        };
        if current.state == StreamState::Ended
            && !matches!(status.state.as_str(), "stopped" | "failed")
        {
            return Ok(current);
        }
        let s = self.store().set_stream_relay(stream_id, status).await?;
        self.emit(Event::StreamState(Box::new(s.clone())));
        Ok(s)
    }

    /// The channel's enabled destinations with their keys opened, for the node that
    /// relays its next broadcast.
    pub async fn relay_destinations(
        &self,
        channel_id: &str,
    ) -> Result<Vec<RelayDestination>, StoreError> {
        let store = self.store();
        let mut out = Vec::new();
        for d in store.list_destinations(channel_id).await? {
            if !d.enabled {
                continue;
            }
            let stream_key = store.destination_stream_key(&d)?;
            out.push(RelayDestination {
                id: d.id,
                name: d.name,
                url: d.url,
                stream_key,
            });
        }
        Ok(out)
    }

    /// The publisher left: the session is `ended`.
    pub async fn stream_ended(&self, stream_id: &str) -> Result<Stream, StoreError> {
        let s = self
            .store()
            .set_stream_state(stream_id, StreamState::Ended)
            .await?;
        tracing::info!(stream_id, channel_id = %s.channel_id, "stream ended");
        self.emit(Event::StreamState(Box::new(s.clone())));
        let total = self.store().viewer_count(&s.channel_id).await?;
        self.emit(Event::Viewers {
            channel_id: s.channel_id.clone(),
            count: total,
        });
        Ok(s)
    }

    /// A node reports `count` viewers of a channel; returns the channel's total over nodes.
    pub async fn viewer_count(
        &self,
        channel_id: &str,
        node_id: &str,
        count: u64,
    ) -> Result<u64, StoreError> {
        let ttl = self.config().viewer_count_ttl;
        self.store()
            .set_viewer_count(channel_id, node_id, count, ttl)
            .await?;
        let total = self.store().viewer_count(channel_id).await?;
        if let Some(s) = self.store().active_stream(channel_id).await?
            && total > s.peak_viewers
        {
            self.store().note_stream_viewers(&s.id, total).await?;
        }
        self.emit(Event::Viewers {
            channel_id: channel_id.to_string(),
            count: total,
        });
        Ok(total)
    }

    /// A node registers or heartbeats; it is dropped `ttl` after its last heartbeat.
    pub async fn node_heartbeat(&self, node: Node, ttl: Duration) -> Result<Node, StoreError> {
        self.store().register_node(node, ttl).await
    }

    /// Publish authorization by key id (after the data plane checked the key's HMAC):
    /// the channel when the key was issued and is not revoked, `None` otherwise.
    pub async fn authorize_publish(&self, key_id: &str) -> Result<Option<String>, StoreError> {
        match self.store().get_stream_key(key_id).await? {
            Some(k) if k.revoked_at.is_none() => Ok(Some(k.channel_id)),
            _ => Ok(None),
        }
    }

    /// Whether playback of a channel needs signed URLs (the data plane enforces it).
    pub async fn playback_signed(&self, channel_id: &str) -> Result<bool, StoreError> {
        let e = self.store().get_entitlement(channel_id).await?;
        Ok(crate::state::requires_signature(&e))
    }

    /// A channel's transcode setting as a node applies it (`None`: the node's default).
    pub async fn channel_transcode(&self, channel_id: &str) -> Result<Option<bool>, StoreError> {
        Ok(self
            .store()
            .get_channel(channel_id)
            .await?
            .and_then(|c| c.transcode.as_override()))
    }

    /// Whether a stream key id was revoked (publish authorization).
    pub async fn is_stream_key_revoked(&self, key_id: &str) -> Result<bool, StoreError> {
        self.store().is_stream_key_revoked(key_id).await
    }
}
