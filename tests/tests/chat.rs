//! The chat gateway of `weir serve`, end to end: accounts over GraphQL, two websocket
//! clients, a signed-in writer and an anonymous reader; moderation over HTTP; refused
//! frames; a restart that keeps history and lets clients resume with `since=`.

#![allow(clippy::unwrap_used, missing_docs)]

use std::time::Duration;

use serde_json::{Value, json};
use weir_e2e::chat::{ChatClient, moderate};
use weir_e2e::graphql::{WsClient, create_channel, gql_ok, register_and_login};
use weir_e2e::{Node, NodeOptions, http, metric};

const T: Duration = Duration::from_secs(10);

fn ids(msgs: &[Value]) -> Vec<u64> {
    msgs.iter().filter_map(|m| m["id"].as_u64()).collect()
}

#[test]
fn chat_rooms_moderation_limits_and_restart() {
    let node = Node::start();
    assert!(
        node.wait_log("Chat gateway listening on ws://", T),
        "no chat startup line:\n{}",
        node.log()
    );
    let api = node.api_port;
    let owner = register_and_login(api, "chatowner", "owner-password-1");
    let bob = register_and_login(api, "chatbob", "bob-password-12");
    let channel_id = create_channel(api, &owner.access_token, "chat-e2e");
    let path = "/v1/chat/chat-e2e";

    // Unknown channel and bad token are refused at the upgrade.
    assert!(ChatClient::try_connect(api, "/v1/chat/no-such-channel", None).is_err());
    assert!(ChatClient::try_connect(api, &format!("{path}?token=garbage"), None).is_err());

    let writer = ChatClient::connect(api, &format!("{path}?token={}", bob.access_token), None);
    let reader = ChatClient::connect(api, path, None);
    let w = writer
        .wait_type("welcome", T, |_| true)
        .unwrap_or_else(|| panic!("no welcome: {}", writer.describe()));
    assert_eq!(w["can_write"], true);
    assert_eq!(w["moderator"], false);
    assert_eq!(w["channel"], channel_id.as_str());
    let r = reader.wait_type("welcome", T, |_| true).expect("welcome");
    assert_eq!(r["can_write"], false);
    assert!(r["user"].is_null());

    // The same room over GraphQL: a graphql-ws subscription.
    let sub = WsClient::connect(api, &owner.access_token);
    sub.subscribe(
        "chat",
        "subscription($c: ID!) { chatMessages(channelId: $c) { kind message { id text } user { name } } }",
        json!({ "c": "chat-e2e" }),
    );
    std::thread::sleep(Duration::from_millis(300));

    // A signed-in user writes; the anonymous reader receives in order.
    for (i, text) in ["first message", "second message", "third message"]
        .iter()
        .enumerate()
    {
        writer.say(text, &format!("n{i}"));
    }
    assert!(
        reader.wait_for(T, |m| m.iter().filter(|m| m["type"] == "message").count()
            == 3),
        "reader: {}",
        reader.describe()
    );
    let got = reader.of_type("message");
    assert_eq!(
        got.iter()
            .map(|m| m["text"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["first message", "second message", "third message"]
    );
    assert_eq!(ids(&got), [1, 2, 3], "ids are monotonic per room");
    assert!(got.iter().all(|m| m["ts"].as_i64().is_some_and(|t| t > 0)));
    assert_eq!(got[0]["user"]["name"], "chatbob");
    assert!(
        sub.wait_for(T, |_| sub.payloads("chat").len() >= 3),
        "{:?}",
        sub.messages()
    );
    let texts: Vec<Value> = sub.payloads("chat")[..3]
        .iter()
        .map(|p| p["data"]["chatMessages"]["message"]["text"].clone())
        .collect();
    assert_eq!(texts, ["first message", "second message", "third message"]);
    // Acks come once stored, which may be after the room has seen the messages.
    assert!(
        writer.wait_for(T, |f| f.iter().filter(|m| m["type"] == "ack").count() >= 3),
        "{}",
        writer.describe()
    );
    let acks = writer.of_type("ack");
    assert_eq!(acks.len(), 3, "{}", writer.describe());
    assert_eq!(acks[0]["nonce"], "n0");

    // Anonymous connections are read-only.
    reader.say("let me in", "anon");
    let e = reader
        .wait_type("error", T, |e| e["nonce"] == "anon")
        .unwrap_or_else(|| panic!("{}", reader.describe()));
    assert_eq!(e["code"], "UNAUTHENTICATED");

    // A first `auth` message upgrades a connection: the owner moderates.
    let owner_ws = ChatClient::connect(api, path, None);
    owner_ws.wait_type("welcome", T, |_| true).expect("welcome");
    owner_ws.send(&json!({ "type": "auth", "token": owner.access_token }));
    let w = owner_ws
        .wait_type("welcome", T, |w| w["can_write"] == true)
        .unwrap_or_else(|| panic!("{}", owner_ws.describe()));
    assert_eq!(w["moderator"], true);
    assert_eq!(w["user"]["name"], "chatowner");

    // A reply and a refused link.
    writer.send(&json!({ "type": "send", "text": "replying", "reply_to": 1, "nonce": "r" }));
    let reply = reader
        .wait_type("message", T, |m| m["text"] == "replying")
        .expect("reply");
    assert_eq!(reply["reply_to"], 1);
    writer.say("visit evil.com now", "link");
    let e = writer
        .wait_type("error", T, |e| e["nonce"] == "link")
        .expect("link refused");
    assert_eq!(e["code"], "LINK_BLOCKED");

    // The owner deletes a message and bans bob over HTTP: both clients see the events,
    // and bob's next message is refused.
    let (status, body) = moderate(
        api,
        &owner.access_token,
        "chat-e2e",
        json!({ "action": "delete", "message_id": 2 }),
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = moderate(
        api,
        &bob.access_token,
        "chat-e2e",
        json!({ "action": "ban", "user": "chatowner" }),
    );
    assert_eq!(status, 403, "bob is no moderator: {body}");
    assert_eq!(body["error"]["code"], "FORBIDDEN");
    let (status, body) = moderate(
        api,
        &owner.access_token,
        "chat-e2e",
        json!({ "action": "ban", "user": "chatbob", "reason": "test ban" }),
    );
    assert_eq!(status, 200, "{body}");
    for c in [&writer, &reader] {
        let b = c
            .wait_type("banned", T, |_| true)
            .unwrap_or_else(|| panic!("no ban event: {}", c.describe()));
        assert_eq!(b["user"]["name"], "chatbob");
        assert_eq!(b["reason"], "test ban");
        let d = c.wait_type("deleted", T, |_| true).expect("deleted event");
        assert_eq!(d["message_id"], 2);
    }
    assert!(
        sub.wait_for(T, |_| sub
            .payloads("chat")
            .iter()
            .any(|p| p["data"]["chatMessages"]["kind"] == "BANNED"
                && p["data"]["chatMessages"]["user"]["name"] == "chatbob")),
        "{:?}",
        sub.payloads("chat")
    );
    drop(sub);
    writer.say("am I still here", "after-ban");
    let e = writer
        .wait_type("error", T, |e| e["nonce"] == "after-ban")
        .unwrap_or_else(|| panic!("{}", writer.describe()));
    assert_eq!(e["code"], "BANNED");

    // Bad frames are refused with close codes; the node stays healthy.
    let big = ChatClient::connect(api, path, None);
    big.wait_type("welcome", T, |_| true).expect("welcome");
    big.say(&"x".repeat(5000), "big");
    assert!(
        weir_e2e::wait_until(T, || big.closed()),
        "{}",
        big.describe()
    );
    assert_eq!(big.close_code(), Some(1009), "{}", big.describe());
    let bad = ChatClient::connect(api, path, None);
    bad.wait_type("welcome", T, |_| true).expect("welcome");
    bad.send_text_bytes(vec![b'{', 0xff, 0xfe, b'}']);
    assert!(
        weir_e2e::wait_until(T, || bad.closed()),
        "{}",
        bad.describe()
    );
    assert_eq!(bad.close_code(), Some(1007), "{}", bad.describe());
    let bin = ChatClient::connect(api, path, None);
    bin.wait_type("welcome", T, |_| true).expect("welcome");
    bin.send_raw(tungstenite::Message::binary(vec![1, 2, 3]));
    assert!(
        weir_e2e::wait_until(T, || bin.closed()),
        "{}",
        bin.describe()
    );
    assert_eq!(bin.close_code(), Some(1003), "{}", bin.describe());
    let refused = metric(node.http_port, "weir_chat_frames_refused_total", &[]);
    assert!(refused.is_some_and(|n| n >= 3.0), "metrics: {refused:?}");

    owner_ws.say("still alive", "alive");
    reader
        .wait_type("message", T, |m| m["text"] == "still alive")
        .unwrap_or_else(|| panic!("{}", reader.describe()));
    assert!(!reader.closed());

    // History over GraphQL (public), then over HTTP: paginated, the deleted message left out.
    let d = gql_ok(
        api,
        None,
        "query($c: ID!) { chatHistory(channelId: $c, limit: 10) { messages { id text user { name } } nextBefore } }",
        json!({ "c": channel_id }),
    );
    assert_eq!(
        ids(d["chatHistory"]["messages"].as_array().unwrap()),
        [1, 3, 4, 5],
        "{d}"
    );
    let h = http::get(api, "/v1/chat/chat-e2e/history?limit=2").expect("history");
    assert_eq!(h.status, 200, "{}", h.text());
    let page: Value = serde_json::from_slice(&h.body).unwrap();
    assert_eq!(ids(page["messages"].as_array().unwrap()), [4, 5]);
    let before = page["next_before"].as_u64().expect("next_before");
    let h = http::get(
        api,
        &format!("/v1/chat/{channel_id}/history?before={before}&limit=10"),
    )
    .expect("history");
    let page: Value = serde_json::from_slice(&h.body).unwrap();
    assert_eq!(ids(page["messages"].as_array().unwrap()), [1, 3], "{page}");
    assert!(page["next_before"].is_null());
    let last_seen = ids(&reader.of_type("message")).into_iter().max().unwrap();
    drop((writer, reader, owner_ws, big, bad, bin));

    // Restart: history is still there, ids continue, `since=` resumes.
    let node = node.stop_and_restart(NodeOptions::default());
    // The restarted node logs to its own file.
    assert!(
        weir_e2e::wait_until(T, || node.log().contains("Chat gateway listening")),
        "{}",
        node.log()
    );
    let api = node.api_port;
    let h = http::get(api, "/v1/chat/chat-e2e/history").expect("history");
    let page: Value = serde_json::from_slice(&h.body).unwrap();
    assert_eq!(
        ids(page["messages"].as_array().unwrap()),
        [1, 3, 4, 5],
        "{page}"
    );
    let owner_ws = ChatClient::connect(api, path, Some(&owner.access_token));
    let w = owner_ws.wait_type("welcome", T, |_| true).expect("welcome");
    assert_eq!(w["last_id"], 5);
    assert_eq!(w["moderator"], true);
    let hist = owner_ws.wait_type("history", T, |_| true).expect("history");
    assert_eq!(ids(hist["messages"].as_array().unwrap()), [1, 3, 4, 5]);
    owner_ws.say("after the restart", "ar");
    let ack = owner_ws
        .wait_type("ack", T, |a| a["nonce"] == "ar")
        .unwrap_or_else(|| panic!("{}", owner_ws.describe()));
    assert_eq!(ack["id"], 6);
    let resumed = ChatClient::connect(api, &format!("{path}?since={last_seen}"), None);
    let hist = resumed.wait_type("history", T, |_| true).expect("history");
    assert!(
        resumed.wait_for(T, |_| resumed
            .texts()
            .contains(&"after the restart".to_owned())),
        "{}",
        resumed.describe()
    );
    assert_eq!(hist["truncated"], false);
    assert!(
        ids(hist["messages"].as_array().unwrap())
            .iter()
            .all(|&id| id > last_seen),
        "{hist}"
    );
    // The ban survived the restart too.
    let bob_ws = ChatClient::connect(api, &format!("{path}?token={}", bob.access_token), None);
    bob_ws.say("back again", "bb");
    let e = bob_ws
        .wait_type("error", T, |e| e["nonce"] == "bb")
        .unwrap_or_else(|| panic!("{}", bob_ws.describe()));
    assert_eq!(e["code"], "BANNED");
    // Unbanned over GraphQL: bob writes again.
    let d = gql_ok(
        api,
        Some(&owner.access_token),
        "mutation($c: ID!) { moderateChat(channelId: $c, input: { action: UNBAN, user: \"chatbob\" }) }",
        json!({ "c": channel_id }),
    );
    assert_eq!(d["moderateChat"], true);
    bob_ws
        .wait_type("unbanned", T, |_| true)
        .unwrap_or_else(|| panic!("{}", bob_ws.describe()));
    bob_ws.say("free again", "fa");
    bob_ws
        .wait_type("ack", T, |a| a["nonce"] == "fa")
        .unwrap_or_else(|| panic!("{}", bob_ws.describe()));
}

/// Scale-out: `weir controlplane` and `weir chat` on one etcd and one Redis serve the
/// same rooms: one id sequence, messages both ways, a ban given on one enforced on the
/// other.
#[test]
fn chat_gateways_share_rooms_through_redis() {
    use weir_e2e::chat::Redis;
    use weir_e2e::cluster::{ControlPlane, Secrets, random_hex};
    use weir_e2e::etcd::Etcd;

    let etcd = Etcd::start();
    let redis = Redis::start();
    let secrets = Secrets::generate();
    let jwt = random_hex(32);
    let shared = [
        ("WEIR_JWT_SECRET", jwt.as_str()),
        ("WEIR_CHAT_REDIS", redis.addr.as_str()),
    ];
    let cp = ControlPlane::start(&[etcd.url()], &secrets, &shared);
    assert!(
        cp.proc.log().contains("Chat gateway listening"),
        "{}",
        cp.proc.log()
    );
    let dir = weir_e2e::TempDir::new("chat-gw");
    let chat_port = weir_e2e::free_port();
    let mut cmd = weir_e2e::weir_command();
    cmd.arg("chat")
        .args(["--chat-listen", &format!("127.0.0.1:{chat_port}")])
        .args(["--etcd-endpoints", &etcd.url()])
        .args(["--public-host", "127.0.0.1"])
        .arg("--data-dir")
        .arg(dir.0.join("data"))
        .env("WEIR_STREAM_KEY_SECRET", &secrets.stream_key_secret)
        .envs(shared);
    let mut gw = weir_e2e::Process::spawn("weir chat", cmd, dir.0.join("chat.log"));
    assert!(
        gw.wait_log("Chat gateway listening on ws://", Duration::from_secs(30)),
        "weir chat did not start:\n{}",
        gw.log()
    );
    assert!(
        gw.wait_log("subscribed to Redis fan-out", T),
        "{}",
        gw.log()
    );

    let api = cp.api_port;
    let owner = register_and_login(api, "scaleowner", "owner-password-1");
    let carol = register_and_login(api, "scalecarol", "carol-password-1");
    create_channel(api, &owner.access_token, "scale-out");
    let path = "/v1/chat/scale-out";
    let on_cp = ChatClient::connect(api, path, Some(&carol.access_token));
    let on_gw = ChatClient::connect(chat_port, path, Some(&owner.access_token));
    let w = on_gw.wait_type("welcome", T, |_| true).expect("welcome");
    assert_eq!(w["moderator"], true, "the owner, as etcd tells weir chat");
    on_cp.wait_type("welcome", T, |_| true).expect("welcome");

    on_cp.say("hello from the control plane", "a");
    let m = on_gw
        .wait_type("message", T, |m| {
            m["text"] == "hello from the control plane"
        })
        .unwrap_or_else(|| panic!("{}\n{}", on_gw.describe(), gw.log()));
    assert_eq!(m["id"], 1);
    on_gw.say("hello from weir chat", "b");
    let m = on_cp
        .wait_type("message", T, |m| m["text"] == "hello from weir chat")
        .unwrap_or_else(|| panic!("{}", on_cp.describe()));
    assert_eq!(m["id"], 2, "one id sequence across gateways");

    let (status, body) = moderate(
        chat_port,
        &owner.access_token,
        "scale-out",
        json!({ "action": "timeout", "user": "scalecarol", "duration_s": 120 }),
    );
    assert_eq!(status, 200, "{body}");
    on_cp
        .wait_type("timed_out", T, |t| t["user"]["name"] == "scalecarol")
        .unwrap_or_else(|| panic!("{}", on_cp.describe()));
    on_cp.say("still talking", "c");
    let e = on_cp
        .wait_type("error", T, |e| e["nonce"] == "c")
        .unwrap_or_else(|| panic!("{}", on_cp.describe()));
    assert_eq!(e["code"], "TIMED_OUT");
    // History is in etcd, whichever gateway took the message.
    let h = http::get(chat_port, "/v1/chat/scale-out/history").expect("history");
    let page: Value = serde_json::from_slice(&h.body).unwrap();
    assert_eq!(ids(page["messages"].as_array().unwrap()), [1, 2], "{page}");
    let moderated = metric(chat_port, "weir_chat_moderation_actions_total", &[]);
    assert_eq!(moderated, Some(1.0), "weir chat's /metrics");
    drop(redis);
}

/// The chat page (`/web/chat.html` on the API port) in headless Chromium: a signed-in
/// page writes, an anonymous page and a websocket client receive; chat text is shown as
/// text (no markup injection).
#[test]
fn chat_page_in_chromium() {
    use weir_e2e::browser::{require_browser_peer, run_script};

    require_browser_peer(&["node_modules/playwright-core/package.json"]);
    let node = Node::start();
    assert!(node.wait_log("Chat gateway listening on ws://", T));
    let api = node.api_port;
    let owner = register_and_login(api, "pageowner", "owner-password-1");
    create_channel(api, &owner.access_token, "chat-page");
    let page = http::get(api, "/web/chat.html").expect("page");
    assert_eq!(page.status, 200);
    assert!(page.header("content-security-policy").is_some());
    let ws = ChatClient::connect(api, "/v1/chat/chat-page", None);
    ws.wait_type("welcome", T, |_| true).expect("welcome");

    let base = format!("http://127.0.0.1:{api}/web/chat.html?channel=chat-page&autostart=1");
    let evil = "<img src=x onerror=alert(1)> hi";
    let args: Vec<String> = [
        "--timeout",
        "30",
        "--say",
        "0:hello from chromium",
        "--say",
        &format!("0:{evil}"),
        "--expect",
        "hello from chromium",
        "--expect",
        evil,
        "--page",
        &format!("{base}&token={}", owner.access_token),
        "--page",
        &base,
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let (ok, out, err) = run_script("chat.mjs", &args, Duration::from_secs(60));
    assert!(ok, "chat.mjs failed:\n{out}\n{err}\n{}", node.log());
    let v: Value = serde_json::from_str(out.trim()).expect("JSON from chat.mjs");
    let pages = v["pages"].as_array().unwrap();
    assert_eq!(pages[0]["final"]["canWrite"], true);
    assert_eq!(pages[0]["final"]["moderator"], true);
    assert_eq!(pages[1]["final"]["canWrite"], false);
    for p in pages {
        assert_eq!(p["images"], 0, "chat text must not become markup: {p}");
    }
    ws.wait_type("message", T, |m| m["text"] == evil)
        .unwrap_or_else(|| panic!("{}", ws.describe()));
}
