//! The recordings index.

use crate::child::RECORDINGS;
use crate::error::Result;
use crate::ids::{new_id, now_ms};
use crate::model::Recording;
use crate::store::Store;

impl Store {
    /// Indexes a finished recording.
    pub async fn add_recording(
        &self,
        channel_id: &str,
        stream_id: &str,
        location: &str,
        duration_ms: u64,
        size_bytes: u64,
    ) -> Result<Recording> {
        let r = Recording {
            id: new_id(),
            channel_id: channel_id.to_string(),
            stream_id: stream_id.to_string(),
            location: location.to_string(),
            duration_ms,
            size_bytes,
            created_at: now_ms(),
            playback_url: None,
            segments: 0,
            ended_at: Some(now_ms()),
            studio_participant_id: None,
        };
        self.put_child(RECORDINGS, channel_id, &r.id, &r).await?;
        Ok(r)
    }

    /// Creates or replaces a recording under its own id (a node names its recordings).
    pub async fn put_recording(&self, r: &Recording) -> Result<()> {
        self.put_child(RECORDINGS, &r.channel_id, &r.id, r).await
    }

    /// A recording by id.
    pub async fn get_recording(&self, id: &str) -> Result<Option<Recording>> {
        self.get_child(RECORDINGS, id).await
    }

    /// A channel's recordings, newest first.
    pub async fn list_recordings(&self, channel_id: &str) -> Result<Vec<Recording>> {
        let mut v: Vec<Recording> = self.list_children(RECORDINGS, channel_id).await?;
        v.reverse();
        Ok(v)
    }

    /// Removes a recording from the index.
    pub async fn delete_recording(&self, id: &str) -> Result<bool> {
        self.delete_child(RECORDINGS, id).await
    }
}
