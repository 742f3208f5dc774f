//! How a room's accepted messages get their order and reach every gateway serving the
//! room. [`LocalFanout`] (the default) does it within this process: ids from the room's
//! own counter, stored, then delivered. A cross-gateway implementation
//! ([`crate::redis::RedisFanout`]) takes ids from a sequencer every gateway shares and
//! delivers what any gateway publishes to this process's [`Hub`](crate::hub::Hub).

use async_trait::async_trait;

use crate::error::Result;
use crate::history::ChatStore;
use crate::hub::{Frame, RoomCell};
use crate::protocol::ServerMsg;
use crate::room::Pending;

/// Orders, stores and delivers a room's messages and events.
#[async_trait]
pub trait Fanout: Send + Sync + 'static {
    /// Gives `batch` its ids (in order, after every id the room had), stores it and
    /// delivers it to the room's subscribers on every gateway. Called by the room's one
    /// writer, so batches of one room never overlap. On `Err` the batch is retried
    /// later: an implementation must keep ids already given (`msg.id != 0`).
    async fn commit(
        &self,
        channel: &str,
        cell: &RoomCell,
        store: &ChatStore,
        batch: &mut [Pending],
    ) -> Result<()>;

    /// Delivers a moderation event (already stored and applied to `cell`'s room) to the
    /// room on every gateway; the others apply it to their copy of the room.
    async fn publish_event(&self, channel: &str, cell: &RoomCell, event: &ServerMsg) -> Result<()>;

    /// A room was loaded from the store with `last_id` as its newest id; returns the
    /// newest id the room has (a shared sequencer may be ahead of the store).
    async fn room_loaded(&self, channel: &str, last_id: u64) -> Result<u64> {
        let _ = channel;
        Ok(last_id)
    }
}

/// In-process fan-out: a single gateway needs nothing else. Messages are delivered only
/// once stored, so every message a client saw survives a restart.
#[derive(Debug, Clone, Copy, Default)]
pub struct LocalFanout;

#[async_trait]
impl Fanout for LocalFanout {
    async fn commit(
        &self,
        channel: &str,
        cell: &RoomCell,
        store: &ChatStore,
        batch: &mut [Pending],
    ) -> Result<()> {
        cell.state.lock().room.assign_ids(batch);
        let msgs: Vec<_> = batch.iter().map(|p| p.msg.clone()).collect();
        store.put_messages(channel, &msgs).await?;
        cell.state.lock().room.committed(&msgs);
        // Serialised once per message, for every subscriber.
        let frames: Vec<Frame> = msgs
            .into_iter()
            .map(|m| Frame::new(&ServerMsg::Message(m)))
            .collect();
        cell.deliver_all(&frames);
        Ok(())
    }

    async fn publish_event(
        &self,
        _channel: &str,
        cell: &RoomCell,
        event: &ServerMsg,
    ) -> Result<()> {
        cell.deliver(&Frame::new(event));
        Ok(())
    }
}
