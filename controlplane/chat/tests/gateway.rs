//! The gateway's websocket driver in-process (memory store, axum on a loopback port):
//! a client that stops reading is dropped without stalling the room; moderation over
//! the socket; settings changes in force at once.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use weir_auth::{Auth, AuthConfig};
use weir_chat::bucket::Rate;
use weir_chat::{Gateway, GatewayConfig};
use weir_store::{Role, Store};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

struct Env {
    gw: Gateway,
    addr: SocketAddr,
    channel: String,
    owner: String,
    viewer: String,
    viewer_id: String,
    store: Store,
}

async fn env(cfg: GatewayConfig) -> Env {
    let store = Store::memory();
    let auth = Auth::new(
        store.clone(),
        AuthConfig::new(b"test-secret-test-secret".to_vec()),
    );
    let owner = store
        .create_user("owner", "o@example.com", "h", Role::Owner)
        .await
        .unwrap();
    let viewer = store
        .create_user("viewer", "v@example.com", "h", Role::Viewer)
        .await
        .unwrap();
    let ch = store
        .create_channel(&owner.id, "room", "Room", "")
        .await
        .unwrap();
    let token = |u: &weir_store::User| auth.jwt().issue(&u.id, &u.username, u.role).unwrap().0;
    let (owner_t, viewer_t) = (token(&owner), token(&viewer));
    let gw = Gateway::new(store.clone(), auth, cfg);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = weir_chat::routes(gw.clone()).into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await });
    Env {
        gw,
        addr,
        channel: ch.id,
        owner: owner_t,
        viewer: viewer_t,
        viewer_id: viewer.id,
        store,
    }
}

async fn connect(e: &Env, bearer: Option<&str>) -> Ws {
    connect_query(e, bearer, "").await
}

async fn connect_query(e: &Env, bearer: Option<&str>, query: &str) -> Ws {
    let mut req = format!("ws://{}/v1/chat/room{query}", e.addr)
        .into_client_request()
        .unwrap();
    if let Some(t) = bearer {
        req.headers_mut()
            .insert("authorization", format!("Bearer {t}").parse().unwrap());
    }
    tokio_tungstenite::connect_async(req)
        .await
        .expect("connect")
        .0
}

/// A client whose socket takes little before the server's writes block (a small receive
/// buffer), for a client that stops reading.
async fn connect_small_buffer(e: &Env) -> WebSocketStream<TcpStream> {
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    let stream = sock.connect(e.addr).await.unwrap();
    let req = format!("ws://{}/v1/chat/room", e.addr)
        .into_client_request()
        .unwrap();
    tokio_tungstenite::client_async(req, stream)
        .await
        .expect("connect")
        .0
}

async fn next_json(ws: &mut Ws) -> Value {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a frame within 10 s")
            .expect("open")
            .expect("ok");
        if let Message::Text(t) = m {
            return serde_json::from_str(t.as_str()).unwrap();
        }
    }
}

async fn next_of(ws: &mut Ws, t: &str) -> Value {
    loop {
        let v = next_json(ws).await;
        if v["type"] == t {
            return v;
        }
    }
}

async fn next_where(ws: &mut Ws, t: &str, key: &str, value: &str) -> Value {
    loop {
        let v = next_of(ws, t).await;
        if v[key] == value {
            return v;
        }
    }
}

async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::text(v.to_string())).await.unwrap();
}

