//! Fan-out of a room's frames to the gateways serving it. [`LocalFanout`] (the default)
//! delivers within this process; a cross-gateway implementation (Redis) publishes to
//! the other gateways and delivers what they publish to this process's [`Hub`].

use std::sync::Arc;

use crate::hub::{Frame, Hub};

/// Carries a room's frames to every subscriber of that room on every gateway. Calls for
/// one room are made in order by one task (the room's writer for messages); an
/// implementation must keep that order per room. It never blocks: slow peers are the
/// implementation's to buffer (boundedly) or drop.
pub trait Fanout: Send + Sync + 'static {
    /// Publishes `frame` to the subscribers of `channel` (this gateway's included).
    fn publish(&self, channel: &str, frame: Frame);
}

/// In-process fan-out: a single gateway needs nothing else.
#[derive(Debug, Clone)]
pub struct LocalFanout {
    hub: Arc<Hub>,
}

impl LocalFanout {
    /// Fan-out into `hub`.
    pub fn new(hub: Arc<Hub>) -> Self {
        Self { hub }
    }
}

impl Fanout for LocalFanout {
    fn publish(&self, channel: &str, frame: Frame) {
        self.hub.deliver(channel, &frame);
    }
}
