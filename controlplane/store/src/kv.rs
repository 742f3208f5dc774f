//! The backend trait: a small key-value contract every backend implements.
//!
//! Records live in *buckets* (`users`, `channel-streams/<channel>` …). A bucket name never
//! is a prefix-path of another bucket plus `/`, and keys never contain `/`, so a backend can
//! lay them out as `<bucket>/<key>` (etcd) or as a partition and clustering key (Scylla).

use std::time::Duration;

use async_trait::async_trait;

use crate::error::{Result, StoreError};

/// The storage backend contract. Values are opaque bytes (the domain layer stores JSON).
#[async_trait]
pub trait Kv: Send + Sync + 'static {
    /// A short backend name for logs and errors.
    fn backend(&self) -> &'static str;

    /// Reads one value.
    async fn get(&self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>>;

    /// Writes one value unconditionally; with `ttl` it disappears after that time unless
    /// written again (node leases, viewer counts).
    async fn put(&self, bucket: &str, key: &str, value: &[u8], ttl: Option<Duration>)
    -> Result<()>;

    /// Deletes one value; true when it existed.
    async fn delete(&self, bucket: &str, key: &str) -> Result<bool>;

    /// Lists a bucket, sorted by key ascending.
    async fn list(&self, bucket: &str) -> Result<Vec<(String, Vec<u8>)>>;

    /// Atomic compare-and-swap: when the current value equals `expected` (`None`: absent),
    /// sets it to `new` (`None`: delete) and returns true; otherwise changes nothing and
    /// returns false.
    async fn cas(
        &self,
        bucket: &str,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool>;

    /// Like [`Kv::cas`] with a new value that expires after `ttl` (a spent refresh token
    /// keeps its lifetime). The default makes the swap, then writes the value again with
    /// the TTL: a backend that can do both at once overrides it.
    async fn cas_expiring(
        &self,
        bucket: &str,
        key: &str,
        expected: Option<&[u8]>,
        new: &[u8],
        ttl: Duration,
    ) -> Result<bool> {
        if !self.cas(bucket, key, expected, Some(new)).await? {
            return Ok(false);
        }
        self.put(bucket, key, new, Some(ttl)).await?;
        Ok(true)
    }

    /// Writes a value that expires `ttl` after the last write, on behalf of `owner` (a
    /// data-plane node id). Backends with leases keep one lease per owner and TTL, renewed
    /// by each write, instead of one per write: every key written for one owner with one
    /// TTL may then live until `ttl` after the owner's latest write of any of them. The
    /// default is a plain [`Kv::put`] with the TTL.
    async fn put_owned(
        &self,
        bucket: &str,
        key: &str,
        value: &[u8],
        ttl: Duration,
        owner: &str,
    ) -> Result<()> {
        let _ = owner;
        self.put(bucket, key, value, Some(ttl)).await
    }

    /// Writes several values of one bucket (no TTL). Backends that can write them in one
    /// transaction override it (the embedded one does: one commit for the batch); the
    /// default writes them one by one, so a failure may leave a prefix written.
    async fn put_many(&self, bucket: &str, entries: &[(String, Vec<u8>)]) -> Result<()> {
        for (key, value) in entries {
            self.put(bucket, key, value, None).await?;
        }
        Ok(())
    }

    /// Writes values of several buckets (no TTL): `(bucket, entries)` pairs. The
    /// default writes them bucket by bucket with [`Kv::put_many`]; backends that can
    /// write several buckets in one transaction override it and [`Kv::batches_buckets`].
    async fn put_many_buckets(&self, batches: &[(String, Vec<(String, Vec<u8>)>)]) -> Result<()> {
        for (bucket, entries) in batches {
            self.put_many(bucket, entries).await?;
        }
        Ok(())
    }

    /// Whether [`Kv::put_many_buckets`] takes fewer commits than one per bucket (one
    /// transaction for all, or transactions packed with entries of several buckets), so
    /// that callers gain by grouping concurrent writes of different buckets.
    fn batches_buckets(&self) -> bool {
        false
    }

    /// Lists the keys of a bucket strictly between `after` and `before` (`None`: no
    /// bound), ascending, at most `limit` of them: the first ones, or with `from_end` the
    /// last ones (still returned ascending). The default filters [`Kv::list`]; backends
    /// with ordered ranges override it.
    async fn list_range(
        &self,
        bucket: &str,
        after: Option<&str>,
        before: Option<&str>,
        limit: usize,
        from_end: bool,
    ) -> Result<Vec<(String, Vec<u8>)>> {
        Ok(select_range(
            self.list(bucket).await?,
            after,
            before,
            limit,
            from_end,
        ))
    }

    /// Deletes the entries whose TTL has passed (they are already invisible); returns how
    /// many. Backends that expire entries themselves (etcd, Scylla) return 0.
    async fn purge_expired(&self) -> Result<usize> {
        Ok(0)
    }
}

/// What [`Kv::list_range`] returns, taken from a whole bucket listed in key order.
pub(crate) fn select_range(
    rows: Vec<(String, Vec<u8>)>,
    after: Option<&str>,
    before: Option<&str>,
    limit: usize,
    from_end: bool,
) -> Vec<(String, Vec<u8>)> {
    let mut rows: Vec<(String, Vec<u8>)> = rows
        .into_iter()
        .filter(|(k, _)| {
            after.is_none_or(|a| k.as_str() > a) && before.is_none_or(|b| k.as_str() < b)
        })
        .collect();
    if from_end {
        let skip = rows.len().saturating_sub(limit);
        rows.drain(..skip);
    } else {
        rows.truncate(limit);
    }
    rows
}

/// Checks a bucket name and key for the characters every backend accepts.
pub fn check_path(bucket: &str, key: &str) -> Result<()> {
    let bucket_ok = !bucket.is_empty()
        && !bucket.starts_with('/')
        && !bucket.ends_with('/')
        && bucket.bytes().all(|b| b.is_ascii_graphic());
    let key_ok = !key.is_empty()
        && key.len() <= 512
        && key.bytes().all(|b| b.is_ascii_graphic() && b != b'/');
    if bucket_ok && key_ok {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "bad storage path {bucket:?}/{key:?}"
        )))
    }
}
