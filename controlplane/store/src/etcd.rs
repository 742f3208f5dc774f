//! The etcd backend: hot, consistent state shared by control-plane replicas and data-plane
//! nodes (sessions, channel registry, key revocations, node registry under leases).
//!
//! Layout (see `schemas/etcd/keys.md`): `<prefix>/<bucket>/<key>`, prefix `/weir` by default;
//! values are JSON; compare-and-swap is an etcd transaction.
//!
//! Leases are reused, never granted per write:
//! - writes on behalf of a data-plane node ([`Kv::put_owned`]: its registration, its viewer
//!   counts) share one lease per node and TTL, kept alive by each write (a keep-alive, then
//!   the put). The lease ends `ttl` after the node's last write, taking its keys with it.
//! - other TTL writes (refresh tokens, revoked token families) share a lease per expiry
//!   slot: the expiry rounded up to 1/16 of the TTL (1 s to 1 h), so a key lives at least
//!   its TTL and at most one slot longer. Refresh tokens also carry their expiry, checked
//!   on read.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, GetOptions, PutOptions, SortOrder, SortTarget, Txn,
    TxnOp,
};

use parking_lot::Mutex;

use crate::error::{Result, StoreError};
use crate::ids::now_ms;
use crate::kv::{Kv, check_path, select_range};

const NAME: &str = "etcd";

/// Operations per transaction of [`Kv::put_many`] and [`Kv::put_many_buckets`] (etcd's
/// default limit is 128).
const TXN_OPS: usize = 100;

/// Most cached leases of each kind; beyond, the stalest are forgotten (their keys still
/// expire with them on the server; a later write just takes a new lease).
const MAX_LEASES: usize = 4096;

/// A lease kept alive by an owner's writes.
#[derive(Debug, Clone, Copy)]
struct OwnedLease {
    id: i64,
    /// Last grant or keep-alive: the lease ends `ttl` after it.
    renewed: Instant,
}

/// The leases this client reuses.
#[derive(Debug, Default)]
struct Leases {
    /// By (owner, TTL seconds).
    owned: HashMap<(String, i64), OwnedLease>,
    /// By expiry slot (Unix seconds).
    slots: BTreeMap<i64, i64>,
}

impl Leases {
    fn prune_owned(&mut self, now: Instant) {
        self.owned.retain(|(_, ttl), l| {
            now.duration_since(l.renewed) < Duration::from_secs(ttl.unsigned_abs())
        });
        while self.owned.len() >= MAX_LEASES {
            let Some(oldest) = self
                .owned
                .iter()
                .min_by_key(|(_, l)| l.renewed)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            self.owned.remove(&oldest);
        }
    }

    fn prune_slots(&mut self, now_secs: i64) {
        self.slots = self.slots.split_off(&(now_secs + 1));
        while self.slots.len() >= MAX_LEASES {
            self.slots.pop_first();
        }
    }
}

/// The expiry slot of a TTL write made at `now_secs`: the expiry rounded up to a multiple
/// of 1/16 of the TTL, clamped to 1 s … 1 h.
fn slot(now_secs: i64, ttl_secs: i64) -> i64 {
    let step = (ttl_secs / 16).clamp(1, 3600);
    let expiry = now_secs.saturating_add(ttl_secs);
    expiry
        .div_euclid(step)
        .saturating_add(i64::from(expiry % step != 0))
        * step
}

fn ttl_secs(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_secs().max(1)).unwrap_or(i64::MAX)
}

/// Whether etcd refused a write because its lease is gone (expired or revoked).
fn lease_gone(e: &etcd_client::Error) -> bool {
    e.to_string().contains("lease not found")
}

fn be(e: impl std::fmt::Display) -> StoreError {
    StoreError::backend(NAME, e)
}

/// An etcd client bound to a key prefix.
#[derive(Clone)]
pub struct EtcdKv {
    client: Client,
    prefix: String,
    leases: Arc<Mutex<Leases>>,
}

