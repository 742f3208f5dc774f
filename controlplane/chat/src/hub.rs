//! The rooms of this gateway and their subscribers (connections). Delivery never
//! waits: each connection has a bounded outbound queue, and a connection whose queue is
//! full is dropped (closed with [`close::SLOW_CONSUMER`]) instead of slowing the room.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::ws::Utf8Bytes;
use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::outbox::{Outbox, Push};
use crate::protocol::{ServerMsg, close};
use crate::room::Room;

/// A serialised server message, shared by every connection it goes to.
#[derive(Debug, Clone)]
pub struct Frame {
    /// The chat message id, for messages (connections skip ids they already sent).
    pub id: Option<u64>,
    /// The JSON text (cheap to clone).
    pub json: Utf8Bytes,
}

impl Frame {
    /// Serialises a message once.
    pub fn new(msg: &ServerMsg) -> Self {
        Self {
            id: msg.message_id(),
            json: Utf8Bytes::from(msg.to_json()),
        }
    }
}

struct Sub {
    id: u64,
    outbox: Arc<Outbox>,
}

/// A room with its subscribers.
pub struct RoomState {
    /// The sans-IO room.
    pub room: Room,
    subs: Vec<Sub>,
    /// Set when the room left the hub (idle): nobody may join it any more.
    closed: bool,
}

/// A room shared by its connections and its writer.
pub struct RoomCell {
    /// The room and its subscribers.
    pub state: Mutex<RoomState>,
    /// Wakes the writer (a message is pending, or shutdown).
    pub wake: Notify,
    /// Held while a batch is committed: the writer and shutdown never commit at once.
    pub flushing: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for RoomCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.state.lock();
        f.debug_struct("RoomCell")
            .field("channel", &s.room.channel())
            .field("subscribers", &s.subs.len())
            .finish()
    }
}

impl RoomCell {
    fn new(room: Room) -> Self {
        Self {
            state: Mutex::new(RoomState {
                room,
                subs: Vec::new(),
                closed: false,
            }),
            wake: Notify::new(),
            flushing: tokio::sync::Mutex::new(()),
        }
    }

    /// Delivers a frame to every subscriber without waiting; full queues are dropped.
    pub fn deliver(&self, frame: &Frame) {
        self.deliver_all(std::slice::from_ref(frame));
    }

    /// Delivers frames, in order, to every subscriber without waiting; full queues are
    /// dropped. Each subscriber gets the whole batch in one go, so its writer sends it
    /// with one socket write.
    pub fn deliver_all(&self, frames: &[Frame]) {
        let mut s = self.state.lock();
        s.subs.retain(|sub| match sub.outbox.push_all(frames) {
            Push::Queued => true,
            Push::Full => {
                too_slow(&sub.outbox);
                false
            }
            Push::Closed => false,
        });
    }

    /// Sends a frame to one subscriber (an `ack`); a full queue drops it as above.
    pub fn send_to(&self, id: u64, frame: Frame) {
        let s = self.state.lock();
        if let Some(sub) = s.subs.iter().find(|s| s.id == id)
            && sub.outbox.push(frame) == Push::Full
        {
            too_slow(&sub.outbox);
        }
    }

    /// Removes subscriber `id`.
    pub fn unsubscribe(&self, id: u64) {
        self.state.lock().subs.retain(|s| s.id != id);
    }

    /// How many connections are subscribed.
    pub fn subscribers(&self) -> usize {
        self.state.lock().subs.len()
    }
}

/// Closes a connection whose queue is full.
pub(crate) fn too_slow(outbox: &Outbox) {
    metrics::counter!("weir_chat_slow_clients_dropped_total").increment(1);
    outbox.close(close::SLOW_CONSUMER, "too slow: outbound queue full");
}

/// Every room of this gateway.
#[derive(Default)]
pub struct Hub {
    rooms: Mutex<HashMap<String, Arc<RoomCell>>>,
    next_sub: AtomicU64,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("rooms", &self.rooms.lock().len())
            .finish()
    }
}

/// What a new subscriber gets: its id, and what `snapshot` read from the room at the
/// instant it joined (so nothing falls between the snapshot and the live frames).
pub struct Joined<T> {
    /// The room.
    pub cell: Arc<RoomCell>,
    /// Subscriber id (for [`RoomCell::unsubscribe`]).
    pub id: u64,
    /// The snapshot.
    pub snapshot: T,
}

impl Hub {
    /// An empty hub.
    pub fn new() -> Self {
        Self::default()
    }

    /// The room of `channel`, if loaded.
    pub fn get(&self, channel: &str) -> Option<Arc<RoomCell>> {
        self.rooms.lock().get(channel).cloned()
    }

