//! Abuse resistance: rate limits on graphql-ws operations, graphql-ws sessions closed when
//! their token, account or session stops being valid, login throttling per account and per
//! address, the bounded password pool, and secrets kept out of `Debug` output.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use weir_api::ApiConfig;
use weir_api::ratelimit::Rate;
use weir_auth::{AuthConfig, Claims, PasswordParams, PoolConfig, ThrottleConfig};
use weir_store::Role;

use common::{Harness, harness_with, harness_with_auth};

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Serves `h` on a loopback port until the returned sender is dropped.
async fn serve(h: &Harness) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(weir_api::serve_with_shutdown(
        listener,
        h.state.clone(),
        async {
            let _ = stop_rx.await;
        },
    ));
    (addr, stop_tx)
}

async fn connect(addr: SocketAddr, token: Option<&str>) -> Ws {
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
    let payload = match token {
        Some(t) => json!({ "Authorization": format!("Bearer {t}") }),
        None => json!({}),
    };
    send(
        &mut ws,
        json!({ "type": "connection_init", "payload": payload }),
    )
    .await;
    let ack = recv(&mut ws).await;
    assert_eq!(ack["type"], "connection_ack", "{ack}");
    ws
}

async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::text(v.to_string())).await.expect("send");
}

/// The next GraphQL message; panics on a close frame.
async fn recv(ws: &mut Ws) -> Value {
    match next(ws, Duration::from_secs(5)).await {
        Next::Json(v) => v,
        Next::Closed(code, reason) => panic!("closed: {code} {reason}"),
    }
}

enum Next {
    Json(Value),
    Closed(u16, String),
}

async fn next(ws: &mut Ws, within: Duration) -> Next {
    loop {
        let msg = tokio::time::timeout(within, ws.next())
            .await
            .expect("timed out waiting for a message");
        let Some(msg) = msg else {
            return Next::Closed(0, "stream ended".into());
        };
        match msg {
            Ok(Message::Text(t)) => {
                let v: Value = serde_json::from_str(t.as_str()).expect("json");
                if v["type"] == "ping" || v["type"] == "pong" {
                    continue;
                }
                return Next::Json(v);
            }
            Ok(Message::Close(frame)) => {
                return match frame {
                    Some(f) => Next::Closed(f.code.into(), f.reason.to_string()),
                    None => Next::Closed(0, String::new()),
                };
            }
            Ok(_) => continue,
            Err(e) => return Next::Closed(0, e.to_string()),
        }
    }
}

/// Waits for the server's close frame, skipping data messages.
async fn closed(ws: &mut Ws, within: Duration) -> (u16, String) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match next(ws, left).await {
            Next::Closed(code, reason) => return (code, reason),
            Next::Json(_) => continue,
        }
    }
}

async fn query(ws: &mut Ws, id: &str, q: &str) -> Value {
    send(
        ws,
        json!({ "id": id, "type": "subscribe", "payload": { "query": q } }),
    )
    .await;
    let v = recv(ws).await;
    assert_eq!(v["id"], id, "{v}");
    v
}

