//! A creator's and an operator's happy paths through the API.

mod common;

use std::time::Duration;

use serde_json::json;
use weir_store::{Node, NodeLoad, Role};

use common::harness;

#[tokio::test]
async fn creator_flow() {
    let h = harness();
    let r = h
        .gql(None, "mutation { register(username: \"Creator\", email: \"c@example.com\", password: \"a good password\") { id username role } }", json!({}))
        .await;
    assert_eq!(r.ok()["register"]["role"], "OWNER");
    assert_eq!(r.ok()["register"]["username"], "creator");
    let r = h
        .gql(None, "mutation { login(login: \"c@example.com\", password: \"a good password\") { accessToken user { username } } }", json!({}))
        .await;
    let t = r.ok()["login"]["accessToken"]
        .as_str()
        .expect("t")
        .to_string();
    let t = t.as_str();
    assert_eq!(
        h.gql(Some(t), "{ me { username } }", json!({})).await.ok()["me"]["username"],
        "creator"
    );

    let ch = h.channel(t, "my-show").await;
    let r = h
        .gql(Some(t), "mutation($c: ID!) { updateChannel(id: $c, description: \"hello\") { title description } }", json!({ "c": ch }))
        .await;
    assert_eq!(r.ok()["updateChannel"]["description"], "hello");

    // Stream keys: the secret is returned once; lists show metadata only.
    let r = h
        .gql(Some(t), "mutation($c: ID!) { issueStreamKey(channelId: $c) { secret key { keyId revokedAt } } }", json!({ "c": ch }))
        .await;
    let secret = r.ok()["issueStreamKey"]["secret"]
        .as_str()
        .expect("secret")
        .to_string();
    assert!(secret.starts_with("sk_"));
    let r = h
        .gql(
            Some(t),
            "mutation($c: ID!) { rotateStreamKey(channelId: $c) { key { keyId } } }",
            json!({ "c": ch }),
        )
        .await;
    assert_eq!(r.ok()["rotateStreamKey"]["key"]["keyId"], "key-2");
    assert_eq!(*h.issuer.revoked.lock(), ["key-1"]);
    assert!(h.state.is_stream_key_revoked("key-1").await.expect("rev"));
    let r = h
        .gql(
            Some(t),
            "query($c: ID!) { streamKeys(channelId: $c) { keyId revokedAt } }",
            json!({ "c": ch }),
        )
        .await;
    let keys = r.ok()["streamKeys"].as_array().expect("keys").clone();
    assert_eq!(keys.len(), 2);
    assert!(!r.body.to_string().contains(&secret));
    h.gql(
        Some(t),
        "mutation { revokeStreamKey(keyId: \"key-2\") { revokedAt } }",
        json!({}),
    )
    .await
    .ok();
    assert!(h.state.is_stream_key_revoked("key-2").await.expect("rev"));

    // Destinations: the key is write-only.
    let r = h
        .gql(Some(t), "mutation($c: ID!) { createDestination(channelId: $c, input: {name: \"YT\", platform: \"youtube\", url: \"rtmp://a.rtmp.youtube.com/live2\", streamKey: \"yt-secret-9876\"}) { id streamKeyHint enabled } }", json!({ "c": ch }))
        .await;
    let d = r.ok()["createDestination"].clone();
    assert_eq!(d["streamKeyHint"], "…9876");
    let r = h
        .gql(Some(t), "mutation($d: ID!) { updateDestination(id: $d, input: {enabled: false, streamKey: \"new-key-1111\"}) { enabled streamKeyHint } }", json!({ "d": d["id"] }))
        .await;
    assert_eq!(
        r.ok()["updateDestination"],
        json!({ "enabled": false, "streamKeyHint": "…1111" })
    );
    let r = h
        .gql(
            Some(t),
            "query($c: ID!) { destinations(channelId: $c) { id } }",
            json!({ "c": ch }),
        )
        .await;
    assert_eq!(r.ok()["destinations"].as_array().map(Vec::len), Some(1));
    assert!(!r.body.to_string().contains("new-key-1111"));
    h.gql(
        Some(t),
        "mutation($d: ID!) { deleteDestination(id: $d) }",
        json!({ "d": d["id"] }),
    )
    .await
    .ok();

    // Streams: history as a Relay connection, newest first, paged.
    for _ in 0..3 {
        let s = h
            .state
            .stream_started(&ch, "srt", None)
            .await
            .expect("start");
        h.state.stream_ended(&s.id).await.expect("end");
    }
    let live = h
        .state
        .stream_started(&ch, "rtmp", Some("n1"))
        .await
        .expect("start");
    h.state
        .stream_live(&live.id, Vec::new())
        .await
        .expect("live");
    let r = h
        .gql(
            Some(t),
            "query($c: ID!) { currentStream(channelId: $c) { id state } }",
            json!({ "c": ch }),
        )
        .await;
    assert_eq!(
        r.ok()["currentStream"],
        json!({ "id": live.id, "state": "LIVE" })
    );
    let q = "query($c: ID!, $a: String) { streams(channelId: $c, first: 2, after: $a) { edges { cursor node { id protocol } } pageInfo { hasNextPage endCursor } } }";
    let p1 = h.gql(Some(t), q, json!({ "c": ch })).await;
    let p1 = p1.ok()["streams"].clone();
    assert_eq!(p1["edges"][0]["node"]["id"], live.id.as_str());
    assert_eq!(p1["pageInfo"]["hasNextPage"], true);
    let p2 = h
        .gql(
            Some(t),
            q,
            json!({ "c": ch, "a": p1["pageInfo"]["endCursor"] }),
        )
        .await;
    let p2 = p2.ok()["streams"].clone();
    assert_eq!(p2["edges"].as_array().map(Vec::len), Some(2));
    assert_eq!(p2["pageInfo"]["hasNextPage"], false);

    // Recordings and entitlements.
    h.state
        .store()
        .add_recording(&ch, &live.id, "/rec/x.mp4", 5000, 123)
        .await
        .expect("rec");
    let r = h.gql(Some(t), "query($c: ID!) { recordings(channelId: $c) { edges { node { location durationMs } } } }", json!({ "c": ch })).await;
    assert_eq!(
        r.ok()["recordings"]["edges"][0]["node"]["location"],
        "/rec/x.mp4"
    );
    let r = h
        .gql(Some(t), "mutation($c: ID!) { setEntitlement(channelId: $c, input: {access: SUBSCRIBER_ONLY, signedUrls: true, signedUrlTtlSecs: 600, geoAllow: [\"de\", \"fr\"]}) { access signedUrls geoAllow } }", json!({ "c": ch }))
        .await;
    assert_eq!(
        r.ok()["setEntitlement"],
        json!({ "access": "SUBSCRIBER_ONLY", "signedUrls": true, "geoAllow": ["DE", "FR"] })
    );
    let r = h
        .gql(Some(t), "mutation($c: ID!) { setEntitlement(channelId: $c, input: {access: PUBLIC, signedUrls: true, signedUrlTtlSecs: 0}) { access } }", json!({ "c": ch }))
        .await;
    assert_eq!(r.code(), Some("BAD_USER_INPUT"));
}

