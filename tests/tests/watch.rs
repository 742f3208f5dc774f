//! The watch page (`/watch/<channel>` on the node) end to end in headless Chromium
//! (`tests/web/watch.mjs`): ffmpeg publishes over RTMP, one channel with B-frames (like
//! OBS's x264) and one without; a viewer and the channel's owner, each in their own
//! browser session, watch it go live by itself, play it (LL-HLS; WebRTC on the second
//! channel), sign in with the page's form, chat, and the owner bans the viewer from the
//! page; when the publishers stop, the pages show the channels offline. The public
//! `liveChannel` query and the API's CORS answers are checked too.

#![allow(clippy::unwrap_used, missing_docs)]

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use weir_e2e::browser::{require_browser_peer, run_script};
use weir_e2e::graphql::{create_channel, gql_ok, issue_stream_key, register_and_login};
use weir_e2e::{KillOnDrop, Node, TempDir, http, require, wait_until};

const TITLE: &str = "Friday night bouldering";

/// ffmpeg publishing a synthetic 25 fps stream with AAC for `seconds`; `bframes` = 3 is
/// what OBS's x264 does by default, 0 what WebRTC players need.
fn publish(url: &str, bframes: u32, seconds: u32) -> KillOnDrop {
    require("ffmpeg");
    let mut c = Command::new("ffmpeg");
    c.args(["-hide_banner", "-nostdin", "-loglevel", "error", "-re"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", &seconds.to_string(), "-pix_fmt", "yuv420p"])
        .args(["-c:v", "libx264", "-preset", "superfast", "-g", "50"])
        .args(["-bf", &bframes.to_string()])
        .args(["-c:a", "aac", "-b:a", "96k", "-f", "flv", url])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    KillOnDrop(c.spawn().expect("ffmpeg"))
}

fn live_channel(api: u16, channel: &str) -> Value {
    gql_ok(
        api,
        None,
        "query($c: ID!) { liveChannel(channel: $c) { id slug title live viewerCount followerCount followedAt } }",
        json!({ "c": channel }),
    )["liveChannel"]
        .clone()
}

#[test]
fn watch_page_plays_chats_and_moderates_in_chromium() {
    require_browser_peer(&["node_modules/playwright-core/package.json"]);
    require("ffmpeg");
    let node = Node::start();
    assert!(
        node.wait_log("Chat gateway listening on ws://", Duration::from_secs(20)),
        "{}",
        node.log()
    );
    let api = node.api_port;
    let owner = register_and_login(api, "watchowner", "owner-password-1");
    let viewer = register_and_login(api, "watchviewer", "viewer-password-1");
    let channel = create_channel(api, &owner.access_token, "watch-e2e");
    gql_ok(
        api,
        Some(&owner.access_token),
        "mutation($id: ID!, $t: String) { updateChannel(id: $id, title: $t) { title } }",
        json!({ "id": channel, "t": TITLE }),
    );
    let rtc_channel = create_channel(api, &owner.access_token, "watch-rtc");
    let (_, key) = issue_stream_key(api, &owner.access_token, &channel);
    let (_, rtc_key) = issue_stream_key(api, &owner.access_token, &rtc_channel);

    // The page names this process's API; hls.js comes embedded, under a cacheable tag.
    let page = http::get(node.http_port, "/watch/watch-e2e").expect("watch page");
    assert_eq!(page.status, 200);
    assert!(page.header("content-security-policy").is_some());
    let html = page.text();
    assert!(
        html.contains(&format!("name=\"weir-api\" content=\":{api}\"")),
        "{html}"
    );
    let tag = html
        .split("/web/hls.min.js?v=")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("hls.js script tag")
        .to_owned();
    let hls = http::get(node.http_port, &format!("/web/hls.min.js?v={tag}")).expect("hls.js");
    assert_eq!(hls.status, 200);
    assert!(hls.body.len() > 100_000 && hls.text().contains("Hls"));
    assert!(hls.header("cache-control").unwrap().contains("immutable"));
    for asset in [
        "/web/watch.js",
        "/web/watch.css",
        "/web/chat.js",
        "/web/webrtc.js",
        "/web/whep.html",
        "/web/whip.html",
    ] {
        assert_eq!(
            http::get(node.http_port, asset).unwrap().status,
            200,
            "{asset}"
        );
    }
    assert_eq!(http::get(api, "/web/chat.js").unwrap().status, 200);
    assert_eq!(
        http::get(node.http_port, "/watch/a%20b").unwrap().status,
        404
    );

    // Public, offline; unknown channels are NOT_FOUND. CORS: the preflight and the answer.
    let c = live_channel(api, "watch-e2e");
    assert_eq!(
        (c["title"].as_str(), c["live"].as_bool()),
        (Some(TITLE), Some(false))
    );
    assert_eq!(live_channel(api, &channel)["slug"], "watch-e2e");
    let r = weir_e2e::graphql::gql(
        api,
        None,
        "{ liveChannel(channel: \"nope\") { id } }",
        json!({}),
    );
    assert_eq!(
        weir_e2e::graphql::error_code(&r).as_deref(),
        Some("NOT_FOUND")
    );
    let origin = [
        ("Origin", "http://127.0.0.1:1"),
        ("Access-Control-Request-Method", "POST"),
        (
            "Access-Control-Request-Headers",
            "content-type,authorization",
        ),
    ];
    let pre = http::send(
        api,
        "OPTIONS",
        "/graphql",
        &origin,
        None,
        Duration::from_secs(5),
    )
    .unwrap();
    assert_eq!(pre.status, 204);
    assert_eq!(
        pre.header("access-control-allow-origin").as_deref(),
        Some("*")
    );
    assert!(
        pre.header("access-control-allow-headers")
            .unwrap_or_default()
            .contains("authorization")
    );
    let body = json!({ "query": "{ liveChannel(channel: \"watch-e2e\") { live } }" }).to_string();
    let r = http::post_json(api, "/graphql", &origin[..1], &body).unwrap();
    assert_eq!(
        r.header("access-control-allow-origin").as_deref(),
        Some("*")
    );

    // Followers-only chat: the page's viewer must press Follow before writing. Following
    // needs a sign-in.
    let (status, body) = weir_e2e::chat::moderate(
        api,
        &owner.access_token,
        "watch-e2e",
        json!({ "action": "settings", "settings": { "followers_only": true } }),
    );
    assert_eq!(status, 200, "{body}");
    let r = weir_e2e::graphql::gql(
        api,
        None,
        "mutation { followChannel(channel: \"watch-e2e\") { followerCount } }",
        json!({}),
    );
    assert_eq!(
        weir_e2e::graphql::error_code(&r).as_deref(),
        Some("UNAUTHENTICATED")
    );

    // The browser part: the script writes `ready` once the pages show the channels offline
    // and both people signed in; then the publishers start.
    let tmp = TempDir::new("watch");
    let ready = tmp.0.join("ready");
    let args: Vec<String> = [
        "--base",
        &format!("http://127.0.0.1:{}", node.http_port),
        "--channel",
        "watch-e2e",
        "--title",
        TITLE,
        "--rtc-channel",
        "watch-rtc",
        "--viewer",
        &format!("{}:viewer-password-1", viewer.username),
        "--owner",
        "watchowner:owner-password-1",
        "--ready",
        &ready.display().to_string(),
        "--shots",
        "/tmp/watch",
        "--timeout",
        "200",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let browser =
        std::thread::spawn(move || run_script("watch.mjs", &args, Duration::from_secs(240)));
    let signed_in = wait_until(Duration::from_secs(90), || {
        ready.exists() || browser.is_finished()
    });
    let publishers = ready.exists().then(|| {
        (
            publish(&node.rtmp_url(&key), 3, 220),
            publish(&node.rtmp_url(&rtc_key), 0, 220),
        )
    });
    // Then it waits for `ready.done` to see the channels go offline.
    let done = ready.with_extension("done");
    wait_until(Duration::from_secs(200), || {
        done.exists() || browser.is_finished()
    });
    drop(publishers);
    let (ok, out, err) = browser.join().expect("browser thread");
    assert!(
        signed_in && ok,
        "watch.mjs failed:\n{out}\n{err}\n{}",
        node.log()
    );
    let v: Value = serde_json::from_str(out.trim()).expect("JSON from watch.mjs");
    let steps = v["steps"].as_array().unwrap();
    for s in steps {
        eprintln!(
            "watch.mjs: {} ms  {}",
            s["ms"],
            s["name"].as_str().unwrap_or("")
        );
    }
    assert_eq!(steps.len(), 10, "{v:#}");
    assert!(steps.iter().all(|s| s["ok"] == true), "{v:#}");
    for p in v["pages"].as_array().unwrap() {
        assert!(
            p["errors"].as_array().unwrap().is_empty(),
            "page errors: {p:#}"
        );
    }
    // The server side agrees: the viewer is banned in the room's moderation state.
    let audit = http::send(
        api,
        "GET",
        "/v1/moderation/watch-e2e/audit?limit=10",
        &[("Authorization", &format!("Bearer {}", owner.access_token))],
        None,
        Duration::from_secs(5),
    )
    .unwrap();
    assert_eq!(audit.status, 200, "{}", audit.text());
    assert!(audit.text().contains("ban"), "{}", audit.text());

    // The follow the page made, over GraphQL: counted, listed for the viewer, ended.
    let fields = "slug followerCount followedAt";
    let followed = gql_ok(
        api,
        Some(&viewer.access_token),
        &format!("{{ followedChannels {{ {fields} }} }}"),
        json!({}),
    );
    let list = followed["followedChannels"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{followed}");
    assert_eq!(list[0]["slug"], "watch-e2e");
    assert_eq!(list[0]["followerCount"], 1);
    assert!(list[0]["followedAt"].as_i64().is_some());
    assert!(
        live_channel(api, "watch-e2e")["followedAt"].is_null(),
        "anonymous"
    );
    let ended = gql_ok(
        api,
        Some(&viewer.access_token),
        &format!("mutation {{ unfollowChannel(channel: \"watch-e2e\") {{ {fields} }} }}"),
        json!({}),
    );
    assert_eq!(ended["unfollowChannel"]["followerCount"], 0);
    assert!(ended["unfollowChannel"]["followedAt"].is_null());
}

/// The same page in Debian's headless Firefox (`tests/web/firefox.mjs`, WebDriver BiDi):
/// it goes live, plays LL-HLS (video time advances 2 s) with a latency shown, and shows
/// the chat's history; switched to WebRTC, which it cannot receive here (no H.264), it says
/// why and goes on over LL-HLS.
#[test]
fn watch_page_plays_in_firefox() {
    use weir_e2e::chat::ChatClient;

    require_browser_peer(&[]);
    let firefox = std::env::var("FIREFOX").unwrap_or_else(|_| "/usr/bin/firefox-esr".into());
    assert!(
        std::path::Path::new(&firefox).exists(),
        "{firefox} is not installed: run `cargo xtask setup --test`"
    );
    let node = Node::start();
    assert!(node.wait_log("Chat gateway listening on ws://", Duration::from_secs(20)));
    let api = node.api_port;
    let owner = register_and_login(api, "foxowner", "owner-password-1");
    let channel = create_channel(api, &owner.access_token, "watch-fox");
    let (_, key) = issue_stream_key(api, &owner.access_token, &channel);
    let chat = ChatClient::connect(
        api,
        &format!("/v1/chat/watch-fox?token={}", owner.access_token),
        None,
    );
    chat.wait_type("welcome", Duration::from_secs(10), |_| true)
        .expect("welcome");
    chat.send(&json!({ "type": "send", "text": "hello firefox" }));
    chat.wait_type("message", Duration::from_secs(10), |m| {
        m["text"] == "hello firefox"
    })
    .unwrap_or_else(|| panic!("{}", chat.describe()));
    let _ff = publish(&node.rtmp_url(&key), 3, 120);
    let until = "(() => { const s = window.weirWatch && window.weirWatch(); return !!s && s.live \
                 && s.player.state === 'playing' && s.player.latency > 0 \
                 && s.player.currentTime > (window.t0 ??= s.player.currentTime) + 2 \
                 && /latency \\d/.test(document.getElementById('latency').textContent) \
                 && s.chat.messages.some((m) => m.text === 'hello firefox'); })()";
    let args: Vec<String> = [
        "--url",
        &node.http_url("/watch/watch-fox"),
        "--until",
        until,
        "--value",
        "window.weirWatch()",
        "--timeout",
        "120",
        "--shot",
        "/tmp/watch-firefox.png",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let (ok, out, err) = run_script("firefox.mjs", &args, Duration::from_secs(180));
    assert!(ok, "firefox.mjs failed:\n{out}\n{err}\n{}", node.log());

    // WebRTC, on a channel without B-frames: Debian's Firefox has no H.264 for WebRTC
    // until it downloads Cisco's OpenH264 plugin (it cannot here: no internet), so its
    // offer carries none; the node says so (422) and the page says why and stays on
    // LL-HLS, playing. (Chromium plays it over WebRTC: the test above.)
    let rtc = create_channel(api, &owner.access_token, "watch-fox-rtc");
    let (_, key) = issue_stream_key(api, &owner.access_token, &rtc);
    let _rtc = publish(&node.rtmp_url(&key), 0, 120);
    let until = "(() => { const s = window.weirWatch && window.weirWatch(); return !!s && s.live \
                 && s.mode === 'hls' && s.player.state === 'playing' \
                 && s.player.currentTime > (window.t0 ??= s.player.currentTime) + 2 \
                 && /WebRTC is not available here: .*codecs.*Playing LL-HLS/ \
                    .test(document.getElementById('player-status').textContent); })()";
    let args: Vec<String> = [
        "--url",
        &node.http_url("/watch/watch-fox-rtc?mode=webrtc"),
        "--until",
        until,
        "--value",
        "window.weirWatch()",
        "--timeout",
        "120",
        "--shot",
        "/tmp/watch-firefox-webrtc.png",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let (ok, out, err) = run_script("firefox.mjs", &args, Duration::from_secs(180));
    assert!(
        ok,
        "firefox.mjs (WebRTC) failed:\n{out}\n{err}\n{}",
        node.log()
    );
}

/// A members-only channel (signed playback): the page says so to an anonymous visitor
/// (the plain playlist is 403), and after the owner signs in with the page's form it plays
/// under the signed path `playbackUrl` hands out, then over WebRTC with the same token,
/// as does `web/whep.html` given it (`tests/web/watch_signed.mjs`).
#[test]
fn watch_page_plays_a_members_only_channel_after_sign_in() {
    require_browser_peer(&["node_modules/playwright-core/package.json"]);
    let node = Node::start();
    assert!(node.wait_log("GraphQL API listening on", Duration::from_secs(20)));
    let api = node.api_port;
    let owner = register_and_login(api, "memberowner", "owner-password-1");
    let channel = create_channel(api, &owner.access_token, "members-watch");
    gql_ok(
        api,
        Some(&owner.access_token),
        "mutation($c:ID!){setEntitlement(channelId:$c,input:{access:PUBLIC,signedUrls:true,signedUrlTtlSecs:600}){signedUrls}}",
        json!({ "c": channel }),
    );
    let (_, key) = issue_stream_key(api, &owner.access_token, &channel);
    // No B-frames: the page also plays it over WebRTC.
    let _ff = publish(&node.rtmp_url(&key), 0, 120);
    let args: Vec<String> = [
        "--base",
        &node.http_url(""),
        "--channel",
        "members-watch",
        "--user",
        "memberowner:owner-password-1",
        "--timeout",
        "90",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let (ok, out, err) = run_script("watch_signed.mjs", &args, Duration::from_secs(150));
    assert!(ok, "watch_signed.mjs failed:\n{out}\n{err}\n{}", node.log());
    let plain = http::get(node.http_port, "/live/members-watch/index.m3u8").expect("get");
    assert_eq!(
        plain.status, 403,
        "the plain path plays a members-only channel"
    );
}
