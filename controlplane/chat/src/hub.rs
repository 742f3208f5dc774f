//! The rooms of this gateway and their subscribers (connections). Delivery never
//! waits: each connection has a bounded outbound queue, and a connection whose queue is
//! full is dropped (closed with [`close::SLOW_CONSUMER`]) instead of slowing the room.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::ws::Utf8Bytes;
use parking_lot::Mutex;
use tokio::sync::{Notify, mpsc};

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

/// How a connection is told to close (by delivery, moderation or shutdown).
#[derive(Debug, Default)]
pub struct CloseSignal {
    reason: Mutex<Option<(u16, String)>>,
    notify: Notify,
}

impl CloseSignal {
    /// Asks the connection to close with `code` (the first request wins).
    pub fn close(&self, code: u16, reason: &str) {
        let mut r = self.reason.lock();
        if r.is_none() {
            *r = Some((code, reason.to_string()));
        }
        drop(r);
        // Every waiter (the connection's reader and writer both wait).
        self.notify.notify_waiters();
    }

    /// The close requested, if any.
    pub fn reason(&self) -> Option<(u16, String)> {
        self.reason.lock().clone()
    }

    /// Waits until a close is requested.
    pub async fn wait(&self) {
        loop {
            // Registered before the check, so a close in between still wakes it.
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.reason.lock().is_some() {
                return;
            }
            notified.await;
        }
    }
}

struct Sub {
    id: u64,
    tx: mpsc::Sender<Frame>,
    signal: Arc<CloseSignal>,
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
        s.subs.retain(|sub| {
            for frame in frames {
                match sub.tx.try_send(frame.clone()) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        metrics::counter!("weir_chat_slow_clients_dropped_total").increment(1);
                        sub.signal
                            .close(close::SLOW_CONSUMER, "too slow: outbound queue full");
                        return false;
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => return false,
                }
            }
            true
        });
    }

    /// Sends a frame to one subscriber (an `ack`); a full queue drops it as above.
    pub fn send_to(&self, id: u64, frame: Frame) {
        let s = self.state.lock();
        if let Some(sub) = s.subs.iter().find(|s| s.id == id)
            && let Err(mpsc::error::TrySendError::Full(_)) = sub.tx.try_send(frame)
        {
            metrics::counter!("weir_chat_slow_clients_dropped_total").increment(1);
            sub.signal
                .close(close::SLOW_CONSUMER, "too slow: outbound queue full");
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
        tx: mpsc::Sender<Frame>,
        signal: Arc<CloseSignal>,
        snapshot: impl FnOnce(&Room) -> T,
    ) -> Option<Joined<T>> {
        let _rooms = self.rooms.lock();
        let mut s = cell.state.lock();
        if s.closed {
            return None;
        }
        let id = self.next_sub.fetch_add(1, Ordering::Relaxed);
        s.subs.push(Sub { id, tx, signal });
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
                sub.signal.close(code, reason);
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
        let (fast_tx, mut fast_rx) = mpsc::channel(4);
        let (slow_tx, _slow_rx) = mpsc::channel(2);
        let (fast_sig, slow_sig) = (
            Arc::new(CloseSignal::default()),
            Arc::new(CloseSignal::default()),
        );
        assert!(
            hub.subscribe(&cell, fast_tx, fast_sig.clone(), |_| ())
                .is_some()
        );
        assert!(
            hub.subscribe(&cell, slow_tx, slow_sig.clone(), |_| ())
                .is_some()
        );
        let f = Frame::new(&ServerMsg::Pong);
        for _ in 0..3 {
            hub.deliver("c", &f);
            assert!(fast_rx.try_recv().is_ok());
        }
        assert_eq!(cell.subscribers(), 1);
        assert_eq!(slow_sig.reason().map(|r| r.0), Some(close::SLOW_CONSUMER));
        assert!(fast_sig.reason().is_none());
    }

    #[tokio::test]
    async fn a_close_wakes_every_waiter() {
        let sig = Arc::new(CloseSignal::default());
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let s = sig.clone();
                tokio::spawn(async move { s.wait().await })
            })
            .collect();
        tokio::task::yield_now().await;
        sig.close(close::GOING_AWAY, "bye");
        for w in waiters {
            tokio::time::timeout(std::time::Duration::from_secs(5), w)
                .await
                .expect("woken")
                .expect("joined");
        }
        // And one that starts waiting after the close returns at once.
        sig.wait().await;
    }

    #[test]
    fn idle_rooms_leave_and_refuse_late_joiners() {
        let hub = Hub::new();
        let (cell, _) = hub.insert("c", room());
        let (tx, rx) = mpsc::channel(1);
        let j = hub
            .subscribe(&cell, tx.clone(), Arc::default(), |r| r.last_id())
            .expect("joined");
        assert!(!hub.remove_if_idle("c", &cell), "has a subscriber");
        cell.unsubscribe(j.id);
        assert!(hub.remove_if_idle("c", &cell));
        assert!(hub.get("c").is_none());
        assert!(hub.subscribe(&cell, tx, Arc::default(), |_| ()).is_none());
        drop(rx);
        let (again, new) = hub.insert("c", room());
        assert!(new && !Arc::ptr_eq(&again, &cell));
    }
}
