//! A room's writer task: hands pending messages to the fan-out in batches (ids, store,
//! delivery), acks the authors, retries on store errors, and unloads the room once idle.

use std::sync::Arc;
use std::time::Duration;

use crate::gateway::Inner;
use crate::hub::{Frame, RoomCell};
use crate::protocol::ServerMsg;

/// Hands a room's pending batch to the fan-out (ids, store, delivery) and acks the
/// authors; on an error the batch is kept for the next try. Returns whether it failed.
pub(crate) async fn flush(inner: &Inner, channel: &str, cell: &RoomCell) -> bool {
    // One batch at a time, in order (the fan-out gives ids as it commits).
    let _one = cell.flushing.lock().await;
    let mut batch = cell.state.lock().room.take_pending();
    if batch.is_empty() {
        return false;
    }
    let started = std::time::Instant::now();
    match inner
        .fanout
        .commit(channel, cell, &inner.chat, &mut batch)
        .await
    {
        Ok(()) => {
            metrics::histogram!("weir_chat_store_flush_seconds")
                .record(started.elapsed().as_secs_f64());
            metrics::counter!("weir_chat_store_batches_total").increment(1);
            for p in batch {
                let ack = ServerMsg::Ack {
                    nonce: p.nonce,
                    id: Some(p.msg.id),
                };
                cell.send_to(p.conn, Frame::new(&ack));
            }
            false
        }
        Err(e) => {
            metrics::counter!("weir_chat_store_errors_total").increment(1);
            tracing::warn!(%channel, error = %e, n = batch.len(), "storing chat messages failed: retrying");
            cell.state.lock().room.restore_pending(batch);
            true
        }
    }
}

/// A room's writer: waits for pending messages and stores them — group commit: a batch
/// is what arrived while the previous one was being stored, so an idle room stores a
/// message at once and a busy one batches by itself — at most every `flush_interval`
/// (none by default), and takes the room out of memory once idle.
pub(crate) async fn run(inner: Arc<Inner>, channel: String, cell: Arc<RoomCell>) {
    let cfg = inner.cfg.clone();
    let mut idle_since = tokio::time::Instant::now();
    loop {
        let woke = tokio::time::timeout(
            cfg.idle_room.min(Duration::from_secs(5)),
            cell.wake.notified(),
        )
        .await
        .is_ok();
        if woke {
            let failed = flush(&inner, &channel, &cell).await;
            // Back off while the store fails; else the optional minimum interval.
            let pause = if failed {
                cfg.flush_interval.max(Duration::from_millis(50)) * 20
            } else {
                cfg.flush_interval
            };
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
            if cell.state.lock().room.pending_len() > 0 {
                cell.wake.notify_one();
            }
            idle_since = tokio::time::Instant::now();
            continue;
        }
        if cell.subscribers() > 0 {
            idle_since = tokio::time::Instant::now();
        } else if idle_since.elapsed() >= cfg.idle_room && inner.hub.remove_if_idle(&channel, &cell)
        {
            tracing::debug!(%channel, "idle chat room unloaded");
            return;
        }
        if inner.stopping.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
    }
}
