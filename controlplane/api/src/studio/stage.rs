//! The host's controls of the scene: stage, media, layout, overlays, banners; and the
//! participant's own camera, microphone and leaving.

use async_graphql::{Context, ID, MaybeUndefined, Object};
use weir_store::{MediaPatch, OverlayPatch, Participant, Stage, StudioBanner};

use crate::ctx::state;
use crate::error::{ApiError, ApiResult, code, gql};

use super::access::{guest, host, load};
use super::events::StudioEventKind;
use super::types::{self, StudioBroadcast, StudioLayout};

#[derive(Default)]
pub(crate) struct StageMutations;

/// Loads a participant; `NOT_FOUND` when absent.
async fn participant(ctx: &Context<'_>, id: &str) -> ApiResult<Participant> {
    state(ctx)
        .store()
        .get_participant(id)
        .await
        .map_err(gql)?
        .ok_or_else(|| ApiError::not_found("participant").into())
}

/// The participant's own token, or the host's rights: `Ok(true)` for the host.
async fn self_or_host(ctx: &Context<'_>, p: &Participant, action: &str) -> ApiResult<bool> {
    if let Some(g) = guest(ctx) {
        if g.participant_id == p.id {
            return Ok(false);
        }
        if g.broadcast_id != p.broadcast_id {
            return Err(ApiError::not_found("participant").into());
        }
        return Err(ApiError::new(
            code::FORBIDDEN,
            format!("only the host can {action} of another participant"),
        )
        .into());
    }
    host(ctx, &p.broadcast_id, action).await?;
    Ok(true)
}

async fn stage(ctx: &Context<'_>, id: &str, to: Stage) -> ApiResult<types::Participant> {
    let p = participant(ctx, id).await?;
    let action = match to {
        Stage::OnStage => "bring participants on stage",
        Stage::Backstage => "send participants backstage",
    };
    if guest(ctx).is_some_and(|g| g.broadcast_id != p.broadcast_id) {
        return Err(ApiError::not_found("participant").into());
    }
    host(ctx, &p.broadcast_id, action).await?;
    let st = state(ctx);
    let p = st
        .store()
        .set_participant_stage(id, to)
        .await
        .map_err(gql)?;
    let b = load(st, &p.broadcast_id).await?;
    st.studio_event(StudioEventKind::StageChanged, &b, Some(&p));
    st.recompose(&b).await;
    Ok(p.into())
}

#[Object]
impl StageMutations {
    /// Brings a participant on stage (last in stage order): into the program.
    async fn bring_on_stage(
        &self,
        ctx: &Context<'_>,
        participant_id: ID,
    ) -> ApiResult<types::Participant> {
        stage(ctx, &participant_id, Stage::OnStage).await
    }

    /// Sends a participant backstage: out of the program, still in the studio.
    async fn send_backstage(
        &self,
        ctx: &Context<'_>,
        participant_id: ID,
    ) -> ApiResult<types::Participant> {
        stage(ctx, &participant_id, Stage::Backstage).await
    }

    /// Removes a participant from the studio (a participant may remove itself: leave).
    /// Its publish key is refused from now on.
    async fn remove_participant(
        &self,
        ctx: &Context<'_>,
        participant_id: ID,
    ) -> ApiResult<types::Participant> {
        let p = participant(ctx, &participant_id).await?;
        self_or_host(ctx, &p, "remove participants").await?;
        let st = state(ctx);
        let was_on = p.present() && p.stage == Stage::OnStage;
        let p = st
            .store()
            .remove_participant(&participant_id)
            .await
            .map_err(gql)?;
        st.inner.issuer.revoke(&p.key_id);
        let b = load(st, &p.broadcast_id).await?;
        tracing::info!(broadcast_id = %b.id, participant_id = %p.id, "participant left the studio");
        st.studio_event(StudioEventKind::ParticipantLeft, &b, Some(&p));
        if was_on {
            st.recompose(&b).await;
        }
        Ok(p.into())
    }

    /// Turns a participant's microphone or camera on or off, or sets its gain (0.0–2.0).
    /// The host may do all of it (what the host turns off, only the host turns on); a
    /// participant may turn its own camera and microphone off and on.
    async fn set_participant_media(
        &self,
        ctx: &Context<'_>,
        participant_id: ID,
        audio_enabled: Option<bool>,
        video_enabled: Option<bool>,
        gain: Option<f64>,
    ) -> ApiResult<types::Participant> {
        let p = participant(ctx, &participant_id).await?;
        let by_host = self_or_host(ctx, &p, "change the camera or microphone").await?;
        if gain.is_some() && !by_host {
            return Err(
                ApiError::new(code::FORBIDDEN, "only the host sets a participant's gain").into(),
            );
        }
        let st = state(ctx);
        let patch = MediaPatch {
            audio: audio_enabled,
            video: video_enabled,
            gain: gain.map(|g| g as f32),
        };
        let p = st
            .store()
            .set_participant_media(&participant_id, patch, by_host)
            .await
            .map_err(|e| match e {
                weir_store::StoreError::Conflict(m) if !by_host => {
                    ApiError::new(code::FORBIDDEN, m).into()
                }
                e => gql(e),
            })?;
        let b = load(st, &p.broadcast_id).await?;
        st.studio_event(StudioEventKind::ParticipantChanged, &b, Some(&p));
        if p.stage == Stage::OnStage {
            st.recompose(&b).await;
        }
        Ok(p.into())
    }

