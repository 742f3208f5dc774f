//! The event-ingest API the data plane calls (directly in `weir serve`, through the
//! binary's node-facing endpoint in split mode): stream lifecycle and viewer counts. Each
//! call updates the store and notifies GraphQL subscribers.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use weir_store::{
    Node, Recording, RelayStatus, Rendition, StoreError, Stream, StreamState, TranscoderStatus,
    ids::now_ms,
};

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
    /// A studio broadcast changed (participants, stage, scene, status).
    Studio(Box<crate::studio::StudioEvent>),
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

/// A recording a node began (see [`ApiState::recording_started`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordingStarted {
    /// The stream recorded.
    pub stream_id: String,
    /// The node's recording id.
    pub recording_id: String,
    /// Where it is on the node.
    pub location: String,
    /// Where players fetch it.
    #[serde(default)]
    pub playback_url: Option<String>,
}

/// A recording a node finished (see [`ApiState::recording_finished`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordingFinished {
    /// The node's recording id.
    pub recording_id: String,
    /// Its channel.
    pub channel_id: String,
    /// Where it is on the node.
    pub location: String,
    /// Where players fetch it.
    #[serde(default)]
    pub playback_url: Option<String>,
    /// When it started (ms).
    #[serde(default)]
    pub started_at: i64,
    /// Media duration.
    pub duration_ms: u64,
    /// Bytes on disk.
    pub size_bytes: u64,
    /// Media segments.
    pub segments: u64,
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
        self.relays_reported(stream_id, vec![status], true).await
    }

    /// Several relays of the stream reported (a node sends them together): one write.
    /// Reports for an ended stream are dropped unless they say the relay stopped or
    /// failed; destinations beyond `RelayStatus::MAX_PER_STREAM` are left out.
    pub async fn stream_relays(
        &self,
        stream_id: &str,
        statuses: Vec<RelayStatus>,
    ) -> Result<Stream, StoreError> {
        self.relays_reported(stream_id, statuses, false).await
    }

    async fn relays_reported(
        &self,
        stream_id: &str,
        mut statuses: Vec<RelayStatus>,
        strict: bool,
    ) -> Result<Stream, StoreError> {
        let Some(current) = self.store().get_stream(stream_id).await? else {
            return Err(StoreError::NotFound("stream"));
        };
        if current.state == StreamState::Ended {
            statuses.retain(|s| matches!(s.state.as_str(), "stopped" | "failed"));
        }
        if statuses.is_empty() {
            return Ok(current);
        }
        let s = self
            .store()
            .set_stream_relays(stream_id, statuses, strict)
            .await?;
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

    /// A node began recording stream `stream_id`: the recording is listed from now on
    /// (with no duration yet and no `ended_at`).
    pub async fn recording_started(&self, r: RecordingStarted) -> Result<Recording, StoreError> {
        let Some(stream) = self.store().get_stream(&r.stream_id).await? else {
            return Err(StoreError::NotFound("stream"));
        };
        let rec = Recording {
            id: r.recording_id,
            channel_id: stream.channel_id,
            stream_id: r.stream_id,
            location: r.location,
            duration_ms: 0,
            size_bytes: 0,
            created_at: now_ms(),
            playback_url: r.playback_url,
            segments: 0,
            ended_at: None,
            studio_participant_id: None,
        };
        self.store().put_recording(&rec).await?;
        tracing::info!(recording_id = %rec.id, stream_id = %rec.stream_id, "recording started");
        Ok(rec)
    }

    /// A node finished a recording (its broadcast ended, or at the node's start for a
    /// recording its previous run left unfinished): its duration, size and segments.
    /// A recording whose start was never reported is created (its channel must exist).
    /// A studio guest's isolated track (its "channel" is the participant) is listed
    /// under the studio broadcast's channel, with the participant named.
    pub async fn recording_finished(&self, f: RecordingFinished) -> Result<Recording, StoreError> {
        let rec = match self.store().get_recording(&f.recording_id).await? {
            Some(r) => r,
            None => {
                let (channel_id, participant) =
                    if self.store().get_channel(&f.channel_id).await?.is_some() {
                        (f.channel_id.clone(), None)
                    } else {
                        self.isolated_track_owner(&f.channel_id)
                            .await?
                            .ok_or(StoreError::NotFound("channel"))?
                    };
                Recording {
                    id: f.recording_id.clone(),
                    channel_id,
                    studio_participant_id: participant,
                    stream_id: String::new(),
                    location: f.location.clone(),
                    duration_ms: 0,
                    size_bytes: 0,
                    created_at: f.started_at,
                    playback_url: f.playback_url.clone(),
                    segments: 0,
                    ended_at: None,
                }
            }
        };
        let rec = Recording {
            duration_ms: f.duration_ms,
            size_bytes: f.size_bytes,
            segments: f.segments,
            ended_at: Some(now_ms()),
            playback_url: f.playback_url.or(rec.playback_url),
            ..rec
        };
        self.store().put_recording(&rec).await?;
        tracing::info!(recording_id = %rec.id, duration_ms = rec.duration_ms, size_bytes = rec.size_bytes, "recording finished");
        Ok(rec)
    }

    /// The channel and participant of a studio participant id, if it is one.
    async fn isolated_track_owner(
        &self,
        participant_id: &str,
    ) -> Result<Option<(String, Option<String>)>, StoreError> {
        let Some(p) = self.store().get_participant(participant_id).await? else {
            return Ok(None);
        };
        let Some(b) = self.store().get_studio_broadcast(&p.broadcast_id).await? else {
            return Ok(None);
        };
        Ok(Some((b.channel_id, Some(p.id))))
    }

    /// A node's retention sweep deleted a recording's files: it leaves the index.
    pub async fn recording_deleted(&self, recording_id: &str) -> Result<bool, StoreError> {
        self.store().delete_recording(recording_id).await
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

    /// Publish authorization by key id (after the data plane checked the key's signature):
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

    /// A channel's recording setting as a node applies it (`None`: the node's default).
    pub async fn channel_record(&self, channel_id: &str) -> Result<Option<bool>, StoreError> {
        Ok(self
            .store()
            .get_channel(channel_id)
            .await?
            .and_then(|c| c.record.as_override()))
    }

    /// Whether a stream key id was revoked (publish authorization).
    pub async fn is_stream_key_revoked(&self, key_id: &str) -> Result<bool, StoreError> {
        self.store().is_stream_key_revoked(key_id).await
    }
}
