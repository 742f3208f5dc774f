//! Subscriptions over a real socket with the graphql-ws (graphql-transport-ws) protocol:
//! a dashboard sees its stream start, go live, the viewer count move, and the stream end.
//! Also: GraphiQL on a browser GET, and subscriptions refused across owners.

mod common;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use weir_store::Role;

use common::harness;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(addr: std::net::SocketAddr, token: &str) -> Ws {
    let mut req = format!("ws://{addr}/graphql")
        .into_client_request()
        .expect("req");
    req.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().expect("hdr"),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("ws connect");
    send(&mut ws, json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } })).await;
    let ack = recv(&mut ws).await;
    assert_eq!(ack["type"], "connection_ack", "{ack}");
    ws
}

async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::text(v.to_string())).await.expect("send");
}

async fn recv(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("timed out waiting for a message")
            .expect("stream ended")
            .expect("ws error");
        match msg {
            Message::Text(t) => {
                let v: Value = serde_json::from_str(t.as_str()).expect("json");
                if v["type"] == "ping" || v["type"] == "pong" {
                    continue;
                }
                return v;
            }
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected message {other:?}"),
        }
    }
}

#[tokio::test]
async fn stream_lifecycle_and_viewers_over_graphql_ws() {
    let h = harness();
    let (_, owner, _) = h.user("streamer", Role::Owner).await;
    let (_, other, _) = h.user("nosy", Role::Owner).await;
    let ch = h.channel(&owner, "live-chan").await;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(weir_api::serve_with_shutdown(
        listener,
        h.state.clone(),
        async {
            let _ = stop_rx.await;
        },
    ));

    // GraphiQL for browsers.
    let page = plain_get(addr).await;
    assert!(page.contains("GraphiQL"), "{page}");

    let mut ws = connect(addr, &owner).await;
    send(&mut ws, json!({ "id": "s", "type": "subscribe", "payload": {
        "query": "subscription($c: ID!) { streamStateChanged(channelId: $c) { id state protocol } }",
        "variables": { "c": ch } } }))
    .await;
    send(
        &mut ws,
        json!({ "id": "v", "type": "subscribe", "payload": {
        "query": "subscription($c: ID!) { viewerCount(channelId: $c) { count } }",
        "variables": { "c": ch } } }),
    )
    .await;
    // The viewer subscription starts with the current value.
    let first = recv(&mut ws).await;
    assert_eq!(
        (
            first["id"].as_str(),
            &first["payload"]["data"]["viewerCount"]["count"]
        ),
        (Some("v"), &json!(0))
    );

    // Another owner cannot subscribe to this channel.
    let mut nosy = connect(addr, &other).await;
    send(
        &mut nosy,
        json!({ "id": "x", "type": "subscribe", "payload": {
        "query": "subscription($c: ID!) { streamStateChanged(channelId: $c) { id } }",
        "variables": { "c": ch } } }),
    )
    .await;
    let denied = recv(&mut nosy).await;
    assert_eq!(denied["type"], "next", "{denied}");
    assert_eq!(
        denied["payload"]["errors"][0]["extensions"]["code"], "NOT_FOUND",
        "{denied}"
    );

    // Data-plane events.
    let s = h
        .state
        .stream_started(&ch, "rtmp", Some("node-1"))
        .await
        .expect("start");
    let m = recv(&mut ws).await;
    assert_eq!(
        m["payload"]["data"]["streamStateChanged"]["state"], "STARTING",
        "{m}"
    );
    h.state.stream_live(&s.id, Vec::new()).await.expect("live");
    let m = recv(&mut ws).await;
    assert_eq!(
        m["payload"]["data"]["streamStateChanged"]["state"], "LIVE",
        "{m}"
    );
    h.state
        .viewer_count(&ch, "node-1", 7)
        .await
        .expect("viewers");
    h.state
        .viewer_count(&ch, "node-2", 5)
        .await
        .expect("viewers");
    let m = recv(&mut ws).await;
    assert_eq!(m["payload"]["data"]["viewerCount"]["count"], 7, "{m}");
    let m = recv(&mut ws).await;
    assert_eq!(m["payload"]["data"]["viewerCount"]["count"], 12, "{m}");
    h.state.stream_ended(&s.id).await.expect("end");
    // Ending also republishes the viewer total; the two subscriptions interleave freely.
    let (a, b) = (recv(&mut ws).await, recv(&mut ws).await);
    let m = if a["id"] == "s" { a } else { b };
    assert_eq!(
        m["payload"]["data"]["streamStateChanged"]["state"], "ENDED",
        "{m}"
    );

    // The session's peak viewers were recorded.
    let r = h
        .gql(
            Some(&owner),
            "query($c: ID!) { streams(channelId: $c) { edges { node { state peakViewers } } } }",
            json!({ "c": ch }),
        )
        .await;
    assert_eq!(r.ok()["streams"]["edges"][0]["node"]["peakViewers"], 12);

    let _ = stop_tx.send(());
    drop(ws);
    drop(nosy);
    let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
}

#[tokio::test]
async fn bad_token_in_connection_init_is_refused() {
    let h = harness();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(weir_api::serve(listener, h.state.clone()));
    let mut req = format!("ws://{addr}/graphql")
        .into_client_request()
        .expect("req");
    req.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().expect("hdr"),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("connect");
    send(&mut ws, json!({ "type": "connection_init", "payload": { "Authorization": "Bearer forged.jwt.value" } })).await;
    let msg = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .expect("timeout");
    match msg {
        Some(Ok(Message::Close(Some(frame)))) => {
            assert!(
                frame.reason.as_str().contains("invalid access token"),
                "{frame:?}"
            );
        }
        Some(Ok(Message::Close(None))) | None | Some(Err(_)) => {}
        other => panic!("expected the connection to close, got {other:?}"),
    }
}

async fn plain_get(addr: std::net::SocketAddr) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(
        b"GET /graphql HTTP/1.1\r\nHost: x\r\nAccept: text/html\r\nConnection: close\r\n\r\n",
    )
    .await
    .expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).await.expect("read");
    out
}
