//! Publish authorisation of participants' keys: a key minted by `joinStudio` publishes
//! to the participant's own node stream while the participant is in a broadcast that is
//! scheduled or live, and is refused once it left, was removed, or the broadcast ended.

use weir_store::{BroadcastStatus, StoreError};

use crate::state::ApiState;

/// What the control plane says about a studio participant's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StudioPublish {
    /// May publish. Its grant: no transcode, no relays, no signed playback, recorded when
    /// the broadcast records isolated tracks.
    Allowed {
        /// The node stream (the key's channel name).
        stream: String,
        /// The participant: the grant's channel id, so that what the node reports of
        /// the stream (its isolated-track recording) names it.
        participant_id: String,
        /// Record this stream.
        record: bool,
    },
    /// Refused, with the reason (safe to show).
    Refused(&'static str),
}

impl ApiState {
    /// `None` when `key_id` is not a studio participant's key (the ordinary channel-key
    /// rules apply); otherwise whether it may publish now.
    pub async fn studio_publish(&self, key_id: &str) -> Result<Option<StudioPublish>, StoreError> {
        let Some(k) = self.store().studio_key(key_id).await? else {
            return Ok(None);
        };
        let Some(p) = self.store().get_participant(&k.participant_id).await? else {
            return Ok(Some(StudioPublish::Refused(
                "the participant is no longer in the studio",
            )));
        };
        if !p.present() {
            return Ok(Some(StudioPublish::Refused(
                "the participant left the studio",
            )));
        }
        let Some(b) = self.store().get_studio_broadcast(&p.broadcast_id).await? else {
            return Ok(Some(StudioPublish::Refused("the broadcast was deleted")));
        };
        if b.status == BroadcastStatus::Ended {
            return Ok(Some(StudioPublish::Refused("the broadcast has ended")));
        }
        Ok(Some(StudioPublish::Allowed {
            participant_id: p.id,
            stream: p.stream,
            record: b.record_isolated,
        }))
    }
}
