//! The conformance suite every backend must pass. Backend tests build a [`Store`] over
//! their backend and call [`run`]; it panics with a message on the first failure.
//! Each run uses fresh random names, so it can run against a shared server.

#![allow(clippy::unwrap_used)]

mod kv;
mod studio;

use std::time::Duration;

use crate::error::StoreError;
use crate::model::{
    Access, Clip, ClipStatus, Node, NodeLoad, Recording, RelayStatus, Rendition, Role, StreamState,
    TranscoderRung, TranscoderStatus,
};
use crate::store::Store;
use crate::tokens::Consume;
use crate::{DestinationPatch, ids};

/// Runs every check against `store`.
pub async fn run(store: &Store) {
    kv::contract(store).await;
    kv::batches_and_ranges(store).await;
    users(store).await;
    tokens(store).await;
    token_expiry(store).await;
    let owner = store
        .create_user(
            &uniq("own"),
            &format!("{}@example.com", uniq("o")),
            "h",
            Role::Owner,
        )
        .await
        .unwrap();
    channels(store, &owner.id).await;
    let ch = store
        .create_channel(&owner.id, &uniq("ch"), "T", "")
        .await
        .unwrap();
    keys(store, &ch.id).await;
    streams(store, &ch.id).await;
    destinations(store, &ch.id).await;
    recordings(store, &ch.id).await;
    entitlements(store, &ch.id).await;
    follows(store, &ch.id).await;
    studio::run(store, &ch.id, &owner.id).await;
    nodes(store).await;
    heartbeats_renew_a_node(store).await;
    tracing::info!(backend = store.kv().backend(), "conformance suite passed");
}

fn uniq(prefix: &str) -> String {
    format!("{prefix}{}", &ids::new_id()[12..])
}