#[tokio::test]
async fn operator_flow() {
    let h = harness();
    let (_, admin, _) = h.user("root", Role::Admin).await;
    let (uid, user, _) = h.user("someone", Role::Viewer).await;
    let node = Node {
        id: "node-1".into(),
        address: "10.0.0.5:443".into(),
        shards: 8,
        version: "0.1.0".into(),
        load: NodeLoad {
            streams: 3,
            viewers: 42,
            cpu: 0.25,
            egress_bps: 1_000_000,
        },
        last_seen: 0,
        studio_url: None,
    };
    h.state
        .node_heartbeat(node, Duration::from_secs(30))
        .await
        .expect("hb");
    let r = h
        .gql(Some(&admin), "{ nodes { id shards viewers } }", json!({}))
        .await;
    assert_eq!(
        r.ok()["nodes"],
        json!([{ "id": "node-1", "shards": 8, "viewers": 42 }])
    );
    let r = h
        .gql(
            Some(&admin),
            "{ users(first: 1) { edges { node { username } } pageInfo { hasNextPage } } }",
            json!({}),
        )
        .await;
    assert_eq!(r.ok()["users"]["pageInfo"]["hasNextPage"], true);
    // Promote a viewer to owner: the change applies to their current token at once.
    assert_eq!(
        h.gql(
            Some(&user),
            "mutation { createChannel(slug: \"sss\", title: \"t\") { id } }",
            json!({})
        )
        .await
        .code(),
        Some("FORBIDDEN")
    );
    h.gql(
        Some(&admin),
        "mutation($u: ID!) { setUserRole(userId: $u, role: OWNER) { role } }",
        json!({ "u": uid }),
    )
    .await
    .ok();
    h.gql(
        Some(&user),
        "mutation { createChannel(slug: \"sss\", title: \"t\") { id } }",
        json!({}),
    )
    .await
    .ok();
    h.gql(
        Some(&admin),
        "mutation($u: ID!) { setUserDisabled(userId: $u, disabled: true) { disabled } }",
        json!({ "u": uid }),
    )
    .await
    .ok();
    assert_eq!(
        h.gql(Some(&user), "{ me { id } }", json!({})).await.code(),
        Some("UNAUTHENTICATED")
    );
}
