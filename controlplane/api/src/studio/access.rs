//! Who acts in the studio: the host (an account) or a participant (a participant token).

use async_graphql::Context;
use weir_auth::{Denied, Permission, Principal, check_channel};
use weir_store::{BroadcastStatus, StudioBroadcast};

use crate::ctx::state;
use crate::error::{ApiError, ApiResult, code, gql};
use crate::state::ApiState;

use super::token::{self, Kind, TokenError};

/// A participant acting with its participant token (a guest without an account, or a
/// host who joined as a participant).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StudioGuest {
    /// The participant.
    pub participant_id: String,
    /// Its broadcast.
    pub broadcast_id: String,
    /// Token expiry (Unix seconds).
    pub expires_at: u64,
}

/// Verifies a participant token: signature, expiry, the participant still present and
/// its broadcast not ended.
pub(crate) async fn authenticate_participant(
    state: &ApiState,
    token: &str,
) -> Result<StudioGuest, ApiError> {
    let v =
        token::verify(state.auth(), Kind::Participant, token, token::now_secs()).map_err(|e| {
            ApiError::new(
                code::UNAUTHENTICATED,
                match e {
                    TokenError::Expired => "participant token expired: join again",
                    _ => "participant token is not valid",
                },
            )
        })?;
    let p = state
        .store()
        .get_participant(&v.a)
        .await?
        .filter(|p| p.broadcast_id == v.b)
        .ok_or_else(|| ApiError::new(code::UNAUTHENTICATED, "participant token is not valid"))?;
    if !p.present() {
        return Err(ApiError::new(
            code::UNAUTHENTICATED,
            "you left or were removed from this studio",
        ));
    }
    let ended = state
        .store()
        .get_studio_broadcast(&p.broadcast_id)
        .await?
        .is_none_or(|b| b.status == BroadcastStatus::Ended);
    if ended {
        return Err(ApiError::new(
            code::UNAUTHENTICATED,
            "the broadcast has ended",
        ));
    }
    Ok(StudioGuest {
        participant_id: p.id,
        broadcast_id: p.broadcast_id,
        expires_at: v.expires_at,
    })
}

/// The participant token's holder, if the caller sent one.
pub(crate) fn guest<'a>(ctx: &Context<'a>) -> Option<&'a StudioGuest> {
    ctx.data_opt::<StudioGuest>()
}

pub(crate) async fn load(st: &ApiState, id: &str) -> ApiResult<StudioBroadcast> {
    st.store()
        .get_studio_broadcast(id)
        .await
        .map_err(gql)?
        .ok_or_else(|| ApiError::not_found("studio broadcast").into())
}

fn channel_check(
    who: &Principal,
    ch: &weir_store::Channel,
    perm: Permission,
) -> Result<(), ApiError> {
    check_channel(who, ch, perm).map(drop).map_err(|d| match d {
        Denied::NotFound => ApiError::not_found("studio broadcast"),
        Denied::Forbidden => ApiError::new(
            code::FORBIDDEN,
            "only the channel's owner (or an admin) hosts its studio",
        ),
    })
}

/// Requires the host of broadcast `id` (an account with `ManageStudio` on its channel).
/// A participant token gets `FORBIDDEN` naming `action`.
pub(crate) async fn host<'a>(
    ctx: &Context<'a>,
    id: &str,
    action: &str,
) -> ApiResult<(StudioBroadcast, &'a Principal)> {
    let Some(who) = ctx.data_opt::<Principal>() else {
        if guest(ctx).is_some() {
            return Err(ApiError::new(
                code::FORBIDDEN,
                format!("only the host can {action}: a guest's participant token cannot"),
            )
            .into());
        }
        return Err(ApiError::unauthenticated().into());
    };
    let st = state(ctx);
    let b = load(st, id).await?;
    let ch = st
        .store()
        .get_channel(&b.channel_id)
        .await
        .map_err(gql)?
        .ok_or_else(|| ApiError::not_found("studio broadcast"))?;
    channel_check(who, &ch, Permission::ManageStudio)?;
    Ok((b, who))
}

/// Whether the caller may host a channel's studio (for creating broadcasts).
pub(crate) async fn host_of_channel<'a>(
    ctx: &Context<'a>,
    channel_id: &str,
) -> ApiResult<&'a Principal> {
    let Some(who) = ctx.data_opt::<Principal>() else {
        if guest(ctx).is_some() {
            return Err(ApiError::new(
                code::FORBIDDEN,
                "only the host can create broadcasts: a guest's participant token cannot",
            )
            .into());
        }
        return Err(ApiError::unauthenticated().into());
    };
    let ch = state(ctx)
        .store()
        .get_channel(channel_id)
        .await
        .map_err(gql)?
        .ok_or_else(|| ApiError::not_found("channel"))?;
    check_channel(who, &ch, Permission::ManageStudio).map_err(|d| match d {
        Denied::NotFound => gql(ApiError::not_found("channel")),
        Denied::Forbidden => gql(ApiError::new(
            code::FORBIDDEN,
            "only the channel's owner (or an admin) hosts its studio",
        )),
    })?;
    Ok(who)
}

/// Who reads a broadcast.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reader {
    /// May host it (sees invitations too).
    Host,
    /// A channel member who may only read.
    Member,
    /// A participant of this broadcast (its token).
    Participant,
}

/// Requires read access to broadcast `id`: `ReadStudio` on its channel, or a participant
/// token of this broadcast. Others get `NOT_FOUND`.
pub(crate) async fn reader(ctx: &Context<'_>, id: &str) -> ApiResult<(StudioBroadcast, Reader)> {
    let st = state(ctx);
    if let Some(g) = guest(ctx) {
        if g.broadcast_id != id {
            return Err(ApiError::not_found("studio broadcast").into());
        }
        return Ok((load(st, id).await?, Reader::Participant));
    }
    let who = ctx
        .data_opt::<Principal>()
        .ok_or_else(ApiError::unauthenticated)?;
    let b = load(st, id).await?;
    let ch = st
        .store()
        .get_channel(&b.channel_id)
        .await
        .map_err(gql)?
        .ok_or_else(|| ApiError::not_found("studio broadcast"))?;
    channel_check(who, &ch, Permission::ReadStudio)?;
    let r = if channel_check(who, &ch, Permission::ManageStudio).is_ok() {
        Reader::Host
    } else {
        Reader::Member
    };
    Ok((b, r))
}
