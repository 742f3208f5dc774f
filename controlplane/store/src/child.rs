//! Records that belong to a channel (streams, keys, destinations, recordings): stored in
//! `<kind>/<channel>` with an index `<kind>-index/<id>` → channel, so they can be listed
//! per channel and found by id alone.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Result, StoreError};
use crate::ids::is_safe_id;
use crate::store::Store;

/// A kind of channel-owned record.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Kind {
    /// Bucket stem, e.g. `streams`.
    pub stem: &'static str,
    /// Name for errors.
    pub what: &'static str,
}

pub(crate) const STREAMS: Kind = Kind {
    stem: "streams",
    what: "stream",
};
pub(crate) const KEYS: Kind = Kind {
    stem: "keys",
    what: "stream key",
};
pub(crate) const DESTINATIONS: Kind = Kind {
    stem: "destinations",
    what: "destination",
};
pub(crate) const CLIPS: Kind = Kind {
    stem: "clips",
    what: "clip",
};
pub(crate) const RECORDINGS: Kind = Kind {
    stem: "recordings",
    what: "recording",
};

impl Kind {
    pub(crate) fn bucket(self, channel_id: &str) -> String {
        format!("{}/{channel_id}", self.stem)
    }

    pub(crate) fn index(self) -> String {
        format!("{}-index", self.stem)
    }
}

impl Store {
    pub(crate) async fn put_child<T: Serialize>(
        &self,
        kind: Kind,
        channel_id: &str,
        id: &str,
        value: &T,
    ) -> Result<()> {
        if !is_safe_id(channel_id) || !is_safe_id(id) {
            return Err(StoreError::Invalid(format!("bad {} id", kind.what)));
        }
        self.put_json(&kind.index(), id, &channel_id, None).await?;
        self.put_json(&kind.bucket(channel_id), id, value, None)
            .await
    }

    /// The channel of a child record.
    pub(crate) async fn child_channel(&self, kind: Kind, id: &str) -> Result<Option<String>> {
        if !is_safe_id(id) {
            return Ok(None);
        }
        self.get_json(&kind.index(), id).await
    }

    pub(crate) async fn get_child<T: DeserializeOwned>(
        &self,
        kind: Kind,
        id: &str,
    ) -> Result<Option<T>> {
        match self.child_channel(kind, id).await? {
            Some(ch) => self.get_json(&kind.bucket(&ch), id).await,
            None => Ok(None),
        }
    }

    pub(crate) async fn update_child<T, F>(&self, kind: Kind, id: &str, f: F) -> Result<T>
    where
        T: Serialize + DeserializeOwned,
        F: FnMut(&mut T) -> Result<()>,
    {
        let ch = self
            .child_channel(kind, id)
            .await?
            .ok_or(StoreError::NotFound(kind.what))?;
        self.update_json(&kind.bucket(&ch), id, kind.what, f).await
    }

    pub(crate) async fn list_children<T: DeserializeOwned>(
        &self,
        kind: Kind,
        channel_id: &str,
    ) -> Result<Vec<T>> {
        if !is_safe_id(channel_id) {
            return Ok(Vec::new());
        }
        self.list_json(&kind.bucket(channel_id)).await
    }

    pub(crate) async fn delete_child(&self, kind: Kind, id: &str) -> Result<bool> {
        let Some(ch) = self.child_channel(kind, id).await? else {
            return Ok(false);
        };
        let existed = self.kv().delete(&kind.bucket(&ch), id).await?;
        self.kv().delete(&kind.index(), id).await?;
        Ok(existed)
    }
}
