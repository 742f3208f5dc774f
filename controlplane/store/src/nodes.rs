//! Data-plane nodes under leases, and viewer counts aggregated across nodes.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Result, StoreError};
use crate::ids::{is_safe_id, now_ms};
use crate::model::Node;
use crate::store::Store;

const NODES: &str = "nodes";

fn viewers(channel_id: &str) -> String {
    format!("viewers/{channel_id}")
}

#[derive(Serialize, Deserialize)]
struct Count {
    count: u64,
    at: i64,
}

impl Store {
    /// Registers a node or renews its lease (a heartbeat); it vanishes `ttl` after the last
    /// call.
    pub async fn register_node(&self, mut node: Node, ttl: Duration) -> Result<Node> {
        if !is_safe_id(&node.id) {
            return Err(StoreError::Invalid("bad node id".into()));
        }
        node.last_seen = now_ms();
        // One lease per node (etcd), renewed by every heartbeat.
        self.put_json_owned(NODES, &node.id, &node, ttl, &node.id)
            .await?;
        Ok(node)
    }

    /// A node by id, if its lease is alive.
    pub async fn get_node(&self, id: &str) -> Result<Option<Node>> {
        if !is_safe_id(id) {
            return Ok(None);
        }
        self.get_json(NODES, id).await
    }

    /// Live nodes, by id.
    pub async fn list_nodes(&self) -> Result<Vec<Node>> {
        self.list_json(NODES).await
    }

    /// Deregisters a node.
    pub async fn remove_node(&self, id: &str) -> Result<bool> {
        if !is_safe_id(id) {
            return Ok(false);
        }
        self.kv().delete(NODES, id).await
    }

    /// Records a node's viewer count for a channel; it expires `ttl` after the node's last
    /// report (at the latest: see [`crate::Kv::put_owned`]) so a dead node's viewers drop
    /// out of the total.
    pub async fn set_viewer_count(
        &self,
        channel_id: &str,
        node_id: &str,
        count: u64,
        ttl: Duration,
    ) -> Result<()> {
        if !is_safe_id(channel_id) || !is_safe_id(node_id) {
            return Err(StoreError::Invalid("bad id".into()));
        }
        let c = Count {
            count,
            at: now_ms(),
        };
        // The node's counts share one lease (etcd), renewed by each report: they all
        // vanish `ttl` after the node's last report (a node reports 0 when a stream ends).
        self.put_json_owned(&viewers(channel_id), node_id, &c, ttl, node_id)
            .await
    }

    /// The channel's viewers summed over nodes.
    pub async fn viewer_count(&self, channel_id: &str) -> Result<u64> {
        if !is_safe_id(channel_id) {
            return Ok(0);
        }
        let v: Vec<Count> = self.list_json(&viewers(channel_id)).await?;
        Ok(v.iter().map(|c| c.count).sum())
    }
}
