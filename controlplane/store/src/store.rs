//! [`Store`]: the domain API over any [`Kv`] backend, and the JSON helpers the
//! per-object modules share.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::crypto::SecretBox;
use crate::error::{Result, StoreError};
use crate::kv::Kv;
use crate::memory::MemoryKv;

/// The control-plane state: users, tokens, channels, keys, streams, destinations,
/// recordings, entitlements, nodes and viewer counts, over one backend. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    kv: Arc<dyn Kv>,
    secrets: SecretBox,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.kv.backend())
            .finish()
    }
}

/// How many times a read-modify-write retries after losing a race.
const CAS_RETRIES: usize = 16;

impl Store {
    /// A store over `kv`; `secrets` seals destination stream keys at rest.
    pub fn new(kv: Arc<dyn Kv>, secrets: SecretBox) -> Self {
        Self { kv, secrets }
    }

    /// An in-memory store with a random secret key (tests).
    pub fn memory() -> Self {
        Self::new(Arc::new(MemoryKv::new()), SecretBox::generate())
    }

    /// The backend.
    pub fn kv(&self) -> &Arc<dyn Kv> {
        &self.kv
    }

    /// The key sealing secrets.
    pub(crate) fn secrets(&self) -> &SecretBox {
        &self.secrets
    }

    pub(crate) async fn get_json<T: DeserializeOwned>(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Option<T>> {
        match self.kv.get(bucket, key).await? {
            Some(raw) => decode(bucket, &raw).map(Some),
            None => Ok(None),
        }
    }

    pub(crate) async fn put_json<T: Serialize>(
        &self,
        bucket: &str,
        key: &str,
        value: &T,
        ttl: Option<Duration>,
    ) -> Result<()> {
        self.kv.put(bucket, key, &encode(value)?, ttl).await
    }

    /// [`Kv::put_owned`] of JSON: a TTL write on behalf of a data-plane node.
    pub(crate) async fn put_json_owned<T: Serialize>(
        &self,
        bucket: &str,
        key: &str,
        value: &T,
        ttl: Duration,
        owner: &str,
    ) -> Result<()> {
        self.kv
            .put_owned(bucket, key, &encode(value)?, ttl, owner)
            .await
    }

    /// Inserts only when absent; false when the key was taken.
    pub(crate) async fn insert_new<T: Serialize>(
        &self,
        bucket: &str,
        key: &str,
        value: &T,
    ) -> Result<bool> {
        self.kv.cas(bucket, key, None, Some(&encode(value)?)).await
    }

    pub(crate) async fn list_json<T: DeserializeOwned>(&self, bucket: &str) -> Result<Vec<T>> {
        self.kv
            .list(bucket)
            .await?
            .iter()
            .map(|(_, raw)| decode(bucket, raw))
            .collect()
    }

    /// Read-modify-write with compare-and-swap, retried on races. `f` may refuse with an
    /// error, which is returned unchanged.
    pub(crate) async fn update_json<T, F>(
        &self,
        bucket: &str,
        key: &str,
        what: &'static str,
        mut f: F,
    ) -> Result<T>
    where
        T: Serialize + DeserializeOwned,
        F: FnMut(&mut T) -> Result<()>,
    {
        for _ in 0..CAS_RETRIES {
            let raw = self
                .kv
                .get(bucket, key)
                .await?
                .ok_or(StoreError::NotFound(what))?;
            let mut value: T = decode(bucket, &raw)?;
            f(&mut value)?;
            let new = encode(&value)?;
            if self.kv.cas(bucket, key, Some(&raw), Some(&new)).await? {
                return Ok(value);
            }
        }
        Err(StoreError::Conflict(format!(
            "{what} changed concurrently too often"
        )))
    }
}

pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| StoreError::Invalid(e.to_string()))
}

pub(crate) fn decode<T: DeserializeOwned>(bucket: &str, raw: &[u8]) -> Result<T> {
    serde_json::from_slice(raw).map_err(|source| StoreError::Corrupt {
        bucket: bucket.to_string(),
        source,
    })
}
