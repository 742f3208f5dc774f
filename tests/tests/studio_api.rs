//! The studio's control plane against the real `weir serve`: a host creates a broadcast
//! and invites a guest; the guest joins with the invitation (no account) and gets a
//! participant token and its own publish key; host mutations with the guest's token are
//! FORBIDDEN, tampered invitations refused; image uploads are type- and size-checked over
//! HTTP; the guest's key publishes (ffmpeg over RTMP, the same authorisation as WHIP) to
//! the guest's own stream, plays over LL-HLS, and is refused once the guest is removed.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::{Value, json};
use weir_e2e::graphql::{create_channel, error_code, gql, gql_ok, register_and_login};
use weir_e2e::http::get;
use weir_e2e::{KillOnDrop, Node, ffmpeg_publish, output, wait_until};

const PASSWORD: &str = "correct horse battery staple";

/// A PNG header (magic, IHDR) of `w`×`h`, padded to `len` bytes.
fn png(w: u32, h: u32, len: usize) -> Vec<u8> {
    let mut v = b"\x89PNG\r\n\x1a\n".to_vec();
    v.extend_from_slice(&13u32.to_be_bytes());
    v.extend_from_slice(b"IHDR");
    v.extend_from_slice(&w.to_be_bytes());
    v.extend_from_slice(&h.to_be_bytes());
    v.extend_from_slice(&[8, 6, 0, 0, 0, 0, 0, 0, 0]);
    v.resize(len.max(v.len()), 0);
    v
}

