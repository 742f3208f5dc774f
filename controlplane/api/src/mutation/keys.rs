//! Stream keys: issue (shown once), rotate, revoke.

use async_graphql::{Context, ID, Object};
use weir_auth::Permission;

use crate::ctx::{channel_with, principal, state};
use crate::error::{ApiError, ApiResult, gql};
use crate::state::ApiState;
use crate::types::{IssuedStreamKey, StreamKey};

#[derive(Default)]
pub(crate) struct KeyMutations;

async fn issue(st: &ApiState, channel_id: &str) -> ApiResult<IssuedStreamKey> {
    // Keys name the channel's URL name (its slug): that is where playback lives.
    let slug = st
        .store()
        .get_channel(channel_id)
        .await
        .map_err(gql)?
        .map_or_else(|| channel_id.to_owned(), |c| c.slug);
    let (key_id, secret) = st.inner.issuer.issue(&slug);
    let meta = st
        .store()
        .record_stream_key(channel_id, &key_id)
        .await
        .map_err(gql)?;
    tracing::info!(channel_id, key_id = %meta.key_id, "stream key issued");
    Ok(IssuedStreamKey {
        key: meta.into(),
        secret,
    })
}

async fn revoke(st: &ApiState, key_id: &str) -> ApiResult<StreamKey> {
    let meta = st.store().revoke_stream_key(key_id).await.map_err(gql)?;
    st.inner.issuer.revoke(key_id);
    tracing::info!(key_id, channel_id = %meta.channel_id, "stream key revoked");
    Ok(meta.into())
}

#[Object]
impl KeyMutations {
    /// Issues an additional stream key. The secret is in this response only.
    async fn issue_stream_key(
        &self,
        ctx: &Context<'_>,
        channel_id: ID,
    ) -> ApiResult<IssuedStreamKey> {
        channel_with(ctx, &channel_id, Permission::ManageStreamKeys).await?;
        issue(state(ctx), &channel_id).await
    }

    /// Revokes every active key of the channel and issues a new one.
    async fn rotate_stream_key(
        &self,
        ctx: &Context<'_>,
        channel_id: ID,
    ) -> ApiResult<IssuedStreamKey> {
        channel_with(ctx, &channel_id, Permission::ManageStreamKeys).await?;
        let st = state(ctx);
        for k in st
            .store()
            .list_stream_keys(&channel_id)
            .await
            .map_err(gql)?
        {
            if k.revoked_at.is_none() {
                revoke(st, &k.key_id).await?;
            }
        }
        issue(st, &channel_id).await
    }

    /// Revokes one key.
    async fn revoke_stream_key(&self, ctx: &Context<'_>, key_id: ID) -> ApiResult<StreamKey> {
        principal(ctx)?;
        let st = state(ctx);
        let meta = st
            .store()
            .get_stream_key(&key_id)
            .await
            .map_err(gql)?
            .ok_or_else(|| ApiError::not_found("stream key"))?;
        channel_with(ctx, &meta.channel_id, Permission::ManageStreamKeys)
            .await
            .map_err(|e| {
                if e.message.contains("not found") {
                    ApiError::not_found("stream key").into()
                } else {
                    e
                }
            })?;
        revoke(st, &key_id).await
    }
}
