//! Studio mutations: broadcasts, invitations, joining.

use async_graphql::{Context, ID, InputObject, MaybeUndefined, Object};
use weir_store::{
    BroadcastPatch, BroadcastStatus, NewBroadcast, NewParticipant, ParticipantRole, ids,
    studio::short_id,
};

use crate::ctx::state;
use crate::error::{ApiError, ApiResult, code, gql};
use crate::state::ApiState;

use super::access::{host, host_of_channel};
use super::events::StudioEventKind;
use super::token::{self, Kind, TokenError};
use super::types::{Invitation, InvitationLink, StudioBroadcast, StudioJoin};
use super::{INVITATION_TTL_SECS, MAX_INVITATION_TTL_SECS, PARTICIPANT_TTL_SECS};

#[derive(Default)]
pub(crate) struct StudioMutations;

/// A new studio broadcast.
#[derive(InputObject, Debug)]
pub struct StudioBroadcastInput {
    /// Title (1–200 characters).
    pub title: String,
    /// Description (≤ 5000 characters).
    pub description: Option<String>,
    /// Planned start (Unix ms); absent: now.
    pub scheduled_at: Option<i64>,
    /// Record each participant's own stream (isolated tracks).
    pub record_isolated_tracks: Option<bool>,
}

/// Changes to a broadcast; absent fields stay, `scheduledAt: null` clears it.
#[derive(InputObject, Debug, Default)]
pub struct StudioBroadcastUpdate {
    /// Title.
    pub title: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Planned start.
    pub scheduled_at: MaybeUndefined<i64>,
    /// Record isolated tracks (from the next participant's publish on).
    pub record_isolated_tracks: Option<bool>,
}

/// Makes a participant with its own node stream and publish key.
pub(crate) async fn join(
    st: &ApiState,
    b: &weir_store::StudioBroadcast,
    role: ParticipantRole,
    display_name: String,
    user_id: Option<String>,
) -> ApiResult<StudioJoin> {
    if b.status == BroadcastStatus::Ended {
        return Err(ApiError::new(code::CONFLICT, "the broadcast has ended").into());
    }
    let id = ids::new_id();
    let stream = format!("studio-{}-{}", short_id(&b.id), short_id(&id));
    let (key_id, publish_key) = st.inner.issuer.issue(&stream);
    let p = st
        .store()
        .add_participant(NewParticipant {
            id,
            broadcast_id: b.id.clone(),
            role,
            display_name,
            user_id,
            stream,
            key_id,
        })
        .await
        .map_err(gql)?;
    let expires_at = token::now_secs() + PARTICIPANT_TTL_SECS;
    let participant_token = token::sign(st.auth(), Kind::Participant, &p.id, &b.id, expires_at);
    tracing::info!(broadcast_id = %b.id, participant_id = %p.id, role = ?p.role, "participant joined the studio");
    st.studio_event(StudioEventKind::ParticipantJoined, b, Some(&p));
    Ok(StudioJoin {
        whip_path: format!("/whip/{publish_key}"),
        publish_key,
        participant_token,
        expires_at: i64::try_from(expires_at.saturating_mul(1000)).unwrap_or(i64::MAX),
        participant: p.into(),
        broadcast: StudioBroadcast::new(b.clone(), role == ParticipantRole::Host),
    })
}

#[Object]
impl StudioMutations {
    /// Creates a studio broadcast on a channel (status `SCHEDULED`).
    async fn create_studio_broadcast(
        &self,
        ctx: &Context<'_>,
        channel_id: ID,
        input: StudioBroadcastInput,
    ) -> ApiResult<StudioBroadcast> {
        let who = host_of_channel(ctx, &channel_id).await?;
        let b = state(ctx)
            .store()
            .create_studio_broadcast(NewBroadcast {
                channel_id: channel_id.to_string(),
                owner_id: who.user_id.clone(),
                title: input.title,
                description: input.description.unwrap_or_default(),
                scheduled_at: input.scheduled_at,
                record_isolated: input.record_isolated_tracks.unwrap_or(false),
            })
            .await
            .map_err(gql)?;
        tracing::info!(broadcast_id = %b.id, channel_id = %b.channel_id, "studio broadcast created");
        Ok(StudioBroadcast::new(b, true))
    }

    /// Changes a broadcast's title, description, schedule or isolated recording.
    async fn update_studio_broadcast(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: StudioBroadcastUpdate,
    ) -> ApiResult<StudioBroadcast> {
        host(ctx, &id, "change the broadcast").await?;
        let st = state(ctx);
        let scheduled_at = match input.scheduled_at {
            MaybeUndefined::Undefined => None,
            MaybeUndefined::Null => Some(None),
            MaybeUndefined::Value(v) => Some(Some(v)),
        };
        let b = st
            .store()
            .update_studio_broadcast(
                &id,
                BroadcastPatch {
                    title: input.title,
                    description: input.description,
                    scheduled_at,
                    record_isolated: input.record_isolated_tracks,
                },
            )
            .await
            .map_err(gql)?;
        st.studio_event(StudioEventKind::BroadcastChanged, &b, None);
        Ok(StudioBroadcast::new(b, true))
    }

