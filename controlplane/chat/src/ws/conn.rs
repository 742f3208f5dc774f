//! One connection's protocol state: who it is (re-checked periodically), and what each
//! client message does. Replies go through the connection's bounded queue.

use std::sync::Arc;

use weir_store::{Channel, ids::now_ms};

use super::refuse_frame;
use crate::gateway::{Caller, Gateway, Standing};
use crate::hub::{Frame, RoomCell, too_slow};
use crate::outbox::{Outbox, Push};
use crate::protocol::{ClientMsg, Code, ServerMsg, close};
use crate::room::Author;

/// Consecutive malformed messages before the connection is closed.
const MAX_BAD: u32 = 20;
/// How often (at most) a writing connection re-checks its token, account, session and
/// moderator standing (ms): a disabled account or a removed moderator stops within it.
const RECHECK_MS: i64 = 30_000;
/// How often (at most) a connection that was not following asks the store again when it
/// writes in a followers-only room (a follow made after joining counts within it).
const FOLLOW_RECHECK_MS: i64 = 2_000;

/// A connection as the protocol sees it.
pub(super) struct Conn {
    pub(super) gw: Gateway,
    pub(super) channel: Channel,
    pub(super) cell: Arc<RoomCell>,
    pub(super) caller: Option<Caller>,
    pub(super) token: Option<String>,
    pub(super) checked_at: i64,
    pub(super) standing: Standing,
    pub(super) follow_checked_at: i64,
    pub(super) ip: String,
    pub(super) outbox: Arc<Outbox>,
    pub(super) sub_id: u64,
    pub(super) bad: u32,
}

impl Conn {
    pub(super) fn welcome(&self, settings: crate::settings::Settings, last_id: u64) -> ServerMsg {
        ServerMsg::Welcome {
            channel: self.channel.id.clone(),
            user: self.caller.as_ref().map(|c| c.user.clone()),
            can_write: self.caller.is_some(),
            moderator: self.standing.moderator,
            settings,
            last_id,
        }
    }

    fn reply(&self, msg: &ServerMsg) {
        if self.outbox.push(Frame::new(msg)) == Push::Full {
            too_slow(&self.outbox);
        }
    }

    fn error(&self, code: Code, message: impl Into<String>, nonce: Option<String>) {
        self.reply(&ServerMsg::error(code, message, nonce));
    }

    /// The caller, when it may write now.
    fn writer(&self, nonce: &Option<String>) -> Option<&Caller> {
        match &self.caller {
            None => {
                self.error(
                    Code::Unauthenticated,
                    "anonymous connections are read-only: send `auth` with an access token",
                    nonce.clone(),
                );
                None
            }
            Some(c) if c.expired(now_ms()) => {
                self.error(
                    Code::TokenExpired,
                    "the access token expired: send `auth` with a fresh one",
                    nonce.clone(),
                );
                None
            }
            Some(c) => Some(c),
        }
    }

    /// Re-checks the token, account and standing when the last check is old.
    async fn recheck(&mut self) {
        let now = now_ms();
        if self.caller.is_none() || now - self.checked_at < RECHECK_MS {
            return;
        }
        self.checked_at = now;
        let Some(token) = self.token.clone() else {
            return;
        };
        match self.gw.authenticate(&token).await {
            Ok(c) => {
                if let Ok(ch) = self.gw.channel(&self.channel.id).await {
                    self.channel = ch;
                }
                if let Ok(s) = self.gw.standing(&self.channel, &c).await {
                    self.standing = s;
                    self.follow_checked_at = now;
                }
                self.caller = Some(c);
            }
            Err(e) if e.code() == Code::Unavailable => {}
            Err(e) => {
                tracing::debug!(error = %e, "chat connection's token no longer valid");
                self.caller = None;
                self.standing = Standing::default();
            }
        }
    }

