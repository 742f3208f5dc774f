//! [`Gateway`]: the chat service of one process — authentication, rooms loaded from the
//! store on first use, each with a writer task that batches accepted messages into the
//! store and then fans them out, and the moderator actions.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use weir_auth::{Auth, AuthError};
use weir_store::{Channel, Role, Store, ids::now_ms};

use crate::bucket::Rate;
use crate::error::{ChatError, Result};
use crate::fanout::{Fanout, LocalFanout};
use crate::history::{ChatStore, Page};
use crate::hub::{Frame, Hub, RoomCell};
use crate::outbox::Outbox;
use crate::protocol::{ChatMessage, Code, ServerMsg, UserRef, close};
use crate::room::{Author, Limits, Refusal, Room, RoomConfig};

/// Limits and timings of the gateway.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Per-room limits (message length, history length, repeat window).
    pub room: RoomConfig,
    /// Messages per user, across rooms.
    pub per_user: Rate,
    /// Messages per client address, across rooms.
    pub per_ip: Rate,
    /// Websocket connections opened, and `auth` / `moderate` messages, per client
    /// address.
    pub per_ip_connects: Rate,
    /// Shortest pause between two stores of a room's pending messages. Zero (the
    /// default): group commit — a room stores what arrived while its previous batch was
    /// being stored, and rooms storing at once share one commit where the backend can.
    pub flush_interval: Duration,
    /// Outbound queue of a connection, in messages; full → dropped (4008).
    pub outbound_queue: usize,
    /// Largest incoming frame, bytes; larger → closed (1009).
    pub max_frame_bytes: usize,
    /// Most missed messages sent on resume (`since=`); the rest is over HTTP.
    pub resume_limit: usize,
    /// A room without connections leaves memory after this long.
    pub idle_room: Duration,
    /// Largest history page over HTTP.
    pub max_page: usize,
    /// A socket write taking longer than this drops the connection.
    pub send_timeout: Duration,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            room: RoomConfig::default(),
            per_user: Rate {
                burst: 5,
                per_second: 1.0,
            },
            per_ip: Rate {
                burst: 20,
                per_second: 5.0,
            },
            per_ip_connects: Rate {
                burst: 30,
                per_second: 2.0,
            },
            flush_interval: Duration::ZERO,
            outbound_queue: 256,
            max_frame_bytes: 4096,
            resume_limit: 500,
            idle_room: Duration::from_secs(60),
            max_page: 100,
            send_timeout: Duration::from_secs(10),
        }
    }
}

/// An authenticated chat user.
#[derive(Debug, Clone, PartialEq)]
pub struct Caller {
    /// The user.
    pub user: UserRef,
    /// The global role.
    pub role: Role,
    /// Token expiry (Unix s).
    pub exp: u64,
}

impl Caller {
    /// Whether the token has expired at `now_ms`.
    pub fn expired(&self, now_ms: i64) -> bool {
        (self.exp as i64) * 1000 <= now_ms
    }
}

/// A room's frames, for [`Gateway::watch`]; leaves the room when dropped.
pub struct Watch {
    outbox: Arc<Outbox>,
    queued: std::collections::VecDeque<Frame>,
    cell: Arc<RoomCell>,
    id: u64,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch").field("id", &self.id).finish()
    }
}

impl Watch {
    /// The next message or event (acks and errors are not sent to watchers); `None`
    /// once dropped for being slow.
    pub async fn next(&mut self) -> Option<ServerMsg> {
        loop {
            let f = match self.queued.pop_front() {
                Some(f) => f,
                None => {
                    let mut batch = Vec::new();
                    if !self.outbox.recv_batch(&mut batch, usize::MAX).await {
                        return None;
                    }
                    self.queued.extend(batch);
                    continue;
                }
            };
            match serde_json::from_str::<ServerMsg>(f.json.as_str()) {
                Ok(m) => return Some(m),
                Err(e) => tracing::debug!(error = %e, "chat watch: unreadable frame"),
            }
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.cell.unsubscribe(self.id);
    }
}

/// A caller's standing in one channel's chat.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Standing {
    /// Owner, moderator or admin.
    pub moderator: bool,
    /// A subscriber (moderators count as subscribers).
    pub subscriber: bool,
    /// When the caller began following the channel (Unix ms).
    pub followed_at: Option<i64>,
}

/// Whether `caller` moderates `channel`: admins, the owner, appointed moderators.
pub fn is_moderator(caller: &Caller, channel: &Channel) -> bool {
    caller.role == Role::Admin
        || matches!(
            channel.member_role(&caller.user.id),
            Some(Role::Owner | Role::Moderator)
        )
}

