//! Studio queries.

use async_graphql::{Context, ID, Object};

use crate::ctx::state;
use crate::error::{ApiResult, gql};

use super::access::{Reader, guest, host_of_channel, reader};
use super::types::{Participant, StudioBroadcast, StudioImage};

#[derive(Default)]
pub(crate) struct StudioQueries;

#[Object]
impl StudioQueries {
    /// A studio broadcast (its host and channel members; a participant: its own).
    async fn studio_broadcast(&self, ctx: &Context<'_>, id: ID) -> ApiResult<StudioBroadcast> {
        let (b, who) = reader(ctx, &id).await?;
        Ok(StudioBroadcast::new(b, who == Reader::Host))
    }

    /// A channel's studio broadcasts, newest first (hosts of the channel).
    async fn studio_broadcasts(
        &self,
        ctx: &Context<'_>,
        channel_id: ID,
    ) -> ApiResult<Vec<StudioBroadcast>> {
        host_of_channel(ctx, &channel_id).await?;
        let all = state(ctx)
            .store()
            .list_studio_broadcasts(&channel_id)
            .await
            .map_err(gql)?;
        Ok(all
            .into_iter()
            .map(|b| StudioBroadcast::new(b, true))
            .collect())
    }

    /// A broadcast's participants present now (with `includeLeft`, those who left too).
    async fn studio_participants(
        &self,
        ctx: &Context<'_>,
        broadcast_id: ID,
        include_left: Option<bool>,
    ) -> ApiResult<Vec<Participant>> {
        let (b, _) = reader(ctx, &broadcast_id).await?;
        let all = state(ctx)
            .store()
            .list_participants(&b.id)
            .await
            .map_err(gql)?;
        Ok(all
            .into_iter()
            .filter(|p| include_left == Some(true) || p.present())
            .map(Into::into)
            .collect())
    }

    /// The participant the caller's participant token names (null for accounts).
    async fn studio_me(&self, ctx: &Context<'_>) -> ApiResult<Option<Participant>> {
        let Some(g) = guest(ctx) else {
            return Ok(None);
        };
        let p = state(ctx)
            .store()
            .get_participant(&g.participant_id)
            .await
            .map_err(gql)?;
        Ok(p.map(Into::into))
    }

    /// The images uploaded for a channel's studio (its hosts).
    async fn studio_images(
        &self,
        ctx: &Context<'_>,
        channel_id: ID,
    ) -> ApiResult<Vec<StudioImage>> {
        host_of_channel(ctx, &channel_id).await?;
        let all = state(ctx)
            .store()
            .list_studio_images(&channel_id)
            .await
            .map_err(gql)?;
        Ok(all.into_iter().map(Into::into).collect())
    }
}
