//! The embedded backend: one redb file in a data directory. Single node, survives restarts.
//!
//! Layout: one table `kv`, key `<bucket>\0<key>`, value `expiry_ms (8 bytes LE, 0 = none) ||
//! payload`. Expired entries are invisible; [`Kv::purge_expired`] (run at open and
//! periodically by the API server) deletes them.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use crate::error::{Result, StoreError};
use crate::ids::now_ms;
use crate::kv::{Kv, check_path};

const TABLE: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("kv");
const NAME: &str = "redb";

fn be(e: impl std::fmt::Display) -> StoreError {
    StoreError::backend(NAME, e)
}

/// A redb database file.
#[derive(Clone)]
pub struct EmbeddedKv {
    db: Arc<Database>,
    path: PathBuf,
}

impl std::fmt::Debug for EmbeddedKv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedKv")
            .field("path", &self.path)
            .finish()
    }
}

fn full_key(bucket: &str, key: &str) -> String {
    format!("{bucket}\0{key}")
}

fn encode(value: &[u8], ttl: Option<Duration>) -> Vec<u8> {
    let expiry = ttl.map_or(0, |t| now_ms() + t.as_millis() as i64);
    let mut out = Vec::with_capacity(8 + value.len());
    out.extend_from_slice(&expiry.to_le_bytes());
    out.extend_from_slice(value);
    out
}

/// Returns the payload when the entry is well formed and not expired.
fn decode(raw: &[u8]) -> Option<&[u8]> {
    let (head, payload) = raw.split_at_checked(8)?;
    let expiry = i64::from_le_bytes(head.try_into().ok()?);
    (expiry == 0 || expiry > now_ms()).then_some(payload)
}

impl EmbeddedKv {
    /// Opens (or creates) `<dir>/weir.redb`, creating `dir` if needed.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(be)?;
        let path = dir.join("weir.redb");
        let db = Database::create(&path).map_err(be)?;
        let txn = db.begin_write().map_err(be)?;
        txn.open_table(TABLE).map_err(be)?;
        txn.commit().map_err(be)?;
        let purged = purge(&db)?;
        tracing::info!(path = %path.display(), purged, "embedded store opened");
        Ok(Self {
            db: Arc::new(db),
            path,
        })
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Database) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || f(&db))
            .await
            .map_err(be)?
    }
}