fn fast_recheck(every: Duration) -> ApiConfig {
    ApiConfig {
        ws_recheck_interval: every,
        ..ApiConfig::default()
    }
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// Queries and mutations sent over graphql-ws take from the same per-user and per-IP
/// buckets as HTTP requests, and get a GraphQL `RATE_LIMITED` error past them.
#[tokio::test]
async fn graphql_ws_operations_are_rate_limited() {
    let h = harness_with(ApiConfig {
        per_ip: Rate {
            burst: 8,
            per_second: 0.001,
        },
        per_user: Rate {
            burst: 3,
            per_second: 0.001,
        },
        ..ApiConfig::default()
    });
    // Registered through the service; the login is 1 request from the harness's "local"
    // address, not the loopback one the socket uses.
    let (_, token, _) = h.user("wsuser", Role::Owner).await;
    let (addr, _stop) = serve(&h).await;
    // Upgrade: 1 request from 127.0.0.1.
    let mut ws = connect(addr, Some(&token)).await;
    for i in 0..3 {
        let v = query(&mut ws, &format!("q{i}"), "{ me { username } }").await;
        assert_eq!(v["payload"]["data"]["me"]["username"], "wsuser", "{v}");
        assert_eq!(recv(&mut ws).await["type"], "complete");
    }
    let v = query(&mut ws, "q3", "{ me { username } }").await;
    let err = &v["payload"]["errors"][0];
    assert_eq!(err["extensions"]["code"], "RATE_LIMITED", "{v}");
    assert_eq!(err["extensions"]["retryAfter"], 1, "{v}");
    assert_eq!(
        err["message"], "too many requests for this account, slow down",
        "{v}"
    );
    assert_eq!(recv(&mut ws).await["type"], "complete");
    // Mutations too, and the same bucket as HTTP: the user's POSTs are refused now.
    let v = query(
        &mut ws,
        "m",
        "mutation { createChannel(slug: \"ws-chan\", title: \"t\") { id } }",
    )
    .await;
    assert_eq!(
        v["payload"]["errors"][0]["extensions"]["code"], "RATE_LIMITED",
        "{v}"
    );
    let r = h.gql(Some(&token), "{ me { id } }", json!({})).await;
    assert_eq!(r.code(), Some("RATE_LIMITED"), "{}", r.body);

    // Anonymous operations use the address's bucket: 8 in all from 127.0.0.1, 2 left
    // (upgrade + 5 operations above took 6; the HTTP call was from "local").
    let mut anon = connect(addr, None).await; // 1 more
    let mut limited = None;
    for i in 0..10 {
        let v = query(&mut anon, &format!("a{i}"), "{ __typename }").await;
        if v["payload"]["errors"][0]["extensions"]["code"] == "RATE_LIMITED" {
            limited = Some(i);
            assert_eq!(
                v["payload"]["errors"][0]["message"],
                "too many requests from this address, slow down"
            );
            break;
        }
        assert_eq!(recv(&mut anon).await["type"], "complete");
    }
    assert_eq!(
        limited,
        Some(1),
        "the address's bucket runs out over graphql-ws"
    );
}

/// A subscription's connection is closed (4401) soon after its account is disabled,
/// without the client sending anything.
#[tokio::test]
async fn ws_session_closes_when_the_account_is_disabled() {
    let h = harness_with(fast_recheck(Duration::from_millis(200)));
    let (uid, token, _) = h.user("dana", Role::Owner).await;
    let ch = h.channel(&token, "dana-live").await;
    let (addr, _stop) = serve(&h).await;
    let mut ws = connect(addr, Some(&token)).await;
    send(
        &mut ws,
        json!({ "id": "v", "type": "subscribe", "payload": {
        "query": "subscription($c: ID!) { viewerCount(channelId: $c) { count } }",
        "variables": { "c": ch } } }),
    )
    .await;
    assert_eq!(
        recv(&mut ws).await["payload"]["data"]["viewerCount"]["count"],
        0
    );
    // Still open across a few re-checks.
    tokio::time::sleep(Duration::from_millis(600)).await;
    h.state
        .store()
        .set_user_disabled(&uid, true)
        .await
        .expect("disable");
    let started = std::time::Instant::now();
    let (code, reason) = closed(&mut ws, Duration::from_secs(3)).await;
    assert_eq!((code, reason.as_str()), (4401, "account is not active"));
    assert!(started.elapsed() < Duration::from_secs(2));
}

/// Logging out ends the session: its graphql-ws connections close, and its access token
/// is refused over HTTP too.
#[tokio::test]
async fn ws_session_closes_on_logout() {
    let h = harness_with(fast_recheck(Duration::from_millis(200)));
    let (_, token, refresh) = h.user("eve", Role::Owner).await;
    let (addr, _stop) = serve(&h).await;
    let mut ws = connect(addr, Some(&token)).await;
    let r = h
        .gql(
            None,
            "mutation($t: String!) { logout(refreshToken: $t) }",
            json!({ "t": refresh }),
        )
        .await;
    r.ok();
    let (code, reason) = closed(&mut ws, Duration::from_secs(3)).await;
    assert_eq!(
        (code, reason.as_str()),
        (4401, "session revoked: log in again")
    );
    let r = h.gql(Some(&token), "{ me { id } }", json!({})).await;
    assert_eq!(r.code(), Some("UNAUTHENTICATED"));
    assert!(r.body.to_string().contains("session revoked"), "{}", r.body);
}

/// With a long re-check interval, an operation still re-checks: it is refused and the
/// connection closes.
#[tokio::test]
async fn ws_operation_rechecks_the_account() {
    let h = harness_with(ApiConfig::default());
    let (uid, token, _) = h.user("fred", Role::Owner).await;
    let (addr, _stop) = serve(&h).await;
    let mut ws = connect(addr, Some(&token)).await;
    let v = query(&mut ws, "a", "{ me { role } }").await;
    assert_eq!(v["payload"]["data"]["me"]["role"], "OWNER", "{v}");
    assert_eq!(recv(&mut ws).await["type"], "complete");
    // Role changes apply to the next operation.
    h.state
        .store()
        .set_user_role(&uid, Role::Viewer)
        .await
        .expect("role");
    let v = query(&mut ws, "b", "{ me { role } }").await;
    assert_eq!(v["payload"]["data"]["me"]["role"], "VIEWER", "{v}");
    assert_eq!(recv(&mut ws).await["type"], "complete");
    h.state
        .store()
        .set_user_disabled(&uid, true)
        .await
        .expect("disable");
    send(
        &mut ws,
        json!({ "id": "c", "type": "subscribe", "payload": { "query": "{ me { id } }" } }),
    )
    .await;
    let (code, reason) = closed(&mut ws, Duration::from_secs(3)).await;
    assert_eq!((code, reason.as_str()), (4401, "account is not active"));
}

/// The connection closes when its access token expires (after the 5 s leeway), even with
/// a re-check interval far longer than the token's life.
#[tokio::test]
async fn ws_session_closes_when_the_token_expires() {
    let h = harness_with(ApiConfig::default());
    let (uid, _, _) = h.user("gina", Role::Owner).await;
    let exp = now_secs() + 1;
    let short = h
        .state
        .auth()
        .jwt()
        .sign(&Claims {
            sub: uid,
            role: Role::Owner,
            name: "gina".into(),
            iss: "weir".into(),
            iat: exp - 1,
            exp,
            sid: None,
        })
        .expect("sign");
    let (addr, _stop) = serve(&h).await;
    let mut ws = connect(addr, Some(&short)).await;
    let (code, reason) = closed(&mut ws, Duration::from_secs(12)).await;
    assert_eq!((code, reason.as_str()), (4401, "access token expired"));
    // Not before the token (with leeway) had expired.
    assert!(now_secs() > exp + 5);
}

const LOGIN: &str =
    "mutation($l: String!, $p: String!) { login(login: $l, password: $p) { accessToken } }";

/// Failed logins on one account are throttled whatever address they come from; the error
/// says so and when to retry; other accounts are unaffected.
#[tokio::test]
async fn failed_logins_are_throttled_per_account_across_addresses() {
    let mut acfg = AuthConfig::new(common::SECRET.to_vec());
    acfg.password = PasswordParams::insecure_fast();
    acfg.login_throttle = ThrottleConfig {
        free_failures: 4,
        base_delay: Duration::from_secs(30),
        ..ThrottleConfig::default()
    };
    let h = harness_with_auth(ApiConfig::default(), acfg);
    for name in ["victim", "bystander"] {
        h.state
            .auth()
            .register(
                name,
                &format!("{name}@example.com"),
                "a good password",
                Role::Owner,
            )
            .await
            .expect("register");
    }
    for i in 0..4 {
        let ip = format!("198.51.100.{i}");
        let r = h
            .gql_from(
                &ip,
                None,
                LOGIN,
                json!({ "l": "victim", "p": "bad guess #{i}" }),
            )
            .await;
        assert_eq!(r.code(), Some("UNAUTHENTICATED"), "{}", r.body);
    }
    // A fifth address, even with the right password: throttled.
    let r = h
        .gql_from(
            "203.0.113.9",
            None,
            LOGIN,
            json!({ "l": "victim", "p": "a good password" }),
        )
        .await;
    let err = &r.body["errors"][0];
    assert_eq!(err["extensions"]["code"], "RATE_LIMITED", "{}", r.body);
    assert_eq!(
        err["message"],
        "too many failed logins for this account: try again in 30 s"
    );
    assert_eq!(err["extensions"]["retryAfter"], 30);
    let r = h
        .gql_from(
            "203.0.113.9",
            None,
            LOGIN,
            json!({ "l": "bystander", "p": "a good password" }),
        )
        .await;
    r.ok();
}

/// `login` and `register` have their own, tighter per-address limit.
#[tokio::test]
async fn logins_are_limited_per_address() {
    let h = harness_with(ApiConfig {
        per_ip_login: Rate {
            burst: 2,
            per_second: 0.001,
        },
        ..ApiConfig::default()
    });
    for _ in 0..2 {
        let r = h
            .gql_from(
                "192.0.2.1",
                None,
                LOGIN,
                json!({ "l": "nobody", "p": "whatever" }),
            )
            .await;
        assert_eq!(r.code(), Some("UNAUTHENTICATED"), "{}", r.body);
    }
    let r = h
        .gql_from(
            "192.0.2.1",
            None,
            LOGIN,
            json!({ "l": "nobody", "p": "whatever" }),
        )
        .await;
    assert_eq!(r.code(), Some("RATE_LIMITED"), "{}", r.body);
    assert!(
        r.body.to_string().contains("from this address"),
        "{}",
        r.body
    );
    let r = h
        .gql_from(
            "192.0.2.1",
            None,
            "mutation { register(username: \"newbie\", email: \"n@example.com\", password: \"a good password\") { id } }",
            json!({}),
        )
        .await;
    assert_eq!(r.code(), Some("RATE_LIMITED"), "{}", r.body);
    // Another address is not affected.
    let r = h
        .gql_from(
            "192.0.2.2",
            None,
            LOGIN,
            json!({ "l": "nobody", "p": "whatever" }),
        )
        .await;
    assert_eq!(r.code(), Some("UNAUTHENTICATED"), "{}", r.body);
}

/// A login flood past the password pool (1 worker, no queue here) is refused at once with
/// `SERVICE_UNAVAILABLE` instead of queueing without bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_flood_is_refused_when_the_hash_pool_is_full() {
    let mut acfg = AuthConfig::new(common::SECRET.to_vec());
    acfg.password = PasswordParams {
        memory_kib: 8 * 1024,
        iterations: 6,
        parallelism: 1,
    };
    acfg.hash_pool = PoolConfig {
        workers: 1,
        queue: 0,
    };
    let h = std::sync::Arc::new(harness_with_auth(ApiConfig::default(), acfg));
    let mut tasks = Vec::new();
    for i in 0..6 {
        let h = h.clone();
        tasks.push(tokio::spawn(async move {
            h.gql_from(
                &format!("10.0.0.{i}"),
                None,
                LOGIN,
                json!({ "l": format!("user{i}"), "p": "whatever" }),
            )
            .await
        }));
    }
    let mut codes = Vec::new();
    for t in tasks {
        let r = t.await.expect("join");
        if r.code() == Some("SERVICE_UNAVAILABLE") {
            let err = &r.body["errors"][0];
            assert_eq!(
                err["message"],
                "the server is busy checking passwords: try again in a few seconds"
            );
            assert_eq!(err["extensions"]["retryAfter"], 2);
        }
        codes.push(r.code().map(str::to_string));
    }
    let busy = codes
        .iter()
        .filter(|c| c.as_deref() == Some("SERVICE_UNAVAILABLE"))
        .count();
    assert!(busy >= 1, "{codes:?}");
    assert!(
        codes
            .iter()
            .any(|c| c.as_deref() == Some("UNAUTHENTICATED")),
        "{codes:?}"
    );
    assert_eq!(h.state.auth().hash_pool().in_use(), 0);
}

#[test]
fn debug_output_holds_no_secrets() {
    let cfg = ApiConfig {
        node_token: Some("node-token-super-secret".into()),
        ..ApiConfig::default()
    };
    let out = format!("{cfg:?}");
    assert!(!out.contains("node-token-super-secret"), "{out}");
    assert!(out.contains("<redacted>"), "{out}");
}
