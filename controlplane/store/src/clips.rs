//! Clips of recordings: channel-owned records (`clips/<channel>` + `clips-index/<id>`),
//! so every backend (embedded, etcd, memory) keeps them as it keeps recordings.

use crate::child::CLIPS;
use crate::error::Result;
use crate::model::Clip;
use crate::store::Store;

impl Store {
    /// Creates or replaces a clip.
    pub async fn put_clip(&self, c: &Clip) -> Result<()> {
        self.put_child(CLIPS, &c.channel_id, &c.id, c).await
    }

    /// A clip by id.
    pub async fn get_clip(&self, id: &str) -> Result<Option<Clip>> {
        self.get_child(CLIPS, id).await
    }

    /// The clips of a recording, oldest first.
    pub async fn list_clips(&self, channel_id: &str, recording_id: &str) -> Result<Vec<Clip>> {
        let v: Vec<Clip> = self.list_children(CLIPS, channel_id).await?;
        Ok(v.into_iter()
            .filter(|c| c.recording_id == recording_id)
            .collect())
    }

    /// Removes a clip from the index.
    pub async fn delete_clip(&self, id: &str) -> Result<bool> {
        self.delete_child(CLIPS, id).await
    }
}
