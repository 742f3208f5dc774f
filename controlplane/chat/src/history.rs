//! What the chat keeps in the store, through the [`Kv`] trait:
//!
//! | bucket                  | key                         | value                        |
//! |-------------------------|-----------------------------|------------------------------|
//! | `chat-msg/<channel>`    | message id, 20 digits       | [`StoredMessage`] JSON       |
//! | `chat-bans/<channel>`   | user id                     | [`Ban`] JSON (timeouts: TTL) |
//! | `chat-settings`         | channel id                  | [`Settings`] JSON            |
//! | `chat-audit/<channel>`  | time-ordered id             | [`AuditEntry`] JSON          |
//!
//! Message keys are zero-padded so that key order is id order (ranges page by id).

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use weir_store::Kv;

use crate::error::Result;
use crate::protocol::{ChatMessage, UserRef};
use crate::room::Ban;
use crate::settings::Settings;

/// A stored message: the message, and its deletion if a moderator removed it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredMessage {
    /// The message.
    #[serde(flatten)]
    pub msg: ChatMessage,
    /// Who deleted it and when (it is then left out of history).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted: Option<(UserRef, i64)>,
}

/// One moderator action in the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// When (Unix ms).
    pub ts: i64,
    /// The moderator.
    pub by: UserRef,
    /// `ban`, `timeout`, `unban`, `delete`, `settings`.
    pub action: String,
    /// The target user, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<UserRef>,
    /// The target message, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<u64>,
    /// Timeout length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_s: Option<u64>,
    /// Why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A page of history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Page {
    /// Messages, oldest first (deleted ones left out).
    pub messages: Vec<ChatMessage>,
    /// Pass as `before` for the previous page; `None` when this was the first.
    pub next_before: Option<u64>,
}

fn key(id: u64) -> String {
    format!("{id:020}")
}

fn msg_bucket(channel: &str) -> String {
    format!("chat-msg/{channel}")
}

fn ban_bucket(channel: &str) -> String {
    format!("chat-bans/{channel}")
}

fn audit_bucket(channel: &str) -> String {
    format!("chat-audit/{channel}")
}

const SETTINGS: &str = "chat-settings";

/// The chat's storage over a [`Kv`] backend. Cheap to clone.
#[derive(Clone)]
pub struct ChatStore {
    kv: Arc<dyn Kv>,
    group: Arc<crate::group::GroupCommit>,
}

impl std::fmt::Debug for ChatStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatStore")
            .field("backend", &self.kv.backend())
            .finish()
    }
}

fn decode_msgs(rows: Vec<(String, Vec<u8>)>) -> Result<Vec<StoredMessage>> {
    rows.iter()
        .map(|(_, v)| serde_json::from_slice(v).map_err(Into::into))
        .collect()
}

impl ChatStore {
    /// Storage over `kv`.
    pub fn new(kv: Arc<dyn Kv>) -> Self {
        Self {
            kv,
            group: Arc::default(),
        }
    }

    /// Writes a batch of accepted messages in one call; where the backend commits
    /// several buckets at once, in one commit with other rooms' batches written at the
    /// same time (group commit).
    pub async fn put_messages(&self, channel: &str, batch: &[ChatMessage]) -> Result<()> {
        let mut rows = Vec::with_capacity(batch.len());
        for m in batch {
            let stored = StoredMessage {
                msg: m.clone(),
                deleted: None,
            };
            rows.push((key(m.id), serde_json::to_vec(&stored)?));
        }
        if self.kv.batches_buckets() {
            return Ok(self.group.put(&self.kv, msg_bucket(channel), rows).await?);
        }
        Ok(self.kv.put_many(&msg_bucket(channel), &rows).await?)
    }

    /// The newest `n` messages not deleted (oldest first) and the newest id stored.
    pub async fn recent(&self, channel: &str, n: usize) -> Result<(Vec<ChatMessage>, u64)> {
        let rows = self
            .kv
            .list_range(&msg_bucket(channel), None, None, n, true)
            .await?;
        let msgs = decode_msgs(rows)?;
        let last = msgs.last().map_or(0, |m| m.msg.id);
        let live = msgs
            .into_iter()
            .filter(|m| m.deleted.is_none())
            .map(|m| m.msg)
            .collect();
        Ok((live, last))
    }

