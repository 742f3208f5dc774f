//! The node-facing HTTP API (split mode): token check, lifecycle events, viewer counts,
//! heartbeats and publish authorization.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};
use tower::ServiceExt;
use weir_api::ApiConfig;
use weir_store::Role;

use common::{Harness, harness, harness_with};

async fn post(h: &Harness, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
    let req = Request::post(path)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .expect("req");
    let resp = h.app.clone().oneshot(req).await.expect("resp");
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .expect("body");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

async fn recordings(h: &Harness, token: &str, channel_id: &str) -> Value {
    h.gql(
        Some(token),
        "query($c: ID!) { recordings(channelId: $c) { nodes { id durationMs sizeBytes \
         segments playbackUrl endedAt } } }",
        json!({ "c": channel_id }),
    )
    .await
    .ok()["recordings"]["nodes"]
        .clone()
}

#[tokio::test]
async fn node_api_lifecycle() {
    let h = harness_with(ApiConfig {
        node_token: Some("node-secret".into()),
        ..ApiConfig::default()
    });
    let (_, t, _) = h.user("owner", Role::Owner).await;
    let ch = h.channel(&t, "split-chan").await;
    let key = h
        .gql(
            Some(&t),
            "mutation($c: ID!) { issueStreamKey(channelId: $c) { key { keyId } } }",
            json!({ "c": ch }),
        )
        .await
        .ok()["issueStreamKey"]["key"]["keyId"]
        .as_str()
        .expect("key")
        .to_string();

    let (st, _) = post(&h, "/v1/node/authorize", "wrong", json!({ "key_id": key })).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, v) = post(
        &h,
        "/v1/node/authorize",
        "node-secret",
        json!({ "key_id": key }),
    )
    .await;
    assert_eq!(
        (st, v["channel_id"].as_str()),
        (StatusCode::OK, Some(ch.as_str()))
    );
    assert!(v["transcode"].is_null(), "the node's default: {v}");
    // The channel's transcode setting reaches the node with the authorisation.
    h.gql(
        Some(&t),
        "mutation($c: ID!) { setChannelTranscode(channelId: $c, transcode: ON) { transcode } }",
        json!({ "c": ch }),
    )
    .await
    .ok();
    let (_, v) = post(
        &h,
        "/v1/node/authorize",
        "node-secret",
        json!({ "key_id": key }),
    )
    .await;
    assert_eq!(v["transcode"], json!(true), "{v}");
    let (st, _) = post(
        &h,
        "/v1/node/authorize",
        "node-secret",
        json!({ "key_id": "nope" }),
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN);

    let (st, s) = post(
        &h,
        "/v1/node/events",
        "node-secret",
        json!({ "type": "stream_started", "channel_id": ch, "protocol": "rtmp", "node_id": "n1" }),
    )
    .await;
    assert_eq!(
        (st, s["state"].as_str()),
        (StatusCode::OK, Some("starting")),
        "{s}"
    );
    let sid = s["id"].as_str().expect("id").to_string();
    let (_, s) = post(
        &h,
        "/v1/node/events",
        "node-secret",
        json!({ "type": "stream_live", "stream_id": sid,
        "renditions": [{ "name": "source", "width": 1920, "height": 1080, "bitrate": 6000000 }] }),
    )
    .await;
    assert_eq!(s["state"], "live");
    let (_, v) = post(
        &h,
        "/v1/node/events",
        "node-secret",
        json!({ "type": "viewer_count", "channel_id": ch, "node_id": "n1", "count": 4 }),
    )
    .await;
    assert_eq!(v["total"], 4);
    // The transcoder's report, as `Remote::transcoder` sends it.
    let (st, s) = post(
        &h,
        "/v1/node/events",
        "node-secret",
        json!({ "type": "stream_transcoder", "stream_id": sid, "transcoder": {
            "encoder": "x264enc", "dropped_rungs": 1, "failure": null,
            "rungs": [
                { "name": "720p", "width": 1280, "height": 720, "bitrate": 3000000,
                  "passthrough": false, "dropped": true },
                { "name": "360p", "width": 640, "height": 360, "bitrate": 700000,
                  "passthrough": false, "dropped": false }
            ] } }),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{s}");
    assert_eq!(s["transcoder"]["dropped_rungs"], 1, "{s}");
    assert_eq!(s["transcoder"]["rungs"][0]["dropped"], true, "{s}");
    assert!(
        s["transcoder"]["updated_at"].as_i64().unwrap_or(0) > 0,
        "{s}"
    );
    // A recording of the stream, as `Remote::recording` sends it; listed over GraphQL
    // while being made, then finished, then deleted by the node's retention.
    h.gql(
        Some(&t),
        "mutation($c: ID!) { setChannelRecord(channelId: $c, record: ON) { record } }",
        json!({ "c": ch }),
    )
    .await
    .ok();
    let (_, v) = post(
        &h,
        "/v1/node/authorize",
        "node-secret",
        json!({ "key_id": key }),
    )
    .await;
    assert_eq!(v["record"], json!(true), "{v}");
    let rid = "019ae3f1c2d4a1b2c3d4";
    let url = format!("http://n1:8080/vod/{rid}/index.m3u8");
    let (st, r) = post(
        &h,
        "/v1/node/events",
        "node-secret",
        json!({ "type": "recording_started", "stream_id": sid, "recording_id": rid,
                "location": "/data/recordings/x", "playback_url": url }),
    )
    .await;
    assert_eq!(
        (st, r["channel_id"].as_str()),
        (StatusCode::OK, Some(ch.as_str())),
        "{r}"
    );
    let l = recordings(&h, &t, &ch).await;
    assert_eq!(l[0]["id"], rid, "{l}");
    assert!(l[0]["endedAt"].is_null(), "{l}");
    let (st, r) = post(
        &h,
        "/v1/node/events",
        "node-secret",
        json!({ "type": "recording_finished", "recording_id": rid, "channel_id": ch,
                "location": "/data/recordings/x", "playback_url": url, "started_at": 1,
                "duration_ms": 12000, "size_bytes": 3_000_000, "segments": 6 }),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{r}");
    let l = recordings(&h, &t, &ch).await;
    assert_eq!(
        (&l[0]["durationMs"], &l[0]["sizeBytes"], &l[0]["segments"],),
        (&json!(12000), &json!(3_000_000), &json!(6)),
        "{l}"
    );
    // Handed out under a playback token for the channel, before the file name.
    let played = l[0]["playbackUrl"].as_str().unwrap_or_default();
    let (dir, file) = url.rsplit_once('/').expect("a path");
    let token = played
        .strip_prefix(&format!("{dir}/t."))
        .and_then(|t| t.strip_suffix(&format!("/{file}")))
        .unwrap_or_else(|| panic!("no token in {played}"));
    assert!(token.contains('.'), "{played}");
    assert!(l[0]["endedAt"].as_i64().is_some(), "{l}");
    let (_, v) = post(
        &h,
        "/v1/node/events",
        "node-secret",
        json!({ "type": "recording_deleted", "recording_id": rid }),
    )
    .await;
    assert_eq!(v["deleted"], true, "{v}");
    assert_eq!(recordings(&h, &t, &ch).await, json!([]));

    let (_, s) = post(
        &h,
        "/v1/node/events",
        "node-secret",
        json!({ "type": "stream_ended", "stream_id": sid }),
    )
    .await;
    assert_eq!(s["state"], "ended");
    let (st, _) = post(
        &h,
        "/v1/node/events",
        "node-secret",
        json!({ "type": "stream_live", "stream_id": sid }),
    )
    .await;
    assert_eq!(st, StatusCode::CONFLICT, "ended is final");
    let (st, n) = post(&h, "/v1/node/events", "node-secret", json!({ "type": "heartbeat", "ttl_secs": 10,
        "node": { "id": "n1", "address": "10.0.0.1:443", "shards": 2, "version": "0.1.0",
                  "load": { "streams": 1, "viewers": 4, "cpu": 0.1, "egress_bps": 0 }, "last_seen": 0 } })).await;
    assert_eq!((st, n["id"].as_str()), (StatusCode::OK, Some("n1")));
    let (st, _) = post(
        &h,
        "/v1/node/events",
        "node-secret",
        json!({ "type": "bogus" }),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);

    // Revoked keys are refused.
    h.gql(
        Some(&t),
        "mutation($k: ID!) { revokeStreamKey(keyId: $k) { keyId } }",
        json!({ "k": key }),
    )
    .await
    .ok();
    let (st, _) = post(
        &h,
        "/v1/node/authorize",
        "node-secret",
        json!({ "key_id": key }),
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn node_api_is_absent_without_a_token() {
    let h = harness();
    let (st, _) = post(&h, "/v1/node/authorize", "", json!({ "key_id": "x" })).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}
