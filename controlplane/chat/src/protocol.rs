//! The JSON message protocol spoken over `WS /v1/chat/<channel>` (described in the crate
//! docs): what clients send ([`ClientMsg`]), what the server sends ([`ServerMsg`]), the
//! error codes ([`Code`]) and the close codes ([`close`]).

use serde::{Deserialize, Serialize};

use crate::settings::Settings;

/// Close codes the gateway uses when it ends a connection.
pub mod close {
    /// Normal closure (client left, server shutting down).
    pub const NORMAL: u16 = 1000;
    /// The server is shutting down.
    pub const GOING_AWAY: u16 = 1001;
    /// The server could not serve the connection (storage down).
    pub const INTERNAL: u16 = 1011;
    /// A binary frame: the protocol is JSON text only.
    pub const UNSUPPORTED_DATA: u16 = 1003;
    /// A text frame that is not valid UTF-8.
    pub const INVALID_UTF8: u16 = 1007;
    /// A frame larger than the cap (`max_frame_bytes`).
    pub const TOO_BIG: u16 = 1009;
    /// Any other WebSocket protocol violation.
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// The client did not read its messages fast enough: its outbound queue filled up.
    pub const SLOW_CONSUMER: u16 = 4008;
    /// Too many malformed or refused messages in a row.
    pub const ABUSE: u16 = 4029;
}

/// What a client may send (JSON objects tagged by `type`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMsg {
    /// Authenticates the connection (after an anonymous start, or when a token expired).
    Auth {
        /// An access token of the control plane.
        token: String,
    },
    /// Posts a message.
    Send {
        /// The text (≤ `max_message_chars` characters).
        text: String,
        /// Id of the message this one answers.
        #[serde(default)]
        reply_to: Option<u64>,
        /// A client-chosen tag echoed in the `ack` or `error` for this message.
        #[serde(default)]
        nonce: Option<String>,
    },
    /// A moderator action, as for `POST /v1/moderation/<channel>/actions`.
    Moderate(Action),
    /// Keep-alive; answered with `pong`.
    Ping,
}

/// A moderator action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Action {
    /// What to do.
    pub action: ActionKind,
    /// Target user (id or username) for ban / timeout / unban.
    #[serde(default)]
    pub user: Option<String>,
    /// Target message for delete.
    #[serde(default)]
    pub message_id: Option<u64>,
    /// Timeout length in seconds (default 600).
    #[serde(default)]
    pub duration_s: Option<u64>,
    /// Why (kept in the audit log and sent to clients).
    #[serde(default)]
    pub reason: Option<String>,
    /// New room settings for `settings`.
    #[serde(default)]
    pub settings: Option<Settings>,
    /// Echoed in the reply when sent over the websocket.
    #[serde(default)]
    pub nonce: Option<String>,
}

/// The moderator actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// Bans a user from writing in the room (until unbanned).
    Ban,
    /// Forbids a user to write for `duration_s`.
    Timeout,
    /// Lifts a ban or a timeout.
    Unban,
    /// Deletes a message.
    Delete,
    /// Replaces the room's settings.
    Settings,
}

impl ActionKind {
    /// The name used on the wire and in the audit log.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Ban => "ban",
            ActionKind::Timeout => "timeout",
            ActionKind::Unban => "unban",
            ActionKind::Delete => "delete",
            ActionKind::Settings => "settings",
        }
    }
}

/// A user as messages show them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRef {
    /// User id.
    pub id: String,
    /// Username.
    pub name: String,
}

/// An accepted chat message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Monotonic per room, from 1.
    pub id: u64,
    /// Server time of acceptance, Unix milliseconds.
    pub ts: i64,
    /// The author.
    pub user: UserRef,
    /// The text as sent (validated; never rewritten).
    pub text: String,
    /// The message this one answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<u64>,
}

/// What the server sends (JSON objects tagged by `type`). Gateways also read it back
/// from each other (cross-gateway fan-out).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMsg {
    /// First frame of every connection (and the answer to `auth`).
    Welcome {
        /// The channel id.
        channel: String,
        /// The authenticated user, `null` for anonymous readers.
        user: Option<UserRef>,
        /// Whether this connection may post.
        can_write: bool,
        /// Whether this connection may moderate.
        moderator: bool,
        /// The room settings.
        settings: Settings,
        /// The newest message id of the room (0: none yet).
        last_id: u64,
    },
    /// Past messages, oldest first: the last N on join, or those after `since`.
    History {
        /// The messages.
        messages: Vec<ChatMessage>,
        /// True when more messages were missed than sent (fetch the rest over HTTP).
        truncated: bool,
    },
    /// A new message.
    Message(ChatMessage),
    /// The sender's own message was accepted with this id.
    Ack {
        /// The client's tag.
        #[serde(skip_serializing_if = "Option::is_none")]
        nonce: Option<String>,
        /// The id it got (for `send`), absent for moderator actions.
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
    },
    /// A message was deleted by a moderator.
    Deleted {
        /// The message.
        message_id: u64,
        /// The moderator.
        by: UserRef,
        /// When, Unix ms.
        ts: i64,
    },
    /// A user may not write until `until`.
    TimedOut {
        /// The user.
        user: UserRef,
        /// Unix ms.
        until: i64,
        /// Why.
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        /// The moderator.
        by: UserRef,
    },
    /// A user was banned from writing.
    Banned {
        /// The user.
        user: UserRef,
        /// Why.
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        /// The moderator.
        by: UserRef,
    },
    /// A ban or timeout was lifted.
    Unbanned {
        /// The user.
        user: UserRef,
        /// The moderator.
        by: UserRef,
    },
    /// The room settings changed.
    SettingsChanged {
        /// The new settings.
        settings: Settings,
        /// The moderator.
        by: UserRef,
    },
    /// A request was refused.
    Error {
        /// Machine-readable code.
        code: Code,
        /// Human-readable explanation.
        message: String,
        /// The nonce of the refused `send`, if it had one.
        #[serde(skip_serializing_if = "Option::is_none")]
        nonce: Option<String>,
        /// When to try again, for `RATE_LIMITED`, `SLOW_MODE`, `TIMED_OUT`.
        #[serde(skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
    /// Answer to `ping`.
    Pong,
}

