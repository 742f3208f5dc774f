//! Group commit of chat messages across rooms. Each room's writer stores its own batch;
//! with many busy rooms that is one store commit per room per batch (1,000 rooms at 20
//! batches a second: 20,000 redb commits a second, far more than a disk does). Here the
//! writers that want to store at the same time share one commit: the first to get the
//! commit lock writes everything queued by then (its own batch and any others), the
//! rest find theirs done. Used when the backend writes several buckets in one
//! transaction ([`Kv::batches_buckets`]); otherwise batches go to the store one by one.

use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::oneshot;
use weir_store::{Kv, StoreError};

type Rows = Vec<(String, Vec<u8>)>;

struct Request {
    bucket: String,
    rows: Rows,
    done: oneshot::Sender<Result<(), String>>,
}

/// Shares store commits between concurrent writers.
#[derive(Default)]
pub(crate) struct GroupCommit {
    queue: Mutex<Vec<Request>>,
    commit: tokio::sync::Mutex<()>,
}

impl GroupCommit {
    /// Writes `rows` into `bucket` together with whatever other writers queue meanwhile;
    /// returns once they are committed.
    pub(crate) async fn put(
        &self,
        kv: &Arc<dyn Kv>,
        bucket: String,
        rows: Rows,
    ) -> Result<(), StoreError> {
        let (done, result) = oneshot::channel();
        self.queue.lock().push(Request { bucket, rows, done });
        {
            // Whoever holds the lock commits all that is queued; a writer whose batch an
            // earlier holder took finds the queue empty (or commits later arrivals).
            let _one = self.commit.lock().await;
            let taken = std::mem::take(&mut *self.queue.lock());
            if !taken.is_empty() {
                let (batches, waiters): (Vec<_>, Vec<_>) = taken
                    .into_iter()
                    .map(|r| ((r.bucket, r.rows), r.done))
                    .unzip();
                metrics::histogram!("weir_chat_group_commit_batches").record(batches.len() as f64);
                let r = kv
                    .put_many_buckets(&batches)
                    .await
                    .map_err(|e| e.to_string());
                for w in waiters {
                    let _ = w.send(r.clone());
                }
            }
        }
        match result.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(StoreError::backend(kv.backend(), e)),
            Err(_) => Err(StoreError::backend(kv.backend(), "group commit dropped")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writers_share_commits_and_all_land() {
        let kv: Arc<dyn Kv> = Arc::new(weir_store::MemoryKv::default());
        let group = Arc::new(GroupCommit::default());
        let tasks: Vec<_> = (0..50)
            .map(|i| {
                let (kv, group) = (kv.clone(), group.clone());
                tokio::spawn(async move {
                    let rows = vec![(format!("k{i}"), vec![i as u8])];
                    group.put(&kv, format!("chat-msg/r{}", i % 5), rows).await
                })
            })
            .collect();
        for t in tasks {
            t.await.expect("joined").expect("stored");
        }
        let mut n = 0;
        for r in 0..5 {
            n += kv
                .list(&format!("chat-msg/r{r}"))
                .await
                .expect("list")
                .len();
        }
        assert_eq!(n, 50);
    }
}
