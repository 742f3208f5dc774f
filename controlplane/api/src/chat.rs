//! Chat over GraphQL, on the chat gateway the binary attached ([`ApiState::set_chat`]):
//! the `chatHistory` query, the `moderateChat` mutation and the `chatMessages`
//! subscription. The same rules as the gateway's websocket and HTTP APIs apply (reading
//! is public; moderating needs a moderator of the channel).

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use futures_util::stream::{self, Stream as FStream};
use weir_chat::protocol::{self as p, ActionKind};
use weir_chat::{Caller, ChatError, Gateway, ServerMsg};

use crate::ctx::{principal, state};
use crate::error::{ApiError, ApiResult, code};
use crate::state::ApiState;

fn chat_err(e: ChatError) -> async_graphql::Error {
    let c = match e.code() {
        p::Code::Unauthenticated | p::Code::TokenExpired => code::UNAUTHENTICATED,
        p::Code::Forbidden => code::FORBIDDEN,
        p::Code::NotFound => code::NOT_FOUND,
        p::Code::RateLimited => code::RATE_LIMITED,
        p::Code::Unavailable => code::SERVICE_UNAVAILABLE,
        p::Code::Internal => code::INTERNAL,
        _ => code::BAD_USER_INPUT,
    };
    ApiError::new(c, e.public_message()).into()
}

fn gateway<'a>(ctx: &Context<'a>) -> ApiResult<&'a Gateway> {
    state(ctx).chat().ok_or_else(|| {
        ApiError::new(
            code::SERVICE_UNAVAILABLE,
            "chat is not enabled on this server",
        )
        .into()
    })
}

/// A chat user.
#[derive(SimpleObject, Clone, Debug)]
pub struct ChatUser {
    /// User id.
    pub id: ID,
    /// Username.
    pub name: String,
}

impl From<p::UserRef> for ChatUser {
    fn from(u: p::UserRef) -> Self {
        Self {
            id: ID(u.id),
            name: u.name,
        }
    }
}

/// A chat message.
#[derive(SimpleObject, Clone, Debug)]
pub struct ChatMessage {
    /// Monotonic per channel, from 1.
    pub id: i64,
    /// Server time of acceptance (Unix ms).
    pub ts: i64,
    /// The author.
    pub user: ChatUser,
    /// The text.
    pub text: String,
    /// The message this one answers.
    pub reply_to: Option<i64>,
}

fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl From<p::ChatMessage> for ChatMessage {
    fn from(m: p::ChatMessage) -> Self {
        Self {
            id: int(m.id),
            ts: m.ts,
            user: m.user.into(),
            text: m.text,
            reply_to: m.reply_to.map(int),
        }
    }
}

/// A page of chat history, oldest first.
#[derive(SimpleObject, Clone, Debug)]
pub struct ChatPage {
    /// The messages (deleted ones left out).
    pub messages: Vec<ChatMessage>,
    /// Pass as `before` for the previous page; null on the first page.
    pub next_before: Option<i64>,
}

/// What happened in a chat room.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum ChatEventKind {
    /// A new message (`message`).
    Message,
    /// A message was deleted (`messageId`).
    Deleted,
    /// A user was timed out (`user`, `until`).
    TimedOut,
    /// A user was banned (`user`).
    Banned,
    /// A ban or timeout was lifted (`user`).
    Unbanned,
    /// The room settings changed.
    SettingsChanged,
}

/// A chat room event.
#[derive(SimpleObject, Clone, Debug)]
pub struct ChatEvent {
    /// Which.
    pub kind: ChatEventKind,
    /// For `MESSAGE`.
    pub message: Option<ChatMessage>,
    /// For `DELETED`.
    pub message_id: Option<i64>,
    /// The user banned, timed out or unbanned.
    pub user: Option<ChatUser>,
    /// End of a timeout (Unix ms).
    pub until: Option<i64>,
    /// The moderator's reason.
    pub reason: Option<String>,
    /// The moderator.
    pub by: Option<ChatUser>,
}

impl ChatEvent {
    fn new(kind: ChatEventKind) -> Self {
        Self {
            kind,
            message: None,
            message_id: None,
            user: None,
            until: None,
            reason: None,
            by: None,
        }
    }

    fn from_msg(m: ServerMsg) -> Option<Self> {
        use ChatEventKind as K;
        Some(match m {
            ServerMsg::Message(m) => Self {
                message: Some(m.into()),
                ..Self::new(K::Message)
            },
            ServerMsg::Deleted { message_id, by, .. } => Self {
                message_id: Some(int(message_id)),
                by: Some(by.into()),
                ..Self::new(K::Deleted)
            },
            ServerMsg::TimedOut {
                user,
                until,
                reason,
                by,
            } => Self {
                user: Some(user.into()),
                until: Some(until),
                reason,
                by: Some(by.into()),
                ..Self::new(K::TimedOut)
            },
            ServerMsg::Banned { user, reason, by } => Self {
                user: Some(user.into()),
                reason,
                by: Some(by.into()),
                ..Self::new(K::Banned)
            },
            ServerMsg::Unbanned { user, by } => Self {
                user: Some(user.into()),
                by: Some(by.into()),
                ..Self::new(K::Unbanned)
            },
            ServerMsg::SettingsChanged { by, .. } => Self {
                by: Some(by.into()),
                ..Self::new(K::SettingsChanged)
            },
            _ => return None,
        })
    }
}