    /// Up to `limit` stored messages before id `before` (`None`: the newest), oldest first.
    pub async fn page(&self, channel: &str, before: Option<u64>, limit: usize) -> Result<Page> {
        let before_key = before.map(key);
        let rows = self
            .kv
            .list_range(
                &msg_bucket(channel),
                None,
                before_key.as_deref(),
                limit,
                true,
            )
            .await?;
        let msgs = decode_msgs(rows)?;
        let first = msgs.first().map(|m| m.msg.id);
        let next_before = match first {
            Some(id) if msgs.len() == limit && id > 1 => Some(id),
            _ => None,
        };
        let messages = msgs
            .into_iter()
            .filter(|m| m.deleted.is_none())
            .map(|m| m.msg)
            .collect();
        Ok(Page {
            messages,
            next_before,
        })
    }

    /// Up to `limit` messages after id `since`, oldest first, and whether more follow.
    pub async fn after(
        &self,
        channel: &str,
        since: u64,
        limit: usize,
    ) -> Result<(Vec<ChatMessage>, bool)> {
        let rows = self
            .kv
            .list_range(
                &msg_bucket(channel),
                Some(&key(since)),
                None,
                limit + 1,
                false,
            )
            .await?;
        let mut msgs = decode_msgs(rows)?;
        let more = msgs.len() > limit;
        msgs.truncate(limit);
        Ok((
            msgs.into_iter()
                .filter(|m| m.deleted.is_none())
                .map(|m| m.msg)
                .collect(),
            more,
        ))
    }

    /// Marks a stored message deleted; false when it is not stored (yet).
    pub async fn mark_deleted(
        &self,
        channel: &str,
        id: u64,
        by: &UserRef,
        at: i64,
    ) -> Result<bool> {
        let bucket = msg_bucket(channel);
        let Some(raw) = self.kv.get(&bucket, &key(id)).await? else {
            return Ok(false);
        };
        let mut m: StoredMessage = serde_json::from_slice(&raw)?;
        if m.deleted.is_none() {
            m.deleted = Some((by.clone(), at));
            self.kv
                .put(&bucket, &key(id), &serde_json::to_vec(&m)?, None)
                .await?;
        }
        Ok(true)
    }

    /// The bans and timeouts in force (expired timeouts are gone with their TTL).
    pub async fn bans(&self, channel: &str, now: i64) -> Result<Vec<Ban>> {
        let rows = self.kv.list(&ban_bucket(channel)).await?;
        let mut out = Vec::with_capacity(rows.len());
        for (_, v) in rows {
            let b: Ban = serde_json::from_slice(&v)?;
            if b.until.is_none_or(|u| u > now) {
                out.push(b);
            }
        }
        Ok(out)
    }

    /// Stores a ban (no TTL) or timeout (expires with it).
    pub async fn put_ban(&self, channel: &str, ban: &Ban, now: i64) -> Result<()> {
        let ttl = ban
            .until
            .map(|u| Duration::from_millis((u - now).max(1000) as u64));
        Ok(self
            .kv
            .put(
                &ban_bucket(channel),
                &ban.user.id,
                &serde_json::to_vec(ban)?,
                ttl,
            )
            .await?)
    }

    /// Removes a ban or timeout.
    pub async fn delete_ban(&self, channel: &str, user_id: &str) -> Result<()> {
        self.kv.delete(&ban_bucket(channel), user_id).await?;
        Ok(())
    }

    /// The room settings (defaults when never set).
    pub async fn settings(&self, channel: &str) -> Result<Settings> {
        match self.kv.get(SETTINGS, channel).await? {
            Some(raw) => Ok(serde_json::from_slice(&raw)?),
            None => Ok(Settings::default()),
        }
    }

    /// Stores the room settings.
    pub async fn put_settings(&self, channel: &str, s: &Settings) -> Result<()> {
        Ok(self
            .kv
            .put(SETTINGS, channel, &serde_json::to_vec(s)?, None)
            .await?)
    }

