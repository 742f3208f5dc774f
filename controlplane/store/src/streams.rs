//! Streams (publishing sessions): starting → live → ended, with history per channel.

use crate::child::STREAMS;
use crate::error::{Result, StoreError};
use crate::ids::{is_safe_id, new_id, now_ms};
use crate::model::{RelayStatus, Rendition, Stream, StreamState, TranscoderStatus};
use crate::store::Store;

const ACTIVE: &str = "active-streams";

fn allowed(from: StreamState, to: StreamState) -> bool {
    use StreamState::*;
    matches!(
        (from, to),
        (Starting, Live) | (Starting, Ended) | (Live, Ended)
    )
}

impl Store {
    /// Starts a session on a channel. A session still marked active on that channel (its
    /// node died without reporting) is ended first.
    pub async fn start_stream(
        &self,
        channel_id: &str,
        protocol: &str,
        node_id: Option<&str>,
    ) -> Result<Stream> {
        if !is_safe_id(protocol) || protocol.len() > 16 {
            return Err(StoreError::Invalid("bad protocol".into()));
        }
        if let Some(old) = self.active_stream(channel_id).await? {
            tracing::warn!(channel_id, stream_id = %old.id, "ending stale active stream");
            self.set_stream_state(&old.id, StreamState::Ended).await?;
        }
        let stream = Stream {
            id: new_id(),
            channel_id: channel_id.to_string(),
            state: StreamState::Starting,
            protocol: protocol.to_string(),
            node_id: node_id.map(str::to_string),
            started_at: now_ms(),
            live_at: None,
            ended_at: None,
            renditions: Vec::new(),
            peak_viewers: 0,
            transcoder: None,
            relays: Vec::new(),
        };
        self.put_child(STREAMS, channel_id, &stream.id, &stream)
            .await?;
        self.put_json(ACTIVE, channel_id, &stream.id, None).await?;
        Ok(stream)
    }

    /// A stream by id.
    pub async fn get_stream(&self, id: &str) -> Result<Option<Stream>> {
        self.get_child(STREAMS, id).await
    }

    /// Moves a stream to `state`; `Conflict` on an illegal transition (ended is final).
    /// Setting the current state again is a no-op.
    pub async fn set_stream_state(&self, id: &str, state: StreamState) -> Result<Stream> {
        let now = now_ms();
        let stream = self
            .update_child(STREAMS, id, |s: &mut Stream| {
                if s.state == state {
                    return Ok(());
                }
                if !allowed(s.state, state) {
                    return Err(StoreError::Conflict(format!(
                        "stream cannot go from {:?} to {:?}",
                        s.state, state
                    )));
                }
                s.state = state;
                match state {
                    StreamState::Live => s.live_at = Some(now),
                    StreamState::Ended => s.ended_at = Some(now),
                    StreamState::Starting => {}
                }
                Ok(())
            })
            .await?;
        if state == StreamState::Ended {
            let id_json = crate::store::encode(&stream.id)?;
            self.kv()
                .cas(ACTIVE, &stream.channel_id, Some(&id_json), None)
                .await?;
        }
        Ok(stream)
    }

    /// Replaces a stream's renditions.
    pub async fn set_stream_renditions(
        &self,
        id: &str,
        renditions: Vec<Rendition>,
    ) -> Result<Stream> {
        self.update_child(STREAMS, id, |s: &mut Stream| {
            s.renditions = renditions.clone();
            Ok(())
        })
        .await
    }

    /// Replaces a stream's transcoder status (cut to [`TranscoderStatus::bounded`],
    /// `updated_at` set to now).
    pub async fn set_stream_transcoder(
        &self,
        id: &str,
        status: TranscoderStatus,
    ) -> Result<Stream> {
        let status = TranscoderStatus {
            updated_at: now_ms(),
            ..status.bounded()
        };
        self.update_child(STREAMS, id, |s: &mut Stream| {
            s.transcoder = Some(status.clone());
            Ok(())
        })
        .await
    }

    /// Records a relay's state (one entry per destination; `updated_at` set to now).
    /// An unknown state or a stream already relaying to too many destinations is
    /// `Invalid`.
    pub async fn set_stream_relay(&self, id: &str, status: RelayStatus) -> Result<Stream> {
        self.set_stream_relays(id, vec![status], true).await
    }

    /// Records the states of several relays of a stream in one write (the latest per
    /// destination wins; `updated_at` set to now). An unknown state or a bad
    /// destination id is `Invalid` for the whole batch. Destinations beyond
    /// [`RelayStatus::MAX_PER_STREAM`] are `Invalid` when `strict`, else left out.
    pub async fn set_stream_relays(
        &self,
        id: &str,
        statuses: Vec<RelayStatus>,
        strict: bool,
    ) -> Result<Stream> {
        let now = now_ms();
        let statuses = statuses
            .into_iter()
            .map(|s| checked_relay(s, now))
            .collect::<Result<Vec<_>>>()?;
        self.update_child(STREAMS, id, |s: &mut Stream| {
            for status in &statuses {
                let known = s
                    .relays
                    .iter()
                    .position(|r| r.destination_id == status.destination_id);
                match known {
                    Some(i) => s.relays[i] = status.clone(),
                    None if s.relays.len() < RelayStatus::MAX_PER_STREAM => {
                        s.relays.push(status.clone())
                    }
                    None if strict => return Err(StoreError::Invalid("too many relays".into())),
                    None => {}
                }
            }
            Ok(())
        })
        .await
    }

    /// Raises a stream's peak viewer count if `viewers` is higher.
    pub async fn note_stream_viewers(&self, id: &str, viewers: u64) -> Result<Stream> {
        self.update_child(STREAMS, id, |s: &mut Stream| {
            s.peak_viewers = s.peak_viewers.max(viewers);
            Ok(())
        })
        .await
    }

    /// The channel's session in progress (starting or live), if any.
    pub async fn active_stream(&self, channel_id: &str) -> Result<Option<Stream>> {
        if !is_safe_id(channel_id) {
            return Ok(None);
        }
        match self.get_json::<String>(ACTIVE, channel_id).await? {
            Some(id) => Ok(self
                .get_stream(&id)
                .await?
                .filter(|s| s.state != StreamState::Ended)),
            None => Ok(None),
        }
    }

    /// A channel's sessions, newest first.
    pub async fn list_streams(&self, channel_id: &str) -> Result<Vec<Stream>> {
        let mut v: Vec<Stream> = self.list_children(STREAMS, channel_id).await?;
        v.reverse();
        Ok(v)
    }
}

/// A relay status as stored: its state known, its destination id safe, its reason
/// bounded, stamped `now`.
fn checked_relay(status: RelayStatus, now: i64) -> Result<RelayStatus> {
    if !RelayStatus::STATES.contains(&status.state.as_str()) {
        return Err(StoreError::Invalid(format!(
            "bad relay state {:?}",
            status.state
        )));
    }
    if !is_safe_id(&status.destination_id) {
        return Err(StoreError::Invalid("bad destination id".into()));
    }
    let mut status = RelayStatus {
        updated_at: now,
        ..status
    };
    if let Some(r) = &mut status.reason
        && r.len() > 512
    {
        let mut end = 512;
        while !r.is_char_boundary(end) {
            end -= 1;
        }
        r.truncate(end);
    }
    Ok(status)
}
