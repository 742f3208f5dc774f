//! Every role against every operation, including every cross-owner attempt: owner B,
//! the moderator, the guest and a viewer on owner A's channel and its objects.

mod common;

use serde_json::{Value, json};
use weir_store::Role;

use common::{Harness, harness};

#[derive(Debug, Clone, Copy, PartialEq)]
enum E {
    Ok,
    NotFound,
    Forbidden,
}
use E::*;

struct World {
    h: Harness,
    /// Tokens: admin, owner A, owner B, moderator, guest, viewer.
    tokens: Vec<(&'static str, String)>,
    vars: Value,
}

async fn world() -> World {
    let h = harness();
    let (_, admin, _) = h.user("admin", Role::Admin).await;
    let (_, a, _) = h.user("owner-a", Role::Owner).await;
    let (_, b, _) = h.user("owner-b", Role::Owner).await;
    let (mod_id, m, _) = h.user("moder", Role::Viewer).await;
    let (guest_id, g, _) = h.user("guest", Role::Viewer).await;
    let (viewer_id, v, _) = h.user("viewer", Role::Viewer).await;
    let ch = h.channel(&a, "chan-a").await;
    let _chb = h.channel(&b, "chan-b").await;
    for (id, role) in [(&mod_id, "MODERATOR"), (&guest_id, "GUEST")] {
        h.gql(
            Some(&a),
            "mutation($c: ID!, $u: ID!, $r: Role!) { setChannelMember(channelId: $c, userId: $u, role: $r) { id } }",
            json!({ "c": ch, "u": id, "r": role }),
        )
        .await
        .ok();
    }
    let key = h
        .gql(
            Some(&a),
            "mutation($c: ID!) { issueStreamKey(channelId: $c) { key { keyId } } }",
            json!({ "c": ch }),
        )
        .await
        .ok()["issueStreamKey"]["key"]["keyId"]
        .clone();
    let dest = h
        .gql(
            Some(&a),
            "mutation($c: ID!) { createDestination(channelId: $c, input: {name: \"yt\", platform: \"youtube\", url: \"rtmp://a/live\", streamKey: \"abcd-1234\"}) { id } }",
            json!({ "c": ch }),
        )
        .await
        .ok()["createDestination"]["id"]
        .clone();
    let stream = h
        .state
        .stream_started(&ch, "rtmp", Some("n1"))
        .await
        .expect("start");
    let rec = h
        .state
        .store()
        .add_recording(&ch, &stream.id, "/r/1.mp4", 1, 1)
        .await
        .expect("rec");
    let vars = json!({ "c": ch, "k": key, "d": dest, "s": stream.id, "r": rec.id, "u": guest_id, "x": viewer_id });
    World {
        h,
        tokens: vec![
            ("admin", admin),
            ("owner-a", a),
            ("owner-b", b),
            ("moderator", m),
            ("guest", g),
            ("viewer", v),
        ],
        vars,
    }
}

/// Runs `query` as each actor (in `World::tokens` order) and checks the outcome; also
/// checks that anonymous callers get UNAUTHENTICATED.
async fn check(w: &World, name: &str, query: &str, expect: [E; 6]) {
    for ((who, token), want) in w.tokens.iter().zip(expect) {
        let r = w.h.gql(Some(token), query, w.vars.clone()).await;
        let got = match r.code() {
            None => Ok,
            Some("NOT_FOUND") => NotFound,
            Some("FORBIDDEN") => Forbidden,
            Some(other) => panic!("{name} as {who}: unexpected code {other}: {}", r.body),
        };
        assert_eq!(got, want, "{name} as {who}: {}", r.body);
        if want != Ok {
            assert!(
                r.data().is_null()
                    || r.data()
                        .as_object()
                        .is_some_and(|o| o.values().all(Value::is_null)),
                "{name} as {who}: denied call leaked data: {}",
                r.body
            );
        }
    }
    let r = w.h.gql(None, query, w.vars.clone()).await;
    assert_eq!(
        r.code(),
        Some("UNAUTHENTICATED"),
        "{name} anonymous: {}",
        r.body
    );
}

#[tokio::test]
async fn role_and_ownership_matrix() {
    let w = world().await;
    //                                     admin owner-a owner-b moderator guest viewer
    let read_channel = [Ok, Ok, NotFound, Ok, Ok, NotFound];
    let owner_only = [Ok, Ok, NotFound, Forbidden, Forbidden, NotFound];
    let mod_read = [Ok, Ok, NotFound, Ok, Forbidden, NotFound];
    let admin_only = [Ok, Forbidden, Forbidden, Forbidden, Forbidden, Forbidden];

    check(
        &w,
        "channel",
        "query($c: ID!) { channel(id: $c) { id myRole } }",
        read_channel,
    )
    .await;
    check(
        &w,
        "channelBySlug",
        "{ channelBySlug(slug: \"chan-a\") { id } }",
        read_channel,
    )
    .await;
    check(
        &w,
        "streams",
        "query($c: ID!) { streams(channelId: $c) { edges { node { id } } } }",
        read_channel,
    )
    .await;
    check(
        &w,
        "stream",
        "query($s: ID!) { stream(id: $s) { id state } }",
        read_channel,
    )
    .await;
    check(
        &w,
        "currentStream",
        "query($c: ID!) { currentStream(channelId: $c) { id } }",
        read_channel,
    )
    .await;
    check(
        &w,
        "viewerCount",
        "query($c: ID!) { viewerCount(channelId: $c) }",
        read_channel,
    )
    .await;
    check(
        &w,
        "recordings",
        "query($c: ID!) { recordings(channelId: $c) { edges { node { id } } } }",
        mod_read,
    )
    .await;
    check(
        &w,
        "entitlement",
        "query($c: ID!) { entitlement(channelId: $c) { access } }",
        mod_read,
    )
    .await;
    check(
        &w,
        "streamKeys",
        "query($c: ID!) { streamKeys(channelId: $c) { keyId } }",
        owner_only,
    )
    .await;
    check(
        &w,
        "destinations",
        "query($c: ID!) { destinations(channelId: $c) { id streamKeyHint } }",
        owner_only,
    )
    .await;
    check(
        &w,
        "updateChannel",
        "mutation($c: ID!) { updateChannel(id: $c, title: \"x\") { id } }",
        owner_only,
    )
    .await;
    check(
        &w,
        "issueStreamKey",
        "mutation($c: ID!) { issueStreamKey(channelId: $c) { secret } }",
        owner_only,
    )
    .await;
    check(&w, "createDestination", "mutation($c: ID!) { createDestination(channelId: $c, input: {name: \"t\", platform: \"twitch\", url: \"rtmp://t/app\", streamKey: \"k\"}) { id } }", owner_only).await;
    check(
        &w,
        "updateDestination",
        "mutation($d: ID!) { updateDestination(id: $d, input: {enabled: false}) { id } }",
        owner_only,
    )
    .await;
    check(&w, "setEntitlement", "mutation($c: ID!) { setEntitlement(channelId: $c, input: {access: PUBLIC, signedUrls: true}) { signedUrls } }", owner_only).await;
    check(&w, "setChannelMember", "mutation($c: ID!, $u: ID!) { setChannelMember(channelId: $c, userId: $u, role: GUEST) { id } }", owner_only).await;
    check(&w, "nodes", "{ nodes { id } }", admin_only).await;
    check(
        &w,
        "users",
        "{ users { edges { node { id } } } }",
        admin_only,
    )
    .await;
}

#[tokio::test]
async fn destructive_operations_are_denied_across_owners() {
    let w = world().await;
    // Denied actors first (owner-b, moderator, guest, viewer); the owner last.
    let deny = |i: usize| &w.tokens[i].1;
    for (name, q) in [
        (
            "revokeStreamKey",
            "mutation($k: ID!) { revokeStreamKey(keyId: $k) { revokedAt } }",
        ),
        (
            "deleteDestination",
            "mutation($d: ID!) { deleteDestination(id: $d) }",
        ),
        (
            "deleteRecording",
            "mutation($r: ID!) { deleteRecording(id: $r) }",
        ),
        (
            "rotateStreamKey",
            "mutation($c: ID!) { rotateStreamKey(channelId: $c) { secret } }",
        ),
        (
            "removeChannelMember",
            "mutation($c: ID!, $x: ID!) { removeChannelMember(channelId: $c, userId: $x) { id } }",
        ),
        (
            "deleteChannel",
            "mutation($c: ID!) { deleteChannel(id: $c) }",
        ),
    ] {
        for (i, want) in [
            (2, "NOT_FOUND"),
            (3, "FORBIDDEN"),
            (4, "FORBIDDEN"),
            (5, "NOT_FOUND"),
        ] {
            let r = w.h.gql(Some(deny(i)), q, w.vars.clone()).await;
            assert_eq!(
                r.code(),
                Some(want),
                "{name} as {}: {}",
                w.tokens[i].0,
                r.body
            );
        }
        let r = w.h.gql(None, q, w.vars.clone()).await;
        assert_eq!(r.code(), Some("UNAUTHENTICATED"), "{name}");
        let r = w.h.gql(Some(&w.tokens[1].1), q, w.vars.clone()).await;
        r.ok();
    }
    // The channel is gone for everyone; its keys were revoked through the issuer.
    let r =
        w.h.gql(
            Some(&w.tokens[0].1),
            "query($c: ID!) { channel(id: $c) { id } }",
            w.vars.clone(),
        )
        .await;
    assert_eq!(r.code(), Some("NOT_FOUND"));
    assert!(w.h.issuer.revoked.lock().contains(&"key-1".to_string()));
}

#[tokio::test]
async fn channel_lists_are_scoped() {
    let w = world().await;
    let q = "{ channels { edges { node { slug myRole } } } }";
    let slugs = |v: &Value| -> Vec<String> {
        v["channels"]["edges"]
            .as_array()
            .expect("edges")
            .iter()
            .map(|e| e["node"]["slug"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    let get = |i: usize| w.h.gql(Some(&w.tokens[i].1), q, json!({}));
    assert_eq!(slugs(get(0).await.ok()), ["chan-a", "chan-b"]);
    assert_eq!(slugs(get(1).await.ok()), ["chan-a"]);
    assert_eq!(slugs(get(2).await.ok()), ["chan-b"]);
    let m = get(3).await;
    assert_eq!(slugs(m.ok()), ["chan-a"]);
    assert_eq!(
        m.ok()["channels"]["edges"][0]["node"]["myRole"],
        "MODERATOR"
    );
    assert_eq!(slugs(get(5).await.ok()), Vec::<String>::new());
    // Admin may create channels; so may owners (checked elsewhere); viewers may not.
    let r =
        w.h.gql(
            Some(&w.tokens[0].1),
            "mutation { createChannel(slug: \"admins\", title: \"t\") { myRole } }",
            json!({}),
        )
        .await;
    assert_eq!(r.ok()["createChannel"]["myRole"], "OWNER");
    let r =
        w.h.gql(
            Some(&w.tokens[5].1),
            "mutation { createChannel(slug: \"viewers\", title: \"t\") { id } }",
            json!({}),
        )
        .await;
    assert_eq!(r.code(), Some("FORBIDDEN"));
}
