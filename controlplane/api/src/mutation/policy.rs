//! Entitlements and recordings.

use async_graphql::{Context, ID, Object};
use weir_auth::Permission;

use crate::ctx::{channel_with, principal, state};
use crate::error::{ApiError, ApiResult, gql};
use crate::types::{Access, Entitlement, EntitlementInput};

#[derive(Default)]
pub(crate) struct PolicyMutations;

#[Object]
impl PolicyMutations {
    /// Sets a channel's playback policy.
    async fn set_entitlement(
        &self,
        ctx: &Context<'_>,
        channel_id: ID,
        input: EntitlementInput,
    ) -> ApiResult<Entitlement> {
        channel_with(ctx, &channel_id, Permission::ManageEntitlements).await?;
        let e = weir_store::Entitlement {
            channel_id: channel_id.to_string(),
            access: match input.access {
                Access::Public => weir_store::Access::Public,
                Access::SubscriberOnly => weir_store::Access::SubscriberOnly,
            },
            signed_urls: input.signed_urls,
            signed_url_ttl_secs: input.signed_url_ttl_secs,
            geo_allow: input.geo_allow,
            min_age: input.min_age,
            updated_at: 0,
        };
        let e = state(ctx).store().set_entitlement(e).await.map_err(gql)?;
        Ok(e.into())
    }

    /// Deletes a finished recording: its index entry, its clips, and its files on the
    /// node that holds it.
    async fn delete_recording(&self, ctx: &Context<'_>, id: ID) -> ApiResult<bool> {
        principal(ctx)?;
        let st = state(ctx);
        let r = st
            .store()
            .get_recording(&id)
            .await
            .map_err(gql)?
            .ok_or_else(|| ApiError::not_found("recording"))?;
        channel_with(ctx, &r.channel_id, Permission::ManageRecordings)
            .await
            .map_err(|e| {
                if e.message.contains("not found") {
                    ApiError::not_found("recording").into()
                } else {
                    e
                }
            })?;
        if r.ended_at.is_none() {
            return Err(ApiError::bad_input(
                "this recording is still being made: end the broadcast first",
            )
            .into());
        }
        // Its clips go with it (records and files), then its own files.
        for clip in st
            .store()
            .list_clips(&r.channel_id, &r.id)
            .await
            .map_err(gql)?
        {
            if let Some(maker) = st.clip_maker() {
                maker
                    .delete(&r.id, &clip.id)
                    .await
                    .map_err(gql_unavailable)?;
            }
            st.store().delete_clip(&clip.id).await.map_err(gql)?;
        }
        if let Some(maker) = st.clip_maker() {
            maker
                .delete_recording(&r.id)
                .await
                .map_err(gql_unavailable)?;
        }
        st.store().delete_recording(&id).await.map_err(gql)
    }
}

/// A clip maker's failure, as the API reports it.
fn gql_unavailable(why: String) -> async_graphql::Error {
    ApiError::new(crate::error::code::SERVICE_UNAVAILABLE, why).into()
}