impl ServerMsg {
    /// The message id when this is a chat message (for resume de-duplication).
    pub fn message_id(&self) -> Option<u64> {
        match self {
            ServerMsg::Message(m) => Some(m.id),
            _ => None,
        }
    }

    /// An `error` frame.
    pub fn error(code: Code, message: impl Into<String>, nonce: Option<String>) -> Self {
        ServerMsg::Error {
            code,
            message: message.into(),
            nonce,
            retry_after_ms: None,
        }
    }

    /// Serialises to the JSON text sent on the wire.
    pub fn to_json(&self) -> String {
        // Serialising these types cannot fail (string keys, no non-finite floats).
        serde_json::to_string(self).unwrap_or_else(|_| {
            r#"{"type":"error","code":"INTERNAL","message":"unserialisable"}"#.to_string()
        })
    }
}

/// Error codes of `error` frames and HTTP error bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Code {
    /// Not JSON, unknown `type`, missing fields.
    BadRequest,
    /// Posting or moderating needs a valid access token.
    Unauthenticated,
    /// The access token expired: send `auth` with a fresh one.
    TokenExpired,
    /// The caller may not do this (not a moderator, target is the owner…).
    Forbidden,
    /// Unknown channel, user or message.
    NotFound,
    /// Empty after trimming.
    Empty,
    /// Longer than the room's limit.
    TooLong,
    /// Control characters or other text the room refuses.
    InvalidText,
    /// Too many messages from this user or address.
    RateLimited,
    /// Slow mode: wait `retry_after_ms` between messages.
    SlowMode,
    /// The user is banned from this room.
    Banned,
    /// The user is timed out.
    TimedOut,
    /// The room is subscribers-only.
    SubscribersOnly,
    /// The room is followers-only (follow the channel; `retry_after_ms` when the follow
    /// is younger than the room asks).
    FollowersOnly,
    /// The room is emote-only.
    EmoteOnly,
    /// A banned word or pattern.
    BannedWord,
    /// Links are not allowed (or not to this domain).
    LinkBlocked,
    /// The same message again within the repeat window.
    Duplicate,
    /// `reply_to` names no message of this room.
    BadReply,
    /// Storage is failing or the room's write queue is full: try later.
    Unavailable,
    /// A bug.
    Internal,
}

impl Code {
    /// The code as a string (metrics labels).
    pub fn as_str(self) -> &'static str {
        match self {
            Code::BadRequest => "BAD_REQUEST",
            Code::Unauthenticated => "UNAUTHENTICATED",
            Code::TokenExpired => "TOKEN_EXPIRED",
            Code::Forbidden => "FORBIDDEN",
            Code::NotFound => "NOT_FOUND",
            Code::Empty => "EMPTY",
            Code::TooLong => "TOO_LONG",
            Code::InvalidText => "INVALID_TEXT",
            Code::RateLimited => "RATE_LIMITED",
            Code::SlowMode => "SLOW_MODE",
            Code::Banned => "BANNED",
            Code::TimedOut => "TIMED_OUT",
            Code::SubscribersOnly => "SUBSCRIBERS_ONLY",
            Code::FollowersOnly => "FOLLOWERS_ONLY",
            Code::EmoteOnly => "EMOTE_ONLY",
            Code::BannedWord => "BANNED_WORD",
            Code::LinkBlocked => "LINK_BLOCKED",
            Code::Duplicate => "DUPLICATE",
            Code::BadReply => "BAD_REPLY",
            Code::Unavailable => "UNAVAILABLE",
            Code::Internal => "INTERNAL",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_messages_parse() {
        let m: ClientMsg =
            serde_json::from_str(r#"{"type":"send","text":"hi","reply_to":3,"nonce":"n1"}"#)
                .unwrap_or(ClientMsg::Ping);
        assert_eq!(
            m,
            ClientMsg::Send {
                text: "hi".into(),
                reply_to: Some(3),
                nonce: Some("n1".into())
            }
        );
        let m: Result<ClientMsg, _> =
            serde_json::from_str(r#"{"type":"moderate","action":"ban","user":"bob"}"#);
        assert!(matches!(m, Ok(ClientMsg::Moderate(a)) if a.action == ActionKind::Ban));
        assert!(serde_json::from_str::<ClientMsg>(r#"{"type":"nope"}"#).is_err());
    }

    #[test]
    fn server_messages_serialise_with_type_and_codes() {
        let e = ServerMsg::error(Code::SlowMode, "wait", None).to_json();
        assert_eq!(e, r#"{"type":"error","code":"SLOW_MODE","message":"wait"}"#);
        let m = ServerMsg::Message(ChatMessage {
            id: 7,
            ts: 1,
            user: UserRef {
                id: "u".into(),
                name: "n".into(),
            },
            text: "t".into(),
            reply_to: None,
        })
        .to_json();
        assert_eq!(
            m,
            r#"{"type":"message","id":7,"ts":1,"user":{"id":"u","name":"n"},"text":"t"}"#
        );
        assert_eq!(
            serde_json::to_string(&Code::SubscribersOnly).unwrap_or_default(),
            format!("\"{}\"", Code::SubscribersOnly.as_str())
        );
    }
}
