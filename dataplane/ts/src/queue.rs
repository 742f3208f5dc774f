//! The bounded queue of events waiting for [`poll`](crate::TsDemuxer::poll).

use std::collections::VecDeque;

use crate::{DropReason, MAX_PENDING_EVENTS, TsEvent};

/// Events in order; when full, new events are refused and counted, and the count is
/// reported as one [`DropReason::QueueFull`] in their place once there is room again.
#[derive(Debug, Default)]
pub(crate) struct EventQueue {
    events: VecDeque<TsEvent>,
    lost: usize,
}

impl EventQueue {
    /// Queues `event`; false if the queue was full and the event was dropped.
    pub fn push(&mut self, event: TsEvent) -> bool {
        if self.events.len() >= MAX_PENDING_EVENTS {
            self.lose();
            return false;
        }
        self.flush_lost();
        self.events.push_back(event);
        true
    }

    /// Counts an event dropped without being offered.
    pub fn lose(&mut self) {
        self.lost = self.lost.saturating_add(1);
    }

    /// The oldest event.
    pub fn pop(&mut self) -> Option<TsEvent> {
        self.events.pop_front().or_else(|| {
            self.flush_lost();
            self.events.pop_front()
        })
    }

    fn flush_lost(&mut self) {
        if self.lost > 0 {
            let events = std::mem::take(&mut self.lost);
            self.events.push_back(TsEvent::Dropped {
                reason: DropReason::QueueFull { events },
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dropped(skipped: usize) -> TsEvent {
        TsEvent::Dropped {
            reason: DropReason::Resync { skipped },
        }
    }

    #[test]
    fn full_queue_refuses_and_reports_in_place() {
        let mut q = EventQueue::default();
        for i in 0..MAX_PENDING_EVENTS + 5 {
            q.push(dropped(i));
        }
        assert!(!q.push(dropped(0)));
        assert_eq!(q.pop(), Some(dropped(0)));
        assert!(q.push(dropped(7)));
        for i in 1..MAX_PENDING_EVENTS {
            assert_eq!(q.pop(), Some(dropped(i)));
        }
        assert_eq!(
            q.pop(),
            Some(TsEvent::Dropped {
                reason: DropReason::QueueFull { events: 6 }
            })
        );
        assert_eq!(q.pop(), Some(dropped(7)));
        assert_eq!(q.pop(), None);
        q.lose();
        assert!(matches!(q.pop(), Some(TsEvent::Dropped { .. })));
        assert_eq!(q.pop(), None);
    }
}
