//! Moderator actions: ban, timeout, unban, delete, settings. Each is checked (the
//! caller moderates the channel; owners and admins cannot be targeted, moderators only
//! by the owner or an admin), stored, applied to the room, written to the audit log,
//! and pushed to every client of the room.

use weir_store::{Channel, Role, ids::now_ms};

use crate::error::{ChatError, Result};
use crate::gateway::{Caller, Gateway, is_moderator};
use crate::history::AuditEntry;
use crate::protocol::{Action, ActionKind, ServerMsg, UserRef};
use crate::room::Ban;

/// Default timeout length.
pub const DEFAULT_TIMEOUT_S: u64 = 600;
/// Longest timeout (two weeks).
pub const MAX_TIMEOUT_S: u64 = 14 * 24 * 3600;
/// Longest reason kept.
pub const MAX_REASON_CHARS: usize = 300;

impl Gateway {
    async fn target(&self, who: Option<&str>) -> Result<(UserRef, Role)> {
        let who = who
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ChatError::BadRequest("`user` is required".into()))?;
        // User ids and usernames only: e-mail addresses are not for moderators to probe.
        if !weir_store::ids::is_safe_id(who) {
            return Err(ChatError::NotFound("no such user".into()));
        }
        let store = &self.inner.store;
        let user = match store.get_user(who).await? {
            Some(u) => Some(u),
            None => store.find_user_by_login(who).await?,
        }
        .ok_or_else(|| ChatError::NotFound("no such user".into()))?;
        Ok((
            UserRef {
                id: user.id,
                name: user.username,
            },
            user.role,
        ))
    }

    /// Applies a moderator action on `channel` by `by`.
    pub async fn moderate(&self, channel: &Channel, by: &Caller, a: Action) -> Result<()> {
        if !is_moderator(by, channel) {
            return Err(ChatError::Forbidden(
                "only the channel's moderators may do this".into(),
            ));
        }
        let reason = a
            .reason
            .as_deref()
            .map(|r| r.trim().chars().take(MAX_REASON_CHARS).collect::<String>())
            .filter(|r| !r.is_empty());
        let now = now_ms();
        let cell = self.room(&channel.id).await?;
        let chat = self.chat_store();
        let mut audit = AuditEntry {
            ts: now,
            by: by.user.clone(),
            action: a.action.as_str().to_string(),
            user: None,
            message_id: None,
            duration_s: None,
            reason: reason.clone(),
        };
        let event = match a.action {
            ActionKind::Ban | ActionKind::Timeout => {
                let (user, role) = self.target(a.user.as_deref()).await?;
                if user.id == by.user.id {
                    return Err(ChatError::BadRequest("you cannot ban yourself".into()));
                }
                let target_role = channel.member_role(&user.id);
                let by_boss = by.role == Role::Admin || channel.owner_id == by.user.id;
                if role == Role::Admin
                    || target_role == Some(Role::Owner)
                    || (target_role == Some(Role::Moderator) && !by_boss)
                {
                    return Err(ChatError::Forbidden(
                        "the owner, admins and (except for the owner) moderators cannot be banned"
                            .into(),
                    ));
                }
                let until = match a.action {
                    ActionKind::Timeout => {
                        let d = a
                            .duration_s
                            .unwrap_or(DEFAULT_TIMEOUT_S)
                            .clamp(1, MAX_TIMEOUT_S);
                        audit.duration_s = Some(d);
                        Some(now + (d as i64) * 1000)
                    }
                    _ => None,
                };
                let ban = Ban {
                    user: user.clone(),
                    until,
                    reason: reason.clone(),
                    by: by.user.clone(),
                    at: now,
                };
                chat.put_ban(&channel.id, &ban, now).await?;
                cell.state.lock().room.ban(ban);
                audit.user = Some(user.clone());
                match until {
                    Some(until) => ServerMsg::TimedOut {
                        user,
                        until,
                        reason,
                        by: by.user.clone(),
                    },
                    None => ServerMsg::Banned {
                        user,
                        reason,
                        by: by.user.clone(),
                    },
                }
            }
            ActionKind::Unban => {
                let (user, _) = self.target(a.user.as_deref()).await?;
                chat.delete_ban(&channel.id, &user.id).await?;
                cell.state.lock().room.unban(&user.id, now);
                audit.user = Some(user.clone());
                ServerMsg::Unbanned {
                    user,
                    by: by.user.clone(),
                }
            }
            ActionKind::Delete => {
                let id = a
                    .message_id
                    .ok_or_else(|| ChatError::BadRequest("`message_id` is required".into()))?;
                let last = cell.state.lock().room.last_id();
                if id == 0 || id > last {
                    return Err(ChatError::NotFound("no such message".into()));
                }
                let mut found = false;
                for attempt in 0..2 {
                    if attempt > 0 {
                        // It may be pending or in the batch being stored right now.
                        let wait = (self.config().flush_interval * 3)
                            .max(std::time::Duration::from_millis(50));
                        tokio::time::sleep(wait).await;
                        drop(cell.flushing.lock().await);
                    }
                    let in_memory = cell.state.lock().room.delete(id);
                    let stored = chat.mark_deleted(&channel.id, id, &by.user, now).await?;
                    found = in_memory || stored;
                    if found {
                        break;
                    }
                }
                if !found {
                    return Err(ChatError::NotFound("no such message".into()));
                }
                audit.message_id = Some(id);
                ServerMsg::Deleted {
                    message_id: id,
                    by: by.user.clone(),
                    ts: now,
                }
            }
            ActionKind::Settings => {
                let s = a
                    .settings
                    .ok_or_else(|| ChatError::BadRequest("`settings` is required".into()))?;
                s.validate().map_err(ChatError::BadRequest)?;
                chat.put_settings(&channel.id, &s).await?;
                cell.state.lock().room.set_settings(s.clone());
                ServerMsg::SettingsChanged {
                    settings: s,
                    by: by.user.clone(),
                }
            }
        };
        if let Err(e) = chat.audit(&channel.id, &audit).await {
            // The action is in force; losing its audit line is logged, not undone.
            tracing::error!(channel = %channel.id, error = %e, "writing the chat audit log failed");
        }
        tracing::info!(
            channel = %channel.id,
            moderator = %by.user.name,
            action = a.action.as_str(),
            target = ?audit.user.as_ref().map(|u| &u.name),
            message_id = ?audit.message_id,
            "chat moderation"
        );
        metrics::counter!("weir_chat_moderation_actions_total", "action" => a.action.as_str())
            .increment(1);
        self.publish_event(&channel.id, &cell, &event).await
    }
}
