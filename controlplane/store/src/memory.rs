//! An in-memory backend: for tests and throwaway runs. Nothing survives the process.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use parking_lot::Mutex;

use crate::error::Result;
use crate::kv::{Kv, check_path};

/// Entries by (bucket, key): value and optional expiry.
type Entries = BTreeMap<(String, String), (Vec<u8>, Option<Instant>)>;

/// A `BTreeMap` behind a mutex.
#[derive(Debug, Default)]
pub struct MemoryKv {
    map: Mutex<Entries>,
}

impl MemoryKv {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

fn live(entry: &(Vec<u8>, Option<Instant>)) -> bool {
    entry.1.is_none_or(|at| at > Instant::now())
}

#[async_trait]
impl Kv for MemoryKv {
    fn backend(&self) -> &'static str {
        "memory"
    }

    async fn get(&self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>> {
        check_path(bucket, key)?;
        let map = self.map.lock();
        Ok(map
            .get(&(bucket.to_string(), key.to_string()))
            .filter(|e| live(e))
            .map(|e| e.0.clone()))
    }

    async fn put(
        &self,
        bucket: &str,
        key: &str,
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<()> {
        check_path(bucket, key)?;
        let expiry = ttl.map(|t| Instant::now() + t);
        self.map.lock().insert(
            (bucket.to_string(), key.to_string()),
            (value.to_vec(), expiry),
        );
        Ok(())
    }

    async fn delete(&self, bucket: &str, key: &str) -> Result<bool> {
        check_path(bucket, key)?;
        let old = self
            .map
            .lock()
            .remove(&(bucket.to_string(), key.to_string()));
        Ok(old.is_some_and(|e| live(&e)))
    }

    async fn list(&self, bucket: &str) -> Result<Vec<(String, Vec<u8>)>> {
        check_path(bucket, "x")?;
        let map = self.map.lock();
        Ok(map
            .range((bucket.to_string(), String::new())..)
            .take_while(|((b, _), _)| b == bucket)
            .filter(|(_, e)| live(e))
            .map(|((_, k), e)| (k.clone(), e.0.clone()))
            .collect())
    }

    async fn cas(
        &self,
        bucket: &str,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool> {
        check_path(bucket, key)?;
        let mut map = self.map.lock();
        let k = (bucket.to_string(), key.to_string());
        let current = map.get(&k).filter(|e| live(e)).map(|e| e.0.as_slice());
        if current != expected {
            return Ok(false);
        }
        match new {
            Some(v) => {
                map.insert(k, (v.to_vec(), None));
            }
            None => {
                map.remove(&k);
            }
        }
        Ok(true)
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
        let mut map = self.map.lock();
        let k = (bucket.to_string(), key.to_string());
        let current = map.get(&k).filter(|e| live(e)).map(|e| e.0.as_slice());
        if current != expected {
            return Ok(false);
        }
        map.insert(k, (new.to_vec(), Some(Instant::now() + ttl)));
        Ok(true)
    }

    async fn purge_expired(&self) -> Result<usize> {
        let mut map = self.map.lock();
        let before = map.len();
        map.retain(|_, e| live(e));
        Ok(before - map.len())
    }
}

impl MemoryKv {
    /// How many entries are held, expired ones included (tests check purging).
    pub fn raw_len(&self) -> usize {
        self.map.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn purge_deletes_expired_entries() {
        let kv = MemoryKv::new();
        kv.put("b", "gone", b"1", Some(Duration::from_millis(10)))
            .await
            .expect("put");
        kv.put("b", "kept", b"2", None).await.expect("put");
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert_eq!(kv.raw_len(), 2, "expired entries linger until purged");
        assert_eq!(kv.purge_expired().await.expect("purge"), 1);
        assert_eq!(kv.raw_len(), 1);
        assert!(kv.get("b", "kept").await.expect("get").is_some());
    }
}
