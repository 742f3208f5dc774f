//! The etcd backend: hot, consistent state shared by control-plane replicas and data-plane
//! nodes (sessions, channel registry, key revocations, node registry under leases).
//!
//! Layout (see `schemas/etcd/keys.md`): `<prefix>/<bucket>/<key>`, prefix `/weir` by default;
//! values are JSON. TTL puts attach a fresh lease; compare-and-swap is an etcd transaction.

use std::time::Duration;

use async_trait::async_trait;
use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, GetOptions, PutOptions, SortOrder, SortTarget, Txn,
    TxnOp,
};

use crate::error::{Result, StoreError};
use crate::kv::{Kv, check_path};

const NAME: &str = "etcd";

fn be(e: impl std::fmt::Display) -> StoreError {
    StoreError::backend(NAME, e)
}

/// An etcd client bound to a key prefix.
#[derive(Clone)]
pub struct EtcdKv {
    client: Client,
    prefix: String,
}

impl std::fmt::Debug for EtcdKv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdKv")
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl EtcdKv {
    /// Connects to `endpoints` (e.g. `["http://127.0.0.1:2379"]`); every key is stored under
    /// `prefix` (e.g. `/weir`), so several deployments can share one cluster.
    pub async fn connect(endpoints: &[String], prefix: &str) -> Result<Self> {
        let opts = ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(3))
            .with_timeout(Duration::from_secs(5));
        let client = Client::connect(endpoints, Some(opts)).await.map_err(be)?;
        tracing::info!(?endpoints, prefix, "etcd store connected");
        Ok(Self {
            client,
            prefix: prefix.trim_end_matches('/').to_string(),
        })
    }

    fn key(&self, bucket: &str, key: &str) -> String {
        format!("{}/{bucket}/{key}", self.prefix)
    }
}

#[async_trait]
impl Kv for EtcdKv {
    fn backend(&self) -> &'static str {
        NAME
    }

    async fn get(&self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>> {
        check_path(bucket, key)?;
        let resp = self
            .client
            .clone()
            .get(self.key(bucket, key), None)
            .await
            .map_err(be)?;
        Ok(resp.kvs().first().map(|kv| kv.value().to_vec()))
    }

    async fn put(
        &self,
        bucket: &str,
        key: &str,
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<()> {
        check_path(bucket, key)?;
        let mut client = self.client.clone();
        let opts = match ttl {
            Some(ttl) => {
                let secs = ttl.as_secs().max(1) as i64;
                let lease = client.lease_grant(secs, None).await.map_err(be)?;
                Some(PutOptions::new().with_lease(lease.id()))
            }
            None => None,
        };
        client
            .put(self.key(bucket, key), value, opts)
            .await
            .map_err(be)?;
        Ok(())
    }

    async fn delete(&self, bucket: &str, key: &str) -> Result<bool> {
        check_path(bucket, key)?;
        let resp = self
            .client
            .clone()
            .delete(self.key(bucket, key), None)
            .await
            .map_err(be)?;
        Ok(resp.deleted() > 0)
    }

    async fn list(&self, bucket: &str) -> Result<Vec<(String, Vec<u8>)>> {
        check_path(bucket, "x")?;
        let prefix = format!("{}/{bucket}/", self.prefix);
        let opts = GetOptions::new()
            .with_prefix()
            .with_sort(SortTarget::Key, SortOrder::Ascend);
        let resp = self
            .client
            .clone()
            .get(prefix.as_str(), Some(opts))
            .await
            .map_err(be)?;
        let mut out = Vec::with_capacity(resp.kvs().len());
        for kv in resp.kvs() {
            let Ok(full) = kv.key_str() else { continue };
            let Some(rest) = full.strip_prefix(prefix.as_str()) else {
                continue;
            };
            if !rest.contains('/') {
                out.push((rest.to_string(), kv.value().to_vec()));
            }
        }
        Ok(out)
    }

    async fn cas(
        &self,
        bucket: &str,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool> {
        check_path(bucket, key)?;
        let k = self.key(bucket, key);
        let cmp = match expected {
            Some(v) => Compare::value(k.as_str(), CompareOp::Equal, v),
            None => Compare::create_revision(k.as_str(), CompareOp::Equal, 0),
        };
        let op = match new {
            Some(v) => TxnOp::put(k.as_str(), v, None),
            None => TxnOp::delete(k.as_str(), None),
        };
        let txn = Txn::new().when(vec![cmp]).and_then(vec![op]);
        let resp = self.client.clone().txn(txn).await.map_err(be)?;
        Ok(resp.succeeded())
    }
}
