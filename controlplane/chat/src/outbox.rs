//! A connection's outbound queue and close signal, in one small allocation.
//!
//! The room pushes frames without waiting ([`Outbox::push_all`]: one lock and at most one
//! wake-up per batch); a full queue answers [`Push::Full`] and the room drops that
//! connection instead of growing memory or slowing the others. The connection's writer
//! takes what is queued in one go ([`Outbox::recv_batch`]). A close request (slow
//! consumer, moderation, shutdown) wakes the reader and the writer alike.
//!
//! Why not a tokio channel: a bounded `mpsc` allocates a block of 32 slots up front,
//! plus its own shared state and a separate close signal: about 2 KiB per idle
//! connection. This queue holds nothing while empty and gives back what a burst grew.

use std::collections::VecDeque;

use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::hub::Frame;

/// Capacity a drained queue keeps; more is given back (idle connections stay small).
const KEEP_CAPACITY: usize = 16;

/// What a push did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Push {
    /// Queued.
    Queued,
    /// The queue is full: the connection is too slow (nothing was queued).
    Full,
    /// The connection is closing: nothing more goes to it.
    Closed,
}

#[derive(Debug, Default)]
struct State {
    frames: VecDeque<Frame>,
    close: Option<(u16, String)>,
}

/// One connection's outbound frames and close request.
#[derive(Debug)]
pub struct Outbox {
    state: Mutex<State>,
    /// Wakes the writer (frames queued, or a close).
    frames: Notify,
    /// Wakes everyone waiting in [`Outbox::closed`].
    closing: Notify,
    capacity: usize,
}

impl Outbox {
    /// An empty outbox holding at most `capacity` frames.
    pub fn new(capacity: usize) -> Self {
        Self {
            state: Mutex::default(),
            frames: Notify::new(),
            closing: Notify::new(),
            capacity: capacity.max(1),
        }
    }

    /// Queues `frames` in order, all or none.
    pub fn push_all(&self, frames: &[Frame]) -> Push {
        let mut s = self.state.lock();
        if s.close.is_some() {
            return Push::Closed;
        }
        if s.frames.len() + frames.len() > self.capacity {
            return Push::Full;
        }
        let was_empty = s.frames.is_empty();
        s.frames.extend(frames.iter().cloned());
        drop(s);
        if was_empty && !frames.is_empty() {
            self.frames.notify_one();
        }
        Push::Queued
    }

    /// Queues one frame.
    pub fn push(&self, frame: Frame) -> Push {
        self.push_all(std::slice::from_ref(&frame))
    }

    /// Asks the connection to close with `code` (the first request wins); queued frames
    /// are not sent.
    pub fn close(&self, code: u16, reason: &str) {
        let mut s = self.state.lock();
        if s.close.is_none() {
            s.close = Some((code, reason.to_string()));
        }
        s.frames = VecDeque::new();
        drop(s);
        self.frames.notify_one();
        self.closing.notify_waiters();
    }

    /// The close requested, if any.
    pub fn reason(&self) -> Option<(u16, String)> {
        self.state.lock().close.clone()
    }

    /// Waits until a close is requested.
    pub async fn closed(&self) {
        loop {
            // Registered before the check, so a close in between still wakes it.
            let notified = self.closing.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.state.lock().close.is_some() {
                return;
            }
            notified.await;
        }
    }

    /// Waits for queued frames and moves them into `out` (up to about `max_bytes` of
    /// JSON, at least one frame); false once a close is requested.
    pub async fn recv_batch(&self, out: &mut Vec<Frame>, max_bytes: usize) -> bool {
        loop {
            // `notify_one` keeps a permit when nobody waits, so a push between the check
            // and the wait is not missed.
            let notified = self.frames.notified();
            {
                let mut s = self.state.lock();
                if s.close.is_some() {
                    return false;
                }
                if !s.frames.is_empty() {
                    let mut bytes = 0;
                    while bytes < max_bytes
                        && let Some(f) = s.frames.pop_front()
                    {
                        bytes += f.json.len();
                        out.push(f);
                    }
                    if s.frames.is_empty() && s.frames.capacity() > KEEP_CAPACITY {
                        s.frames.shrink_to(KEEP_CAPACITY);
                    } else if !s.frames.is_empty() {
                        // More than one batch queued: the writer comes back at once.
                        self.frames.notify_one();
                    }
                    return true;
                }
            }
            notified.await;
        }
    }

    /// Frames queued now.
    pub fn len(&self) -> usize {
        self.state.lock().frames.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::protocol::{ServerMsg, close};

    fn frame() -> Frame {
        Frame::new(&ServerMsg::Pong)
    }

    #[test]
    fn bounded_all_or_none() {
        let o = Outbox::new(3);
        assert_eq!(o.push_all(&[frame(), frame()]), Push::Queued);
        assert_eq!(o.push_all(&[frame(), frame()]), Push::Full);
        assert_eq!(o.len(), 2, "a refused batch queues nothing");
        assert_eq!(o.push(frame()), Push::Queued);
        o.close(close::SLOW_CONSUMER, "slow");
        assert!(o.is_empty(), "a close drops what is queued");
        assert_eq!(o.push(frame()), Push::Closed);
        o.close(close::GOING_AWAY, "later");
        assert_eq!(o.reason().map(|r| r.0), Some(close::SLOW_CONSUMER));
    }

    #[tokio::test]
    async fn the_writer_takes_batches_and_gives_memory_back() {
        let o = Arc::new(Outbox::new(1000));
        let mut out = Vec::new();
        let pending = tokio::spawn({
            let o = o.clone();
            async move {
                let mut out = Vec::new();
                o.recv_batch(&mut out, 1 << 20).await.then_some(out.len())
            }
        });
        tokio::task::yield_now().await;
        o.push(frame());
        let got = tokio::time::timeout(Duration::from_secs(5), pending).await;
        assert_eq!(got.expect("woken").expect("joined"), Some(1));
        let burst: Vec<Frame> = (0..500).map(|_| frame()).collect();
        assert_eq!(o.push_all(&burst), Push::Queued);
        let one = frame().json.len();
        assert!(o.recv_batch(&mut out, one * 100).await);
        assert_eq!(out.len(), 100, "at most max_bytes per batch");
        while !o.is_empty() {
            assert!(o.recv_batch(&mut out, usize::MAX).await);
        }
        assert_eq!(out.len(), 500);
        assert!(o.state.lock().frames.capacity() <= KEEP_CAPACITY);
    }

    #[tokio::test]
    async fn a_close_wakes_the_reader_and_the_writer() {
        let o = Arc::new(Outbox::new(8));
        let reader = tokio::spawn({
            let o = o.clone();
            async move { o.closed().await }
        });
        let writer = tokio::spawn({
            let o = o.clone();
            async move { o.recv_batch(&mut Vec::new(), 1).await }
        });
        tokio::task::yield_now().await;
        o.close(close::GOING_AWAY, "bye");
        let t = Duration::from_secs(5);
        tokio::time::timeout(t, reader)
            .await
            .expect("reader woken")
            .expect("joined");
        let sent = tokio::time::timeout(t, writer).await.expect("writer woken");
        assert!(!sent.expect("joined"));
        // One that starts waiting after the close returns at once.
        o.closed().await;
    }
}
