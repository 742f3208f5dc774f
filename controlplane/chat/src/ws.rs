//! The connection driver: one task per websocket. It joins the room (snapshot and live
//! subscription at one instant), sends `welcome` and the history, then runs a reader
//! (client frames → protocol → gateway) and a writer (outbound queue → socket) until
//! either side ends. Replies go through the same bounded queue as room frames, so the
//! reader never waits on the client's socket either.

use std::sync::Arc;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use weir_store::{Channel, ids::now_ms};

mod conn;

use crate::gateway::{Caller, Gateway, Standing};
use crate::hub::{CloseSignal, Frame};
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

pub(crate) fn refuse_frame(
    signal: &CloseSignal,
    code: u16,
    reason: &'static str,
    label: &'static str,
) {
    metrics::counter!("weir_chat_frames_refused_total", "reason" => label).increment(1);
    signal.close(code, reason);
}

type Sink = SplitSink<WebSocket, Message>;

async fn send_now(sink: &mut Sink, msg: &ServerMsg, gw: &Gateway) -> bool {
    let text = Utf8Bytes::from(msg.to_json());
    matches!(
        tokio::time::timeout(gw.config().send_timeout, sink.send(Message::Text(text))).await,
        Ok(Ok(()))
    )
}

/// Serves one websocket until it ends.
pub async fn serve_socket(gw: Gateway, socket: WebSocket, p: ConnParams) {
    let _gauge = Gauge::up();
    let (mut sink, stream) = socket.split();
    let cfg = gw.config().clone();
    let (tx, rx) = mpsc::channel::<Frame>(cfg.outbound_queue.max(8));
    let signal = Arc::new(CloseSignal::default());
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
                return;
            }
        };
        joined = gw
            .inner
            .hub
            .subscribe(&cell, tx.clone(), signal.clone(), snap);
        if joined.is_some() {
            break;
        }
    }
    let Some(joined) = joined else {
        close_sink(&mut sink, close::INTERNAL, "chat unavailable").await;
        return;
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
    let mut conn = Conn {
        gw: gw.clone(),
        channel: p.channel,
        cell: cell.clone(),
        caller: p.caller,
        token: p.token,
        checked_at: now_ms(),
        standing,
        follow_checked_at: now_ms(),
        ip: p.ip,
        tx,
        signal: signal.clone(),
        sub_id,
        bad: 0,
    };
    let welcome = conn.welcome(snap.settings, snap.last_id);
    let history = ServerMsg::History {
        messages: history,
        truncated,
    };
    if send_now(&mut sink, &welcome, &gw).await && send_now(&mut sink, &history, &gw).await {
        let reader = read_loop(stream, &mut conn);
        let writer = write_loop(sink, rx, signal.clone(), last_sent, cfg.send_timeout);
        tokio::pin!(reader, writer);
        tokio::select! {
            _ = &mut reader => {
                // The reader asked for a close (or the client left): let the writer send it.
                let _ = tokio::time::timeout(std::time::Duration::from_secs(5), &mut writer).await;
            }
            _ = &mut writer => {}
        }
    }
    cell.unsubscribe(sub_id);
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
    mut rx: mpsc::Receiver<Frame>,
    signal: Arc<CloseSignal>,
    mut last_sent: u64,
    send_timeout: std::time::Duration,
) {
    let mut batch: Vec<Utf8Bytes> = Vec::new();
    loop {
        let frame = tokio::select! {
            biased;
            () = signal.wait() => break,
            f = rx.recv() => match f {
                Some(f) => f,
                None => break,
            },
        };
        // This frame and whatever else is queued already, up to COALESCE_BYTES.
        let mut bytes = 0;
        let mut next = Some(frame);
        while let Some(frame) = next.take() {
            if let Some(id) = frame.id {
                if id <= last_sent {
                    next = rx.try_recv().ok();
                    continue;
                }
                last_sent = id;
            }
            bytes += frame.json.len();
            batch.push(frame.json);
            if bytes < COALESCE_BYTES {
                next = rx.try_recv().ok();
            }
        }
        if batch.is_empty() {
            continue;
        }
        let send = async {
            for json in batch.drain(..) {
                sink.feed(Message::Text(json)).await?;
            }
            sink.flush().await
        };
        match tokio::time::timeout(send_timeout, send).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return,
            Err(_) => {
                metrics::counter!("weir_chat_slow_clients_dropped_total").increment(1);
                signal.close(close::SLOW_CONSUMER, "too slow: write timed out");
                break;
            }
        }
        batch.clear();
    }
    let (code, reason) = signal.reason().unwrap_or((close::NORMAL, String::new()));
    close_sink(&mut sink, code, &reason).await;
}

async fn read_loop(mut stream: SplitStream<WebSocket>, conn: &mut Conn) {
    let signal = conn.signal.clone();
    let max = conn.gw.config().max_frame_bytes;
    loop {
        let msg = tokio::select! {
            () = signal.wait() => return,
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
                conn.handle(t.as_str()).await;
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