#[async_trait]
impl Kv for EmbeddedKv {
    fn backend(&self) -> &'static str {
        NAME
    }

    async fn get(&self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>> {
        check_path(bucket, key)?;
        let k = full_key(bucket, key);
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(be)?;
            let table = txn.open_table(TABLE).map_err(be)?;
            let v = table.get(k.as_str()).map_err(be)?;
            Ok(v.and_then(|g| decode(g.value()).map(<[u8]>::to_vec)))
        })
        .await
    }

    async fn put(
        &self,
        bucket: &str,
        key: &str,
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<()> {
        check_path(bucket, key)?;
        let k = full_key(bucket, key);
        let v = encode(value, ttl);
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(be)?;
            {
                let mut table = txn.open_table(TABLE).map_err(be)?;
                table.insert(k.as_str(), v.as_slice()).map_err(be)?;
            }
            txn.commit().map_err(be)
        })
        .await
    }

    async fn delete(&self, bucket: &str, key: &str) -> Result<bool> {
        check_path(bucket, key)?;
        let k = full_key(bucket, key);
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(be)?;
            let existed = {
                let mut table = txn.open_table(TABLE).map_err(be)?;
                let old = table.remove(k.as_str()).map_err(be)?;
                old.is_some_and(|g| decode(g.value()).is_some())
            };
            txn.commit().map_err(be)?;
            Ok(existed)
        })
        .await
    }

    async fn list(&self, bucket: &str) -> Result<Vec<(String, Vec<u8>)>> {
        check_path(bucket, "x")?;
        let prefix = full_key(bucket, "");
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(be)?;
            let table = txn.open_table(TABLE).map_err(be)?;
            let mut out = Vec::new();
            for item in table.range(prefix.as_str()..).map_err(be)? {
                let (k, v) = item.map_err(be)?;
                let Some(rest) = k.value().strip_prefix(prefix.as_str()) else {
                    break;
                };
                if let Some(payload) = decode(v.value()) {
                    out.push((rest.to_string(), payload.to_vec()));
                }
            }
            Ok(out)
        })
        .await
    }

    async fn cas(
        &self,
        bucket: &str,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool> {
        check_path(bucket, key)?;
        self.swap(
            full_key(bucket, key),
            expected.map(<[u8]>::to_vec),
            new.map(|v| encode(v, None)),
        )
        .await
    }

    async fn cas_expiring(
        &self,
        bucket: &str,
        key: &str,
        expected: Option<&[u8]>,
        new: &[u8],
        ttl: Duration,
    ) -> Result<bool> {
        check_path(bucket, key)?;
        self.swap(
            full_key(bucket, key),
            expected.map(<[u8]>::to_vec),
            Some(encode(new, Some(ttl))),
        )
        .await
    }

    async fn put_many(&self, bucket: &str, entries: &[(String, Vec<u8>)]) -> Result<()> {
        let mut rows = Vec::with_capacity(entries.len());
        for (key, value) in entries {
            check_path(bucket, key)?;
            rows.push((full_key(bucket, key), encode(value, None)));
        }
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(be)?;
            {
                let mut table = txn.open_table(TABLE).map_err(be)?;
                for (k, v) in &rows {
                    table.insert(k.as_str(), v.as_slice()).map_err(be)?;
                }
            }
            txn.commit().map_err(be)
        })
        .await
    }

    async fn put_many_buckets(&self, batches: &[(String, Vec<(String, Vec<u8>)>)]) -> Result<()> {
        let mut rows = Vec::with_capacity(batches.iter().map(|b| b.1.len()).sum());
        for (bucket, entries) in batches {
            for (key, value) in entries {
                check_path(bucket, key)?;
                rows.push((full_key(bucket, key), encode(value, None)));
            }
        }
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(be)?;
            {
                let mut table = txn.open_table(TABLE).map_err(be)?;
                for (k, v) in &rows {
                    table.insert(k.as_str(), v.as_slice()).map_err(be)?;
                }
            }
            txn.commit().map_err(be)
        })
        .await
    }

    fn batches_buckets(&self) -> bool {
        true
    }

    async fn list_range(
        &self,
        bucket: &str,
        after: Option<&str>,
        before: Option<&str>,
        limit: usize,
        from_end: bool,
    ) -> Result<Vec<(String, Vec<u8>)>> {
        check_path(bucket, "x")?;
        let prefix = full_key(bucket, "");
        // `<bucket>\x01` sorts after every `<bucket>\0<key>` and before any longer bucket.
        let lo = after.map_or_else(|| prefix.clone(), |a| full_key(bucket, a));
        let hi = before.map_or_else(|| format!("{bucket}\u{1}"), |b| full_key(bucket, b));
        let skip_lo = after.is_some();
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(be)?;
            let table = txn.open_table(TABLE).map_err(be)?;
            let mut out = Vec::new();
            if limit == 0 || lo.as_str() >= hi.as_str() {
                return Ok(out);
            }
            let range = table.range(lo.as_str()..hi.as_str()).map_err(be)?;
            let mut take = |item: std::result::Result<
                (redb::AccessGuard<'_, &str>, redb::AccessGuard<'_, &[u8]>),
                redb::StorageError,
            >|
             -> Result<bool> {
                let (k, v) = item.map_err(be)?;
                let key = k.value();
                if skip_lo && key == lo.as_str() {
                    return Ok(true);
                }
                let Some(rest) = key.strip_prefix(prefix.as_str()) else {
                    return Ok(true);
                };
                if let Some(payload) = decode(v.value()) {
                    out.push((rest.to_string(), payload.to_vec()));
                }
                Ok(out.len() < limit)
            };
            if from_end {
                for item in range.rev() {
                    if !take(item)? {
                        break;
                    }
                }
                out.reverse();
            } else {
                for item in range {
                    if !take(item)? {
                        break;
                    }
                }
            }
            Ok(out)
        })
        .await
    }

    async fn purge_expired(&self) -> Result<usize> {
        self.blocking(purge).await
    }
}

/// Removes expired (and malformed, equally invisible) entries in one write transaction.
fn purge(db: &Database) -> Result<usize> {
    let txn = db.begin_write().map_err(be)?;
    let mut removed = 0;
    {
        let mut table = txn.open_table(TABLE).map_err(be)?;
        table
            .retain(|_, v| {
                let keep = decode(v).is_some();
                removed += usize::from(!keep);
                keep
            })
            .map_err(be)?;
    }
    txn.commit().map_err(be)?;
    Ok(removed)
}

impl EmbeddedKv {
    /// Compare-and-swap of an encoded entry: `expected` is the live payload (`None`:
    /// absent), `new` the encoded entry (`None`: delete).
    async fn swap(
        &self,
        k: String,
        expected: Option<Vec<u8>>,
        new: Option<Vec<u8>>,
    ) -> Result<bool> {
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(be)?;
            let swapped = {
                let mut table = txn.open_table(TABLE).map_err(be)?;
                let current = table
                    .get(k.as_str())
                    .map_err(be)?
                    .and_then(|g| decode(g.value()).map(<[u8]>::to_vec));
                if current != expected {
                    false
                } else {
                    match &new {
                        Some(v) => {
                            table.insert(k.as_str(), v.as_slice()).map_err(be)?;
                        }
                        None => {
                            table.remove(k.as_str()).map_err(be)?;
                        }
                    }
                    true
                }
            };
            txn.commit().map_err(be)?;
            Ok(swapped)
        })
        .await
    }
}
