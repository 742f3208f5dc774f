//! Entitlements reach the data plane: a channel whose playback policy needs signed URLs
//! refuses unsigned, tampered and expired requests, for playlists and every object, and
//! plays under the signed path the GraphQL `playbackUrl` query hands a member of the
//! channel.

use std::time::Duration;

use serde_json::json;
use weir_e2e::graphql::{create_channel, gql, gql_ok, issue_stream_key, register_and_login};
use weir_e2e::http::get;
use weir_e2e::{Node, ffmpeg_publish, output, variant_uri, wait_until};

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

    // Signed URLs, long-lived first (a 2 s lifetime below).
    let set_ttl = |secs: u32| {
        gql_ok(
            api,
            Some(t),
            "mutation($c:ID!,$s:Int!){setEntitlement(channelId:$c,input:{access:PUBLIC,signedUrls:true,signedUrlTtlSecs:$s}){signedUrls}}",
            json!({"c": ch, "s": secs}),
        );
    };
    set_ttl(60);
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
    assert!(
        url.starts_with("/live/members-only/t.") && !url.contains('?'),
        "a signed path, no query: {url}"
    );

    // Unsigned and tampered requests are refused.
    let plain = get(node.http_port, "/live/members-only/index.m3u8").expect("get");
    assert_eq!(plain.status, 403, "{}", plain.text());
    let tampered = url.replacen(".", ".9", 2);
    assert_eq!(get(node.http_port, &tampered).expect("get").status, 403);

    // The variant URI is relative (the same bytes for every viewer); resolved under the
    // signed path it plays, and so does every object it names.
    let mv = get(node.http_port, &url).expect("mv");
    let variant = variant_uri(&mv.text()).expect("variant");
    assert!(!variant.contains('?'), "no per-viewer query: {variant}");
    let base = url.trim_end_matches("index.m3u8");
    let media = format!("{base}{variant}");
    let mut playlist = String::new();
    assert!(
        wait_until(Duration::from_secs(15), || {
            get(node.http_port, &media).is_ok_and(|r| {
                playlist = r.text();
                // A full segment: ffmpeg (legacy HLS) plays segments, not parts.
                r.status == 200 && playlist.contains("#EXTINF")
            })
        }),
        "signed media playlist never listed a segment: {playlist}"
    );
    let dir = variant.rsplit_once('/').map_or("", |(d, _)| d);
    let object = format!("{base}{dir}/{}", object_uri(&playlist).expect("object"));
    assert_eq!(
        get(node.http_port, &object).expect("object").status,
        200,
        "{object}"
    );
    // A real player resolves the playlists' relative URIs under the signed path.
    let (ok, progress, err) = output(std::process::Command::new("ffmpeg").args([
        "-v",
        "error",
        "-nostdin",
        "-i",
        &format!("http://127.0.0.1:{}{url}", node.http_port),
        "-frames:v",
        "10",
        "-progress",
        "pipe:1",
        "-f",
        "null",
        "-",
    ]));
    assert!(ok, "ffmpeg could not play the signed URL: {err}");
    let frames = progress
        .lines()
        .filter_map(|l| l.strip_prefix("frame="))
        .filter_map(|n| n.trim().parse::<u32>().ok())
        .max();
    assert_eq!(
        frames,
        Some(10),
        "ffmpeg decoded too little under the signed path: {progress}"
    );
    // WHEP takes the same token: without it 403, with it the offer itself is looked at
    // (this one is not SDP: 400).
    let token = url
        .trim_start_matches("/live/members-only/")
        .trim_end_matches("/index.m3u8")
        .to_owned();
    let whep = |path: &str| {
        weir_e2e::http::send(
            node.http_port,
            "POST",
            path,
            &[("Content-Type", "application/sdp")],
            Some("not sdp"),
            Duration::from_secs(5),
        )
        .expect("whep")
    };
    let r = whep("/whep/members-only");
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("signed playback"), "{}", r.text());
    let r = whep(&format!("/whep/members-only/{token}"));
    assert_eq!(
        r.status,
        400,
        "a valid token is let through to the offer: {}",
        r.text()
    );
    // The broadcast directory alone (without the signed path) is no longer enough.
    let bare = format!("/live/members-only/{variant}");
    assert_eq!(get(node.http_port, &bare).expect("bare").status, 403);
    let bare_object = object.replacen(base, "/live/members-only/", 1);
    assert_eq!(get(node.http_port, &bare_object).expect("bare").status, 403);

    // The token expires: every request under it is refused, so a viewer whose entitlement
    // is gone (no new URL) stops within the TTL.
    set_ttl(2);
    let url = signed();
    let base = url.trim_end_matches("index.m3u8");
    let media = format!("{base}{variant}");
    let object = format!("{base}{dir}/{}", object_uri(&playlist).expect("object"));
    for path in [&url, &media, &object] {
        assert_eq!(
            get(node.http_port, path).expect("get").status,
            200,
            "{path}"
        );
    }
    std::thread::sleep(Duration::from_secs(3));
    for path in [&url, &media, &object] {
        let r = get(node.http_port, path).expect("get");
        assert_eq!(r.status, 403, "expired token still plays {path}");
        assert!(r.text().contains("expired"), "{}", r.text());
    }
    let expired_token = url
        .trim_start_matches("/live/members-only/")
        .trim_end_matches("/index.m3u8")
        .to_owned();
    let r = whep(&format!("/whep/members-only/{expired_token}"));
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("expired"), "{}", r.text());
    // A fresh URL plays again.
    assert_eq!(get(node.http_port, &signed()).expect("get").status, 200);

    let _ = publisher.kill();
    let _ = publisher.wait();
}

/// The first media object a media playlist names (its init segment, else a segment).
fn object_uri(playlist: &str) -> Option<String> {
    playlist
        .lines()
        .find_map(|l| {
            l.strip_prefix("#EXT-X-MAP:URI=\"")
                .and_then(|r| r.split('"').next())
        })
        .or_else(|| {
            playlist
                .lines()
                .find(|l| !l.is_empty() && !l.starts_with('#'))
        })
        .map(str::to_owned)
}
