//! All-in-one `weir serve` with its GraphQL API: a creator registers, logs in, creates a
//! channel and a stream key over GraphQL, publishes with ffmpeg, and a graphql-ws
//! dashboard sees the stream start, go live, the viewer count move (multivariant GETs alone
//! do not count; two players fetching parts count 2; one leaves: 1; the stream ends and the
//! last one leaves: 0) and the stream end. Both players get the same variant URI.
//! The key is then revoked over GraphQL and refused; another owner cannot issue keys for
//! the channel.

use std::time::{Duration, Instant};

use serde_json::json;
use weir_e2e::graphql::{
    WsClient, create_channel, error_code, gql, gql_ok, issue_stream_key, register_and_login,
};
use weir_e2e::http::get;
use weir_e2e::player::{Player, PlayerStats};
use weir_e2e::subs::{describe, states, stream_events, subscribe_dashboard, viewer_counts};
use weir_e2e::{Node, NodeOptions, Process, fetch_playlist, ffmpeg_publish, wait_until};

/// Long enough for the count to reach 2 and fall back to 1 (a few segments each) while live.
const SECONDS: u32 = 40;
const PASSWORD: &str = "correct horse battery staple";
const SLUG: &str = "e2e-show";

fn publisher(node: &Node, key: &str, seconds: u32, tag: &str) -> Process {
    Process::spawn(
        "ffmpeg",
        ffmpeg_publish(&node.rtmp_url(key), seconds),
        node.dir.0.join(format!("ffmpeg-{tag}.log")),
    )
}

/// The media playlist path (without any query) a player followed, relative to the
/// channel.
fn media_path_of(s: &PlayerStats) -> String {
    let v = s.variant.as_deref().expect("variant");
    v.split('?').next().unwrap_or(v).to_owned()
}

