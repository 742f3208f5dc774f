//! The studio's part of the conformance suite: broadcasts, participants and their keys,
//! invitations, images (chunked bytes come back whole).

use crate::error::StoreError;
use crate::ids::new_id;
use crate::store::Store;
use crate::studio::image::png_header;
use crate::studio::{
    BroadcastPatch, BroadcastStatus, IMAGE_CHUNK, MAX_PRESENT, MediaPatch, NewBroadcast,
    NewParticipant, OverlayPatch, ParticipantRole, Stage, StudioBanner, StudioLayout, UploadError,
};

fn joiner(b: &str, name: &str) -> NewParticipant {
    let id = new_id();
    NewParticipant {
        stream: format!(
            "studio-{}-{}",
            crate::studio::short_id(b),
            crate::studio::short_id(&id)
        ),
        key_id: format!("k{}", &id[12..]),
        id,
        broadcast_id: b.to_string(),
        role: ParticipantRole::Guest,
        display_name: name.to_string(),
        user_id: None,
    }
}

pub(super) async fn run(store: &Store, ch: &str, owner: &str) {
    // Broadcasts.
    let b = store
        .create_studio_broadcast(NewBroadcast {
            channel_id: ch.to_string(),
            owner_id: owner.to_string(),
            title: "Show".into(),
            description: "d".into(),
            scheduled_at: Some(1),
            record_isolated: true,
        })
        .await
        .unwrap();
    assert_eq!(b.status, BroadcastStatus::Scheduled);
    assert!(b.program_stream().starts_with("studio-") && b.program_stream().ends_with("-pgm"));
    let missing = store
        .create_studio_broadcast(NewBroadcast {
            channel_id: "no-such-channel".into(),
            owner_id: owner.to_string(),
            title: "x".into(),
            ..NewBroadcast::default()
        })
        .await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "{missing:?}"
    );
    let long = store
        .update_studio_broadcast(
            &b.id,
            BroadcastPatch {
                title: Some("t".repeat(201)),
                ..BroadcastPatch::default()
            },
        )
        .await;
    assert!(matches!(long, Err(StoreError::Invalid(_))));
    let b2 = store
        .update_studio_broadcast(
            &b.id,
            BroadcastPatch {
                title: Some("Renamed".into()),
                scheduled_at: Some(None),
                ..BroadcastPatch::default()
            },
        )
        .await
        .unwrap();
    assert_eq!((b2.title.as_str(), b2.scheduled_at), ("Renamed", None));
    assert_eq!(store.list_studio_broadcasts(ch).await.unwrap()[0].id, b.id);

    // Participants and keys.
    let g = store
        .add_participant(joiner(&b.id, "Guest One"))
        .await
        .unwrap();
    assert_eq!(g.stage, Stage::Backstage);
    assert!(g.audio_enabled && g.video_enabled && g.present());
    let key = store.studio_key(&g.key_id).await.unwrap().unwrap();
    assert_eq!(
        (key.participant_id.as_str(), key.broadcast_id.as_str()),
        (g.id.as_str(), b.id.as_str())
    );
    assert!(
        store
            .studio_key("not-a-studio-key")
            .await
            .unwrap()
            .is_none()
    );
    let bad = store.add_participant(joiner(&b.id, "   ")).await;
    assert!(matches!(bad, Err(StoreError::Invalid(_))));
    let on = store
        .set_participant_stage(&g.id, Stage::OnStage)
        .await
        .unwrap();
    assert!(on.stage == Stage::OnStage && on.stage_order > 0);
    // The host mutes; the guest cannot unmute, but may turn the camera off and on.
    let muted = store
        .set_participant_media(
            &g.id,
            MediaPatch {
                audio: Some(false),
                ..MediaPatch::default()
            },
            true,
        )
        .await
        .unwrap();
    assert!(!muted.audio_enabled && muted.audio_locked);
    let unmute = store
        .set_participant_media(
            &g.id,
            MediaPatch {
                audio: Some(true),
                ..MediaPatch::default()
            },
            false,
        )
        .await;
    assert!(matches!(unmute, Err(StoreError::Conflict(_))), "{unmute:?}");
    let cam = store
        .set_participant_media(
            &g.id,
            MediaPatch {
                video: Some(false),
                ..MediaPatch::default()
            },
            false,
        )
        .await
        .unwrap();
    assert!(!cam.video_enabled && !cam.video_locked);
    let gain = store
        .set_participant_media(
            &g.id,
            MediaPatch {
                gain: Some(1.5),
                ..MediaPatch::default()
            },
            false,
        )
        .await;
    assert!(matches!(gain, Err(StoreError::Invalid(_))));
    let gain = store
        .set_participant_media(
            &g.id,
            MediaPatch {
                gain: Some(3.0),
                ..MediaPatch::default()
            },
            true,
        )
        .await;
    assert!(matches!(gain, Err(StoreError::Invalid(_))));

    // Scene settings.
    let l = store
        .set_studio_layout(&b.id, StudioLayout::Spotlight, Some(g.id.clone()), 500)
        .await
        .unwrap();
    assert_eq!(
        (l.layout, l.spotlight.as_deref(), l.transition_ms),
        (StudioLayout::Spotlight, Some(g.id.as_str()), 500)
    );
    let stranger = store
        .set_studio_layout(&b.id, StudioLayout::Solo, Some("nobody".into()), 0)
        .await;
    assert!(matches!(stranger, Err(StoreError::Invalid(_))));
    let banner = StudioBanner {
        title: "Guest One".into(),
        subtitle: "Speaker".into(),
        chat_message_id: None,
    };
    let bn = store
        .set_studio_banner(&b.id, Some(banner.clone()))
        .await
        .unwrap();
    assert_eq!(bn.banner, Some(banner));

    // Images: checked, content-addressed, chunked.
    let mut png = png_header(64, 32);
    png.resize(IMAGE_CHUNK * 2 + 17, 7);
    let img = store.put_studio_image(ch, &png, "image/png").await.unwrap();
    assert_eq!(
        (img.width, img.height, img.size),
        (64, 32, png.len() as u64)
    );
    assert_eq!(img.id.len(), 64);
    assert_eq!(
        store.studio_image_data(ch, &img.id).await.unwrap().unwrap(),
        png
    );
    let again = store.put_studio_image(ch, &png, "image/png").await.unwrap();
    assert_eq!(again, img, "the same bytes are the same image");
    let not = store.put_studio_image(ch, b"hello", "image/png").await;
    assert!(matches!(not, Err(UploadError::Image(_))));
    let ov = store
        .set_studio_overlays(
            &b.id,
            OverlayPatch {
                background: Some(Some(img.id.clone())),
                ..OverlayPatch::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(ov.background_image.as_deref(), Some(img.id.as_str()));
    let unknown = store
        .set_studio_overlays(
            &b.id,
            OverlayPatch {
                logo: Some(Some("ab".repeat(32))),
                ..OverlayPatch::default()
            },
        )
        .await;
    assert!(matches!(unknown, Err(StoreError::Invalid(_))));

    // Invitations.
    let inv = store.create_invitation(&b.id, owner, 99).await.unwrap();
    assert_eq!(
        store
            .get_invitation(&inv.id)
            .await
            .unwrap()
            .unwrap()
            .expires_at,
        99
    );
    assert_eq!(store.note_invitation_use(&inv.id).await.unwrap().uses, 1);
    assert!(
        store
            .revoke_invitation(&inv.id)
            .await
            .unwrap()
            .revoked_at
            .is_some()
    );
    assert_eq!(store.list_invitations(&b.id).await.unwrap().len(), 1);

    // The studio is bounded.
    let mut extra = Vec::new();
    for i in 1..MAX_PRESENT {
        extra.push(
            store
                .add_participant(joiner(&b.id, &format!("g{i}")))
                .await
                .unwrap(),
        );
    }
    let full = store.add_participant(joiner(&b.id, "one too many")).await;
    assert!(matches!(full, Err(StoreError::Conflict(_))), "{full:?}");

    // Leaving revokes the key; a participant who left cannot be changed.
    let left = store.remove_participant(&g.id).await.unwrap();
    assert!(!left.present() && left.stage == Stage::Backstage);
    assert!(store.is_stream_key_revoked(&g.key_id).await.unwrap());
    let late = store.set_participant_stage(&g.id, Stage::OnStage).await;
    assert!(matches!(late, Err(StoreError::Conflict(_))));

    // Live, then ended: everyone leaves, nothing changes any more.
    let live = store.studio_go_live(&b.id, "live-key").await.unwrap();
    assert!(live.status == BroadcastStatus::Live && live.started_at.is_some());
    assert!(matches!(
        store.studio_go_live(&b.id, "k").await,
        Err(StoreError::Conflict(_))
    ));
    let ended = store.studio_end(&b.id).await.unwrap();
    assert!(ended.status == BroadcastStatus::Ended && ended.ended_at.is_some());
    for p in store.list_participants(&b.id).await.unwrap() {
        assert!(!p.present());
        assert!(store.is_stream_key_revoked(&p.key_id).await.unwrap());
    }
    assert!(matches!(
        store.add_participant(joiner(&b.id, "late")).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store
            .set_studio_layout(&b.id, StudioLayout::Grid, None, 0)
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store.create_invitation(&b.id, owner, 1).await,
        Err(StoreError::Conflict(_))
    ));

    // Delete cascades.
    assert!(store.delete_studio_broadcast(&b.id).await.unwrap());
    assert!(store.get_studio_broadcast(&b.id).await.unwrap().is_none());
    assert!(store.get_participant(&extra[0].id).await.unwrap().is_none());
    assert!(store.get_invitation(&inv.id).await.unwrap().is_none());
    assert!(!store.delete_studio_broadcast(&b.id).await.unwrap());
    assert!(store.delete_studio_image(ch, &img.id).await.unwrap());
    assert!(
        store
            .studio_image_data(ch, &img.id)
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.list_studio_images(ch).await.unwrap().is_empty());
}
