//! Two gateways over one store and one Redis (started here on a free port, Debian
//! package `redis-server`, with a password): one order and one id sequence per room
//! across gateways, moderation in force on both; a wrong password is refused clearly.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use weir_auth::{Auth, AuthConfig};
use weir_chat::bucket::Rate;
use weir_chat::history::ChatStore;
use weir_chat::protocol::{ChatMessage, UserRef};
use weir_chat::{Gateway, GatewayConfig, RedisFanout, RedisTarget};
use weir_store::{Role, Store};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The Redis password (percent-encoded in the gateways' URL).
const PASSWORD: &str = "s3cret p@ss";

struct Redis(Child);

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start_redis() -> (Redis, String) {
    let found = Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "`redis-server` is not installed: run the project's setup (`cargo xtask setup --test`, \
         which installs the Debian package redis-server) and try again"
    );
    let port = free_port();
    let redis = Redis(
        Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(["--requirepass", PASSWORD])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server"),
    );
    let addr = format!("127.0.0.1:{port}");
    for _ in 0..100 {
        if TcpStream::connect(&addr).await.is_ok() {
            return (redis, addr);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("redis-server did not listen within 5 s");
}

async fn serve(gw: Gateway) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = weir_chat::routes(gw).into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

async fn connect(addr: SocketAddr, bearer: Option<&str>) -> Ws {
    let mut req = format!("ws://{addr}/v1/chat/room")
        .into_client_request()
        .unwrap();
    if let Some(t) = bearer {
        req.headers_mut()
            .insert("authorization", format!("Bearer {t}").parse().unwrap());
    }
    let mut ws = tokio_tungstenite::connect_async(req)
        .await
        .expect("connect")
        .0;
    let _ = next_of(&mut ws, "history").await;
    ws
}

async fn next_of(ws: &mut Ws, t: &str) -> Value {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .unwrap_or_else(|_| panic!("no {t} within 10 s"))
            .expect("open")
            .expect("ok");
        if let Message::Text(text) = m {
            let v: Value = serde_json::from_str(text.as_str()).unwrap();
            if v["type"] == t {
                return v;
            }
        }
    }
}

async fn say(ws: &mut Ws, text: &str) {
    let m = json!({ "type": "send", "text": text, "nonce": text });
    ws.send(Message::text(m.to_string())).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_share_one_order_and_moderation() {
    let (_redis, redis_addr) = start_redis().await;
    let target = RedisTarget::parse(&format!("redis://:s3cret%20p%40ss@{redis_addr}/0")).unwrap();
    // A wrong password: refused with Redis's reason, the password nowhere in the error.
    let wrong = RedisTarget::parse(&format!("redis://:hunter2@{redis_addr}")).unwrap();
    let e = weir_chat::redis::Conn::connect(&wrong)
        .await
        .err()
        .expect("refused")
        .to_string();
    assert!(e.contains("WRONGPASS") && !e.contains("hunter2"), "{e}");
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
    // History from before: ids continue after it on both gateways.
    let old = ChatMessage {
        id: 5,
        ts: 1,
        user: UserRef {
            id: owner.id.clone(),
            name: "owner".into(),
        },
        text: "from before".into(),
        reply_to: None,
    };
    ChatStore::new(store.kv().clone())
        .put_messages(&ch.id, &[old])
        .await
        .unwrap();
    let token = |u: &weir_store::User| auth.jwt().issue(&u.id, &u.username, u.role).unwrap().0;
    let (owner_t, viewer_t) = (token(&owner), token(&viewer));
    let lots = Rate {
        burst: 1000,
        per_second: 1000.0,
    };
    let cfg = GatewayConfig {
        per_user: lots,
        per_ip: lots,
        ..GatewayConfig::default()
    };
    let gateway = || {
        let prefix = "weir-test".to_string();
        let target = target.clone();
        Gateway::with_fanout(store.clone(), auth.clone(), cfg.clone(), move |hub| {
            RedisFanout::start(target, &prefix, hub)
        })
    };
    let (a, b) = (serve(gateway()).await, serve(gateway()).await);
    let mut on_a = connect(a, Some(&owner_t)).await;
    let mut on_b = connect(b, Some(&viewer_t)).await;
    let mut watch_a = connect(a, None).await;
    let mut watch_b = connect(b, None).await;
    // Let both subscriptions settle.
    tokio::time::sleep(Duration::from_millis(300)).await;

    for i in 0..10 {
        say(&mut on_a, &format!("a{i}")).await;
        say(&mut on_b, &format!("b{i}")).await;
    }
    let mut seen = Vec::new();
    for w in [&mut watch_a, &mut watch_b] {
        let mut got = Vec::new();
        while got.len() < 20 {
            let m = next_of(w, "message").await;
            got.push((
                m["id"].as_u64().unwrap(),
                m["text"].as_str().unwrap().to_string(),
            ));
        }
        seen.push(got);
    }
    assert_eq!(seen[0], seen[1], "both gateways deliver one order");
    let ids: Vec<u64> = seen[0].iter().map(|(id, _)| *id).collect();
    assert_eq!(
        ids,
        (6..26).collect::<Vec<_>>(),
        "one id sequence, after the stored one"
    );
    let ack = next_of(&mut on_b, "ack").await;
    assert!(ack["id"].as_u64().is_some_and(|id| id > 5), "{ack}");

    // A ban given on gateway A is enforced on gateway B.
    let ban = json!({ "type": "moderate", "action": "ban", "user": "viewer", "nonce": "ban" });
    on_a.send(Message::text(ban.to_string())).await.unwrap();
    let banned = next_of(&mut watch_b, "banned").await;
    assert_eq!(banned["user"]["name"], "viewer");
    let _ = next_of(&mut on_b, "banned").await;
    say(&mut on_b, "can I still").await;
    let err = next_of(&mut on_b, "error").await;
    assert_eq!(err["code"], "BANNED", "{err}");

    // Stored: the history over the store has all of them.
    let page = ChatStore::new(store.kv().clone())
        .page(&ch.id, None, 100)
        .await
        .unwrap();
    assert_eq!(page.messages.len(), 21);
}
