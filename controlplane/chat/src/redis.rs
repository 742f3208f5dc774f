//! Cross-gateway fan-out over Redis (a small RESP client of our own, [`crate::resp`]):
//!
//! - **Order and ids**: one Lua script per batch increments the room's counter
//!   (`<prefix>:seq:<channel>`) and publishes each message with its id on the room's
//!   channel (`<prefix>:room:<channel>`). Redis runs scripts one at a time, so ids and
//!   publication order agree across gateways: one order per room.
//! - **Delivery**: every gateway subscribes to `<prefix>:room:*` and delivers what it
//!   receives to its local subscribers of that room (its own messages included), after
//!   applying it to its copy of the room (recent ring, ids seen, bans, settings,
//!   deletions).
//! - **Storage**: the gateway that accepted a batch stores it after publishing (retried);
//!   unlike [`LocalFanout`](crate::LocalFanout), a message may be seen a few ms before it
//!   is stored. A new room's counter starts at the store's newest id.
//! - Pub/sub is not durable: a gateway that loses Redis reconnects and its clients
//!   resume with `since=` from the store.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use weir_store::ids::now_ms;

use crate::error::{ChatError, Result};
use crate::fanout::Fanout;
use crate::history::ChatStore;
use crate::hub::{Frame, Hub, RoomCell};
use crate::protocol::{ChatMessage, ServerMsg};
use crate::resp::{self, Value};
use crate::room::{Ban, Pending, Room};

mod pipeline;
mod target;

pub use target::RedisTarget;

/// Gives ids to a batch and publishes it: KEYS = counter, channel; ARGV = the message
/// JSON after its id (`,"ts":…}`).
const COMMIT: &str = r#"
local ids = {}
for i, rest in ipairs(ARGV) do
  local id = redis.call('INCR', KEYS[1])
  redis.call('PUBLISH', KEYS[2], '{"type":"message","id":' .. id .. rest)
  ids[i] = id
end
return ids
"#;

/// Raises the counter to at least ARGV[1]; returns it.
const FLOOR: &str = r#"
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
local floor = tonumber(ARGV[1])
if cur < floor then
  redis.call('SET', KEYS[1], ARGV[1])
  return floor
end
return cur
"#;

fn redis_err(e: impl std::fmt::Display) -> ChatError {
    ChatError::Store(weir_store::StoreError::backend("redis", e))
}

