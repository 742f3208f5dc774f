//! Bad input gets a clear error with a code, and nothing breaks: malformed GraphQL, bad
//! JSON, batches, oversized bodies, deep and complex queries, forged/expired/garbage JWTs,
//! replayed refresh tokens, rate limits, invalid arguments.

mod common;

use axum::body::Body;
use axum::http::StatusCode;
use serde_json::json;
use weir_api::ApiConfig;
use weir_api::ratelimit::Rate;
use weir_auth::{Claims, JwtKeys};
use weir_store::Role;

use common::{harness, harness_with};

#[tokio::test]
async fn malformed_graphql_and_json() {
    let h = harness();
    let r = h.gql(None, "{ me { id ", json!({})).await;
    assert_eq!(r.code(), Some("GRAPHQL_PARSE_FAILED"), "{}", r.body);
    let r = h.gql(None, "{ noSuchField }", json!({})).await;
    assert_eq!(r.code(), Some("GRAPHQL_VALIDATION_FAILED"), "{}", r.body);
    let r = h.raw(None, Body::from("{not json")).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, Some("BAD_REQUEST"))
    );
    let r = h.raw(None, Body::from("[{\"query\":\"{me{id}}\"}]")).await;
    assert_eq!(r.code(), Some("BAD_REQUEST"));
    assert!(
        r.body["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("batch")
    );
    let r = h.raw(None, Body::from(vec![0xff, 0xfe, 0x00])).await;
    assert_eq!(r.code(), Some("BAD_REQUEST"));
    // Wrong variable types are validation errors, not crashes.
    let r = h
        .gql(
            None,
            "query($c: ID!) { channel(id: $c) { id } }",
            json!({ "c": [1, 2] }),
        )
        .await;
    assert!(r.code().is_some(), "{}", r.body);
}

#[tokio::test]
async fn oversized_body_is_refused() {
    let h = harness();
    let big = format!(
        "{{\"query\":\"{{ me {{ id }} }}\",\"pad\":\"{}\"}}",
        "x".repeat(200_000)
    );
    let r = h.raw(None, Body::from(big)).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(r.code(), Some("PAYLOAD_TOO_LARGE"));
}

#[tokio::test]
async fn deep_and_complex_queries_are_refused() {
    let h = harness();
    let (_, t, _) = h.user("deep", Role::Owner).await;
    let deep = "{ __schema { types { fields { type { ofType { ofType { ofType { ofType { ofType { ofType { name } } } } } } } } } } }";
    let r = h.gql(Some(&t), deep, json!({})).await;
    assert_eq!(r.code(), Some("GRAPHQL_VALIDATION_FAILED"), "{}", r.body);
    assert!(r.body.to_string().contains("nested too deep"), "{}", r.body);
    // Many aliased fields: over the complexity limit.
    let wide: String = (0..600).map(|i| format!("a{i}: me {{ id }} ")).collect();
    let r = h.gql(Some(&t), &format!("{{ {wide} }}"), json!({})).await;
    assert_eq!(r.code(), Some("GRAPHQL_VALIDATION_FAILED"), "{}", r.body);
    assert!(r.body.to_string().contains("too complex"), "{}", r.body);
}

#[tokio::test]
async fn forged_expired_and_garbage_tokens() {
    let h = harness();
    let (uid, good, _) = h.user("alice", Role::Owner).await;
    assert!(h.gql(Some(&good), "{ me { id } }", json!({})).await.ok()["me"]["id"] == uid.as_str());

    let forged_keys = JwtKeys::new(
        b"not-the-server-secret-at-all-!!!",
        "weir",
        std::time::Duration::from_secs(60),
    );
    let (forged, _) = forged_keys.issue(&uid, "alice", Role::Admin).expect("sign");
    let real_keys = JwtKeys::new(common::SECRET, "weir", std::time::Duration::from_secs(60));
    let expired = real_keys
        .sign(&Claims {
            sub: uid.clone(),
            role: Role::Owner,
            name: "alice".into(),
            iss: "weir".into(),
            iat: 1_000,
            exp: 2_000,
            sid: None,
        })
        .expect("sign");
    let other_issuer = JwtKeys::new(
        common::SECRET,
        "someone-else",
        std::time::Duration::from_secs(60),
    )
    .issue(&uid, "alice", Role::Admin)
    .expect("sign")
    .0;
    // A valid signature for a user that does not exist.
    let ghost = real_keys
        .issue("01ghost", "ghost", Role::Admin)
        .expect("sign")
        .0;
    let tampered = {
        let mut parts: Vec<String> = good.split('.').map(str::to_string).collect();
        parts[1] = parts[1].chars().rev().collect();
        parts.join(".")
    };
    for (name, tok, msg) in [
        ("forged", forged.as_str(), "invalid access token"),
        ("expired", expired.as_str(), "expired"),
        (
            "other issuer",
            other_issuer.as_str(),
            "invalid access token",
        ),
        ("ghost user", ghost.as_str(), "not active"),
        ("tampered", tampered.as_str(), "invalid access token"),
        ("garbage", "garbage", "invalid access token"),
    ] {
        let r = h.gql(Some(tok), "{ me { id } }", json!({})).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{name}");
        assert_eq!(r.code(), Some("UNAUTHENTICATED"), "{name}: {}", r.body);
        assert!(r.body.to_string().contains(msg), "{name}: {}", r.body);
    }
    // A malformed Authorization header.
    let req = axum::http::Request::post("/graphql")
        .header("authorization", "Basic abc")
        .body(Body::from("{\"query\":\"{ me { id } }\"}"))
        .expect("req");
    let resp = tower::ServiceExt::oneshot(h.app.clone(), req)
        .await
        .expect("resp");
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    // A disabled account's still-valid token stops working at once.
    h.state
        .store()
        .set_user_disabled(&uid, true)
        .await
        .expect("disable");
    let r = h.gql(Some(&good), "{ me { id } }", json!({})).await;
    assert_eq!(r.code(), Some("UNAUTHENTICATED"));
}

