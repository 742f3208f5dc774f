//! Entitlements reach the data plane: a channel whose playback policy needs signed URLs
//! refuses unsigned, tampered and expired playlist requests, and plays with the URL the
//! GraphQL `playbackUrl` query hands a member of the channel.

use std::time::Duration;

use serde_json::json;
use weir_e2e::graphql::{create_channel, gql, gql_ok, issue_stream_key, register_and_login};
use weir_e2e::http::get;
use weir_e2e::{Node, ffmpeg_publish, variant_uri, wait_until};

const PASSWORD: &str = "correct horse battery staple";

#[test]
fn signed_playback_urls_are_enforced_by_the_origin() {
    let node = Node::start();
    assert!(node.wait_log("GraphQL API listening on", Duration::from_secs(20)));
    let api = node.api_port;
    let owner = register_and_login(api, "owner", PASSWORD);
    let t = owner.access_token.as_str();
    let ch = create_channel(api, t, "members-only");

    // Public channel: the plain path, for anyone (no token needed).
    let v = gql(
        api,
        None,
        "query($c:ID!){playbackUrl(channelId:$c){url expiresAt}}",
        json!({"c": ch}),
    );
    assert_eq!(
        v["data"]["playbackUrl"]["url"], "/live/members-only/index.m3u8",
        "{v}"
    );

    // Signed URLs with a 2 s lifetime.
    gql_ok(
        api,
        Some(t),
        "mutation($c:ID!){setEntitlement(channelId:$c,input:{access:PUBLIC,signedUrls:true,signedUrlTtlSecs:2}){signedUrls}}",
        json!({"c": ch}),
    );
    let v = gql(
        api,
        None,
        "query($c:ID!){playbackUrl(channelId:$c){url}}",
        json!({"c": ch}),
    );
    assert!(
        v.get("errors").is_some(),
        "anonymous callers get no signed URL: {v}"
    );

    let (_, key) = issue_stream_key(api, t, &ch);
    let mut publisher = ffmpeg_publish(&node.rtmp_url(&key), 12)
        .spawn()
        .expect("ffmpeg");
    let signed = || {
        let v = gql_ok(
            api,
            Some(t),
            "query($c:ID!){playbackUrl(channelId:$c){url expiresAt}}",
            json!({"c": ch}),
        );
        v["playbackUrl"]["url"].as_str().expect("url").to_owned()
    };
    assert!(
        wait_until(Duration::from_secs(15), || get(node.http_port, &signed())
            .is_ok_and(|r| r.status == 200)),
        "signed multivariant playlist never played"
    );
    let url = signed();
    assert!(url.contains("exp=") && url.contains("sig="), "{url}");

    // Unsigned and tampered requests are refused.
    let plain = get(node.http_port, "/live/members-only/index.m3u8").expect("get");
    assert_eq!(plain.status, 403, "{}", plain.text());
    let tampered = url.replace("sig=", "sig=x");
    assert_eq!(get(node.http_port, &tampered).expect("get").status, 403);

    // The variant URI names the broadcast directory (the capability: 128 random bits),
    // the same for every viewer, with no token in it; the media playlist plays from it.
    let mv = get(node.http_port, &url).expect("mv");
    let variant = variant_uri(&mv.text()).expect("variant");
    assert!(!variant.contains('?'), "no per-viewer query: {variant}");
    let dir = variant.split('/').next().expect("broadcast dir");
    assert!(
        dir.len() == 33 && dir.starts_with('b'),
        "a 128-bit broadcast id: {dir}"
    );
    let media = format!("/live/members-only/{variant}");
    assert!(
        wait_until(Duration::from_secs(10), || get(node.http_port, &media)
            .is_ok_and(|r| r.status == 200)),
        "signed media playlist never played"
    );
    // A guessed directory is not the broadcast's.
    let guessed = format!("/live/members-only/b{}/media.m3u8", "0".repeat(32));
    assert_eq!(get(node.http_port, &guessed).expect("media").status, 404);

    // Signed URLs expire (for starting playback); a player already watching goes on.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        get(node.http_port, &url).expect("get").status,
        403,
        "expired URL still plays"
    );
    assert_eq!(get(node.http_port, &media).expect("media").status, 200);

    let _ = publisher.kill();
    let _ = publisher.wait();
}