/// One Redis connection: commands and replies in order.
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    /// Connects to `target` and signs in (`AUTH`, then `SELECT` when it names a
    /// database).
    pub async fn connect(target: &RedisTarget) -> Result<Self> {
        let stream = tokio::time::timeout(
            Duration::from_secs(5),
            TcpStream::connect(target.addr.as_str()),
        )
        .await
        .map_err(|_| redis_err("connect timed out"))?
        .map_err(redis_err)?;
        let _ = stream.set_nodelay(true);
        let mut conn = Self {
            stream,
            buf: Vec::with_capacity(4096),
        };
        if let Some(password) = &target.password {
            let mut auth: Vec<&[u8]> = vec![b"AUTH"];
            auth.extend(target.user.as_deref().map(str::as_bytes));
            auth.push(password.as_bytes());
            // Redis's answer (WRONGPASS …) names no secret; `target` shows without it.
            conn.cmd(&auth)
                .await
                .map_err(|e| redis_err(format!("signing in to {target}: {e}")))?;
        }
        if let Some(db) = target.db {
            conn.cmd(&[b"SELECT", db.to_string().as_bytes()]).await?;
        }
        Ok(conn)
    }

    /// Sends a command without reading the reply.
    pub async fn send(&mut self, args: &[&[u8]]) -> Result<()> {
        self.stream
            .write_all(&resp::encode(args))
            .await
            .map_err(redis_err)
    }

    /// Reads one reply (a push message on a subscribed connection).
    pub async fn read(&mut self) -> Result<Value> {
        loop {
            if let Some((v, used)) = resp::parse(&self.buf).map_err(redis_err)? {
                self.buf.drain(..used);
                return Ok(v);
            }
            let mut chunk = [0u8; 8192];
            let n = self.stream.read(&mut chunk).await.map_err(redis_err)?;
            if n == 0 {
                return Err(redis_err("connection closed"));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// A reply already read from the socket, if a whole one is buffered.
    pub fn buffered(&mut self) -> Result<Option<Value>> {
        match resp::parse(&self.buf).map_err(redis_err)? {
            Some((v, used)) => {
                self.buf.drain(..used);
                Ok(Some(v))
            }
            None => Ok(None),
        }
    }

    /// Runs one command; a Redis error reply is an `Err`.
    pub async fn cmd(&mut self, args: &[&[u8]]) -> Result<Value> {
        self.send(args).await?;
        match tokio::time::timeout(Duration::from_secs(5), self.read()).await {
            Ok(Ok(Value::Error(e))) => Err(redis_err(e)),
            Ok(r) => r,
            Err(_) => Err(redis_err("reply timed out")),
        }
    }
}

/// The Redis fan-out of one gateway.
pub struct RedisFanout {
    target: RedisTarget,
    prefix: String,
    commands: pipeline::Pipeline,
}

impl std::fmt::Debug for RedisFanout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisFanout")
            .field("target", &self.target)
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl RedisFanout {
    /// A fan-out over the Redis at `target`, keys and channels under `prefix`,
    /// delivering into `hub`; starts the subscriber task on the current tokio runtime
    /// (it reconnects by itself).
    pub fn start(target: RedisTarget, prefix: &str, hub: Arc<Hub>) -> Arc<Self> {
        let me = Arc::new(Self {
            target: target.clone(),
            prefix: prefix.to_string(),
            commands: pipeline::Pipeline::start(target.clone()),
        });
        tokio::spawn(subscriber(target, prefix.to_string(), hub));
        me
    }

    fn seq_key(&self, channel: &str) -> String {
        format!("{}:seq:{channel}", self.prefix)
    }

    fn room_key(&self, channel: &str) -> String {
        format!("{}:room:{channel}", self.prefix)
    }

    async fn run(&self, args: &[&[u8]]) -> Result<Value> {
        self.commands.cmd(args).await
    }
}

/// The message JSON after `{"type":"message","id":<id>` (serde writes `type`, then the
/// fields in order, `id` first).
fn after_id(m: &ChatMessage) -> Result<String> {
    let json = ServerMsg::Message(ChatMessage { id: 0, ..m.clone() }).to_json();
    json.strip_prefix(r#"{"type":"message","id":0"#)
        .map(str::to_string)
        .ok_or_else(|| ChatError::BadRequest("unexpected message encoding".into()))
}

#[async_trait]
impl Fanout for RedisFanout {
    async fn commit(
        &self,
        channel: &str,
        _cell: &RoomCell,
        store: &ChatStore,
        batch: &mut [Pending],
    ) -> Result<()> {
        let fresh: Vec<usize> = (0..batch.len()).filter(|&i| batch[i].msg.id == 0).collect();
        if !fresh.is_empty() {
            let rests = fresh
                .iter()
                .map(|&i| after_id(&batch[i].msg))
                .collect::<Result<Vec<_>>>()?;
            let (seq, room) = (self.seq_key(channel), self.room_key(channel));
            let mut args: Vec<&[u8]> = vec![
                b"EVAL",
                COMMIT.as_bytes(),
                b"2",
                seq.as_bytes(),
                room.as_bytes(),
            ];
            args.extend(rests.iter().map(|r| r.as_bytes()));
            let reply = self.run(&args).await?;
            let Value::Array(Some(ids)) = reply else {
                return Err(redis_err("unexpected reply to the commit script"));
            };
            if ids.len() != fresh.len() {
                return Err(redis_err("commit script returned the wrong number of ids"));
            }
            for (&i, id) in fresh.iter().zip(ids) {
                batch[i].msg.id = id
                    .as_int()
                    .and_then(|n| u64::try_from(n).ok())
                    .ok_or_else(|| redis_err("bad id from the commit script"))?;
            }
        }
        // Published: store it (the ids are kept if this fails and the batch is retried,
        // so nothing is published twice).
        let msgs: Vec<ChatMessage> = batch.iter().map(|p| p.msg.clone()).collect();
        store.put_messages(channel, &msgs).await
    }

    async fn publish_event(
        &self,
        channel: &str,
        _cell: &RoomCell,
        event: &ServerMsg,
    ) -> Result<()> {
        let room = self.room_key(channel);
        let json = event.to_json();
        self.run(&[b"PUBLISH", room.as_bytes(), json.as_bytes()])
            .await
            .map(|_| ())
    }

    async fn room_loaded(&self, channel: &str, last_id: u64) -> Result<u64> {
        let seq = self.seq_key(channel);
        let floor = last_id.to_string();
        let v = self
            .run(&[
                b"EVAL",
                FLOOR.as_bytes(),
                b"1",
                seq.as_bytes(),
                floor.as_bytes(),
            ])
            .await?;
        v.as_int()
            .and_then(|n| u64::try_from(n).ok())
            .ok_or_else(|| redis_err("bad reply to the counter script"))
    }
}

/// Applies a frame published by any gateway to this gateway's copy of the room.
fn apply(room: &mut Room, msg: &ServerMsg) {
    let now = now_ms();
    match msg {
        ServerMsg::Message(m) => room.committed(std::iter::once(m)),
        ServerMsg::Banned { user, reason, by } => room.ban(Ban {
            user: user.clone(),
            until: None,
            reason: reason.clone(),
            by: by.clone(),
            at: now,
        }),
        ServerMsg::TimedOut {
            user,
            until,
            reason,
            by,
        } => room.ban(Ban {
            user: user.clone(),
            until: Some(*until),
            reason: reason.clone(),
            by: by.clone(),
            at: now,
        }),
        ServerMsg::Unbanned { user, .. } => {
            room.unban(&user.id, now);
        }
        ServerMsg::SettingsChanged { settings, .. } => room.set_settings(settings.clone()),
        ServerMsg::Deleted { message_id, .. } => {
            room.delete(*message_id);
        }
        _ => {}
    }
}

/// Receives every room's frames and delivers them to the rooms loaded here.
async fn subscriber(target: RedisTarget, prefix: String, hub: Arc<Hub>) {
    let pattern = format!("{prefix}:room:*");
    let strip = format!("{prefix}:room:");
    let mut backoff = Duration::from_millis(100);
    loop {
        match subscribe_once(&target, &pattern, &strip, &hub).await {
            Ok(()) => {}
            Err(e) => {
                metrics::counter!("weir_chat_redis_errors_total").increment(1);
                tracing::warn!(redis = %target, error = %e, "chat: Redis subscription lost, reconnecting");
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

async fn subscribe_once(target: &RedisTarget, pattern: &str, strip: &str, hub: &Hub) -> Result<()> {
    let mut conn = Conn::connect(target).await?;
    conn.send(&[b"PSUBSCRIBE", pattern.as_bytes()]).await?;
    tracing::info!(redis = %target, "chat: subscribed to Redis fan-out");
    // Frames of one room that arrived together go out together (one write per client).
    let mut run: Vec<Frame> = Vec::new();
    let mut run_cell: Option<Arc<RoomCell>> = None;
    loop {
        let mut next = Some(conn.read().await?);
        let mut taken = 0;
        while let Some(v) = next.take() {
            if let Some((cell, frame)) = receive(v, strip, hub) {
                if run_cell.as_ref().is_some_and(|c| !Arc::ptr_eq(c, &cell)) {
                    flush_run(&mut run_cell, &mut run);
                }
                run_cell = Some(cell);
                run.push(frame);
            }
            taken += 1;
            if taken < 256 {
                next = conn.buffered()?;
            }
        }
        flush_run(&mut run_cell, &mut run);
    }
}

fn flush_run(cell: &mut Option<Arc<RoomCell>>, run: &mut Vec<Frame>) {
    if let Some(c) = cell.take() {
        c.deliver_all(run);
    }
    run.clear();
}

/// A published frame: applied to this gateway's copy of its room, and returned with the
/// room for delivery (`None`: not a room loaded here, or not readable).
fn receive(v: Value, strip: &str, hub: &Hub) -> Option<(Arc<RoomCell>, Frame)> {
    let Value::Array(Some(items)) = v else {
        return None;
    };
    // ["pmessage", pattern, channel, payload]
    if items.len() != 4 || items[0].as_bytes() != Some(b"pmessage") {
        return None;
    }
    let (chan, payload) = (items[2].as_bytes()?, items[3].as_bytes()?);
    let channel = std::str::from_utf8(chan).ok()?.strip_prefix(strip)?;
    let cell = hub.get(channel)?;
    let text = std::str::from_utf8(payload).ok()?;
    let msg: ServerMsg = match serde_json::from_str(text) {
        Ok(m) => m,
        Err(e) => {
            tracing::debug!(error = %e, "chat: unreadable frame from Redis");
            return None;
        }
    };
    apply(&mut cell.state.lock().room, &msg);
    let frame = Frame {
        id: msg.message_id(),
        json: text.to_string().into(),
    };
    Some((cell, frame))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::UserRef;

    #[test]
    fn the_commit_script_gets_the_json_after_the_id() {
        let m = ChatMessage {
            id: 0,
            ts: 12,
            user: UserRef {
                id: "u".into(),
                name: "n\"q".into(),
            },
            text: "hi".into(),
            reply_to: Some(3),
        };
        let rest = after_id(&m).expect("encodes");
        let whole = format!(r#"{{"type":"message","id":41{rest}"#);
        let back: ServerMsg = serde_json::from_str(&whole).expect("parses");
        assert_eq!(back, ServerMsg::Message(ChatMessage { id: 41, ..m }));
    }

    #[test]
    fn remote_events_apply_to_the_room() {
        let mut room = Room::new(
            "c",
            crate::room::RoomConfig::default(),
            crate::Settings::default(),
            (Vec::new(), 0),
            Vec::new(),
        );
        let u = UserRef {
            id: "u".into(),
            name: "n".into(),
        };
        let msg = ChatMessage {
            id: 9,
            ts: 1,
            user: u.clone(),
            text: "x".into(),
            reply_to: None,
        };
        apply(&mut room, &ServerMsg::Message(msg));
        assert_eq!((room.last_id(), room.last_committed_id()), (9, 9));
        apply(
            &mut room,
            &ServerMsg::Banned {
                user: u.clone(),
                reason: None,
                by: u.clone(),
            },
        );
        assert!(room.ban_of("u", now_ms()).is_some());
        apply(
            &mut room,
            &ServerMsg::Unbanned {
                user: u.clone(),
                by: u.clone(),
            },
        );
        assert!(room.ban_of("u", now_ms()).is_none());
        apply(
            &mut room,
            &ServerMsg::Deleted {
                message_id: 9,
                by: u,
                ts: 2,
            },
        );
        assert_eq!(room.recent().count(), 0);
    }
}
