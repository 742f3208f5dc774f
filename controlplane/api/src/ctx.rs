//! Resolver helpers: the caller, the state, and permission-checked loads.

use async_graphql::Context;
use weir_auth::{Permission, Principal, check_channel, check_global};
use weir_store::{Channel, Role};

use crate::error::{ApiError, ApiResult, gql};
use crate::state::ApiState;

/// The shared state.
pub(crate) fn state<'a>(ctx: &Context<'a>) -> &'a ApiState {
    ctx.data_unchecked::<ApiState>()
}

/// The authenticated caller, or `UNAUTHENTICATED`.
pub(crate) fn principal<'a>(ctx: &Context<'a>) -> ApiResult<&'a Principal> {
    ctx.data_opt::<Principal>()
        .ok_or_else(|| ApiError::unauthenticated().into())
}

/// Requires a global permission.
pub(crate) fn require_global<'a>(ctx: &Context<'a>, perm: Permission) -> ApiResult<&'a Principal> {
    let who = principal(ctx)?;
    check_global(who, perm).map_err(gql)?;
    Ok(who)
}

/// Loads a channel and checks `perm` on it. Channels the caller has no role on are
/// reported as `NOT_FOUND`, like absent ones.
pub(crate) async fn channel_with(
    ctx: &Context<'_>,
    channel_id: &str,
    perm: Permission,
) -> ApiResult<(Channel, Role)> {
    let who = principal(ctx)?;
    let ch = state(ctx)
        .store()
        .get_channel(channel_id)
        .await
        .map_err(gql)?
        .ok_or_else(|| ApiError::not_found("channel"))?;
    let role = check_channel(who, &ch, perm).map_err(|d| match d {
        weir_auth::Denied::NotFound => ApiError::not_found("channel"),
        weir_auth::Denied::Forbidden => ApiError::forbidden(),
    })?;
    Ok((ch, role))
}