    /// Appends to the audit log.
    pub async fn audit(&self, channel: &str, e: &AuditEntry) -> Result<()> {
        Ok(self
            .kv
            .put(
                &audit_bucket(channel),
                &weir_store::ids::new_id(),
                &serde_json::to_vec(e)?,
                None,
            )
            .await?)
    }

    /// The newest `limit` audit entries, oldest first.
    pub async fn audit_log(&self, channel: &str, limit: usize) -> Result<Vec<AuditEntry>> {
        let rows = self
            .kv
            .list_range(&audit_bucket(channel), None, None, limit, true)
            .await?;
        rows.iter()
            .map(|(_, v)| serde_json::from_slice(v).map_err(Into::into))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_store::MemoryKv;

    fn msg(id: u64) -> ChatMessage {
        ChatMessage {
            id,
            ts: id as i64,
            user: UserRef {
                id: "u".into(),
                name: "n".into(),
            },
            text: format!("m{id}"),
            reply_to: None,
        }
    }

    #[tokio::test]
    async fn messages_page_and_resume() {
        let s = ChatStore::new(Arc::new(MemoryKv::new()));
        let batch: Vec<ChatMessage> = (1..=12).map(msg).collect();
        s.put_messages("c", &batch).await.expect("put");
        s.put_messages("other", &[msg(1)]).await.expect("put");
        let by = UserRef {
            id: "m".into(),
            name: "m".into(),
        };
        assert!(s.mark_deleted("c", 12, &by, 5).await.expect("del"));
        assert!(!s.mark_deleted("c", 99, &by, 5).await.expect("del"));
        let (recent, last) = s.recent("c", 5).await.expect("recent");
        assert_eq!(last, 12);
        assert_eq!(
            recent.iter().map(|m| m.id).collect::<Vec<_>>(),
            [8, 9, 10, 11]
        );
        let p = s.page("c", Some(8), 5).await.expect("page");
        assert_eq!(
            p.messages.iter().map(|m| m.id).collect::<Vec<_>>(),
            [3, 4, 5, 6, 7]
        );
        assert_eq!(p.next_before, Some(3));
        let p = s.page("c", Some(3), 5).await.expect("page");
        assert_eq!(p.messages.len(), 2);
        assert_eq!(p.next_before, None);
        let (after, more) = s.after("c", 9, 2).await.expect("after");
        assert_eq!(
            (after.iter().map(|m| m.id).collect::<Vec<_>>(), more),
            (vec![10, 11], true)
        );
        let (after, more) = s.after("c", 10, 5).await.expect("after");
        assert_eq!((after.len(), more), (1, false), "12 is deleted");
    }

    #[tokio::test]
    async fn bans_settings_audit() {
        let s = ChatStore::new(Arc::new(MemoryKv::new()));
        let u = UserRef {
            id: "u".into(),
            name: "n".into(),
        };
        let ban = Ban {
            user: u.clone(),
            until: None,
            reason: None,
            by: u.clone(),
            at: 0,
        };
        s.put_ban("c", &ban, 0).await.expect("ban");
        assert_eq!(s.bans("c", 0).await.expect("bans"), vec![ban]);
        s.delete_ban("c", "u").await.expect("unban");
        assert!(s.bans("c", 0).await.expect("bans").is_empty());
        assert_eq!(s.settings("c").await.expect("s"), Settings::default());
        let st = Settings {
            slow_mode_s: 5,
            ..Settings::default()
        };
        s.put_settings("c", &st).await.expect("put");
        assert_eq!(s.settings("c").await.expect("s").slow_mode_s, 5);
        for i in 0..3 {
            let e = AuditEntry {
                ts: i,
                by: u.clone(),
                action: "ban".into(),
                user: None,
                message_id: None,
                duration_s: None,
                reason: None,
            };
            s.audit("c", &e).await.expect("audit");
        }
        let log = s.audit_log("c", 2).await.expect("log");
        assert_eq!(log.iter().map(|e| e.ts).collect::<Vec<_>>(), [1, 2]);
    }
}
