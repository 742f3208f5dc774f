//! Channels and their members.

use async_graphql::{Context, ID, Object};
use weir_auth::Permission;

use crate::ctx::{channel_with, require_global, state};
use crate::error::{ApiError, ApiResult, gql};
use crate::types::{Channel, RecordSetting, Role, Transcode};

#[derive(Default)]
pub(crate) struct ChannelMutations;

#[Object]
impl ChannelMutations {
    /// Creates a channel owned by the caller (owners and admins).
    async fn create_channel(
        &self,
        ctx: &Context<'_>,
        slug: String,
        title: String,
        #[graphql(default)] description: String,
    ) -> ApiResult<Channel> {
        let who = require_global(ctx, Permission::CreateChannel)?;
        let ch = state(ctx)
            .store()
            .create_channel(&who.user_id, &slug, &title, &description)
            .await
            .map_err(gql)?;
        Ok(Channel::new(ch, weir_store::Role::Owner))
    }

    /// Changes title and/or description.
    async fn update_channel(
        &self,
        ctx: &Context<'_>,
        id: ID,
        title: Option<String>,
        description: Option<String>,
    ) -> ApiResult<Channel> {
        let (_, role) = channel_with(ctx, &id, Permission::UpdateChannel).await?;
        let ch = state(ctx)
            .store()
            .update_channel(&id, title.as_deref(), description.as_deref())
            .await
            .map_err(gql)?;
        Ok(Channel::new(ch, role))
    }

    /// Sets whether the channel's broadcasts are transcoded into the ladder (applies
    /// from the next publish on).
    async fn set_channel_transcode(
        &self,
        ctx: &Context<'_>,
        channel_id: ID,
        transcode: Transcode,
    ) -> ApiResult<Channel> {
        let (_, role) = channel_with(ctx, &channel_id, Permission::UpdateChannel).await?;
        let ch = state(ctx)
            .store()
            .set_channel_transcode(&channel_id, transcode.into())
            .await
            .map_err(gql)?;
        Ok(Channel::new(ch, role))
    }

    /// Sets whether the channel's broadcasts are recorded (applies from the next publish
    /// on); its recordings are listed by `recordings(channelId)`.
    async fn set_channel_record(
        &self,
        ctx: &Context<'_>,
        channel_id: ID,
        record: RecordSetting,
    ) -> ApiResult<Channel> {
        let (_, role) = channel_with(ctx, &channel_id, Permission::UpdateChannel).await?;
        let ch = state(ctx)
            .store()
            .set_channel_record(&channel_id, record.into())
            .await
            .map_err(gql)?;
        Ok(Channel::new(ch, role))
    }

    /// Deletes a channel: revokes its keys, drops destinations and policy.
    async fn delete_channel(&self, ctx: &Context<'_>, id: ID) -> ApiResult<bool> {
        channel_with(ctx, &id, Permission::AdministerChannel).await?;
        let st = state(ctx);
        for k in st.store().list_stream_keys(&id).await.map_err(gql)? {
            if k.revoked_at.is_none() {
                st.inner.issuer.revoke(&k.key_id);
            }
        }
        st.store().delete_channel(&id).await.map_err(gql)
    }

    /// Makes a user moderator or guest of a channel.
    async fn set_channel_member(
        &self,
        ctx: &Context<'_>,
        channel_id: ID,
        user_id: ID,
        role: Role,
    ) -> ApiResult<Channel> {
        let (_, my_role) = channel_with(ctx, &channel_id, Permission::AdministerChannel).await?;
        if !matches!(role, Role::Moderator | Role::Guest) {
            return Err(ApiError::bad_input("members are MODERATOR or GUEST").into());
        }
        let st = state(ctx);
        if st.store().get_user(&user_id).await.map_err(gql)?.is_none() {
            return Err(ApiError::not_found("user").into());
        }
        let ch = st
            .store()
            .set_channel_member(&channel_id, &user_id, role.into())
            .await
            .map_err(gql)?;
        Ok(Channel::new(ch, my_role))
    }

    /// Removes a member.
    async fn remove_channel_member(
        &self,
        ctx: &Context<'_>,
        channel_id: ID,
        user_id: ID,
    ) -> ApiResult<Channel> {
        let (_, my_role) = channel_with(ctx, &channel_id, Permission::AdministerChannel).await?;
        let ch = state(ctx)
            .store()
            .remove_channel_member(&channel_id, &user_id)
            .await
            .map_err(gql)?;
        Ok(Channel::new(ch, my_role))
    }
}