async fn users(store: &Store) {
    let name = uniq("user");
    let email = format!("{name}@Example.com");
    let u = store
        .create_user(&name, &email, "hash", Role::Owner)
        .await
        .unwrap();
    assert_eq!(u.email, email.to_ascii_lowercase());
    let dup = store
        .create_user(&name, "other@example.com", "h", Role::Owner)
        .await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
    let dup = store
        .create_user(&uniq("x"), &email, "h", Role::Owner)
        .await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
    assert!(matches!(
        store
            .create_user("a/b", "z@example.com", "h", Role::Owner)
            .await,
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(
        store.find_user_by_login(&name).await.unwrap().unwrap().id,
        u.id
    );
    assert_eq!(
        store.find_user_by_login(&email).await.unwrap().unwrap().id,
        u.id
    );
    assert!(
        store
            .find_user_by_login("nobody-here")
            .await
            .unwrap()
            .is_none()
    );
    let u2 = store.set_user_role(&u.id, Role::Admin).await.unwrap();
    assert_eq!(u2.role, Role::Admin);
    assert!(store.set_user_disabled(&u.id, true).await.unwrap().disabled);
    assert!(store.get_user(&u.id).await.unwrap().unwrap().disabled);
    assert!(
        store
            .list_users()
            .await
            .unwrap()
            .iter()
            .any(|x| x.id == u.id)
    );
    assert!(store.get_user("../etc").await.unwrap().is_none());
}

async fn tokens(store: &Store) {
    let t = crate::RefreshToken {
        token_hash: uniq("hash"),
        user_id: "u1".into(),
        family_id: uniq("fam"),
        expires_at: ids::now_ms() + 60_000,
        used: false,
        created_at: ids::now_ms(),
    };
    store.put_refresh_token(&t).await.unwrap();
    assert!(matches!(
        store.consume_refresh_token(&t.token_hash).await.unwrap(),
        Consume::Consumed(_)
    ));
    assert!(matches!(
        store.consume_refresh_token(&t.token_hash).await.unwrap(),
        Consume::Replayed(_)
    ));
    assert_eq!(
        store.consume_refresh_token("nope").await.unwrap(),
        Consume::Unknown
    );
    assert!(!store.is_token_family_revoked(&t.family_id).await.unwrap());
    store
        .revoke_token_family(&t.family_id, Duration::from_secs(60))
        .await
        .unwrap();
    assert!(store.is_token_family_revoked(&t.family_id).await.unwrap());
    assert!(store.delete_refresh_token(&t.token_hash).await.unwrap());
}

/// Waits (up to 10 s) until `cond` holds.
async fn eventually<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..40 {
        if cond().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("{what}: not within 10 s");
}

/// Refresh tokens, spent ones included, and revoked families vanish from the backend
/// after their lifetime.
async fn token_expiry(store: &Store) {
    let fresh = crate::RefreshToken {
        token_hash: uniq("short"),
        user_id: "u1".into(),
        family_id: uniq("fam"),
        expires_at: ids::now_ms() + 1500,
        used: false,
        created_at: ids::now_ms(),
    };
    let spent = crate::RefreshToken {
        token_hash: uniq("spent"),
        ..fresh.clone()
    };
    store.put_refresh_token(&fresh).await.unwrap();
    store.put_refresh_token(&spent).await.unwrap();
    // Spending a token must keep its expiry (a compare-and-swap without TTL would not).
    assert!(matches!(
        store
            .consume_refresh_token(&spent.token_hash)
            .await
            .unwrap(),
        Consume::Consumed(_)
    ));
    store
        .revoke_token_family(&fresh.family_id, Duration::from_secs(1))
        .await
        .unwrap();
    assert!(
        store
            .is_token_family_revoked(&fresh.family_id)
            .await
            .unwrap()
    );
    let kv = store.kv();
    eventually("expired refresh tokens leave the backend", || async {
        kv.get("refresh-tokens", &fresh.token_hash)
            .await
            .unwrap()
            .is_none()
            && kv
                .get("refresh-tokens", &spent.token_hash)
                .await
                .unwrap()
                .is_none()
    })
    .await;
    eventually(
        "an expired family revocation leaves the backend",
        || async {
            kv.get("revoked-families", &fresh.family_id)
                .await
                .unwrap()
                .is_none()
        },
    )
    .await;
    assert!(
        !store
            .is_token_family_revoked(&fresh.family_id)
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .consume_refresh_token(&spent.token_hash)
            .await
            .unwrap(),
        Consume::Unknown,
        "an expired spent token is forgotten, not a replay"
    );
    assert!(
        store
            .get_refresh_token(&fresh.token_hash)
            .await
            .unwrap()
            .is_none()
    );
    // Whatever the backend still holds of them is deleted by a purge.
    store.purge_expired().await.unwrap();
    // A record whose expiry passed is ignored even if the backend still has it.
    let stale = crate::RefreshToken {
        token_hash: uniq("stale"),
        expires_at: ids::now_ms() - 1,
        ..fresh.clone()
    };
    store.put_refresh_token(&stale).await.unwrap();
    assert!(
        store
            .get_refresh_token(&stale.token_hash)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store
            .consume_refresh_token(&stale.token_hash)
            .await
            .unwrap(),
        Consume::Unknown
    );
}

/// A node heartbeating faster than its TTL stays registered past the TTL, then vanishes
/// once the heartbeats stop.
async fn heartbeats_renew_a_node(store: &Store) {
    let id = uniq("beat");
    let node = Node {
        id: id.clone(),
        address: "10.0.0.2:8080".into(),
        shards: 1,
        version: "0.1.0".into(),
        load: NodeLoad::default(),
        last_seen: 0,
        studio_url: None,
    };
    let ttl = Duration::from_secs(2);
    for _ in 0..8 {
        store.register_node(node.clone(), ttl).await.unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        store.get_node(&id).await.unwrap().is_some(),
        "4 s of heartbeats keep a 2 s lease alive"
    );
    eventually("a node without heartbeats expires", || async {
        store.get_node(&id).await.unwrap().is_none()
    })
    .await;
}

async fn channels(store: &Store, owner: &str) {
    let slug = uniq("slug");
    let c = store
        .create_channel(owner, &slug, "Title", "Desc")
        .await
        .unwrap();
    assert!(matches!(
        store.create_channel(owner, &slug, "x", "").await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store.create_channel(owner, "no", "x", "").await,
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(
        store.channel_by_slug(&slug).await.unwrap().unwrap().id,
        c.id
    );
    let c2 = store
        .update_channel(&c.id, Some("New"), None)
        .await
        .unwrap();
    assert_eq!(
        (c2.title.as_str(), c2.description.as_str()),
        ("New", "Desc")
    );
    assert!(
        store
            .channels_owned_by(owner)
            .await
            .unwrap()
            .iter()
            .any(|x| x.id == c.id)
    );
    let c3 = store
        .set_channel_member(&c.id, "mod1", Role::Moderator)
        .await
        .unwrap();
    assert_eq!(c3.member_role("mod1"), Some(Role::Moderator));
    assert_eq!(c3.member_role(owner), Some(Role::Owner));
    assert!(
        store
            .set_channel_member(&c.id, "x", Role::Admin)
            .await
            .is_err()
    );
    assert_eq!(store.channels_with_member("mod1").await.unwrap().len(), 1);
    store.remove_channel_member(&c.id, "mod1").await.unwrap();
    assert!(store.channels_with_member("mod1").await.unwrap().is_empty());
    store.record_stream_key(&c.id, &uniq("k")).await.unwrap();
    store
        .create_destination(&c.id, "yt", "youtube", "rtmp://a/b", "s")
        .await
        .unwrap();
    assert!(store.delete_channel(&c.id).await.unwrap());
    assert!(store.get_channel(&c.id).await.unwrap().is_none());
    assert!(store.channel_by_slug(&slug).await.unwrap().is_none());
    assert!(store.list_destinations(&c.id).await.unwrap().is_empty());
    assert!(
        store
            .list_stream_keys(&c.id)
            .await
            .unwrap()
            .iter()
            .all(|k| k.revoked_at.is_some())
    );
    assert!(
        !store
            .channels_owned_by(owner)
            .await
            .unwrap()
            .iter()
            .any(|x| x.id == c.id)
    );
    assert!(!store.delete_channel(&c.id).await.unwrap());
    // The slug is free again.
    store
        .create_channel(owner, &slug, "again", "")
        .await
        .unwrap();
}

async fn keys(store: &Store, ch: &str) {
    let k = uniq("key");
    store.record_stream_key(ch, &k).await.unwrap();
    assert!(!store.is_stream_key_revoked(&k).await.unwrap());
    let m = store.revoke_stream_key(&k).await.unwrap();
    assert!(m.revoked_at.is_some());
    assert!(store.is_stream_key_revoked(&k).await.unwrap());
    assert!(
        store
            .list_revocations()
            .await
            .unwrap()
            .iter()
            .any(|r| r.key_id == k)
    );
    assert_eq!(store.list_stream_keys(ch).await.unwrap().len(), 1);
    assert!(store.revoke_stream_key("missing").await.is_err());
}

async fn streams(store: &Store, ch: &str) {
    assert!(store.active_stream(ch).await.unwrap().is_none());
    let s = store.start_stream(ch, "rtmp", Some("node1")).await.unwrap();
    assert_eq!(s.state, StreamState::Starting);
    assert_eq!(store.active_stream(ch).await.unwrap().unwrap().id, s.id);
    let s = store
        .set_stream_state(&s.id, StreamState::Live)
        .await
        .unwrap();
    assert!(s.live_at.is_some());
    let r = Rendition {
        name: "source".into(),
        width: 1280,
        height: 720,
        bitrate: 3_000_000,
    };
    store.set_stream_renditions(&s.id, vec![r]).await.unwrap();
    // A node's transcoder report is kept, cut to its bounds.
    let rung = TranscoderRung {
        name: "720p".into(),
        width: 1280,
        height: 720,
        bitrate: 3_000_000,
        passthrough: false,
        dropped: true,
    };
    let report = TranscoderStatus {
        encoder: Some("x264enc".into()),
        rungs: vec![rung; 40],
        dropped_rungs: 1,
        failure: Some("é".repeat(400)),
        updated_at: 1,
    };
    let t = store
        .set_stream_transcoder(&s.id, report)
        .await
        .unwrap()
        .transcoder
        .unwrap();
    assert_eq!(t.rungs.len(), TranscoderStatus::MAX_RUNGS);
    assert_eq!(t.failure.unwrap().len(), TranscoderStatus::MAX_TEXT);
    assert_eq!(t.encoder.as_deref(), Some("x264enc"));
    // Relay states, one entry per destination.
    let relay = |state: &str| RelayStatus {
        destination_id: "dest1".into(),
        state: state.into(),
        reason: None,
        bitrate: 0,
        updated_at: 0,
    };
    store
        .set_stream_relay(&s.id, relay("connecting"))
        .await
        .unwrap();
    let r = store.set_stream_relay(&s.id, relay("live")).await.unwrap();
    assert_eq!(r.relays.len(), 1);
    assert_eq!(r.relays[0].state, "live");
    assert!(matches!(
        store.set_stream_relay(&s.id, relay("dancing")).await,
        Err(StoreError::Invalid(_))
    ));
    // A batch: one write, the latest per destination, the cap leaves the rest out.
    let many: Vec<RelayStatus> = (0..RelayStatus::MAX_PER_STREAM + 2)
        .map(|i| RelayStatus {
            destination_id: format!("dest{i}"),
            bitrate: i as u64,
            ..relay("live")
        })
        .collect();
    let r = store
        .set_stream_relays(&s.id, many.clone(), false)
        .await
        .unwrap();
    assert_eq!(r.relays.len(), RelayStatus::MAX_PER_STREAM);
    assert_eq!(r.relays[2].bitrate, 2);
    assert!(matches!(
        store.set_stream_relays(&s.id, many, true).await,
        Err(StoreError::Invalid(_))
    ));
    let mut bad = vec![relay("stopped"), relay("dancing")];
    bad[0].destination_id = "dest3".into();
    assert!(matches!(
        store.set_stream_relays(&s.id, bad, false).await,
        Err(StoreError::Invalid(_))
    ));
    let r = store
        .set_stream_relays(&s.id, vec![relay("retrying"), relay("stopped")], false)
        .await
        .unwrap();
    assert_eq!(
        r.relays[0].state, "stopped",
        "the latest of a destination wins"
    );
    assert_eq!(r.relays[3].state, "live", "a refused batch wrote nothing");
    store.note_stream_viewers(&s.id, 5).await.unwrap();
    assert_eq!(
        store
            .note_stream_viewers(&s.id, 3)
            .await
            .unwrap()
            .peak_viewers,
        5
    );
    let s = store
        .set_stream_state(&s.id, StreamState::Ended)
        .await
        .unwrap();
    assert!(s.ended_at.is_some());
    assert!(matches!(
        store.set_stream_state(&s.id, StreamState::Live).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(store.active_stream(ch).await.unwrap().is_none());
    // A new session while one is active ends the stale one.
    let a = store.start_stream(ch, "srt", None).await.unwrap();
    let b = store.start_stream(ch, "rtmp", None).await.unwrap();
    assert_eq!(
        store.get_stream(&a.id).await.unwrap().unwrap().state,
        StreamState::Ended
    );
    let hist = store.list_streams(ch).await.unwrap();
    assert_eq!(hist.len(), 3);
    assert_eq!(hist[0].id, b.id, "history is newest first");
    assert_eq!(hist[0].renditions.len(), 0);
    assert_eq!(hist[2].renditions.len(), 1);
}

async fn destinations(store: &Store, ch: &str) {
    let secret = "live_secret_0123456789";
    let d = store
        .create_destination(
            ch,
            "YouTube",
            "youtube",
            "rtmp://a.rtmp.youtube.com/live2",
            secret,
        )
        .await
        .unwrap();
    assert!(!d.stream_key_sealed.contains(secret));
    // Nothing stored anywhere in the channel's bucket holds the plaintext.
    for (_, raw) in store
        .kv()
        .list(&format!("destinations/{ch}"))
        .await
        .unwrap()
    {
        assert!(!String::from_utf8_lossy(&raw).contains(secret));
    }
    assert_eq!(store.destination_stream_key(&d).unwrap(), secret);
    assert!(
        store
            .create_destination(ch, "x", "rtmp", "file:///etc", "k")
            .await
            .is_err()
    );
    let patch = DestinationPatch {
        stream_key: Some("new-key".into()),
        enabled: Some(false),
        ..Default::default()
    };
    let d2 = store.update_destination(&d.id, patch).await.unwrap();
    assert!(!d2.enabled);
    assert_eq!(store.destination_stream_key(&d2).unwrap(), "new-key");
    assert_eq!(store.list_destinations(ch).await.unwrap().len(), 1);
    assert!(store.delete_destination(&d.id).await.unwrap());
    assert!(store.get_destination(&d.id).await.unwrap().is_none());
}

async fn recordings(store: &Store, ch: &str) {
    let a = store
        .add_recording(ch, "s1", "/rec/a.mp4", 1000, 10)
        .await
        .unwrap();
    let b = store
        .add_recording(ch, "s2", "/rec/b.mp4", 2000, 20)
        .await
        .unwrap();
    let list = store.list_recordings(ch).await.unwrap();
    assert_eq!(
        list.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        [b.id.as_str(), a.id.as_str()]
    );
    assert_eq!(
        store.get_recording(&a.id).await.unwrap().unwrap().location,
        "/rec/a.mp4"
    );
    assert!(store.delete_recording(&a.id).await.unwrap());
    assert_eq!(store.list_recordings(ch).await.unwrap().len(), 1);
    // A node names its recordings, starts them and finishes them in place.
    let mut r = Recording {
        id: "019ae3f1c2d4a1b2c3d4".into(),
        channel_id: ch.into(),
        stream_id: "s3".into(),
        location: "/data/recordings/019ae3f1c2d4a1b2c3d4".into(),
        duration_ms: 0,
        size_bytes: 0,
        created_at: 5,
        playback_url: Some("http://n1:8080/vod/019ae3f1c2d4a1b2c3d4/index.m3u8".into()),
        segments: 0,
        ended_at: None,
        studio_participant_id: None,
    };
    store.put_recording(&r).await.unwrap();
    r.duration_ms = 12_000;
    r.segments = 6;
    r.ended_at = Some(9);
    store.put_recording(&r).await.unwrap();
    assert_eq!(store.get_recording(&r.id).await.unwrap(), Some(r.clone()));
    assert_eq!(store.list_recordings(ch).await.unwrap().len(), 2);
    assert!(store.delete_recording(&r.id).await.unwrap());
    clips(store, ch).await;
}

async fn clips(store: &Store, ch: &str) {
    let mut c = Clip {
        id: "0123456789abcdef".into(),
        recording_id: "rec1".into(),
        channel_id: ch.into(),
        title: Some("the goal".into()),
        start_ms: 1500,
        end_ms: 4000,
        status: ClipStatus::Pending,
        error: None,
        hls_url: None,
        mp4_url: None,
        duration_ms: None,
        created_at: 7,
    };
    store.put_clip(&c).await.unwrap();
    let other = Clip {
        id: "fedcba9876543210".into(),
        recording_id: "rec2".into(),
        ..c.clone()
    };
    store.put_clip(&other).await.unwrap();
    c.status = ClipStatus::Ready;
    c.duration_ms = Some(2500);
    store.put_clip(&c).await.unwrap();
    assert_eq!(store.get_clip(&c.id).await.unwrap(), Some(c.clone()));
    assert_eq!(store.list_clips(ch, "rec1").await.unwrap(), [c.clone()]);
    assert!(store.delete_clip(&c.id).await.unwrap());
    assert!(!store.delete_clip(&c.id).await.unwrap());
    assert_eq!(store.get_clip(&c.id).await.unwrap(), None);
    assert!(store.delete_clip(&other.id).await.unwrap());
}

async fn entitlements(store: &Store, ch: &str) {
    let e = store.get_entitlement(ch).await.unwrap();
    assert_eq!(e.access, Access::Public);
    let mut e2 = e.clone();
    e2.access = Access::SubscriberOnly;
    e2.signed_urls = true;
    e2.geo_allow = vec!["de".into()];
    store.set_entitlement(e2).await.unwrap();
    let e3 = store.get_entitlement(ch).await.unwrap();
    assert_eq!((e3.access, e3.signed_urls), (Access::SubscriberOnly, true));
    assert_eq!(e3.geo_allow, ["DE"]);
    let mut bad = e3.clone();
    bad.geo_allow = vec!["Germany".into()];
    assert!(store.set_entitlement(bad).await.is_err());
    assert!(!store.is_subscriber(ch, "u9").await.unwrap());
    store.add_subscriber(ch, "u9").await.unwrap();
    assert!(store.is_subscriber(ch, "u9").await.unwrap());
    assert!(store.remove_subscriber(ch, "u9").await.unwrap());
}

/// Follows: idempotent (the first date stays), counted, listed per user, ended.
async fn follows(store: &Store, ch: &str) {
    let (a, b) = (uniq("fa"), uniq("fb"));
    assert_eq!(store.follow_since(ch, &a).await.unwrap(), None);
    assert_eq!(store.follower_count(ch).await.unwrap(), 0);
    let since = store.follow(ch, &a).await.unwrap();
    assert_eq!(
        store.follow(ch, &a).await.unwrap(),
        since,
        "following again"
    );
    store.follow(ch, &b).await.unwrap();
    assert_eq!(store.follow_since(ch, &a).await.unwrap(), Some(since));
    assert_eq!(store.follower_count(ch).await.unwrap(), 2);
    let listed = store.followed_channels(&a).await.unwrap();
    assert_eq!(listed, vec![(ch.to_string(), since)]);
    assert!(store.unfollow(ch, &a).await.unwrap());
    assert!(!store.unfollow(ch, &a).await.unwrap(), "already ended");
    assert_eq!(store.follower_count(ch).await.unwrap(), 1);
    assert_eq!(store.follow_since(ch, &a).await.unwrap(), None);
    assert!(store.followed_channels(&a).await.unwrap().is_empty());
    assert!(store.follow("../x", &a).await.is_err());
    // A deleted channel takes its follows with it.
    let owner = store
        .create_user(
            &uniq("fo"),
            &format!("{}@example.com", uniq("f")),
            "h",
            Role::Owner,
        )
        .await
        .unwrap();
    let gone = store
        .create_channel(&owner.id, &uniq("fch"), "T", "")
        .await
        .unwrap();
    store.follow(&gone.id, &b).await.unwrap();
    assert!(store.delete_channel(&gone.id).await.unwrap());
    assert_eq!(store.follower_count(&gone.id).await.unwrap(), 0);
    assert!(
        !store
            .followed_channels(&b)
            .await
            .unwrap()
            .iter()
            .any(|(c, _)| c == &gone.id)
    );
}

async fn nodes(store: &Store) {
    let id = uniq("node");
    let node = Node {
        id: id.clone(),
        address: "10.0.0.1:8080".into(),
        shards: 4,
        version: "0.1.0".into(),
        load: NodeLoad {
            streams: 2,
            viewers: 10,
            cpu: 0.5,
            egress_bps: 1000,
        },
        last_seen: 0,
        studio_url: None,
    };
    store
        .register_node(node.clone(), Duration::from_secs(30))
        .await
        .unwrap();
    let got = store.get_node(&id).await.unwrap().unwrap();
    assert_eq!(got.load, node.load);
    assert!(got.last_seen > 0);
    assert!(store.list_nodes().await.unwrap().iter().any(|n| n.id == id));
    assert!(store.remove_node(&id).await.unwrap());
    assert!(store.get_node(&id).await.unwrap().is_none());
    let ch = uniq("vc");
    store
        .set_viewer_count(&ch, "n1", 3, Duration::from_secs(30))
        .await
        .unwrap();
    store
        .set_viewer_count(&ch, "n2", 4, Duration::from_secs(30))
        .await
        .unwrap();
    store
        .set_viewer_count(&ch, "n1", 5, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(store.viewer_count(&ch).await.unwrap(), 9);
}