#[test]
fn creator_streams_and_the_dashboard_follows_over_graphql() {
    let t0 = Instant::now();
    let node = Node::start_with(NodeOptions {
        extra_args: vec!["--reconnect-grace-ms".into(), "1500".into()],
        ..Default::default()
    });
    assert!(
        node.wait_log("GraphQL API listening on", Duration::from_secs(20)),
        "weir serve did not log \"GraphQL API listening on\" (WEIR_API_LISTEN=127.0.0.1:{})",
        node.api_port
    );
    let api = node.api_port;

    // Accounts, channel, key: all over GraphQL.
    let owner = register_and_login(api, "creator", PASSWORD);
    let other = register_and_login(api, "intruder", PASSWORD);
    let ch = create_channel(api, &owner.access_token, SLUG);
    let (key_id, secret) = issue_stream_key(api, &owner.access_token, &ch);
    assert!(
        !secret.contains('/'),
        "the secret is a whole RTMP stream key"
    );

    // Another owner can neither issue keys for this channel nor see its keys.
    let r = gql(
        api,
        Some(&other.access_token),
        "mutation($c: ID!) { issueStreamKey(channelId: $c) { secret } }",
        json!({ "c": ch }),
    );
    assert!(
        matches!(error_code(&r).as_deref(), Some("FORBIDDEN" | "NOT_FOUND")),
        "another owner issued a key for the channel: {r}"
    );
    assert!(
        r["data"].is_null() || r["data"]["issueStreamKey"].is_null(),
        "{r}"
    );
    let r = gql(
        api,
        Some(&other.access_token),
        "query($c: ID!) { streamKeys(channelId: $c) { keyId } }",
        json!({ "c": ch }),
    );
    assert!(
        matches!(error_code(&r).as_deref(), Some("FORBIDDEN" | "NOT_FOUND")),
        "another owner listed the channel's keys: {r}"
    );

    // The dashboard: stream state and viewer count.
    let ws = WsClient::connect(api, &owner.access_token);
    subscribe_dashboard(&ws, &ch);
    assert!(
        ws.wait_for(Duration::from_secs(10), |_| !viewer_counts(&ws).is_empty()),
        "the viewerCount subscription did not send the current value: {}",
        describe(&ws)
    );
    assert_eq!(viewer_counts(&ws)[0], 0, "{}", describe(&ws));
    assert!(states(&ws).is_empty(), "{}", describe(&ws));

    // Publish.
    let mut ffmpeg = publisher(&node, &secret, SECONDS, "good");
    assert!(
        ws.wait_for(Duration::from_secs(20), |_| {
            states(&ws).iter().any(|s| s == "LIVE")
        }),
        "the subscription did not see the stream go live: {}",
        describe(&ws)
    );
    let seen = states(&ws);
    assert_eq!(
        seen[..2],
        ["STARTING".to_owned(), "LIVE".to_owned()],
        "{}",
        describe(&ws)
    );
    let events = stream_events(&ws);
    assert_eq!(events[0]["id"], events[1]["id"], "one stream: {events:?}");
    assert_eq!(events[0]["channelId"], ch.as_str(), "{events:?}");
    assert_eq!(
        events[0]["protocol"]
            .as_str()
            .map(str::to_lowercase)
            .as_deref(),
        Some("rtmp")
    );
    let stream_id = events[0]["id"].clone();

    // Multivariant GETs alone are not viewers (the origin counts media fetches), over two
    // report intervals and more.
    let mv = format!("/live/{SLUG}/index.m3u8");
    assert!(
        wait_until(Duration::from_secs(10), || get(node.http_port, &mv)
            .is_ok_and(|r| r.status == 200)),
        "no multivariant playlist"
    );
    for _ in 0..3 {
        assert_eq!(get(node.http_port, &mv).expect("multivariant").status, 200);
    }
    std::thread::sleep(Duration::from_millis(4500));
    assert!(
        viewer_counts(&ws).iter().all(|&c| c == 0),
        "multivariant GETs alone counted as viewers: {}",
        describe(&ws)
    );

    // Two players: the count reaches 2.
    let a = Player::start(node.http_port, SLUG, Duration::from_secs(70));
    let b = Player::start(node.http_port, SLUG, Duration::from_secs(70));
    // They play (blocking reloads) for at least 6 s, until the count has reached 2.
    let started = Instant::now();
    // Counting is from the parts of a recent segment, so it takes a few segments.
    let reached = ws.wait_for(Duration::from_secs(20), |_| {
        started.elapsed() >= Duration::from_secs(6)
            && a.playlists_ok() >= 3
            && b.playlists_ok() >= 3
            && viewer_counts(&ws).iter().any(|&c| c >= 2)
    });
    let playing = [a.playlists_ok(), b.playlists_ok()];
    let parts = [a.parts_fetched(), b.parts_fetched()];
    // One leaves while the stream is live: the count falls back to 1.
    let b_stats = b.stop();
    assert!(
        reached,
        "viewer count did not reach 2 with two players ({playing:?} playlists served, \
         {parts:?} parts fetched): {}; player b: {b_stats:#?}",
        describe(&ws)
    );
    eprintln!(
        "viewers reached 2 at {:?}; playlist requests {playing:?}, parts fetched {parts:?}",
        t0.elapsed()
    );
    let left = Instant::now();
    // A viewer stops counting once the recent segments counted no longer have its fetches
    // (up to ~3 segments, plus a report interval).
    let dropped = ws.wait_for(Duration::from_secs(18), |_| {
        viewer_counts(&ws).last() == Some(&1)
    });
    assert!(
        dropped && states(&ws).len() == 2,
        "the viewer count did not fall to 1 while live, {:?} after one of two players left \
         (a viewer stops counting a few segments after its last fetch): {}",
        left.elapsed(),
        describe(&ws)
    );
    eprintln!("one viewer left: counted down after {:?}", left.elapsed());

    // The publisher ends: the stream ends; the last player leaves and the count is 0.
    let status = ffmpeg.wait_exit(Duration::from_secs(u64::from(SECONDS) + 30));
    assert!(
        status.is_some_and(|s| s.success()),
        "ffmpeg did not publish to the end ({status:?}):\n{}",
        ffmpeg.log()
    );
    assert!(
        ws.wait_for(Duration::from_secs(15), |_| {
            states(&ws).iter().any(|s| s == "ENDED")
        }),
        "the subscription did not see the stream end: {}",
        describe(&ws)
    );
    let ended = stream_events(&ws)
        .into_iter()
        .find(|e| e["state"] == "ENDED")
        .expect("ended");
    assert_eq!(ended["id"], stream_id, "the same stream ended");
    assert!(
        wait_until(Duration::from_secs(5), || {
            fetch_playlist(
                node.http_port,
                &format!("/live/{SLUG}/{}", media_path_of(&b_stats)),
            )
            .ended
        }),
        "the media playlist has no ENDLIST after the stream ended"
    );
    let a_stats = a.stop();
    let last_left = Instant::now();
    assert!(a_stats.errors.is_empty(), "player a: {a_stats:#?}");
    // Every viewer follows the same variant URI (CDN-cacheable): no per-viewer session.
    for s in [&a_stats, &b_stats] {
        let v = s.variant.as_deref().unwrap_or_default();
        assert!(
            !v.is_empty() && !v.contains("s="),
            "the variant URI {v:?} carries a per-viewer session"
        );
        assert!(s.parts > 0, "a player fetched no parts: {s:#?}");
    }
    assert_eq!(
        a_stats.variant, b_stats.variant,
        "two players followed different variant URIs"
    );
    let d = gql_ok(
        api,
        Some(&owner.access_token),
        "query($c: ID!) { currentStream(channelId: $c) { id } \
         streams(channelId: $c, first: 5) { nodes { id state endedAt peakViewers } } }",
        json!({ "c": ch }),
    );
    assert!(d["currentStream"].is_null(), "{d}");
    let s = &d["streams"]["nodes"][0];
    assert_eq!(s["id"], stream_id, "{d}");
    assert_eq!(s["state"], "ENDED", "{d}");
    assert!(!s["endedAt"].is_null(), "{d}");
    assert!(
        s["peakViewers"].as_i64() >= Some(2),
        "peak viewers not recorded: {d}"
    );

    // Revoke the key over GraphQL: the next publish with it is refused.
    let d = gql_ok(
        api,
        Some(&owner.access_token),
        "mutation($k: ID!) { revokeStreamKey(keyId: $k) { keyId revokedAt } }",
        json!({ "k": key_id }),
    );
    assert!(!d["revokeStreamKey"]["revokedAt"].is_null(), "{d}");
    let mut refused = publisher(&node, &secret, 4, "revoked");
    let status = refused.wait_exit(Duration::from_secs(25));
    assert!(
        status.is_some_and(|s| !s.success()),
        "ffmpeg published with a revoked key ({status:?})"
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        states(&ws).iter().filter(|s| *s == "STARTING").count(),
        1,
        "a stream started with a revoked key: {}",
        describe(&ws)
    );
    assert!(
        wait_until(Duration::from_secs(5), || node.log().contains("revoked")),
        "the node did not say why it refused the key"
    );
    // Last: the players are gone and the stream is over, so the count is 0.
    assert!(
        ws.wait_for(Duration::from_secs(15), |_| viewer_counts(&ws).last()
            == Some(&0)),
        "the viewer count did not fall to 0 within {:?} after the stream ended and the \
         last player stopped: {}; viewerCount query: {}",
        last_left.elapsed(),
        describe(&ws),
        gql(
            api,
            Some(&owner.access_token),
            "query($c: ID!) { viewerCount(channelId: $c) }",
            json!({ "c": ch })
        )
    );
    let d = gql_ok(
        api,
        Some(&owner.access_token),
        "query($c: ID!) { viewerCount(channelId: $c) }",
        json!({ "c": ch }),
    );
    assert_eq!(d["viewerCount"], 0, "{d}");
    eprintln!("{}; done in {:?}", describe(&ws), t0.elapsed());
}
