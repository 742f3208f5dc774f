//! The studio over GraphQL: roles (a guest's participant token cannot host), invitations
//! (forged, tampered, expired, revoked, malformed), the scenes a director receives, and
//! participants' publish keys.

mod common;

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::{Value, json};
use weir_api::{DirectorFuture, ProgramScene, SceneLayout, StudioDirector, StudioPublish};
use weir_store::Role;

use common::{Harness, harness};

/// Records what the control plane asks of the data plane.
#[derive(Default)]
struct Recorder {
    scenes: Mutex<Vec<ProgramScene>>,
    live: Mutex<Vec<(String, String)>>,
    ended: Mutex<Vec<String>>,
    refuse_live: bool,
}

impl StudioDirector for Recorder {
    fn compose(&self, scene: ProgramScene) -> DirectorFuture {
        self.scenes.lock().push(scene);
        Box::pin(async { Ok(()) })
    }
    fn go_live(&self, broadcast_id: &str, stream_key: &str) -> DirectorFuture {
        self.live
            .lock()
            .push((broadcast_id.to_string(), stream_key.to_string()));
        let refuse = self.refuse_live;
        Box::pin(async move {
            if refuse {
                Err("no encoder".to_string())
            } else {
                Ok(())
            }
        })
    }
    fn end(&self, broadcast_id: &str) -> DirectorFuture {
        self.ended.lock().push(broadcast_id.to_string());
        Box::pin(async { Ok(()) })
    }
}

const JOIN: &str = "mutation($i: String!, $n: String!) { joinStudio(invitation: $i, displayName: $n) { participantToken publishKey whipPath expiresAt participant { id stream stage role } broadcast { id programStream } } }";

struct Studio {
    h: Harness,
    owner: String,
    channel: String,
    broadcast: String,
}

async fn studio() -> Studio {
    let h = harness();
    let (_, owner, _) = h.user("host", Role::Owner).await;
    let channel = h.channel(&owner, "show").await;
    let r = h
        .gql(
            Some(&owner),
            "mutation($c: ID!) { createStudioBroadcast(channelId: $c, input: { title: \"Ep 1\", recordIsolatedTracks: true }) { id status layout programStream programHlsPath programWhepPath recordIsolatedTracks } }",
            json!({ "c": channel }),
        )
        .await;
    let b = r.ok()["createStudioBroadcast"].clone();
    assert_eq!(b["status"], "SCHEDULED");
    assert_eq!(b["layout"], "GRID");
    let pgm = b["programStream"].as_str().expect("pgm");
    assert!(pgm.starts_with("studio-") && pgm.ends_with("-pgm") && pgm.len() <= 64);
    assert_eq!(b["programHlsPath"], format!("/live/{pgm}/index.m3u8"));
    let broadcast = b["id"].as_str().expect("id").to_string();
    Studio {
        h,
        owner,
        channel,
        broadcast,
    }
}

impl Studio {
    async fn invite(&self) -> String {
        let r = self
            .h
            .gql(
                Some(&self.owner),
                "mutation($b: ID!) { inviteGuest(broadcastId: $b) { token path invitation { id expiresAt } } }",
                json!({ "b": self.broadcast }),
            )
            .await;
        let inv = &r.ok()["inviteGuest"];
        let token = inv["token"].as_str().expect("token").to_string();
        assert!(inv["path"].as_str().expect("path").ends_with(&token));
        token
    }

    async fn join(&self, invitation: &str, name: &str) -> Value {
        let r = self
            .h
            .gql(None, JOIN, json!({ "i": invitation, "n": name }))
            .await;
        r.ok()["joinStudio"].clone()
    }

    async fn host(&self, query: &str, vars: Value) -> Value {
        self.h
            .gql(Some(&self.owner), query, vars)
            .await
            .ok()
            .clone()
    }
}

#[track_caller]
fn refused(r: &common::Resp, code: &str, words: &str) {
    assert_eq!(r.code(), Some(code), "{}", r.body);
    let msg = r.body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(msg.contains(words), "{msg:?} should say {words:?}");
}