    /// Inserts a loaded room unless one is there already; returns the room to use and
    /// whether it is the new one (whose writer the caller must start).
    pub fn insert(&self, channel: &str, room: Room) -> (Arc<RoomCell>, bool) {
        let mut rooms = self.rooms.lock();
        if let Some(c) = rooms.get(channel) {
            return (c.clone(), false);
        }
        let c = Arc::new(RoomCell::new(room));
        rooms.insert(channel.to_string(), c.clone());
        metrics::gauge!("weir_chat_rooms").set(rooms.len() as f64);
        (c, true)
    }

    /// Subscribes to `cell` unless it left the hub (then `None`: load it again).
    pub fn subscribe<T>(
        &self,
        cell: &Arc<RoomCell>,
        outbox: Arc<Outbox>,
        snapshot: impl FnOnce(&Room) -> T,
    ) -> Option<Joined<T>> {
        let _rooms = self.rooms.lock();
        let mut s = cell.state.lock();
        if s.closed {
            return None;
        }
        let id = self.next_sub.fetch_add(1, Ordering::Relaxed);
        s.subs.push(Sub { id, outbox });
        let snapshot = snapshot(&s.room);
        Some(Joined {
            cell: cell.clone(),
            id,
            snapshot,
        })
    }

    /// Removes `channel`'s room when it has no subscriber and nothing pending; true
    /// when removed (the room's writer then ends).
    pub fn remove_if_idle(&self, channel: &str, cell: &Arc<RoomCell>) -> bool {
        let mut rooms = self.rooms.lock();
        let mut s = cell.state.lock();
        if !s.subs.is_empty() || s.room.pending_len() > 0 {
            return false;
        }
        s.closed = true;
        if rooms.get(channel).is_some_and(|c| Arc::ptr_eq(c, cell)) {
            rooms.remove(channel);
        }
        metrics::gauge!("weir_chat_rooms").set(rooms.len() as f64);
        true
    }

    /// Delivers to the local subscribers of `channel` (no-op when the room is not here).
    pub fn deliver(&self, channel: &str, frame: &Frame) {
        if let Some(c) = self.get(channel) {
            c.deliver(frame);
        }
    }

    /// Every loaded room.
    pub fn rooms(&self) -> Vec<(String, Arc<RoomCell>)> {
        self.rooms
            .lock()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Asks every connection to close (shutdown).
    pub fn close_all(&self, code: u16, reason: &str) {
        for (_, cell) in self.rooms() {
            for sub in &cell.state.lock().subs {
                sub.outbox.close(code, reason);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::room::RoomConfig;
    use crate::settings::Settings;

    fn room() -> Room {
        Room::new(
            "c",
            RoomConfig::default(),
            Settings::default(),
            (Vec::new(), 0),
            Vec::new(),
        )
    }

    #[test]
    fn a_full_queue_drops_only_that_subscriber() {
        let hub = Hub::new();
        let (cell, new) = hub.insert("c", room());
        assert!(new);
        let (fast, slow) = (Arc::new(Outbox::new(4)), Arc::new(Outbox::new(2)));
        assert!(hub.subscribe(&cell, fast.clone(), |_| ()).is_some());
        assert!(hub.subscribe(&cell, slow.clone(), |_| ()).is_some());
        let f = Frame::new(&ServerMsg::Pong);
        for _ in 0..3 {
            hub.deliver("c", &f);
        }
        assert_eq!(fast.len(), 3);
        assert_eq!(cell.subscribers(), 1);
        assert_eq!(slow.reason().map(|r| r.0), Some(close::SLOW_CONSUMER));
        assert!(fast.reason().is_none());
        // A closing connection gets nothing more and leaves the room.
        fast.close(close::NORMAL, "");
        hub.deliver("c", &f);
        assert_eq!(cell.subscribers(), 0);
    }

    #[test]
    fn idle_rooms_leave_and_refuse_late_joiners() {
        let hub = Hub::new();
        let (cell, _) = hub.insert("c", room());
        let outbox = Arc::new(Outbox::new(1));
        let j = hub
            .subscribe(&cell, outbox.clone(), |r| r.last_id())
            .expect("joined");
        assert!(!hub.remove_if_idle("c", &cell), "has a subscriber");
        cell.unsubscribe(j.id);
        assert!(hub.remove_if_idle("c", &cell));
        assert!(hub.get("c").is_none());
        assert!(hub.subscribe(&cell, outbox, |_| ()).is_none());
        let (again, new) = hub.insert("c", room());
        assert!(new && !Arc::ptr_eq(&again, &cell));
    }
}