pub(crate) struct Inner {
    pub store: Store,
    pub auth: Auth,
    pub chat: ChatStore,
    pub hub: Arc<Hub>,
    pub fanout: Arc<dyn Fanout>,
    pub limits: Mutex<Limits>,
    pub connects: Mutex<crate::bucket::Buckets>,
    pub cfg: GatewayConfig,
    pub stopping: std::sync::atomic::AtomicBool,
}

/// The chat gateway. Cheap to clone.
#[derive(Clone)]
pub struct Gateway {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("hub", &self.inner.hub)
            .field("cfg", &self.inner.cfg)
            .finish()
    }
}

impl Gateway {
    /// A single-node gateway (in-process fan-out) over the control plane's store and
    /// account service.
    pub fn new(store: Store, auth: Auth, cfg: GatewayConfig) -> Self {
        Self::with_fanout(store, auth, cfg, |_| Arc::new(LocalFanout))
    }

    /// A gateway whose fan-out `make` builds around this gateway's [`Hub`].
    pub fn with_fanout(
        store: Store,
        auth: Auth,
        cfg: GatewayConfig,
        make: impl FnOnce(Arc<Hub>) -> Arc<dyn Fanout>,
    ) -> Self {
        let hub = Arc::new(Hub::new());
        let fanout = make(hub.clone());
        Self {
            inner: Arc::new(Inner {
                chat: ChatStore::new(store.kv().clone()),
                limits: Mutex::new(Limits::new(cfg.per_user, cfg.per_ip, 100_000)),
                connects: Mutex::new(crate::bucket::Buckets::new(cfg.per_ip_connects, 100_000)),
                store,
                auth,
                hub,
                fanout,
                cfg,
                stopping: std::sync::atomic::AtomicBool::new(false),
            }),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &GatewayConfig {
        &self.inner.cfg
    }

    /// The chat storage.
    pub fn chat_store(&self) -> &ChatStore {
        &self.inner.chat
    }

    /// Checks an access token, the account (active) and the session (not revoked).
    pub async fn authenticate(&self, token: &str) -> Result<Caller> {
        let claims = self
            .inner
            .auth
            .verify_access_claims(token.trim())
            .map_err(|e| match e {
                AuthError::ExpiredToken => {
                    ChatError::Auth(Code::TokenExpired, "the access token expired".into())
                }
                _ => ChatError::Auth(Code::Unauthenticated, "invalid access token".into()),
            })?;
        let user = self
            .inner
            .store
            .get_user(&claims.sub)
            .await?
            .filter(|u| !u.disabled)
            .ok_or_else(|| {
                ChatError::Auth(Code::Unauthenticated, "account is not active".into())
            })?;
        if let Some(sid) = &claims.sid
            && self
                .inner
                .auth
                .is_session_revoked(sid)
                .await
                .map_err(|e| ChatError::BadRequest(e.to_string()))?
        {
            return Err(ChatError::Auth(
                Code::Unauthenticated,
                "the session was ended".into(),
            ));
        }
        Ok(Caller {
            user: UserRef {
                id: user.id,
                name: user.username,
            },
            role: user.role,
            exp: claims.exp,
        })
    }

    /// A channel by id or slug.
    pub async fn channel(&self, id_or_slug: &str) -> Result<Channel> {
        if !weir_store::ids::is_safe_id(id_or_slug) {
            return Err(ChatError::NotFound("no such channel".into()));
        }
        if let Some(c) = self.inner.store.get_channel(id_or_slug).await? {
            return Ok(c);
        }
        self.inner
            .store
            .channel_by_slug(id_or_slug)
            .await?
            .ok_or_else(|| ChatError::NotFound("no such channel".into()))
    }

    /// Whether `caller` moderates `channel`, subscribes to it, and since when it follows it.
    pub async fn standing(&self, channel: &Channel, caller: &Caller) -> Result<Standing> {
        let moderator = is_moderator(caller, channel);
        let store = &self.inner.store;
        let subscriber = moderator || store.is_subscriber(&channel.id, &caller.user.id).await?;
        let followed_at = store.follow_since(&channel.id, &caller.user.id).await?;
        Ok(Standing {
            moderator,
            subscriber,
            followed_at,
        })
    }

    /// Since when `user_id` follows `channel_id` (followers-only rooms ask again when a
    /// connection's answer was "not following").
    pub async fn follow_since(&self, channel_id: &str, user_id: &str) -> Result<Option<i64>> {
        Ok(self.inner.store.follow_since(channel_id, user_id).await?)
    }

    /// The room of a channel, loaded from the store (and its writer started) on first use.
    pub async fn room(&self, channel_id: &str) -> Result<Arc<RoomCell>> {
        if let Some(c) = self.inner.hub.get(channel_id) {
            return Ok(c);
        }
        let chat = &self.inner.chat;
        let now = now_ms();
        let (recent, stored_last) = chat
            .recent(channel_id, self.inner.cfg.room.history_len)
            .await?;
        let last = self
            .inner
            .fanout
            .room_loaded(channel_id, stored_last)
            .await?;
        let stored = (recent, last);
        let settings = chat.settings(channel_id).await?;
        let bans = chat.bans(channel_id, now).await?;
        let room = Room::new(
            channel_id,
            self.inner.cfg.room.clone(),
            settings,
            stored,
            bans,
        );
        let (cell, new) = self.inner.hub.insert(channel_id, room);
        if new {
            tracing::debug!(channel = %channel_id, "chat room loaded");
            tokio::spawn(crate::writer::run(
                self.inner.clone(),
                channel_id.to_string(),
                cell.clone(),
            ));
        }
        Ok(cell)
    }

    /// Runs a message through the room's moderation; accepted messages are given their
    /// id, stored and fanned out by the room's writer (group commit), and the
    /// author's connection then gets the `ack`.
    pub fn submit(
        &self,
        cell: &RoomCell,
        author: &Author<'_>,
        text: &str,
        reply_to: Option<u64>,
        nonce: Option<String>,
    ) -> std::result::Result<ChatMessage, Refusal> {
        if self
            .inner
            .stopping
            .load(std::sync::atomic::Ordering::SeqCst)
        {
            return Err(Refusal {
                code: Code::Unavailable,
                message: "the server is shutting down, reconnect shortly".into(),
                retry_after_ms: Some(1000),
            });
        }
        let now = now_ms();
        let r = {
            let mut s = cell.state.lock();
            let mut limits = self.inner.limits.lock();
            s.room
                .submit(now, author, text, reply_to, nonce, &mut limits)
        };
        match &r {
            Ok(_) => {
                metrics::counter!("weir_chat_messages_accepted_total").increment(1);
                cell.wake.notify_one();
            }
            Err(e) => {
                metrics::counter!("weir_chat_messages_refused_total", "code" => e.code.as_str())
                    .increment(1);
            }
        }
        r
    }

    /// Takes a connection token for client address `ip`: `Err(ms)` to wait.
    pub fn admit_connection(&self, ip: &str) -> std::result::Result<(), u64> {
        let r = self.inner.connects.lock().take(ip, now_ms());
        if r.is_err() {
            metrics::counter!("weir_chat_connections_refused_total").increment(1);
        }
        r
    }

    /// Follows a room's frames from now on (other APIs than the websocket, e.g. a GraphQL
    /// subscription). Bounded like a connection: a watcher that does not keep up is
    /// dropped (its stream ends).
    pub async fn watch(&self, channel_id: &str) -> Result<Watch> {
        let outbox = Arc::new(Outbox::new(self.inner.cfg.outbound_queue.max(8)));
        for _ in 0..3 {
            let cell = self.room(channel_id).await?;
            if let Some(j) = self.inner.hub.subscribe(&cell, outbox.clone(), |_| ()) {
                return Ok(Watch {
                    outbox,
                    queued: Default::default(),
                    cell: j.cell,
                    id: j.id,
                });
            }
        }
        Err(ChatError::NotFound("the room is unavailable".into()))
    }

    /// How many connections this gateway holds in a channel's room.
    pub fn connections(&self, channel_id: &str) -> usize {
        self.inner
            .hub
            .get(channel_id)
            .map_or(0, |c| c.subscribers())
    }

    /// A page of a channel's stored history before id `before`.
    pub async fn history(
        &self,
        channel_id: &str,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Page> {
        let limit = limit.clamp(1, self.inner.cfg.max_page);
        self.inner.chat.page(channel_id, before, limit).await
    }

    /// Delivers a moderation event to a room on every gateway.
    pub(crate) async fn publish_event(
        &self,
        channel_id: &str,
        cell: &RoomCell,
        event: &ServerMsg,
    ) -> Result<()> {
        self.inner
            .fanout
            .publish_event(channel_id, cell, event)
            .await
    }

    /// Stores what is pending in every room and closes every connection (1001). Call
    /// before the process exits; messages accepted before it are kept.
    pub async fn shutdown(&self) {
        self.inner
            .stopping
            .store(true, std::sync::atomic::Ordering::SeqCst);
        for (channel, cell) in self.inner.hub.rooms() {
            crate::writer::flush(&self.inner, &channel, &cell).await;
        }
        self.inner
            .hub
            .close_all(close::GOING_AWAY, "server shutting down");
    }
}
