//! Destinations changed while a channel is live: the control plane tells the node that
//! relays the broadcast, so the change applies at once instead of at the next broadcast.
//!
//! After `createDestination`, `updateDestination` (URL, key, enabled) and
//! `deleteDestination`, [`ApiState::destinations_changed`] finds the channel's session
//! in progress and hands the binary's [`RelayDirector`] the whole list of enabled
//! destinations (keys opened for the node only). The director is idempotent: the node
//! starts what is new, stops what is gone (the destination sees a proper
//! `FCUnpublish`/`deleteStream`), reconnects what changed, and leaves the rest alone.
//! A failed call is logged; the mutation itself has succeeded and the next broadcast
//! takes the new list anyway.

use weir_store::Stream;

use crate::ApiState;
use crate::director::DirectorFuture;
use crate::events::RelayDestination;

/// Applies a channel's destination list to its live broadcast on the node carrying it.
pub trait RelayDirector: Send + Sync + 'static {
    /// The live session `stream` (its channel, on its node) now relays to exactly
    /// `destinations`. `Ok` also when the node no longer carries it (it ended).
    fn set(&self, stream: &Stream, destinations: Vec<RelayDestination>) -> DirectorFuture;
}

impl ApiState {
    /// Lets destination changes reach live broadcasts through `director` (set once;
    /// later calls are ignored). Without one, changes apply at the next broadcast.
    pub fn set_relay_director(&self, director: std::sync::Arc<dyn RelayDirector>) {
        let _ = self.inner.relays.set(director);
    }

    /// After a change to `channel_id`'s destinations: its live broadcast, if any,
    /// relays to the new list from now on. Never fails the caller (see the module).
    pub async fn destinations_changed(&self, channel_id: &str) {
        let Some(director) = self.inner.relays.get() else {
            return;
        };
        let stream = match self.store().active_stream(channel_id).await {
            Ok(Some(s)) => s,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(channel = %channel_id, error = %e, "destinations changed: cannot find the live stream");
                return;
            }
        };
        let destinations = match self.relay_destinations(channel_id).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(channel = %channel_id, error = %e, "destinations changed: cannot read them");
                return;
            }
        };
        let count = destinations.len();
        match director.set(&stream, destinations).await {
            Ok(()) => {
                tracing::info!(channel = %channel_id, stream = %stream.id, destinations = count, "live broadcast relays to the changed destinations")
            }
            Err(why) => {
                tracing::warn!(channel = %channel_id, stream = %stream.id, reason = %why, "destinations changed: the node did not take them (they apply at the next broadcast)")
            }
        }
    }
}