/// POSTs `body` raw; a server that answers before reading it all still gets read.
fn upload(port: u16, broadcast: &str, token: &str, ctype: &str, body: &[u8]) -> (u16, Value) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    s.set_write_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let head = format!(
        "POST /v1/studio/{broadcast}/images HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nAuthorization: Bearer {token}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).expect("head");
    // The server may refuse on the declared length and close before the body is sent.
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|x| x.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP answer to the upload: {text:?}"));
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

#[track_caller]
fn refused(r: &Value, code: &str, words: &str) {
    assert_eq!(error_code(r).as_deref(), Some(code), "{r}");
    let msg = r["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(msg.contains(words), "{msg:?} should say {words:?}");
}

#[test]
fn studio_sessions_invitations_uploads_and_guest_keys() {
    let node = Node::start();
    assert!(
        node.wait_log("GraphQL API listening on", Duration::from_secs(20)),
        "no API"
    );
    let api = node.api_port;
    let host = register_and_login(api, "studiohost", PASSWORD);
    let ht = host.access_token.as_str();
    let ch = create_channel(api, ht, "studio-show");

    // A broadcast, an invitation, a guest without an account.
    let d = gql_ok(
        api,
        Some(ht),
        "mutation($c: ID!) { createStudioBroadcast(channelId: $c, input: { title: \"Episode 1\" }) { id status programStream programHlsPath } }",
        json!({ "c": ch }),
    );
    let b = d["createStudioBroadcast"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    assert_eq!(d["createStudioBroadcast"]["status"], "SCHEDULED");
    let d = gql_ok(
        api,
        Some(ht),
        "mutation($b: ID!) { inviteGuest(broadcastId: $b) { token path } }",
        json!({ "b": b }),
    );
    let invitation = d["inviteGuest"]["token"]
        .as_str()
        .expect("token")
        .to_string();
    let join = "mutation($i: String!, $n: String!) { joinStudio(invitation: $i, displayName: $n) { participantToken publishKey whipPath participant { id stream stage } } }";
    // Tampered: another expiry under the same signature.
    let parts: Vec<&str> = invitation.split('.').collect();
    let tampered = format!(
        "{}.{}.{}.{}.{}",
        parts[0], parts[1], parts[2], "99999999999", parts[4]
    );
    let r = gql(api, None, join, json!({ "i": tampered, "n": "Mallory" }));
    refused(&r, "UNAUTHENTICATED", "signature");
    let r = gql(
        api,
        None,
        join,
        json!({ "i": "not-an-invitation", "n": "Mallory" }),
    );
    refused(&r, "BAD_USER_INPUT", "not an invitation");

    let g = gql_ok(api, None, join, json!({ "i": invitation, "n": "Ada" }))["joinStudio"].clone();
    let gt = g["participantToken"].as_str().expect("token").to_string();
    let key = g["publishKey"].as_str().expect("key").to_string();
    let stream = g["participant"]["stream"]
        .as_str()
        .expect("stream")
        .to_string();
    let pid = g["participant"]["id"].as_str().expect("id").to_string();
    assert_eq!(g["participant"]["stage"], "BACKSTAGE");
    assert_eq!(g["whipPath"], format!("/whip/{key}"));

    // The guest reads its broadcast and cannot host it.
    let d = gql_ok(
        api,
        Some(&gt),
        "query($b: ID!) { studioBroadcast(id: $b) { title participants { displayName } } }",
        json!({ "b": b }),
    );
    assert_eq!(
        d["studioBroadcast"]["participants"][0]["displayName"],
        "Ada"
    );
    for (q, words) in [
        (
            "mutation($b: ID!) { setLayout(broadcastId: $b, layout: SPOTLIGHT) { id } }",
            "change the layout",
        ),
        (
            "mutation($b: ID!) { goLive(broadcastId: $b) { id } }",
            "go live",
        ),
        (
            "mutation($b: ID!) { inviteGuest(broadcastId: $b) { token } }",
            "invite guests",
        ),
    ] {
        refused(
            &gql(api, Some(&gt), q, json!({ "b": b })),
            "FORBIDDEN",
            words,
        );
    }
    refused(
        &gql(
            api,
            Some(&gt),
            "mutation($p: ID!) { bringOnStage(participantId: $p) { id } }",
            json!({ "p": pid }),
        ),
        "FORBIDDEN",
        "only the host",
    );
    // Its own camera, though.
    let d = gql_ok(
        api,
        Some(&gt),
        "mutation($p: ID!) { setParticipantMedia(participantId: $p, videoEnabled: false) { videoEnabled } }",
        json!({ "p": pid }),
    );
    assert_eq!(d["setParticipantMedia"]["videoEnabled"], false);

    // Uploads over HTTP.
    let image = png(1280, 720, 4096);
    let (st, v) = upload(api, &b, ht, "image/png", &image);
    assert_eq!(st, 201, "{v}");
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(1280), Some(720))
    );
    let image_id = v["id"].as_str().expect("id").to_string();
    let (st, v) = upload(api, &b, ht, "image/gif", b"GIF89a\x01\x00\x01\x00\x00\x00");
    assert_eq!(st, 415, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap_or_default()
            .contains("image/png or image/jpeg"),
        "{v}"
    );
    let (st, v) = upload(api, &b, ht, "image/png", b"<html>not an image</html>");
    assert_eq!(st, 415, "{v}");
    let (st, v) = upload(
        api,
        &b,
        ht,
        "image/png",
        &png(100, 100, 2 * 1024 * 1024 + 1),
    );
    assert_eq!(st, 413, "{v}");
    assert!(
        v["error"].as_str().unwrap_or_default().contains("2 MiB"),
        "{v}"
    );
    let (st, v) = upload(api, &b, ht, "image/png", &png(9000, 9000, 64));
    assert_eq!(st, 422, "{v}");
    let (st, v) = upload(api, &b, &gt, "image/png", &image);
    assert_eq!(st, 403, "{v}");
    let d = gql_ok(
        api,
        Some(ht),
        "mutation($b: ID!, $i: ID!) { setOverlays(broadcastId: $b, backgroundImageId: $i) { backgroundImageId } }",
        json!({ "b": b, "i": image_id }),
    );
    assert_eq!(d["setOverlays"]["backgroundImageId"], image_id.as_str());
    let got = get(api, &format!("/v1/studio/{b}/images/{image_id}")).expect("image");
    assert_eq!((got.status, got.body.len()), (200, image.len()));

    // The guest's key publishes to the guest's own stream, which plays over LL-HLS.
    let playlist = format!("/live/{stream}/index.m3u8");
    let before = get(node.http_port, &playlist).expect("playlist");
    assert_eq!(
        before.status, 404,
        "nothing plays before the guest publishes"
    );
    let mut ffmpeg = KillOnDrop(
        ffmpeg_publish(&node.rtmp_url(&key), 30)
            .spawn()
            .expect("ffmpeg"),
    );
    assert!(
        wait_until(Duration::from_secs(20), || get(node.http_port, &playlist)
            .is_ok_and(|r| r.status == 200)),
        "the guest's stream did not play at {playlist}: {}",
        node.log()
    );
    let media = get(node.http_port, &playlist).expect("playlist").text();
    assert!(media.contains("#EXTM3U"), "{media}");
    let _ = ffmpeg.0.kill();
    let _ = ffmpeg.0.wait();

    // Removed: the participant token and the key are refused.
    gql_ok(
        api,
        Some(ht),
        "mutation($p: ID!) { removeParticipant(participantId: $p) { leftAt } }",
        json!({ "p": pid }),
    );
    refused(
        &gql(api, Some(&gt), "{ studioMe { id } }", json!({})),
        "UNAUTHENTICATED",
        "removed",
    );
    let (ok, _, err) = output(&mut ffmpeg_publish(&node.rtmp_url(&key), 3));
    assert!(!ok, "a removed guest's key published: {err}");
    assert!(
        node.wait_log("revoked", Duration::from_secs(5)),
        "no refusal in the log: {}",
        node.log()
    );

    // Ending the broadcast closes the studio to the invitation.
    let d = gql_ok(
        api,
        Some(ht),
        "mutation($b: ID!) { endBroadcast(broadcastId: $b) { status } }",
        json!({ "b": b }),
    );
    assert_eq!(d["endBroadcast"]["status"], "ENDED");
    refused(
        &gql(api, None, join, json!({ "i": invitation, "n": "Late" })),
        "CONFLICT",
        "ended",
    );
}
