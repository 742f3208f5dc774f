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
        let (done, mut result) = oneshot::channel();
        self.queue.lock().push(Request { bucket, rows, done });
        // Whoever holds the commit lock commits all that is queued. A writer whose batch
        // an earlier holder took is answered without queueing for the lock: with many
        // busy rooms, waiting its turn behind every other writer (each holder committing
        // only what arrived during the previous commit) made each room wait for hundreds
        // of commits instead of one or two.
        let answer = tokio::select! {
            biased;
            answer = &mut result => answer,
            _one = self.commit.lock() => {
                let taken = std::mem::take(&mut *self.queue.lock());
                if !taken.is_empty() {
                    self.commit_all(kv, taken).await;
                }
                // Ours was in `taken`, or an earlier holder took it and answered before
                // letting the lock go.
                result.await
            }
        };
        match answer {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(StoreError::backend(kv.backend(), e)),
            Err(_) => Err(StoreError::backend(kv.backend(), "group commit dropped")),
        }
    }

    /// Writes the queued requests in one transaction and answers each of them.
    async fn commit_all(&self, kv: &Arc<dyn Kv>, taken: Vec<Request>) {
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

    /// A store whose multi-bucket commit takes 5 ms and counts commits.
    #[derive(Default)]
    struct SlowKv {
        commits: std::sync::atomic::AtomicUsize,
    }

    #[async_trait::async_trait]
    impl Kv for SlowKv {
        fn backend(&self) -> &'static str {
            "slow"
        }
        async fn get(&self, _: &str, _: &str) -> weir_store::Result<Option<Vec<u8>>> {
            Ok(None)
        }
        async fn put(
            &self,
            _: &str,
            _: &str,
            _: &[u8],
            _: Option<std::time::Duration>,
        ) -> weir_store::Result<()> {
            Ok(())
        }
        async fn delete(&self, _: &str, _: &str) -> weir_store::Result<bool> {
            Ok(false)
        }
        async fn list(&self, _: &str) -> weir_store::Result<Vec<(String, Vec<u8>)>> {
            Ok(Vec::new())
        }
        async fn cas(
            &self,
            _: &str,
            _: &str,
            _: Option<&[u8]>,
            _: Option<&[u8]>,
        ) -> weir_store::Result<bool> {
            Ok(false)
        }
        async fn put_many_buckets(
            &self,
            _: &[(String, Vec<(String, Vec<u8>)>)],
        ) -> weir_store::Result<()> {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            self.commits
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Ok(())
        }
    }

    /// Many rooms storing all the time (each again 1 ms after its last commit): a write
    /// waits for about the commit in progress and the next one (10 ms; 40 ms allowed for
    /// a loaded machine), however many writers queue — not for one commit per writer
    /// ahead of it (200 writers: up to a second).
    #[tokio::test]
    async fn a_busy_writer_waits_for_two_commits_at_most() {
        let slow = Arc::new(SlowKv::default());
        let kv: Arc<dyn Kv> = slow.clone();
        let group = Arc::new(GroupCommit::default());
        let tasks: Vec<_> = (0..200u64)
            .map(|i| {
                let (kv, group) = (kv.clone(), group.clone());
                tokio::spawn(async move {
                    tokio::time::sleep(std::time::Duration::from_micros(i * 37)).await;
                    let mut worst = std::time::Duration::ZERO;
                    for n in 0..20 {
                        let started = tokio::time::Instant::now();
                        let rows = vec![(format!("k{n}"), vec![1])];
                        group.put(&kv, format!("chat-msg/r{i}"), rows).await?;
                        worst = worst.max(started.elapsed());
                        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                    }
                    Ok::<_, StoreError>(worst)
                })
            })
            .collect();
        let mut worst = std::time::Duration::ZERO;
        for t in tasks {
            worst = worst.max(t.await.expect("joined").expect("stored"));
        }
        assert!(
            worst <= std::time::Duration::from_millis(50),
            "a write waited {worst:?}"
        );
        // 4,000 writes in far fewer commits.
        let commits = slow.commits.load(std::sync::atomic::Ordering::Relaxed);
        assert!(commits < 400, "{commits} commits");
    }
}