impl std::fmt::Debug for EtcdKv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let l = self.leases.lock();
        f.debug_struct("EtcdKv")
            .field("prefix", &self.prefix)
            .field("owned_leases", &l.owned.len())
            .field("slot_leases", &l.slots.len())
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
            leases: Arc::default(),
        })
    }

    fn key(&self, bucket: &str, key: &str) -> String {
        format!("{}/{bucket}/{key}", self.prefix)
    }

    /// Runs `ops` in transactions of at most [`TXN_OPS`] (etcd allows 128 operations per
    /// transaction), in order.
    async fn put_in_txns(&self, mut ops: Vec<TxnOp>) -> Result<()> {
        while !ops.is_empty() {
            let chunk: Vec<TxnOp> = ops.drain(..ops.len().min(TXN_OPS)).collect();
            self.client
                .clone()
                .txn(Txn::new().and_then(chunk))
                .await
                .map_err(be)?;
        }
        Ok(())
    }

    /// How many leases this client holds for reuse: (per owner, per expiry slot).
    pub fn cached_leases(&self) -> (usize, usize) {
        let l = self.leases.lock();
        (l.owned.len(), l.slots.len())
    }

    /// The shared lease of the expiry slot of a `ttl` write made now.
    async fn slot_lease(&self, ttl: Duration) -> Result<i64> {
        let now = now_ms().div_euclid(1000);
        let at = slot(now, ttl_secs(ttl));
        {
            let mut l = self.leases.lock();
            if let Some(id) = l.slots.get(&at) {
                return Ok(*id);
            }
            l.prune_slots(now);
        }
        let granted = self
            .client
            .clone()
            .lease_grant((at - now).max(1), None)
            .await
            .map_err(be)?;
        // Two writers may race to grant the slot's lease: the first one cached wins, the
        // other lease (holding only this key) expires at the same time.
        Ok(*self.leases.lock().slots.entry(at).or_insert(granted.id()))
    }

    /// The lease of `owner` for `ttl`, renewed now (a keep-alive, or a new grant when there
    /// is none or it lapsed).
    async fn owned_lease(&self, owner: &str, ttl: Duration) -> Result<i64> {
        let secs = ttl_secs(ttl);
        let k = (owner.to_string(), secs);
        let now = Instant::now();
        let cached = self
            .leases
            .lock()
            .owned
            .get(&k)
            .copied()
            .filter(|l| now.duration_since(l.renewed) < ttl);
        let mut client = self.client.clone();
        if let Some(l) = cached {
            // `lease_keep_alive` sends one keep-alive and reads its answer; it fails when
            // the lease is gone.
            match client.lease_keep_alive(l.id).await {
                Ok(_) => {
                    self.remember(k, l.id, now);
                    return Ok(l.id);
                }
                Err(e) => {
                    tracing::debug!(owner, error = %e, "etcd lease lapsed: granting a new one")
                }
            }
        }
        let id = client.lease_grant(secs, None).await.map_err(be)?.id();
        self.remember(k, id, now);
        Ok(id)
    }

    fn remember(&self, k: (String, i64), id: i64, renewed: Instant) {
        let mut l = self.leases.lock();
        if !l.owned.contains_key(&k) {
            l.prune_owned(renewed);
        }
        l.owned.insert(k, OwnedLease { id, renewed });
    }

    fn forget_owned(&self, owner: &str, ttl: Duration) {
        self.leases
            .lock()
            .owned
            .remove(&(owner.to_string(), ttl_secs(ttl)));
    }

    fn forget_slot(&self, id: i64) {
        self.leases.lock().slots.retain(|_, v| *v != id);
    }

    async fn put_with_lease(
        &self,
        bucket: &str,
        key: &str,
        value: &[u8],
        lease: i64,
    ) -> std::result::Result<(), etcd_client::Error> {
        self.client
            .clone()
            .put(
                self.key(bucket, key),
                value,
                Some(PutOptions::new().with_lease(lease)),
            )
            .await
            .map(drop)
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
        let Some(ttl) = ttl else {
            self.client
                .clone()
                .put(self.key(bucket, key), value, None)
                .await
                .map_err(be)?;
            return Ok(());
        };
        let lease = self.slot_lease(ttl).await?;
        match self.put_with_lease(bucket, key, value, lease).await {
            Err(e) if lease_gone(&e) => {
                self.forget_slot(lease);
                let lease = self.slot_lease(ttl).await?;
                self.put_with_lease(bucket, key, value, lease)
                    .await
                    .map_err(be)
            }
            r => r.map_err(be),
        }
    }

    async fn put_owned(
        &self,
        bucket: &str,
        key: &str,
        value: &[u8],
        ttl: Duration,
        owner: &str,
    ) -> Result<()> {
        check_path(bucket, key)?;
        let lease = self.owned_lease(owner, ttl).await?;
        match self.put_with_lease(bucket, key, value, lease).await {
            // Lapsed between the keep-alive and the put: once more with a new lease.
            Err(e) if lease_gone(&e) => {
                self.forget_owned(owner, ttl);
                let lease = self.owned_lease(owner, ttl).await?;
                self.put_with_lease(bucket, key, value, lease)
                    .await
                    .map_err(be)
            }
            r => r.map_err(be),
        }
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
        let lease = self.slot_lease(ttl).await?;
        let k = self.key(bucket, key);
        let txn = |lease: i64| {
            let cmp = match expected {
                Some(v) => Compare::value(k.as_str(), CompareOp::Equal, v),
                None => Compare::create_revision(k.as_str(), CompareOp::Equal, 0),
            };
            let op = TxnOp::put(k.as_str(), new, Some(PutOptions::new().with_lease(lease)));
            Txn::new().when(vec![cmp]).and_then(vec![op])
        };
        let resp = match self.client.clone().txn(txn(lease)).await {
            Err(e) if lease_gone(&e) => {
                self.forget_slot(lease);
                let lease = self.slot_lease(ttl).await?;
                self.client.clone().txn(txn(lease)).await.map_err(be)?
            }
            r => r.map_err(be)?,
        };
        Ok(resp.succeeded())
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

    async fn put_many(&self, bucket: &str, entries: &[(String, Vec<u8>)]) -> Result<()> {
        let mut ops = Vec::with_capacity(entries.len());
        for (key, value) in entries {
            check_path(bucket, key)?;
            ops.push(TxnOp::put(self.key(bucket, key), value.as_slice(), None));
        }
        self.put_in_txns(ops).await
    }

    /// Entries of several buckets packed into transactions of [`TXN_OPS`]: with many chat
    /// rooms storing at once, a few Raft commits instead of one per room. Atomic per
    /// transaction only, as [`Kv::put_many`].
    async fn put_many_buckets(&self, batches: &[(String, Vec<(String, Vec<u8>)>)]) -> Result<()> {
        let mut ops = Vec::with_capacity(batches.iter().map(|b| b.1.len()).sum());
        for (bucket, entries) in batches {
            for (key, value) in entries {
                check_path(bucket, key)?;
                ops.push(TxnOp::put(self.key(bucket, key), value.as_slice(), None));
            }
        }
        self.put_in_txns(ops).await
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
        if limit == 0 {
            return Ok(Vec::new());
        }
        let prefix = format!("{}/{bucket}/", self.prefix);
        // Keys strictly after `after` start at `after\0`; the bucket ends before `…0`
        // (the character after '/').
        let lo = after.map_or_else(|| prefix.clone(), |a| format!("{prefix}{a}\0"));
        let hi = before.map_or_else(
            || format!("{}/{bucket}0", self.prefix),
            |b| format!("{prefix}{b}"),
        );
        if lo >= hi {
            return Ok(Vec::new());
        }
        let order = if from_end {
            SortOrder::Descend
        } else {
            SortOrder::Ascend
        };
        let opts = GetOptions::new()
            .with_range(hi.as_str())
            .with_limit(i64::try_from(limit).unwrap_or(i64::MAX))
            .with_sort(SortTarget::Key, order);
        let resp = self
            .client
            .clone()
            .get(lo.as_str(), Some(opts))
            .await
            .map_err(be)?;
        let mut out = Vec::with_capacity(resp.kvs().len());
        let mut nested = false;
        for kv in resp.kvs() {
            let Ok(full) = kv.key_str() else { continue };
            let Some(rest) = full.strip_prefix(prefix.as_str()) else {
                continue;
            };
            if rest.contains('/') {
                nested = true;
            } else {
                out.push((rest.to_string(), kv.value().to_vec()));
            }
        }
        if nested && resp.more() {
            // Keys of nested buckets took part of the limit: filter the whole bucket.
            let all = self.list(bucket).await?;
            return Ok(select_range(all, after, before, limit, from_end));
        }
        if from_end {
            out.reverse();
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
