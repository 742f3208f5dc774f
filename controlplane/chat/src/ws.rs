//! The connection driver: one task per websocket. It joins the room (snapshot and live
//! subscription at one instant), sends `welcome` and the history, then runs a reader
//! (client frames → protocol → gateway) and a writer (outbound queue → socket) until
//! either side ends. Replies go through the same bounded queue as room frames, so the
//! reader never waits on the client's socket either.
//!
//! Memory: an idle connection is its socket, its websocket buffers, its [`Outbox`] and
//! this task. The task's future is kept to what waiting needs: the join (store reads,
//! history) and each client message's handling run in futures boxed for their duration,
//! since an inline future would size every connection's task for its largest await.

use std::sync::Arc;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use weir_store::{Channel, ids::now_ms};

mod conn;

use crate::gateway::{Caller, Gateway, Standing};
use crate::hub::Frame;
use crate::outbox::Outbox;
use crate::protocol::{ChatMessage, ServerMsg, close};
use conn::Conn;

/// What the HTTP layer hands to the driver.
#[derive(Debug, Clone)]
pub struct ConnParams {
    /// The channel.
    pub channel: Channel,
    /// The caller, when a token came with the upgrade.
    pub caller: Option<Caller>,
    /// That token (re-checked periodically).
    pub token: Option<String>,
    /// Client address key.
    pub ip: String,
    /// Resume after this message id.
    pub since: Option<u64>,
}

struct Snapshot {
    settings: crate::settings::Settings,
    last_id: u64,
    history: Option<Vec<ChatMessage>>,
}

struct Gauge;

impl Gauge {
    fn up() -> Self {
        metrics::gauge!("weir_chat_connections").increment(1.0);
        Gauge
    }
}

impl Drop for Gauge {
    fn drop(&mut self) {
        metrics::gauge!("weir_chat_connections").decrement(1.0);
    }
}

pub(crate) fn refuse_frame(outbox: &Outbox, code: u16, reason: &'static str, label: &'static str) {
    metrics::counter!("weir_chat_frames_refused_total", "reason" => label).increment(1);
    outbox.close(code, reason);
}

type Sink = SplitSink<WebSocket, Message>;

async fn send_now(sink: &mut Sink, msg: &ServerMsg, gw: &Gateway) -> bool {
    let text = Utf8Bytes::from(msg.to_json());
    matches!(
        tokio::time::timeout(gw.config().send_timeout, sink.send(Message::Text(text))).await,
        Ok(Ok(()))
    )
}

/// A joined connection, ready to run.
struct Joined {
    conn: Conn,
    sink: Sink,
    stream: SplitStream<WebSocket>,
    last_sent: u64,
}

/// Serves one websocket until it ends.
pub async fn serve_socket(gw: Gateway, socket: WebSocket, p: ConnParams) {
    let _gauge = Gauge::up();
    let send_timeout = gw.config().send_timeout;
    let Some(j) = Box::pin(join(gw, socket, p)).await else {
        return;
    };
    let Joined {
        mut conn,
        sink,
        stream,
        last_sent,
    } = j;
    let (outbox, cell, sub_id) = (conn.outbox.clone(), conn.cell.clone(), conn.sub_id);
    let reader = read_loop(stream, &mut conn);
    let writer = write_loop(sink, outbox, last_sent, send_timeout);
    tokio::pin!(reader, writer);
    tokio::select! {
        _ = &mut reader => {
            // The reader asked for a close (or the client left): let the writer send it.
            let _ = Box::pin(tokio::time::timeout(std::time::Duration::from_secs(5), &mut writer)).await;
        }
        _ = &mut writer => {}
    }
    cell.unsubscribe(sub_id);
}