#[tokio::test]
async fn refresh_rotation_and_replay() {
    let h = harness();
    let (_, _, r1) = h.user("bob", Role::Owner).await;
    let q = "mutation($t: String!) { refresh(refreshToken: $t) { accessToken refreshToken } }";
    let r = h.gql(None, q, json!({ "t": r1 })).await;
    let r2 = r.ok()["refresh"]["refreshToken"]
        .as_str()
        .expect("rt")
        .to_string();
    let replay = h.gql(None, q, json!({ "t": r1 })).await;
    assert_eq!(replay.code(), Some("TOKEN_REUSED"), "{}", replay.body);
    // The family is revoked: the legitimate successor no longer works either.
    let r = h.gql(None, q, json!({ "t": r2 })).await;
    assert_eq!(r.code(), Some("UNAUTHENTICATED"), "{}", r.body);
    let r = h.gql(None, q, json!({ "t": "wrt_made_up" })).await;
    assert_eq!(r.code(), Some("UNAUTHENTICATED"));
    // Logout kills the session.
    let login = h
        .gql(
            None,
            "mutation { login(login: \"bob\", password: \"a good password\") { refreshToken } }",
            json!({}),
        )
        .await;
    let rt = login.ok()["login"]["refreshToken"]
        .as_str()
        .expect("rt")
        .to_string();
    h.gql(
        None,
        "mutation($t: String!) { logout(refreshToken: $t) }",
        json!({ "t": rt }),
    )
    .await
    .ok();
    assert_eq!(
        h.gql(None, q, json!({ "t": rt })).await.code(),
        Some("UNAUTHENTICATED")
    );
    // Wrong password.
    let r = h
        .gql(
            None,
            "mutation { login(login: \"bob\", password: \"wrong password\") { accessToken } }",
            json!({}),
        )
        .await;
    assert_eq!(r.code(), Some("UNAUTHENTICATED"));
}

#[tokio::test]
async fn invalid_arguments_are_bad_user_input() {
    let h = harness();
    let r = h
        .gql(None, "mutation { register(username: \"x\", email: \"nope\", password: \"a good password\") { id } }", json!({}))
        .await;
    assert_eq!(r.code(), Some("BAD_USER_INPUT"), "{}", r.body);
    let r = h
        .gql(None, "mutation { register(username: \"carol\", email: \"c@example.com\", password: \"short\") { id } }", json!({}))
        .await;
    assert_eq!(r.code(), Some("BAD_USER_INPUT"));
    h.gql(None, "mutation { register(username: \"carol\", email: \"c@example.com\", password: \"a good password\") { id } }", json!({}))
        .await
        .ok();
    let r = h
        .gql(None, "mutation { register(username: \"carol\", email: \"c2@example.com\", password: \"a good password\") { id } }", json!({}))
        .await;
    assert_eq!(r.code(), Some("CONFLICT"));
    let (_, t, _) = h.user("dave", Role::Owner).await;
    let r = h
        .gql(
            Some(&t),
            "mutation { createChannel(slug: \"bad slug!\", title: \"t\") { id } }",
            json!({}),
        )
        .await;
    assert_eq!(r.code(), Some("BAD_USER_INPUT"));
    let c = h.channel(&t, "daves").await;
    let r = h
        .gql(Some(&t), "mutation($c: ID!) { createDestination(channelId: $c, input: {name: \"x\", platform: \"rtmp\", url: \"file:///etc/passwd\", streamKey: \"k\"}) { id } }", json!({ "c": c }))
        .await;
    assert_eq!(r.code(), Some("BAD_USER_INPUT"));
    let r = h
        .gql(
            Some(&t),
            "query($c: ID!) { streams(channelId: $c, first: 100000) { edges { cursor } } }",
            json!({ "c": c }),
        )
        .await;
    assert_eq!(r.code(), Some("BAD_USER_INPUT"));
    let r = h
        .gql(Some(&t), "{ channel(id: \"../../etc\") { id } }", json!({}))
        .await;
    assert_eq!(r.code(), Some("NOT_FOUND"));
}

#[tokio::test]
async fn rate_limits_per_ip_and_per_user() {
    let cfg = ApiConfig {
        per_ip: Rate {
            burst: 5,
            per_second: 0.001,
        },
        per_user: Rate {
            burst: 3,
            per_second: 0.001,
        },
        ..ApiConfig::default()
    };
    let h = harness_with(cfg);
    // Registration through the store (not rate limited), then log in: 1 IP request.
    h.state
        .auth()
        .register("erin", "erin@example.com", "a good password", Role::Owner)
        .await
        .expect("register");
    let login = h
        .gql(
            None,
            "mutation { login(login: \"erin\", password: \"a good password\") { accessToken } }",
            json!({}),
        )
        .await;
    let t = login.ok()["login"]["accessToken"]
        .as_str()
        .expect("t")
        .to_string();
    for _ in 0..3 {
        h.gql(Some(&t), "{ me { id } }", json!({})).await.ok();
    }
    let r = h.gql(Some(&t), "{ me { id } }", json!({})).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::TOO_MANY_REQUESTS, Some("RATE_LIMITED"))
    );
    // The IP bucket (5) runs out too, for anonymous calls.
    let r = h.gql(None, "{ __typename }", json!({})).await;
    assert_eq!(r.code(), Some("RATE_LIMITED"), "{}", r.body);
}