    /// Deletes a broadcast that is not live (end it first), with its participants and
    /// invitations; their keys are revoked.
    async fn delete_studio_broadcast(&self, ctx: &Context<'_>, id: ID) -> ApiResult<bool> {
        let (b, _) = host(ctx, &id, "delete the broadcast").await?;
        if b.status == BroadcastStatus::Live {
            return Err(ApiError::new(
                code::CONFLICT,
                "the broadcast is live: end it before deleting it",
            )
            .into());
        }
        let st = state(ctx);
        if b.status == BroadcastStatus::Scheduled {
            st.finish(&b).await?;
        }
        for p in st.store().list_participants(&id).await.map_err(gql)? {
            st.inner.issuer.revoke(&p.key_id);
        }
        let deleted = st.store().delete_studio_broadcast(&id).await.map_err(gql)?;
        st.studio_event(StudioEventKind::BroadcastDeleted, &b, None);
        Ok(deleted)
    }

    /// Invites a guest: a signed token valid for `ttlSeconds` (default a day, at most 30
    /// days) until revoked, and the studio page path that carries it.
    async fn invite_guest(
        &self,
        ctx: &Context<'_>,
        broadcast_id: ID,
        ttl_seconds: Option<i32>,
    ) -> ApiResult<InvitationLink> {
        let (b, who) = host(ctx, &broadcast_id, "invite guests").await?;
        let ttl = match ttl_seconds {
            None => INVITATION_TTL_SECS,
            Some(t) if t >= 1 && (t as u64) <= MAX_INVITATION_TTL_SECS => t as u64,
            Some(_) => {
                return Err(ApiError::bad_input(format!(
                    "ttlSeconds must be within 1-{MAX_INVITATION_TTL_SECS}"
                ))
                .into());
            }
        };
        let st = state(ctx);
        let expires = token::now_secs() + ttl;
        let inv = st
            .store()
            .create_invitation(
                &b.id,
                &who.user_id,
                i64::try_from(expires * 1000).unwrap_or(i64::MAX),
            )
            .await
            .map_err(gql)?;
        let token = token::sign(st.auth(), Kind::Invitation, &b.id, &inv.id, expires);
        Ok(InvitationLink {
            path: format!("/web/studio.html?invite={token}"),
            token,
            invitation: inv.into(),
        })
    }

    /// Revokes an invitation: its token admits nobody any more (guests who joined with
    /// it stay).
    async fn revoke_invitation(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Invitation> {
        let st = state(ctx);
        let inv = st
            .store()
            .get_invitation(&id)
            .await
            .map_err(gql)?
            .ok_or_else(|| ApiError::not_found("invitation"))?;
        host(ctx, &inv.broadcast_id, "revoke invitations").await?;
        Ok(st.store().revoke_invitation(&id).await.map_err(gql)?.into())
    }

    /// Joins a studio with an invitation, no account needed: the guest waits backstage.
    /// Returns the participant token and where to publish.
    async fn join_studio(
        &self,
        ctx: &Context<'_>,
        invitation: String,
        display_name: String,
    ) -> ApiResult<StudioJoin> {
        let st = state(ctx);
        let v = token::verify(st.auth(), Kind::Invitation, &invitation, token::now_secs())
            .map_err(|e| match e {
                TokenError::Malformed => {
                    ApiError::bad_input("this is not an invitation token (malformed)")
                }
                TokenError::BadSignature => ApiError::new(
                    code::UNAUTHENTICATED,
                    "invitation is not valid: its signature does not match (forged or altered)",
                ),
                TokenError::Expired => ApiError::new(
                    code::UNAUTHENTICATED,
                    "invitation has expired: ask the host for a new one",
                ),
            })?;
        let inv = st
            .store()
            .get_invitation(&v.b)
            .await
            .map_err(gql)?
            .filter(|i| i.broadcast_id == v.a)
            .ok_or_else(|| {
                ApiError::new(
                    code::UNAUTHENTICATED,
                    "invitation is not valid (no longer known)",
                )
            })?;
        if inv.revoked_at.is_some() {
            return Err(
                ApiError::new(code::FORBIDDEN, "invitation was revoked by the host").into(),
            );
        }
        let b = super::access::load(st, &inv.broadcast_id).await?;
        let joined = join(st, &b, ParticipantRole::Guest, display_name, None).await?;
        st.store().note_invitation_use(&inv.id).await.map_err(gql)?;
        Ok(joined)
    }

    /// The host joins the studio as a participant (camera and microphone like a
    /// guest's); the display name defaults to the username.
    async fn join_studio_as_host(
        &self,
        ctx: &Context<'_>,
        broadcast_id: ID,
        display_name: Option<String>,
    ) -> ApiResult<StudioJoin> {
        let (b, who) = host(ctx, &broadcast_id, "join as the host").await?;
        let name = display_name.unwrap_or_else(|| who.username.clone());
        join(
            state(ctx),
            &b,
            ParticipantRole::Host,
            name,
            Some(who.user_id.clone()),
        )
        .await
    }
}
