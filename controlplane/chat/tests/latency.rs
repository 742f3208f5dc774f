//! Delivery latency through the real gateway (websocket in, embedded redb store, fan-out,
//! websocket out), batching on (50 ms) and nearly off (1 ms). Not a CI test: run
//! `cargo test -p weir-chat --release --test latency -- --ignored --nocapture`; it prints
//! percentiles per setting. Readers and writer run in this process, on loopback.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use weir_auth::{Auth, AuthConfig};
use weir_chat::bucket::Rate;
use weir_chat::{Gateway, GatewayConfig};
use weir_store::{EmbeddedKv, Role, SecretBox, Store};

const READERS: usize = 100;
const MESSAGES: usize = 500;
const RATE_PER_S: u64 = 100;

async fn run(flush: Duration) -> Vec<f64> {
    let dir = std::env::temp_dir().join(format!(
        "weir-chat-latency-{}-{}",
        std::process::id(),
        flush.as_millis()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let store = Store::new(
        Arc::new(EmbeddedKv::open(&dir).unwrap()),
        SecretBox::generate(),
    );
    let auth = Auth::new(
        store.clone(),
        AuthConfig::new(b"latency-secret-latency".to_vec()),
    );
    let owner = store
        .create_user("owner", "o@example.com", "h", Role::Owner)
        .await
        .unwrap();
    store
        .create_channel(&owner.id, "room", "Room", "")
        .await
        .unwrap();
    let token = auth.jwt().issue(&owner.id, "owner", Role::Owner).unwrap().0;
    let lots = Rate {
        burst: 1_000_000,
        per_second: 1_000_000.0,
    };
    let cfg = GatewayConfig {
        per_user: lots,
        per_ip: lots,
        per_ip_connects: lots,
        flush_interval: flush,
        ..GatewayConfig::default()
    };
    let gw = Gateway::new(store, auth, cfg);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = weir_chat::routes(gw.clone()).into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let url = format!("ws://{addr}/v1/chat/room");
    let epoch = Instant::now();
    let mut readers = Vec::new();
    for _ in 0..READERS {
        let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str())
            .await
            .unwrap();
        readers.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(MESSAGES);
            while lat.len() < MESSAGES {
                let Some(Ok(Message::Text(t))) = ws.next().await else {
                    break;
                };
                let v: Value = serde_json::from_str(t.as_str()).unwrap();
                if v["type"] == "message" {
                    let sent: u64 = v["text"]
                        .as_str()
                        .unwrap()
                        .split(' ')
                        .next()
                        .unwrap()
                        .parse()
                        .unwrap();
                    let now = epoch.elapsed().as_micros() as u64;
                    lat.push((now - sent) as f64 / 1000.0);
                }
            }
            lat
        }));
    }
    let mut req = url.as_str().into_client_request().unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (writer, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let (mut tx, mut rx) = writer.split();
    tokio::spawn(async move { while rx.next().await.is_some() {} });
    let gap = Duration::from_micros(1_000_000 / RATE_PER_S);
    let mut next = Instant::now();
    for i in 0..MESSAGES {
        tokio::time::sleep_until(next.into()).await;
        next += gap;
        let text = format!("{} message number {i}", epoch.elapsed().as_micros());
        tx.send(Message::text(
            json!({ "type": "send", "text": text }).to_string(),
        ))
        .await
        .unwrap();
    }
    let mut all = Vec::new();
    for r in readers {
        all.extend(
            tokio::time::timeout(Duration::from_secs(60), r)
                .await
                .unwrap()
                .unwrap(),
        );
    }
    gw.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    all.sort_by(f64::total_cmp);
    all
}

fn pct(v: &[f64], p: f64) -> f64 {
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement, not a check: run with --ignored --nocapture (release)"]
async fn delivery_latency_with_and_without_batching() {
    for flush in [Duration::from_millis(50), Duration::from_millis(1)] {
        let v = run(flush).await;
        assert_eq!(
            v.len(),
            READERS * MESSAGES,
            "every reader got every message"
        );
        eprintln!(
            "flush {:>2} ms, {READERS} readers, {RATE_PER_S} msg/s, redb: p50 {:.1} ms, p90 {:.1}, p99 {:.1}, max {:.1}",
            flush.as_millis(),
            pct(&v, 0.5),
            pct(&v, 0.9),
            pct(&v, 0.99),
            v[v.len() - 1]
        );
    }
}