fn fast() -> GatewayConfig {
    let lots = Rate {
        burst: 1_000_000,
        per_second: 1_000_000.0,
    };
    GatewayConfig {
        per_user: lots,
        per_ip: lots,
        ..GatewayConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_dropped_and_the_room_goes_on() {
    let e = env(fast()).await;
    let mut stuck = connect_small_buffer(&e).await;
    let mut reader = connect(&e, None).await;
    let _ = next_of(&mut reader, "history").await;
    let writer = connect(&e, Some(&e.viewer)).await;
    let (mut wtx, mut wrx) = writer.split();
    // The writer drains its own socket (it gets every message back, and acks).
    tokio::spawn(async move { while wrx.next().await.is_some() {} });
    assert_eq!(e.gw.connections(&e.channel), 3);
    // ~2 KB per message: the stuck client's socket buffers fill, then its queue.
    const N: usize = 4000;
    let filler = "😀".repeat(480);
    let sender = tokio::spawn(async move {
        for i in 0..N {
            // About 1000 messages/s: a busy room, well within what a reader keeps up with.
            if i % 10 == 0 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let text = format!("{i} {filler}");
            wtx.send(Message::text(
                json!({ "type": "send", "text": text }).to_string(),
            ))
            .await
            .unwrap();
        }
        wtx
    });
    let mut next = 0usize;
    while next < N {
        let v = next_json(&mut reader).await;
        if v["type"] == "message" {
            let n: usize = v["text"]
                .as_str()
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            assert_eq!(n, next, "in order, none lost");
            assert_eq!(v["id"], (n + 1) as u64);
            next += 1;
        } else {
            panic!("unexpected {v}");
        }
    }
    let _wtx = sender.await.unwrap();
    assert_eq!(
        e.gw.connections(&e.channel),
        2,
        "the stuck client was dropped"
    );
    // Its socket still holds what was sent before, then the end: a 4008 close frame
    // when it fitted in the full pipe, else just the end of the stream.
    let close = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(Ok(m)) = stuck.next().await {
            if let Message::Close(f) = m {
                return f.map(|f| u16::from(f.code));
            }
        }
        None
    })
    .await
    .expect("the stuck client's stream ends within 20 s");
    assert!(matches!(close, None | Some(4008)), "{close:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moderation_and_settings_over_the_socket() {
    let e = env(fast()).await;
    let mut owner = connect(&e, Some(&e.owner)).await;
    let w = next_of(&mut owner, "welcome").await;
    assert_eq!(
        (w["can_write"].clone(), w["moderator"].clone()),
        (json!(true), json!(true))
    );
    let mut viewer = connect(&e, Some(&e.viewer)).await;
    let w = next_of(&mut viewer, "welcome").await;
    assert_eq!(w["moderator"], false);

    // A viewer may not moderate.
    send(
        &mut viewer,
        json!({ "type": "moderate", "action": "settings", "settings": {}, "nonce": "x" }),
    )
    .await;
    let err = next_of(&mut viewer, "error").await;
    assert_eq!(
        (err["code"].clone(), err["nonce"].clone()),
        (json!("FORBIDDEN"), json!("x"))
    );

    // Unknown or malformed targets are NOT_FOUND (never a storage error); e-mail
    // addresses are not accepted as targets.
    for who in ["nobody", "a/b", "v@example.com"] {
        send(
            &mut owner,
            json!({ "type": "moderate", "action": "ban", "user": who, "nonce": who }),
        )
        .await;
        let err = next_where(&mut owner, "error", "nonce", who).await;
        assert_eq!(err["code"], "NOT_FOUND", "{who}: {err}");
    }

    // Slow mode and banned words, set over the socket, apply at once.
    send(
        &mut owner,
        json!({ "type": "moderate", "action": "settings", "nonce": "s",
                "settings": { "slow_mode_s": 30, "banned_words": ["frobnicate"] } }),
    )
    .await;
    assert_eq!(next_of(&mut owner, "ack").await["nonce"], "s");
    let changed = next_of(&mut viewer, "settings_changed").await;
    assert_eq!(changed["settings"]["slow_mode_s"], 30);
    send(
        &mut viewer,
        json!({ "type": "send", "text": "ＦＲＯＢＮＩＣＡＴＥ!", "nonce": "a" }),
    )
    .await;
    assert_eq!(next_of(&mut viewer, "error").await["code"], "BANNED_WORD");
    send(
        &mut viewer,
        json!({ "type": "send", "text": "hello", "nonce": "b" }),
    )
    .await;
    assert_eq!(next_of(&mut viewer, "ack").await["id"], 1);
    send(
        &mut viewer,
        json!({ "type": "send", "text": "hello again", "nonce": "c" }),
    )
    .await;
    let err = next_of(&mut viewer, "error").await;
    assert_eq!(err["code"], "SLOW_MODE");
    assert!(
        err["retry_after_ms"].as_u64().is_some_and(|ms| ms > 25_000),
        "{err}"
    );

    // A timeout reaches everyone and refuses the user's messages.
    send(
        &mut owner,
        json!({ "type": "moderate", "action": "timeout", "user": "viewer", "duration_s": 60 }),
    )
    .await;
    let t = next_of(&mut viewer, "timed_out").await;
    assert_eq!(t["user"]["name"], "viewer");
    assert!(t["until"].as_i64().is_some());
    send(
        &mut viewer,
        json!({ "type": "send", "text": "let me out", "nonce": "d" }),
    )
    .await;
    assert_eq!(next_of(&mut viewer, "error").await["code"], "TIMED_OUT");
    let audit = e.gw.chat_store().audit_log(&e.channel, 10).await.unwrap();
    assert_eq!(
        audit.iter().map(|a| a.action.as_str()).collect::<Vec<_>>(),
        ["settings", "timeout"]
    );

    // Subscribers-only refuses non-members with its own code.
    send(
        &mut owner,
        json!({ "type": "moderate", "action": "unban", "user": "viewer" }),
    )
    .await;
    let _ = next_of(&mut viewer, "unbanned").await;
    send(
        &mut owner,
        json!({ "type": "moderate", "action": "settings", "settings": { "subscribers_only": true } }),
    )
    .await;
    let _ = next_of(&mut viewer, "settings_changed").await;
    send(
        &mut viewer,
        json!({ "type": "send", "text": "me too", "nonce": "e" }),
    )
    .await;
    assert_eq!(
        next_of(&mut viewer, "error").await["code"],
        "SUBSCRIBERS_ONLY"
    );
    send(
        &mut owner,
        json!({ "type": "send", "text": "owners may", "nonce": "f" }),
    )
    .await;
    let _ = next_where(&mut owner, "ack", "nonce", "f").await;
    let m = next_of(&mut viewer, "message").await;
    assert_eq!(m["text"], "owners may");

    // Followers-only: refused until the viewer follows; a follow made after joining
    // counts within the connection's follow re-check (2 s).
    send(
        &mut owner,
        json!({ "type": "moderate", "action": "settings",
                "settings": { "subscribers_only": false, "followers_only": true } }),
    )
    .await;
    let changed = next_of(&mut viewer, "settings_changed").await;
    assert_eq!(changed["settings"]["followers_only"], true);
    send(
        &mut viewer,
        json!({ "type": "send", "text": "may I", "nonce": "g" }),
    )
    .await;
    let err = next_of(&mut viewer, "error").await;
    assert_eq!(err["code"], "FOLLOWERS_ONLY", "{err}");
    e.store.follow(&e.channel, &e.viewer_id).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    send(
        &mut viewer,
        json!({ "type": "send", "text": "following now", "nonce": "h" }),
    )
    .await;
    let _ = next_where(&mut viewer, "ack", "nonce", "h").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stores_what_is_pending_and_closes_with_1001() {
    let e = env(GatewayConfig {
        flush_interval: Duration::from_secs(30),
        ..fast()
    })
    .await;
    let mut ws = connect(&e, Some(&e.viewer)).await;
    send(
        &mut ws,
        json!({ "type": "send", "text": "first", "nonce": "1" }),
    )
    .await;
    // Stored at once; the writer then waits a whole flush interval.
    assert_eq!(next_where(&mut ws, "ack", "nonce", "1").await["id"], 1);
    send(
        &mut ws,
        json!({ "type": "send", "text": "second", "nonce": "2" }),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let stored = e.gw.chat_store().page(&e.channel, None, 10).await.unwrap();
    assert_eq!(stored.messages.len(), 1, "second is pending");
    e.gw.shutdown().await;
    let stored = e.gw.chat_store().page(&e.channel, None, 10).await.unwrap();
    assert_eq!(
        stored
            .messages
            .iter()
            .map(|m| m.text.as_str())
            .collect::<Vec<_>>(),
        ["first", "second"]
    );
    let close = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(f))) => return f.map(|f| u16::from(f.code)),
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return None,
            }
        }
    })
    .await
    .expect("closed");
    assert_eq!(close, Some(1001));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_from_a_future_id_still_gets_new_messages() {
    let e = env(fast()).await;
    let mut w = connect(&e, Some(&e.viewer)).await;
    send(
        &mut w,
        json!({ "type": "send", "text": "one", "nonce": "1" }),
    )
    .await;
    let _ = next_where(&mut w, "ack", "nonce", "1").await;
    let mut r = connect_query(&e, None, "?since=999").await;
    let h = next_of(&mut r, "history").await;
    assert_eq!(h["messages"].as_array().map(Vec::len), Some(0));
    send(
        &mut w,
        json!({ "type": "send", "text": "two", "nonce": "2" }),
    )
    .await;
    let m = next_of(&mut r, "message").await;
    assert_eq!(
        (m["id"].clone(), m["text"].clone()),
        (json!(2), json!("two"))
    );
}