    /// Sets the program's layout, the featured participant (solo, spotlight, sidebar,
    /// picture-in-picture main) and the transition length (0–5000 ms, default 300).
    async fn set_layout(
        &self,
        ctx: &Context<'_>,
        broadcast_id: ID,
        layout: StudioLayout,
        spotlight_participant_id: Option<ID>,
        transition_ms: Option<i32>,
    ) -> ApiResult<StudioBroadcast> {
        let (b, _) = host(ctx, &broadcast_id, "change the layout").await?;
        let transition = match transition_ms {
            None => b.transition_ms,
            Some(t) => u32::try_from(t)
                .map_err(|_| ApiError::bad_input("transitionMs must not be negative"))?,
        };
        let st = state(ctx);
        let b = st
            .store()
            .set_studio_layout(
                &b.id,
                layout.into(),
                spotlight_participant_id.map(|i| i.0),
                transition,
            )
            .await
            .map_err(gql)?;
        st.studio_event(StudioEventKind::LayoutChanged, &b, None);
        st.recompose(&b).await;
        Ok(StudioBroadcast::new(b, true))
    }

    /// Sets the background, logo and overlay (ids of images uploaded for the channel);
    /// an absent argument stays, `null` removes it.
    async fn set_overlays(
        &self,
        ctx: &Context<'_>,
        broadcast_id: ID,
        background_image_id: MaybeUndefined<ID>,
        logo_image_id: MaybeUndefined<ID>,
        overlay_image_id: MaybeUndefined<ID>,
    ) -> ApiResult<StudioBroadcast> {
        let (b, _) = host(ctx, &broadcast_id, "change the overlays").await?;
        let conv = |v: MaybeUndefined<ID>| match v {
            MaybeUndefined::Undefined => None,
            MaybeUndefined::Null => Some(None),
            MaybeUndefined::Value(i) => Some(Some(i.0)),
        };
        let st = state(ctx);
        let patch = OverlayPatch {
            background: conv(background_image_id),
            logo: conv(logo_image_id),
            overlay: conv(overlay_image_id),
        };
        let b = st
            .store()
            .set_studio_overlays(&b.id, patch)
            .await
            .map_err(gql)?;
        st.studio_event(StudioEventKind::OverlaysChanged, &b, None);
        st.recompose(&b).await;
        Ok(StudioBroadcast::new(b, true))
    }

    /// Shows a lower-third banner: `title` (and `subtitle`), or the chat message
    /// `chatMessageId` of the channel's chat (its author as the subtitle).
    async fn show_banner(
        &self,
        ctx: &Context<'_>,
        broadcast_id: ID,
        title: Option<String>,
        subtitle: Option<String>,
        chat_message_id: Option<i64>,
    ) -> ApiResult<StudioBroadcast> {
        let (b, _) = host(ctx, &broadcast_id, "show banners").await?;
        let st = state(ctx);
        let banner = match (chat_message_id, title) {
            (Some(_), Some(_)) => {
                return Err(
                    ApiError::bad_input("give a title or a chatMessageId, not both").into(),
                );
            }
            (None, None) => {
                return Err(ApiError::bad_input("give a title or a chatMessageId").into());
            }
            (None, Some(t)) => StudioBanner {
                title: t,
                subtitle: subtitle.unwrap_or_default(),
                chat_message_id: None,
            },
            (Some(id), None) => {
                let m = crate::chat::message_by_id(st, &b.channel_id, id).await?;
                StudioBanner {
                    title: m.text,
                    subtitle: subtitle.unwrap_or(m.user.name),
                    chat_message_id: Some(m.id),
                }
            }
        };
        let b = st
            .store()
            .set_studio_banner(&b.id, Some(banner))
            .await
            .map_err(gql)?;
        st.studio_event(StudioEventKind::BannerChanged, &b, None);
        st.recompose(&b).await;
        Ok(StudioBroadcast::new(b, true))
    }

    /// Hides the banner.
    async fn hide_banner(&self, ctx: &Context<'_>, broadcast_id: ID) -> ApiResult<StudioBroadcast> {
        let (b, _) = host(ctx, &broadcast_id, "hide banners").await?;
        let st = state(ctx);
        let b = st
            .store()
            .set_studio_banner(&b.id, None)
            .await
            .map_err(gql)?;
        st.studio_event(StudioEventKind::BannerChanged, &b, None);
        st.recompose(&b).await;
        Ok(StudioBroadcast::new(b, true))
    }
}
