//! Invitations: the nonce, expiry and revocation behind a signed invitation token.

use crate::error::{Result, StoreError};
use crate::ids::{is_safe_id, new_id, now_ms};
use crate::store::Store;

use super::model::{BroadcastStatus, Invitation};
use super::{INVITATIONS, MAX_INVITATIONS};

impl Store {
    /// Records a new invitation to a broadcast that has not ended.
    pub async fn create_invitation(
        &self,
        broadcast_id: &str,
        created_by: &str,
        expires_at: i64,
    ) -> Result<Invitation> {
        let b = self
            .get_studio_broadcast(broadcast_id)
            .await?
            .ok_or(StoreError::NotFound("studio broadcast"))?;
        if b.status == BroadcastStatus::Ended {
            return Err(StoreError::Conflict("the broadcast has ended".into()));
        }
        if !is_safe_id(created_by) {
            return Err(StoreError::Invalid("bad creator id".into()));
        }
        if self.list_invitations(broadcast_id).await?.len() >= MAX_INVITATIONS {
            return Err(StoreError::Conflict(format!(
                "a broadcast holds at most {MAX_INVITATIONS} invitations"
            )));
        }
        let now = now_ms();
        let inv = Invitation {
            id: new_id(),
            broadcast_id: broadcast_id.to_string(),
            created_by: created_by.to_string(),
            expires_at,
            revoked_at: None,
            uses: 0,
            created_at: now,
        };
        self.put_child(INVITATIONS, broadcast_id, &inv.id, &inv)
            .await?;
        Ok(inv)
    }

    /// An invitation by id.
    pub async fn get_invitation(&self, id: &str) -> Result<Option<Invitation>> {
        self.get_child(INVITATIONS, id).await
    }

    /// A broadcast's invitations, oldest first.
    pub async fn list_invitations(&self, broadcast_id: &str) -> Result<Vec<Invitation>> {
        self.list_children(INVITATIONS, broadcast_id).await
    }

    /// Revokes an invitation (idempotent): its token no longer admits anyone.
    pub async fn revoke_invitation(&self, id: &str) -> Result<Invitation> {
        let now = now_ms();
        self.update_child(INVITATIONS, id, |i: &mut Invitation| {
            i.revoked_at.get_or_insert(now);
            Ok(())
        })
        .await
    }

    /// Counts a guest who joined with an invitation.
    pub async fn note_invitation_use(&self, id: &str) -> Result<Invitation> {
        self.update_child(INVITATIONS, id, |i: &mut Invitation| {
            i.uses = i.uses.saturating_add(1);
            Ok(())
        })
        .await
    }
}