#[tokio::test]
async fn guests_join_with_an_invitation_and_cannot_host() {
    let s = studio().await;
    let inv = s.invite().await;
    let g = s.join(&inv, "Ada").await;
    let gt = g["participantToken"].as_str().expect("token").to_string();
    let me = g["participant"]["id"].as_str().expect("id").to_string();
    let stream = g["participant"]["stream"].as_str().expect("stream");
    assert!(stream.starts_with("studio-") && stream.len() <= 64);
    assert!(
        stream
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    );
    assert_eq!(g["participant"]["stage"], "BACKSTAGE");
    assert_eq!(g["participant"]["role"], "GUEST");
    let key = g["publishKey"].as_str().expect("key");
    assert_eq!(g["whipPath"], format!("/whip/{key}"));
    assert!(
        key.contains(stream),
        "the key names the participant's stream"
    );
    let other = s.join(&s.invite().await, "Bob").await;
    let other_id = other["participant"]["id"].as_str().expect("id").to_string();

    // The guest reads its own broadcast.
    let r = s
        .h
        .gql(
            Some(&gt),
            "query($b: ID!) { studioBroadcast(id: $b) { title participants { displayName } invitations { id } } studioMe { displayName } }",
            json!({ "b": s.broadcast }),
        )
        .await;
    let d = r.ok();
    assert_eq!(
        d["studioBroadcast"]["participants"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    assert_eq!(
        d["studioBroadcast"]["invitations"],
        json!([]),
        "guests see no invitations"
    );
    assert_eq!(d["studioMe"]["displayName"], "Ada");

    // Host operations are refused with a clear message.
    let host_ops = [
        (
            "mutation($b: ID!) { setLayout(broadcastId: $b, layout: SPOTLIGHT) { id } }",
            "change the layout",
        ),
        (
            "mutation($b: ID!) { goLive(broadcastId: $b) { id } }",
            "go live",
        ),
        (
            "mutation($b: ID!) { endBroadcast(broadcastId: $b) { id } }",
            "end the broadcast",
        ),
        (
            "mutation($b: ID!) { inviteGuest(broadcastId: $b) { token } }",
            "invite guests",
        ),
        (
            "mutation($b: ID!) { showBanner(broadcastId: $b, title: \"x\") { id } }",
            "show banners",
        ),
        (
            "mutation($b: ID!) { setOverlays(broadcastId: $b, logoImageId: null) { id } }",
            "change the overlays",
        ),
        (
            "mutation($b: ID!) { deleteStudioBroadcast(id: $b) }",
            "delete the broadcast",
        ),
    ];
    for (q, words) in host_ops {
        let r = s.h.gql(Some(&gt), q, json!({ "b": s.broadcast })).await;
        refused(&r, "FORBIDDEN", words);
        refused(&r, "FORBIDDEN", "only the host");
    }
    for p in [&me, &other_id] {
        let r =
            s.h.gql(
                Some(&gt),
                "mutation($p: ID!) { bringOnStage(participantId: $p) { id } }",
                json!({ "p": p }),
            )
            .await;
        refused(&r, "FORBIDDEN", "bring participants on stage");
    }
    let r = s
        .h
        .gql(Some(&gt), "mutation($p: ID!) { setParticipantMedia(participantId: $p, audioEnabled: false) { id } }", json!({ "p": other_id }))
        .await;
    refused(&r, "FORBIDDEN", "another participant");
    let r =
        s.h.gql(
            Some(&gt),
            "mutation($p: ID!) { removeParticipant(participantId: $p) { id } }",
            json!({ "p": other_id }),
        )
        .await;
    refused(&r, "FORBIDDEN", "another participant");
    let r = s
        .h
        .gql(Some(&gt), "mutation($c: ID!) { createStudioBroadcast(channelId: $c, input: { title: \"x\" }) { id } }", json!({ "c": s.channel }))
        .await;
    refused(&r, "FORBIDDEN", "only the host");
    // A participant token is no account token.
    let r = s.h.gql(Some(&gt), "{ me { id } }", json!({})).await;
    assert_eq!(r.code(), Some("UNAUTHENTICATED"), "{}", r.body);

    // Its own camera and microphone: off and on; after the host mutes, not on again.
    let media = "mutation($p: ID!, $a: Boolean, $v: Boolean, $g: Float) { setParticipantMedia(participantId: $p, audioEnabled: $a, videoEnabled: $v, gain: $g) { audioEnabled videoEnabled audioLocked gain } }";
    let r =
        s.h.gql(Some(&gt), media, json!({ "p": me, "v": false }))
            .await;
    assert_eq!(r.ok()["setParticipantMedia"]["videoEnabled"], false);
    let r =
        s.h.gql(Some(&gt), media, json!({ "p": me, "v": true }))
            .await;
    assert_eq!(r.ok()["setParticipantMedia"]["videoEnabled"], true);
    let r =
        s.h.gql(Some(&gt), media, json!({ "p": me, "g": 1.5 }))
            .await;
    refused(&r, "FORBIDDEN", "gain");
    let d = s
        .host(media, json!({ "p": me, "a": false, "g": 0.5 }))
        .await;
    assert_eq!(d["setParticipantMedia"]["audioLocked"], true);
    assert_eq!(d["setParticipantMedia"]["gain"], 0.5);
    let r =
        s.h.gql(Some(&gt), media, json!({ "p": me, "a": true }))
            .await;
    refused(&r, "FORBIDDEN", "host muted your microphone");

    // Another owner sees nothing; a moderator reads but cannot host.
    let (_, stranger, _) = s.h.user("stranger", Role::Owner).await;
    let r =
        s.h.gql(
            Some(&stranger),
            "query($b: ID!) { studioBroadcast(id: $b) { id } }",
            json!({ "b": s.broadcast }),
        )
        .await;
    assert_eq!(r.code(), Some("NOT_FOUND"));
    let r =
        s.h.gql(
            Some(&stranger),
            "mutation($b: ID!) { setLayout(broadcastId: $b, layout: GRID) { id } }",
            json!({ "b": s.broadcast }),
        )
        .await;
    assert_eq!(r.code(), Some("NOT_FOUND"));

    // Leaving: the token stops working, the key is refused.
    let d =
        s.h.gql(
            Some(&gt),
            "mutation($p: ID!) { removeParticipant(participantId: $p) { leftAt } }",
            json!({ "p": me }),
        )
        .await;
    assert!(d.ok()["removeParticipant"]["leftAt"].is_i64());
    let r = s.h.gql(Some(&gt), "{ studioMe { id } }", json!({})).await;
    refused(&r, "UNAUTHENTICATED", "removed");
}

#[tokio::test]
async fn bad_invitations_are_refused_with_clear_errors() {
    let s = studio().await;
    let good = s.invite().await;
    // Tampered: another expiry, another broadcast, a changed signature.
    let parts: Vec<&str> = good.split('.').collect();
    assert_eq!(parts.len(), 5, "{good}");
    let later = format!(
        "{}.{}.{}.{}.{}",
        parts[0], parts[1], parts[2], "99999999999", parts[4]
    );
    let moved = format!(
        "{}.{}.{}.{}.{}",
        parts[0], "0000000000000000aaaaaaaaaaaa", parts[2], parts[3], parts[4]
    );
    let mut sig = parts[4].to_string();
    let flipped = if sig.starts_with('A') { "B" } else { "A" };
    sig.replace_range(0..1, flipped);
    let resigned = format!("{}.{}.{}.{}.{sig}", parts[0], parts[1], parts[2], parts[3]);
    for bad in [&later, &moved, &resigned] {
        let r = s.h.gql(None, JOIN, json!({ "i": bad, "n": "Eve" })).await;
        refused(&r, "UNAUTHENTICATED", "signature");
    }
    // Forged: signed by another server's secret.
    let other = harness_with_secret(b"a-completely-different-jwt-secret!!");
    let (_, o, _) = other.user("host2", Role::Owner).await;
    let ch = other.channel(&o, "other").await;
    let r = other
        .gql(Some(&o), "mutation($c: ID!) { createStudioBroadcast(channelId: $c, input: { title: \"t\" }) { id } }", json!({ "c": ch }))
        .await;
    let b2 = r.ok()["createStudioBroadcast"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let r = other
        .gql(
            Some(&o),
            "mutation($b: ID!) { inviteGuest(broadcastId: $b) { token } }",
            json!({ "b": b2 }),
        )
        .await;
    let forged = r.ok()["inviteGuest"]["token"]
        .as_str()
        .expect("t")
        .to_string();
    let r =
        s.h.gql(None, JOIN, json!({ "i": forged, "n": "Eve" }))
            .await;
    refused(&r, "UNAUTHENTICATED", "signature");
    // Malformed.
    for junk in ["", "hello", "wsi1.a.b", &"x".repeat(5000)] {
        let r = s.h.gql(None, JOIN, json!({ "i": junk, "n": "Eve" })).await;
        refused(&r, "BAD_USER_INPUT", "not an invitation");
    }
    // Revoked.
    let r =
        s.h.gql(
            Some(&s.owner),
            "mutation($b: ID!) { inviteGuest(broadcastId: $b) { token invitation { id } } }",
            json!({ "b": s.broadcast }),
        )
        .await;
    let d = r.ok()["inviteGuest"].clone();
    let id = d["invitation"]["id"].as_str().expect("id");
    let d2 = s
        .host(
            "mutation($i: ID!) { revokeInvitation(id: $i) { revokedAt } }",
            json!({ "i": id }),
        )
        .await;
    assert!(d2["revokeInvitation"]["revokedAt"].is_i64());
    let r =
        s.h.gql(None, JOIN, json!({ "i": d["token"], "n": "Eve" }))
            .await;
    refused(&r, "FORBIDDEN", "revoked");
    // Expired.
    let r =
        s.h.gql(
            Some(&s.owner),
            "mutation($b: ID!) { inviteGuest(broadcastId: $b, ttlSeconds: 1) { token } }",
            json!({ "b": s.broadcast }),
        )
        .await;
    let short = r.ok()["inviteGuest"]["token"]
        .as_str()
        .expect("t")
        .to_string();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let r = s.h.gql(None, JOIN, json!({ "i": short, "n": "Eve" })).await;
    refused(&r, "UNAUTHENTICATED", "expired");
    // Bad names; the good invitation still works, until the broadcast ends.
    let r = s.h.gql(None, JOIN, json!({ "i": good, "n": "  " })).await;
    assert_eq!(r.code(), Some("BAD_USER_INPUT"));
    s.join(&good, "Eve").await;
    s.host(
        "mutation($b: ID!) { endBroadcast(broadcastId: $b) { status } }",
        json!({ "b": s.broadcast }),
    )
    .await;
    let r = s.h.gql(None, JOIN, json!({ "i": good, "n": "Late" })).await;
    refused(&r, "CONFLICT", "ended");
}

fn harness_with_secret(secret: &[u8]) -> Harness {
    let mut acfg = weir_auth::AuthConfig::new(secret.to_vec());
    acfg.password = weir_auth::PasswordParams::insecure_fast();
    common::harness_with_auth(weir_api::ApiConfig::default(), acfg)
}

#[tokio::test]
async fn the_director_gets_every_scene_and_goes_live() {
    let s = studio().await;
    let rec = Arc::new(Recorder::default());
    // Without a director the session works, and going live says why not.
    let ga = s.join(&s.invite().await, "Ada").await;
    let a = ga["participant"]["id"].as_str().expect("id").to_string();
    let a_stream = ga["participant"]["stream"].as_str().expect("s").to_string();
    let r =
        s.h.gql(
            Some(&s.owner),
            "mutation($b: ID!) { goLive(broadcastId: $b) { id } }",
            json!({ "b": s.broadcast }),
        )
        .await;
    refused(
        &r,
        "SERVICE_UNAVAILABLE",
        "this node has no studio compositor",
    );
    s.h.state.set_studio_director(rec.clone());

    let hj = s
        .host("mutation($b: ID!) { joinStudioAsHost(broadcastId: $b) { participant { id role displayName } } }", json!({ "b": s.broadcast }))
        .await;
    let host_p = hj["joinStudioAsHost"]["participant"].clone();
    assert_eq!(host_p["role"], "HOST");
    assert_eq!(host_p["displayName"], "host");
    let hp = host_p["id"].as_str().expect("id").to_string();
    assert!(
        rec.scenes.lock().is_empty(),
        "backstage joins do not change the program"
    );

    let on = "mutation($p: ID!) { bringOnStage(participantId: $p) { stage } }";
    assert_eq!(
        s.host(on, json!({ "p": hp })).await["bringOnStage"]["stage"],
        "ON_STAGE"
    );
    s.host(on, json!({ "p": a })).await;
    {
        let scenes = rec.scenes.lock();
        let last = scenes.last().expect("a scene");
        assert_eq!(scenes.len(), 2);
        assert_eq!(last.broadcast_id, s.broadcast);
        assert!(last.program_stream.ends_with("-pgm"));
        assert_eq!(last.layout, SceneLayout::Grid);
        let ids: Vec<&str> = last.participants.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, [hp.as_str(), a.as_str()], "stage order");
        assert_eq!(last.participants[1].stream, a_stream);
        assert_eq!(last.participants[1].name, "Ada");
        assert!(last.participants[1].audio && last.participants[1].video);
    }
    s.host(
        "mutation($p: ID!) { setParticipantMedia(participantId: $p, audioEnabled: false, gain: 1.25) { id } }",
        json!({ "p": a }),
    )
    .await;
    let d = s
        .host(
            "mutation($b: ID!, $p: ID!) { setLayout(broadcastId: $b, layout: SPOTLIGHT, spotlightParticipantId: $p, transitionMs: 400) { layout spotlightParticipantId transitionMs } }",
            json!({ "b": s.broadcast, "p": a }),
        )
        .await;
    assert_eq!(d["setLayout"]["layout"], "SPOTLIGHT");
    {
        let scenes = rec.scenes.lock();
        let last = scenes.last().expect("scene");
        assert_eq!(last.layout, SceneLayout::Spotlight);
        assert_eq!(last.spotlight.as_deref(), Some(a.as_str()));
        assert_eq!(last.transition_ms, 400);
        assert!(!last.participants[1].audio);
        assert!((last.participants[1].gain - 1.25).abs() < 1e-6);
    }
    // Overlays carry the image bytes; banners their text.
    let png = weir_store::studio::image::png_header(320, 180);
    let img =
        s.h.state
            .store()
            .put_studio_image(&s.channel, &png, "image/png")
            .await
            .expect("image");
    s.host(
        "mutation($b: ID!, $i: ID!) { setOverlays(broadcastId: $b, backgroundImageId: $i, logoImageId: $i) { backgroundImageId } }",
        json!({ "b": s.broadcast, "i": img.id }),
    )
    .await;
    s.host(
        "mutation($b: ID!) { showBanner(broadcastId: $b, title: \"Ada Lovelace\", subtitle: \"Analyst\") { banner { title } } }",
        json!({ "b": s.broadcast }),
    )
    .await;
    {
        let scenes = rec.scenes.lock();
        let last = scenes.last().expect("scene");
        let bg = last.background.as_ref().expect("background");
        assert_eq!(
            (&*bg.data, bg.mime.as_str(), bg.id.as_str()),
            (&png[..], "image/png", img.id.as_str())
        );
        assert!(last.logo.is_some() && last.overlay.is_none());
        let banner = last.banner.as_ref().expect("banner");
        assert_eq!(
            (banner.title.as_str(), banner.subtitle.as_str()),
            ("Ada Lovelace", "Analyst")
        );
    }
    s.host(
        "mutation($b: ID!) { setOverlays(broadcastId: $b, logoImageId: null) { logoImageId } }",
        json!({ "b": s.broadcast }),
    )
    .await;
    assert!(rec.scenes.lock().last().expect("scene").logo.is_none());
    assert!(
        rec.scenes
            .lock()
            .last()
            .expect("scene")
            .background
            .is_some(),
        "absent arguments stay"
    );
    let r =
        s.h.gql(
            Some(&s.owner),
            "mutation($b: ID!) { showBanner(broadcastId: $b, chatMessageId: 12) { id } }",
            json!({ "b": s.broadcast }),
        )
        .await;
    refused(&r, "NOT_FOUND", "chat message 12");

    // Backstage and removal leave the program.
    s.host(
        "mutation($p: ID!) { sendBackstage(participantId: $p) { stage } }",
        json!({ "p": hp }),
    )
    .await;
    assert_eq!(
        rec.scenes.lock().last().expect("scene").participants.len(),
        1
    );
    s.host(
        "mutation($p: ID!) { removeParticipant(participantId: $p) { id } }",
        json!({ "p": a }),
    )
    .await;
    {
        let scenes = rec.scenes.lock();
        let last = scenes.last().expect("scene");
        assert!(last.participants.is_empty());
        assert_eq!(last.spotlight, None, "a spotlight off stage is not sent");
    }

    // Live: the director forwards the program with a channel key; end stops it.
    let d = s
        .host(
            "mutation($b: ID!) { goLive(broadcastId: $b) { status startedAt } }",
            json!({ "b": s.broadcast }),
        )
        .await;
    assert_eq!(d["goLive"]["status"], "LIVE");
    let (bid, key) = rec.live.lock()[0].clone();
    assert_eq!(bid, s.broadcast);
    assert!(key.starts_with("sk_show_"), "a key of the channel: {key}");
    let keys =
        s.h.state
            .store()
            .list_stream_keys(&s.channel)
            .await
            .expect("keys");
    assert_eq!(keys.len(), 1);
    let r =
        s.h.gql(
            Some(&s.owner),
            "mutation($b: ID!) { goLive(broadcastId: $b) { id } }",
            json!({ "b": s.broadcast }),
        )
        .await;
    refused(&r, "CONFLICT", "already live");
    let r =
        s.h.gql(
            Some(&s.owner),
            "mutation($b: ID!) { deleteStudioBroadcast(id: $b) }",
            json!({ "b": s.broadcast }),
        )
        .await;
    refused(&r, "CONFLICT", "end it");
    let d = s
        .host("mutation($b: ID!) { endBroadcast(broadcastId: $b) { status endedAt participants { id } } }", json!({ "b": s.broadcast }))
        .await;
    assert_eq!(d["endBroadcast"]["status"], "ENDED");
    assert_eq!(d["endBroadcast"]["participants"], json!([]));
    assert_eq!(*rec.ended.lock(), std::slice::from_ref(&s.broadcast));
    let keys =
        s.h.state
            .store()
            .list_stream_keys(&s.channel)
            .await
            .expect("keys");
    assert!(
        keys[0].revoked_at.is_some(),
        "the program's key is revoked at the end"
    );
    let n = rec.scenes.lock().len();
    let r =
        s.h.gql(
            Some(&s.owner),
            "mutation($b: ID!) { setLayout(broadcastId: $b, layout: SOLO) { id } }",
            json!({ "b": s.broadcast }),
        )
        .await;
    refused(&r, "CONFLICT", "ended");
    assert_eq!(rec.scenes.lock().len(), n);
}

#[tokio::test]
async fn a_failed_go_live_leaves_the_broadcast_scheduled() {
    let s = studio().await;
    let rec = Arc::new(Recorder {
        refuse_live: true,
        ..Recorder::default()
    });
    s.h.state.set_studio_director(rec.clone());
    let r =
        s.h.gql(
            Some(&s.owner),
            "mutation($b: ID!) { goLive(broadcastId: $b) { id } }",
            json!({ "b": s.broadcast }),
        )
        .await;
    refused(&r, "SERVICE_UNAVAILABLE", "no encoder");
    let d = s
        .host(
            "query($b: ID!) { studioBroadcast(id: $b) { status } }",
            json!({ "b": s.broadcast }),
        )
        .await;
    assert_eq!(d["studioBroadcast"]["status"], "SCHEDULED");
    let keys =
        s.h.state
            .store()
            .list_stream_keys(&s.channel)
            .await
            .expect("keys");
    assert!(
        keys.iter().all(|k| k.revoked_at.is_some()),
        "the unused key is revoked"
    );
}

#[tokio::test]
async fn participant_keys_publish_until_removed_or_ended() {
    let s = studio().await;
    let g = s.join(&s.invite().await, "Ada").await;
    let g2 = s.join(&s.invite().await, "Bob").await;
    let key_of = |g: &Value| -> String {
        // TestIssuer keys are `sk_<stream>_<n>_secret` for key id `key-<n>`.
        let k = g["publishKey"].as_str().expect("key");
        let n = k.trim_end_matches("_secret").rsplit('_').next().expect("n");
        format!("key-{n}")
    };
    let (k1, k2) = (key_of(&g), key_of(&g2));
    let st = &s.h.state;
    assert_eq!(
        st.studio_publish("key-999").await.expect("ok"),
        None,
        "not a studio key"
    );
    assert_eq!(
        st.studio_publish(&k1).await.expect("ok"),
        Some(StudioPublish::Allowed {
            stream: g["participant"]["stream"].as_str().expect("s").to_string(),
            participant_id: g["participant"]["id"].as_str().expect("id").to_string(),
            record: true,
        })
    );
    s.host(
        "mutation($p: ID!) { removeParticipant(participantId: $p) { id } }",
        json!({ "p": g["participant"]["id"] }),
    )
    .await;
    assert!(matches!(
        st.studio_publish(&k1).await.expect("ok"),
        Some(StudioPublish::Refused(_))
    ));
    assert!(
        st.is_stream_key_revoked(&k1).await.expect("ok"),
        "on the revocation list too"
    );
    assert!(s.h.issuer.revoked.lock().contains(&k1));
    assert!(matches!(
        st.studio_publish(&k2).await.expect("ok"),
        Some(StudioPublish::Allowed { .. })
    ));
    s.host(
        "mutation($b: ID!) { endBroadcast(broadcastId: $b) { id } }",
        json!({ "b": s.broadcast }),
    )
    .await;
    assert_eq!(
        st.studio_publish(&k2).await.expect("ok"),
        Some(StudioPublish::Refused("the participant left the studio"))
    );
}
