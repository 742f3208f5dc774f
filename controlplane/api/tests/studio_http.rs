//! The studio over HTTP: image uploads (type, size and header checks, roles), the node
//! API's authorisation of participants' keys, and `studioEvents` over graphql-ws with a
//! participant token.

mod common;

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tower::ServiceExt;
use weir_api::ApiConfig;
use weir_store::Role;
use weir_store::studio::image::{MAX_IMAGE_BYTES, png_header};

use common::{Harness, harness_with};

async fn send_req(h: &Harness, req: Request<Body>) -> (StatusCode, Vec<u8>) {
    let resp = h.app.clone().oneshot(req).await.expect("resp");
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .expect("body");
    (status, bytes.to_vec())
}

async fn upload(
    h: &Harness,
    broadcast: &str,
    token: Option<&str>,
    ctype: &str,
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let mut req =
        Request::post(format!("/v1/studio/{broadcast}/images")).header("content-type", ctype);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let (st, bytes) = send_req(h, req.body(Body::from(body)).expect("req")).await;
    (st, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// A harness with the node API on, a host, a channel, a broadcast and one guest.
async fn setup() -> (Harness, String, String, String, Value) {
    let h = harness_with(ApiConfig {
        node_token: Some("node-secret".into()),
        ..ApiConfig::default()
    });
    let (_, owner, _) = h.user("host", Role::Owner).await;
    let ch = h.channel(&owner, "show").await;
    let r = h
        .gql(
            Some(&owner),
            "mutation($c: ID!) { createStudioBroadcast(channelId: $c, input: { title: \"Ep\" }) { id } }",
            json!({ "c": ch }),
        )
        .await;
    let b = r.ok()["createStudioBroadcast"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let r = h
        .gql(
            Some(&owner),
            "mutation($b: ID!) { inviteGuest(broadcastId: $b) { token } }",
            json!({ "b": b }),
        )
        .await;
    let inv = r.ok()["inviteGuest"]["token"].clone();
    let r = h
        .gql(
            None,
            "mutation($i: String!) { joinStudio(invitation: $i, displayName: \"Ada\") { participantToken publishKey participant { id stream } } }",
            json!({ "i": inv }),
        )
        .await;
    let guest = r.ok()["joinStudio"].clone();
    (h, owner, ch, b, guest)
}

/// Token, Content-Type, body, expected status, words of the error.
type Case<'a> = (Option<&'a str>, &'a str, Vec<u8>, StatusCode, &'a str);

#[tokio::test]
async fn uploads_are_checked() {
    let (h, owner, _ch, b, guest) = setup().await;
    let gt = guest["participantToken"].as_str().expect("t");
    let png = png_header(1280, 720);

    let (st, v) = upload(&h, &b, Some(&owner), "image/png", png.clone()).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(
        (
            v["width"].as_u64(),
            v["height"].as_u64(),
            v["mime"].as_str()
        ),
        (Some(1280), Some(720), Some("image/png"))
    );
    let id = v["id"].as_str().expect("id").to_string();
    assert_eq!(id.len(), 64);
    let (st, v) = upload(&h, &b, Some(&owner), "image/png", png.clone()).await;
    assert_eq!(
        (st, v["id"].as_str()),
        (StatusCode::OK, Some(id.as_str())),
        "same bytes, same id"
    );

    // The image comes back as uploaded.
    let req = Request::get(format!("/v1/studio/{b}/images/{id}"))
        .body(Body::empty())
        .expect("req");
    let (st, bytes) = send_req(&h, req).await;
    assert_eq!((st, bytes), (StatusCode::OK, png.clone()));

    let cases: Vec<Case<'_>> = vec![
        (
            None,
            "image/png",
            png.clone(),
            StatusCode::UNAUTHORIZED,
            "Bearer",
        ),
        (
            Some(gt),
            "image/png",
            png.clone(),
            StatusCode::FORBIDDEN,
            "only the host",
        ),
        (
            Some("garbage"),
            "image/png",
            png.clone(),
            StatusCode::UNAUTHORIZED,
            "",
        ),
        (
            Some(&owner),
            "image/gif",
            b"GIF89a\x01\x00\x01\x00".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "image/png or image/jpeg",
        ),
        (
            Some(&owner),
            "image/png",
            b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "not a PNG or JPEG",
        ),
        (
            Some(&owner),
            "image/jpeg",
            png.clone(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "sent as image/jpeg",
        ),
        (
            Some(&owner),
            "image/png",
            png[..20].to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "truncated",
        ),
        (
            Some(&owner),
            "image/png",
            png_header(8000, 100),
            StatusCode::UNPROCESSABLE_ENTITY,
            "4096x4096",
        ),
        (
            Some(&owner),
            "image/png",
            Vec::new(),
            StatusCode::BAD_REQUEST,
            "empty",
        ),
    ];
    for (token, ctype, body, want, words) in cases {
        let (st, v) = upload(&h, &b, token, ctype, body).await;
        assert_eq!(st, want, "{ctype}: {v}");
        let msg = v["error"].as_str().unwrap_or_default();
        assert!(msg.contains(words), "{msg:?} should say {words:?}");
        assert!(v["code"].is_string(), "{v}");
    }
    // Oversized: refused by its declared length and by its actual length.
    let mut big = png_header(100, 100);
    big.resize(MAX_IMAGE_BYTES + 1, 0);
    let (st, v) = upload(&h, &b, Some(&owner), "image/png", big.clone()).await;
    assert_eq!(st, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    assert!(
        v["error"].as_str().unwrap_or_default().contains("2 MiB"),
        "{v}"
    );
    let stream = futures_util::stream::iter(
        big.chunks(65536)
            .map(|c| Ok::<_, std::io::Error>(c.to_vec()))
            .collect::<Vec<_>>(),
    );
    let req = Request::post(format!("/v1/studio/{b}/images"))
        .header("content-type", "image/png")
        .header("authorization", format!("Bearer {owner}"))
        .body(Body::from_stream(stream))
        .expect("req");
    let (st, _) = send_req(&h, req).await;
    assert_eq!(st, StatusCode::PAYLOAD_TOO_LARGE, "chunked, no length");
    // Another owner's broadcast is not found; unknown broadcasts neither.
    let (_, other, _) = h.user("other", Role::Owner).await;
    let (st, _) = upload(&h, &b, Some(&other), "image/png", png.clone()).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, _) = upload(&h, "nope", Some(&owner), "image/png", png).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}

async fn authorize(h: &Harness, key_id: &str) -> (StatusCode, Value) {
    let req = Request::post("/v1/node/authorize")
        .header("authorization", "Bearer node-secret")
        .header("content-type", "application/json")
        .body(Body::from(json!({ "key_id": key_id }).to_string()))
        .expect("req");
    let (st, bytes) = send_req(h, req).await;
    (st, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

#[tokio::test]
async fn split_mode_authorises_participant_keys_until_removal() {
    let (h, owner, _ch, _b, guest) = setup().await;
    let key = guest["publishKey"].as_str().expect("key");
    let n = key
        .trim_end_matches("_secret")
        .rsplit('_')
        .next()
        .expect("n");
    let key_id = format!("key-{n}");
    let (st, v) = authorize(&h, &key_id).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    // The participant names what the node reports of the stream (its isolated track).
    assert_eq!(v["channel_id"], guest["participant"]["id"]);
    assert_eq!(
        (
            v["transcode"].as_bool(),
            v["record"].as_bool(),
            v["signed_playback"].as_bool()
        ),
        (Some(false), Some(false), Some(false))
    );
    assert_eq!(v["destinations"], json!([]));
    h.gql(
        Some(&owner),
        "mutation($p: ID!) { removeParticipant(participantId: $p) { id } }",
        json!({ "p": guest["participant"]["id"] }),
    )
    .await
    .ok();
    let (st, v) = authorize(&h, &key_id).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    assert!(
        v["error"].as_str().unwrap_or_default().contains("left"),
        "{v}"
    );
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn recv(ws: &mut Ws) -> Option<Value> {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("timed out waiting for a message")?
            .ok()?;
        match msg {
            Message::Text(t) => {
                let v: Value = serde_json::from_str(t.as_str()).expect("json");
                if v["type"] == "ping" || v["type"] == "pong" {
                    continue;
                }
                return Some(v);
            }
            Message::Close(_) => return None,
            _ => continue,
        }
    }
}

#[tokio::test]
async fn studio_events_reach_a_guest_over_graphql_ws() {
    let (h, owner, _ch, b, guest) = setup().await;
    let gt = guest["participantToken"].as_str().expect("t").to_string();
    let me = guest["participant"]["id"].as_str().expect("id").to_string();
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
    let init = json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {gt}") } });
    ws.send(Message::text(init.to_string()))
        .await
        .expect("send");
    assert_eq!(recv(&mut ws).await.expect("ack")["type"], "connection_ack");
    let sub = json!({ "id": "1", "type": "subscribe", "payload": {
        "query": "subscription($b: ID!) { studioEvents(broadcastId: $b) { kind broadcastId broadcast { layout status participants { id stage } } participant { id stage } } }",
        "variables": { "b": b } } });
    ws.send(Message::text(sub.to_string())).await.expect("send");
    let ev = |v: Value| v["payload"]["data"]["studioEvents"].clone();
    let first = ev(recv(&mut ws).await.expect("snapshot"));
    assert_eq!(first["kind"], "SNAPSHOT", "{first}");
    assert_eq!(first["broadcast"]["participants"][0]["id"], me.as_str());

    let host = |q: &'static str, v: Value| {
        let h = &h;
        let owner = owner.clone();
        async move { h.gql(Some(&owner), q, v).await.ok().clone() }
    };
    host(
        "mutation($p: ID!) { bringOnStage(participantId: $p) { id } }",
        json!({ "p": me }),
    )
    .await;
    let e = ev(recv(&mut ws).await.expect("stage"));
    assert_eq!(
        (e["kind"].as_str(), e["participant"]["stage"].as_str()),
        (Some("STAGE_CHANGED"), Some("ON_STAGE"))
    );
    host(
        "mutation($b: ID!) { setLayout(broadcastId: $b, layout: SIDEBAR) { id } }",
        json!({ "b": b }),
    )
    .await;
    let e = ev(recv(&mut ws).await.expect("layout"));
    assert_eq!(
        (e["kind"].as_str(), e["broadcast"]["layout"].as_str()),
        (Some("LAYOUT_CHANGED"), Some("SIDEBAR"))
    );
    host(
        "mutation($b: ID!) { showBanner(broadcastId: $b, title: \"Hi\") { id } }",
        json!({ "b": b }),
    )
    .await;
    assert_eq!(
        ev(recv(&mut ws).await.expect("banner"))["kind"],
        "BANNER_CHANGED"
    );

    // A guest cannot follow another broadcast.
    let r = h
        .gql(Some(&owner), "mutation($c: ID!) { createStudioBroadcast(channelId: $c, input: { title: \"Other\" }) { id } }", json!({ "c": _ch }))
        .await;
    let other = r.ok()["createStudioBroadcast"]["id"].clone();
    let sub2 = json!({ "id": "2", "type": "subscribe", "payload": {
        "query": "subscription($b: ID!) { studioEvents(broadcastId: $b) { kind } }",
        "variables": { "b": other } } });
    ws.send(Message::text(sub2.to_string()))
        .await
        .expect("send");
    let denied = recv(&mut ws).await.expect("denied");
    assert_eq!(denied["id"], "2", "{denied}");
    let code = denied["payload"]["errors"][0]["extensions"]["code"].clone();
    let code = if code.is_null() {
        denied["payload"][0]["extensions"]["code"].clone()
    } else {
        code
    };
    assert_eq!(code, "NOT_FOUND", "{denied}");

    // Removed: the event arrives, then the subscription completes.
    host(
        "mutation($p: ID!) { removeParticipant(participantId: $p) { id } }",
        json!({ "p": me }),
    )
    .await;
    let mut kinds = Vec::new();
    while let Some(v) = recv(&mut ws).await {
        if v["id"] != "1" {
            continue;
        }
        if v["type"] == "complete" {
            kinds.push("complete".to_string());
            break;
        }
        kinds.push(ev(v)["kind"].as_str().unwrap_or("?").to_string());
    }
    assert!(kinds.contains(&"PARTICIPANT_LEFT".to_string()), "{kinds:?}");
    assert_eq!(
        kinds.last().map(String::as_str),
        Some("complete"),
        "{kinds:?}"
    );
}