    /// In a followers-only room, asks the store again whether a caller that was not
    /// following follows now (at most every [`FOLLOW_RECHECK_MS`]).
    async fn recheck_follow(&mut self) {
        let now = now_ms();
        let Some(caller) = &self.caller else {
            return;
        };
        if self.standing.followed_at.is_some() || now - self.follow_checked_at < FOLLOW_RECHECK_MS {
            return;
        }
        if !self.cell.state.lock().room.settings().followers_only {
            return;
        }
        self.follow_checked_at = now;
        if let Ok(since) = self
            .gw
            .follow_since(&self.channel.id, &caller.user.id)
            .await
        {
            self.standing.followed_at = since;
        }
    }

    pub(super) async fn handle(&mut self, text: &str) {
        let msg: ClientMsg = match serde_json::from_str(text) {
            Ok(m) => {
                self.bad = 0;
                m
            }
            Err(e) => {
                self.bad += 1;
                metrics::counter!("weir_chat_messages_refused_total", "code" => Code::BadRequest.as_str())
                    .increment(1);
                if self.bad >= MAX_BAD {
                    refuse_frame(
                        &self.outbox,
                        close::ABUSE,
                        "too many malformed messages",
                        "malformed",
                    );
                } else {
                    self.error(Code::BadRequest, format!("not a chat message: {e}"), None);
                }
                return;
            }
        };
        // `auth` and `moderate` cost store reads: they take tokens of the address's
        // connection bucket.
        if matches!(msg, ClientMsg::Auth { .. } | ClientMsg::Moderate(_))
            && let Err(ms) = self.gw.admit_connection(&self.ip)
        {
            let nonce = match &msg {
                ClientMsg::Moderate(a) => a.nonce.clone(),
                _ => None,
            };
            self.reply(&ServerMsg::Error {
                code: Code::RateLimited,
                message: "too many requests, slow down".into(),
                nonce,
                retry_after_ms: Some(ms),
            });
            return;
        }
        match msg {
            ClientMsg::Ping => self.reply(&ServerMsg::Pong),
            ClientMsg::Auth { token } => match self.gw.authenticate(&token).await {
                Ok(c) => {
                    self.token = Some(token);
                    self.checked_at = now_ms();
                    self.standing = self
                        .gw
                        .standing(&self.channel, &c)
                        .await
                        .unwrap_or_default();
                    self.follow_checked_at = now_ms();
                    self.caller = Some(c);
                    let (settings, last) = {
                        let st = self.cell.state.lock();
                        (st.room.settings().clone(), st.room.last_committed_id())
                    };
                    self.reply(&self.welcome(settings, last));
                }
                Err(e) => self.error(e.code(), e.public_message(), None),
            },
            ClientMsg::Send {
                text,
                reply_to,
                nonce,
            } => {
                self.recheck().await;
                self.recheck_follow().await;
                let Some(caller) = self.writer(&nonce) else {
                    return;
                };
                let author = Author {
                    conn: self.sub_id,
                    user: &caller.user,
                    ip: &self.ip,
                    moderator: self.standing.moderator,
                    subscriber: self.standing.subscriber,
                    followed_at: self.standing.followed_at,
                };
                // Accepted: the `ack` (with the id) comes once it is stored.
                let submitted = self
                    .gw
                    .submit(&self.cell, &author, &text, reply_to, nonce.clone());
                if let Err(r) = submitted {
                    self.reply(&ServerMsg::Error {
                        code: r.code,
                        message: r.message,
                        nonce,
                        retry_after_ms: r.retry_after_ms,
                    });
                }
            }
            ClientMsg::Moderate(action) => {
                let nonce = action.nonce.clone();
                self.recheck().await;
                let Some(caller) = self.writer(&nonce).cloned() else {
                    return;
                };
                // Fresh channel: moderators appointed or removed since the connection began.
                let result = match self.gw.channel(&self.channel.id).await {
                    Ok(ch) => {
                        self.channel = ch;
                        self.gw.moderate(&self.channel, &caller, action).await
                    }
                    Err(e) => Err(e),
                };
                match result {
                    Ok(()) => self.reply(&ServerMsg::Ack { nonce, id: None }),
                    Err(e) => self.error(e.code(), e.public_message(), nonce),
                }
            }
        }
    }
}