/// A moderator action.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum ChatAction {
    /// Ban `user` from writing.
    Ban,
    /// Forbid `user` to write for `durationS` (default 600).
    Timeout,
    /// Lift a ban or timeout of `user`.
    Unban,
    /// Delete message `messageId`.
    Delete,
}

/// A moderator action and its target.
#[derive(InputObject, Clone, Debug)]
pub struct ChatModerationInput {
    /// What to do.
    pub action: ChatAction,
    /// Target user (id or username) of ban, timeout, unban.
    pub user: Option<String>,
    /// Target message of delete.
    pub message_id: Option<i64>,
    /// Timeout length in seconds (default 600, at most two weeks).
    pub duration_s: Option<i64>,
    /// Why (kept in the audit log, shown to the room).
    pub reason: Option<String>,
}

/// The chat mutations.
#[derive(Default)]
pub struct ChatMutations;

#[Object]
impl ChatMutations {
    /// A moderator action on a channel's chat (its owner, admins, its moderators); every
    /// client of the room sees it.
    async fn moderate_chat(
        &self,
        ctx: &Context<'_>,
        channel_id: ID,
        input: ChatModerationInput,
    ) -> ApiResult<bool> {
        let ChatModerationInput {
            action,
            user,
            message_id,
            duration_s,
            reason,
        } = input;
        let who = principal(ctx)?;
        let gw = gateway(ctx)?;
        let channel = gw.channel(&channel_id).await.map_err(chat_err)?;
        let caller = Caller {
            user: p::UserRef {
                id: who.user_id.clone(),
                name: who.username.clone(),
            },
            role: who.role,
            exp: u64::MAX,
        };
        let action = p::Action {
            action: match action {
                ChatAction::Ban => ActionKind::Ban,
                ChatAction::Timeout => ActionKind::Timeout,
                ChatAction::Unban => ActionKind::Unban,
                ChatAction::Delete => ActionKind::Delete,
            },
            user,
            message_id: message_id.and_then(|i| u64::try_from(i).ok()),
            duration_s: duration_s.and_then(|d| u64::try_from(d).ok()),
            reason,
            settings: None,
            nonce: None,
        };
        gw.moderate(&channel, &caller, action)
            .await
            .map_err(chat_err)?;
        Ok(true)
    }
}

/// `chatHistory`: a page of a channel's chat before message `before`.
pub(crate) async fn history(
    ctx: &Context<'_>,
    channel_id: &str,
    before: Option<i64>,
    limit: Option<i32>,
) -> ApiResult<ChatPage> {
    let gw = gateway(ctx)?;
    let channel = gw.channel(channel_id).await.map_err(chat_err)?;
    let before = before.and_then(|b| u64::try_from(b).ok());
    let limit = limit.and_then(|l| usize::try_from(l).ok()).unwrap_or(50);
    let page = gw
        .history(&channel.id, before, limit)
        .await
        .map_err(chat_err)?;
    Ok(ChatPage {
        messages: page.messages.into_iter().map(Into::into).collect(),
        next_before: page.next_before.map(int),
    })
}

/// `chatMessages`: a channel's chat from now on.
pub(crate) async fn events(
    ctx: &Context<'_>,
    channel_id: &str,
) -> ApiResult<impl FStream<Item = ChatEvent> + use<>> {
    let gw = gateway(ctx)?;
    let channel = gw.channel(channel_id).await.map_err(chat_err)?;
    let watch = gw.watch(&channel.id).await.map_err(chat_err)?;
    Ok(stream::unfold(watch, |mut w| async move {
        loop {
            let m = w.next().await?;
            if let Some(e) = ChatEvent::from_msg(m) {
                return Some((e, w));
            }
        }
    }))
}

impl ApiState {
    /// Attaches the chat gateway (for the chat fields of the schema); set once.
    pub fn set_chat(&self, gw: Gateway) {
        if self.inner.chat.set(gw).is_err() {
            tracing::warn!("the chat gateway was already attached");
        }
    }

    /// The chat gateway, when attached.
    pub fn chat(&self) -> Option<&Gateway> {
        self.inner.chat.get()
    }
}

/// A stored, not deleted message of a channel's chat (banners pick them by id).
pub(crate) async fn message_by_id(
    st: &ApiState,
    channel_id: &str,
    id: i64,
) -> ApiResult<p::ChatMessage> {
    let not_found = || {
        ApiError::new(
            code::NOT_FOUND,
            format!(
                "chat message {id} is not in the channel's chat history (deleted, or never sent)"
            ),
        )
    };
    let Ok(id) = u64::try_from(id) else {
        return Err(not_found().into());
    };
    let history = weir_chat::history::ChatStore::new(st.store().kv().clone());
    let page = history
        .page(channel_id, Some(id.saturating_add(1)), 1)
        .await
        .map_err(chat_err)?;
    page.messages
        .into_iter()
        .find(|m| m.id == id)
        .ok_or_else(|| not_found().into())
}