/// Joins the room, sends `welcome` and the history: the connection, or `None` when it
/// ended already.
async fn join(gw: Gateway, socket: WebSocket, p: ConnParams) -> Option<Joined> {
    let (mut sink, stream) = socket.split();
    let cfg = gw.config().clone();
    let outbox = Arc::new(Outbox::new(cfg.outbound_queue.max(8)));
    let since = p.since;
    let snap = |room: &crate::room::Room| Snapshot {
        settings: room.settings().clone(),
        last_id: room.last_committed_id(),
        history: match since {
            None => Some(room.recent().cloned().collect()),
            Some(s) => room.recent_after(s),
        },
    };
    let mut joined = None;
    for _ in 0..3 {
        let cell = match gw.room(&p.channel.id).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(channel = %p.channel.id, error = %e, "chat room unavailable");
                let _ = send_now(
                    &mut sink,
                    &ServerMsg::error(e.code(), e.public_message(), None),
                    &gw,
                )
                .await;
                close_sink(&mut sink, close::INTERNAL, "chat unavailable").await;
                return None;
            }
        };
        joined = gw.inner.hub.subscribe(&cell, outbox.clone(), snap);
        if joined.is_some() {
            break;
        }
    }
    let Some(joined) = joined else {
        close_sink(&mut sink, close::INTERNAL, "chat unavailable").await;
        return None;
    };
    let (cell, sub_id, snap) = (joined.cell, joined.id, joined.snapshot);
    // A `since` beyond the room's newest id (another deployment's, a wiped store) would
    // hide the next messages: resume from the newest instead.
    let since = since.map(|s| s.min(snap.last_id));
    let (history, truncated) = match (snap.history, since) {
        (Some(mut h), _) => {
            let skip = h.len().saturating_sub(cfg.resume_limit);
            h.drain(..skip);
            (h, skip > 0)
        }
        (None, Some(s)) => match gw
            .chat_store()
            .after(&p.channel.id, s, cfg.resume_limit)
            .await
        {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(channel = %p.channel.id, error = %e, "chat history unavailable");
                (Vec::new(), true)
            }
        },
        (None, None) => (Vec::new(), false),
    };
    let last_sent = history
        .last()
        .map_or(0, |m| m.id)
        .max(since.unwrap_or(0))
        .max(if since.is_none() { snap.last_id } else { 0 });
    let standing = match &p.caller {
        Some(c) => gw.standing(&p.channel, c).await.unwrap_or_default(),
        None => Standing::default(),
    };
    let conn = Conn {
        gw: gw.clone(),
        channel: p.channel,
        cell: cell.clone(),
        caller: p.caller,
        token: p.token,
        checked_at: now_ms(),
        standing,
        follow_checked_at: now_ms(),
        ip: p.ip,
        outbox,
        sub_id,
        bad: 0,
    };
    let welcome = conn.welcome(snap.settings, snap.last_id);
    let history = ServerMsg::History {
        messages: history,
        truncated,
    };
    if send_now(&mut sink, &welcome, &gw).await && send_now(&mut sink, &history, &gw).await {
        return Some(Joined {
            conn,
            sink,
            stream,
            last_sent,
        });
    }
    cell.unsubscribe(sub_id);
    None
}

async fn close_sink(sink: &mut Sink, code: u16, reason: &str) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(1),
        sink.send(Message::Close(Some(frame))),
    )
    .await;
    let _ = sink.close().await;
}

/// Bytes of queued frames a connection's writer sends with one flush (one socket write
/// for the frames of a room's batch, or for a backlog).
pub const COALESCE_BYTES: usize = 4 * 1024;

async fn write_loop(
    mut sink: Sink,
    outbox: Arc<Outbox>,
    mut last_sent: u64,
    send_timeout: std::time::Duration,
) {
    let mut frames: Vec<Frame> = Vec::new();
    // What is queued already, up to COALESCE_BYTES, goes out with one flush.
    while outbox.recv_batch(&mut frames, COALESCE_BYTES).await {
        let mut batch = frames.drain(..).filter(|f| match f.id {
            Some(id) if id <= last_sent => false,
            Some(id) => {
                last_sent = id;
                true
            }
            None => true,
        });
        let send = async {
            for frame in batch.by_ref() {
                sink.feed(Message::Text(frame.json)).await?;
            }
            sink.flush().await
        };
        // Boxed for the send's duration (the timer and the sink's futures would
        // otherwise stay in every idle connection's task).
        match Box::pin(tokio::time::timeout(send_timeout, send)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return,
            Err(_) => {
                metrics::counter!("weir_chat_slow_clients_dropped_total").increment(1);
                outbox.close(close::SLOW_CONSUMER, "too slow: write timed out");
                break;
            }
        }
        drop(batch);
        if frames.capacity() > 64 {
            frames = Vec::new();
        }
    }
    let (code, reason) = outbox.reason().unwrap_or((close::NORMAL, String::new()));
    Box::pin(close_sink(&mut sink, code, &reason)).await;
}

async fn read_loop(mut stream: SplitStream<WebSocket>, conn: &mut Conn) {
    let signal = conn.outbox.clone();
    let max = conn.gw.config().max_frame_bytes;
    loop {
        let msg = tokio::select! {
            () = signal.closed() => return,
            m = stream.next() => m,
        };
        match msg {
            None | Some(Ok(Message::Close(_))) => {
                signal.close(close::NORMAL, "");
                return;
            }
            Some(Ok(Message::Text(t))) => {
                if t.len() > max {
                    refuse_frame(&signal, close::TOO_BIG, "frame too large", "too_large");
                    return;
                }
                // Boxed: the handling's store calls would otherwise size every idle
                // connection's future.
                Box::pin(conn.handle(t.as_str())).await;
            }
            Some(Ok(Message::Binary(_))) => {
                refuse_frame(
                    &signal,
                    close::UNSUPPORTED_DATA,
                    "binary frames are not supported",
                    "binary",
                );
                return;
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            Some(Err(e)) => {
                let inner = e.into_inner();
                match inner.downcast_ref::<tungstenite::Error>() {
                    Some(tungstenite::Error::Utf8(_)) => refuse_frame(
                        &signal,
                        close::INVALID_UTF8,
                        "invalid UTF-8",
                        "invalid_utf8",
                    ),
                    Some(tungstenite::Error::Capacity(_)) => {
                        refuse_frame(&signal, close::TOO_BIG, "frame too large", "too_large")
                    }
                    Some(tungstenite::Error::Protocol(_)) => {
                        refuse_frame(&signal, close::PROTOCOL_ERROR, "protocol error", "protocol")
                    }
                    _ => signal.close(close::NORMAL, ""),
                }
                return;
            }
        }
    }
}
