//! The chat gateway: one room per channel over WebSocket, moderation before fan-out,
//! history in the control plane's store.
//!
//! # Shape
//! - Sans-IO core, tested in virtual time: [`room::Room`] (the moderation pipeline,
//!   message ids, the recent ring, bans), [`filter`] and [`fold`] (banned words with case
//!   and confusable folding, links, emote-only), [`bucket`] (token buckets).
//! - [`Gateway`]: authentication (the control plane's access tokens), rooms loaded
//!   from the store on first use, a writer per room that hands accepted messages in
//!   batches (every [`GatewayConfig::flush_interval`], 50 ms by default) to the fan-out.
//! - [`Fanout`]: gives a batch its ids, stores it (one store call per batch, one redb
//!   commit) and delivers it. [`LocalFanout`] (in-process) delivers only once stored — so
//!   a message any client saw survives a restart, and ids never repeat. [`RedisFanout`]
//!   lets several gateways (`weir controlplane`, `weir chat`) serve one room: ids and
//!   order from one Lua script per batch, delivery over Redis pub/sub, bans and settings
//!   applied on every gateway (see [`redis`]; its RESP client is [`resp`], sans-IO).
//! - Drivers: [`ws`] (one task per connection; bounded outbound queue; a writing
//!   connection re-checks its token, account and moderator standing every 30 s) and [`http`]
//!   (axum routes, merged into the control plane's server).
//!
//! # Endpoints
//! - `WS /v1/chat/<channel>` (`<channel>`: id or slug). A token of the control plane
//!   (`?token=`, `Authorization: Bearer`, or a first `auth` message) lets the connection
//!   write; without one it is read-only. `?since=<id>` resumes: the messages after that
//!   id are sent (up to [`GatewayConfig::resume_limit`]; `truncated` tells to fetch the
//!   rest over HTTP).
//! - `GET /v1/chat/<channel>/history?before=<id>&limit=<n>` →
//!   `{"messages": [..oldest first..], "next_before": <id>|null}`.
//! - `POST /v1/moderation/<channel>/actions` (moderators' bearer token) with
//!   `{"action": "ban"|"timeout"|"unban"|"delete"|"settings", "user", "message_id",
//!   "duration_s", "reason", "settings"}` → `{"ok": true}`.
//! - `GET /v1/moderation/<channel>/audit?limit=<n>` → `{"entries": [..]}` (moderators).
//!
//! Moderators are the channel owner, admins, and the channel's members with the
//! moderator role (appointed with the GraphQL `setChannelMember` mutation; stored with
//! the channel).
//!
//! # Protocol
//! JSON text frames, one object each, tagged by `type`.
//!
//! Client → server:
//! ```json
//! {"type":"auth","token":"<access token>"}
//! {"type":"send","text":"hello","reply_to":41,"nonce":"c-17"}
//! {"type":"moderate","action":"timeout","user":"bob","duration_s":600,"reason":"spam","nonce":"m-1"}
//! {"type":"moderate","action":"delete","message_id":42}
//! {"type":"moderate","action":"settings","settings":{"slow_mode_s":5}}
//! {"type":"ping"}
//! ```
//! Server → client:
//! ```json
//! {"type":"welcome","channel":"<id>","user":{"id":"..","name":".."}|null,"can_write":true,
//!  "moderator":false,"settings":{..},"last_id":42}
//! {"type":"history","messages":[<message>..],"truncated":false}
//! {"type":"message","id":43,"ts":1764740000000,"user":{"id":"..","name":".."},"text":"hi","reply_to":41}
//! {"type":"ack","nonce":"c-17","id":43}
//! {"type":"deleted","message_id":42,"by":{..},"ts":..}
//! {"type":"timed_out","user":{..},"until":<unix ms>,"reason":"spam","by":{..}}
//! {"type":"banned","user":{..},"reason":"..","by":{..}}
//! {"type":"unbanned","user":{..},"by":{..}}
//! {"type":"settings_changed","settings":{..},"by":{..}}
//! {"type":"error","code":"SLOW_MODE","message":"..","nonce":"c-17","retry_after_ms":4000}
//! {"type":"pong"}
//! ```
//! - Ids are monotonic per room from 1; `ts` is the server's time of acceptance (Unix
//!   ms). A message is sent to everyone, its author included, once stored; then the
//!   author gets an `ack` with its `nonce` and id. A refused message gets an `error`
//!   with the same `nonce` at once.
//! - Settings: `slow_mode_s`, `subscribers_only`, `followers_only`, `follow_age_min`,
//!   `emote_only`, `allow_links`, `allowed_domains`, `banned_words` (see [`Settings`]).
//! - Error codes ([`Code`]): `BAD_REQUEST`, `UNAUTHENTICATED`, `TOKEN_EXPIRED`,
//!   `FORBIDDEN`, `NOT_FOUND`, `EMPTY`, `TOO_LONG`, `INVALID_TEXT`, `RATE_LIMITED`,
//!   `SLOW_MODE`, `BANNED`, `TIMED_OUT`, `SUBSCRIBERS_ONLY`, `FOLLOWERS_ONLY`, `EMOTE_ONLY`,
//!   `BANNED_WORD`,
//!   `LINK_BLOCKED`, `DUPLICATE`, `BAD_REPLY`, `UNAVAILABLE`, `INTERNAL`.
//! - Close codes ([`protocol::close`]): 1000 normal, 1001 server shutting down, 1002
//!   protocol error, 1003 binary frame, 1007 invalid UTF-8, 1009 frame over the cap
//!   (4 KiB), 1011 chat unavailable, 4008 too slow (outbound queue of 256 full or a
//!   write stuck 10 s), 4029 too many malformed messages.
//!
//! # Moderation pipeline (in order)
//! ban / timeout → empty, length (500 characters), control characters → per-user and
//! per-IP token buckets → subscribers-only → followers-only (a follow at least
//! `follow_age_min` old; subscribers need none) → slow mode → emote-only → `reply_to` →
//! banned words → links → repeat within 30 s. Moderators skip subscribers-only,
//! followers-only, slow mode, emote-only, links and repeats.
//!
//! # Metrics
//! `weir_chat_connections`, `weir_chat_connections_refused_total` (per-IP connection
//! rate, 30 burst, 2/s), `weir_chat_rooms`, `weir_chat_messages_accepted_total`,
//! `weir_chat_messages_refused_total{code}`, `weir_chat_frames_refused_total{reason}`,
//! `weir_chat_slow_clients_dropped_total`, `weir_chat_moderation_actions_total{action}`,
//! `weir_chat_store_batches_total`, `weir_chat_store_errors_total`,
//! `weir_chat_store_flush_seconds`.

pub mod bucket;
mod error;
pub mod fanout;
pub mod filter;
pub mod fold;
mod gateway;
mod group;
pub mod history;
pub mod http;
pub mod hub;
mod moderation;
pub mod outbox;
pub mod protocol;
pub mod redis;
pub mod resp;
pub mod room;
pub mod settings;
mod writer;
pub mod ws;

pub use error::{ChatError, Result};
pub use fanout::{Fanout, LocalFanout};
pub use gateway::{Caller, Gateway, GatewayConfig, Standing, Watch, is_moderator};
pub use http::routes;
pub use protocol::{Code, ServerMsg};
pub use redis::{RedisFanout, RedisTarget};
pub use settings::Settings;
