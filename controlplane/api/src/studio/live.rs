//! Going live and ending: the director forwards the program to the channel.

use async_graphql::{Context, ID, Object};
use weir_store::{BroadcastStatus, StudioBroadcast};

use crate::ctx::state;
use crate::error::{ApiError, ApiResult, code, gql};
use crate::state::ApiState;

use super::access::host;
use super::events::StudioEventKind;
use super::scene::program_scene;
use super::types;

#[derive(Default)]
pub(crate) struct LiveMutations;

impl ApiState {
    /// Ends a broadcast: status `ended`, everyone leaves (their keys revoked), the
    /// director stops the program, the channel key it went live with is revoked.
    pub(crate) async fn finish(&self, b: &StudioBroadcast) -> ApiResult<StudioBroadcast> {
        if let Some(d) = self.studio_director().cloned()
            && let Err(why) = d.end(&b.id).await
        {
            tracing::warn!(broadcast_id = %b.id, %why, "the compositor did not end cleanly");
        }
        let ended = self.store().studio_end(&b.id).await.map_err(gql)?;
        for p in self.store().list_participants(&b.id).await.map_err(gql)? {
            self.inner.issuer.revoke(&p.key_id);
        }
        if let Some(k) = &ended.live_key_id {
            self.store().revoke_stream_key(k).await.map_err(gql)?;
            self.inner.issuer.revoke(k);
        }
        tracing::info!(broadcast_id = %b.id, "studio broadcast ended");
        self.studio_event(StudioEventKind::StatusChanged, &ended, None);
        Ok(ended)
    }
}

#[Object]
impl LiveMutations {
    /// Takes the program live on the channel (scheduled → live): viewers, recording and
    /// every enabled destination get it. Needs a node with a studio compositor.
    async fn go_live(
        &self,
        ctx: &Context<'_>,
        broadcast_id: ID,
    ) -> ApiResult<types::StudioBroadcast> {
        let (b, _) = host(ctx, &broadcast_id, "go live").await?;
        let st = state(ctx);
        let director = st.studio_director().cloned().ok_or_else(|| {
            ApiError::new(
                code::SERVICE_UNAVAILABLE,
                "this node has no studio compositor: the broadcast cannot go live here",
            )
        })?;
        match b.status {
            BroadcastStatus::Scheduled => {}
            BroadcastStatus::Live => {
                return Err(ApiError::new(code::CONFLICT, "the broadcast is already live").into());
            }
            BroadcastStatus::Ended => {
                return Err(ApiError::new(code::CONFLICT, "the broadcast has ended").into());
            }
        }
        let scene = program_scene(st, &b).await.map_err(gql)?;
        director.compose(scene).await.map_err(|why| {
            ApiError::new(
                code::SERVICE_UNAVAILABLE,
                format!("the compositor refused the scene: {why}"),
            )
        })?;
        // A channel key for the program, like any ingest's (its policy: recording,
        // destinations, transcode); revoked when the broadcast ends.
        let slug = st
            .store()
            .get_channel(&b.channel_id)
            .await
            .map_err(gql)?
            .ok_or_else(|| ApiError::not_found("channel"))?
            .slug;
        let (key_id, key) = st.inner.issuer.issue(&slug);
        st.store()
            .record_stream_key(&b.channel_id, &key_id)
            .await
            .map_err(gql)?;
        if let Err(why) = director.go_live(&b.id, &key).await {
            let _ = st.store().revoke_stream_key(&key_id).await;
            st.inner.issuer.revoke(&key_id);
            return Err(ApiError::new(
                code::SERVICE_UNAVAILABLE,
                format!("going live failed: {why}"),
            )
            .into());
        }
        let live = match st.store().studio_go_live(&b.id, &key_id).await {
            Ok(l) => l,
            Err(e) => {
                // Lost a race (ended or live meanwhile): undo the forwarding.
                let _ = director.end(&b.id).await;
                let _ = st.store().revoke_stream_key(&key_id).await;
                st.inner.issuer.revoke(&key_id);
                return Err(gql(e));
            }
        };
        tracing::info!(broadcast_id = %b.id, channel_id = %b.channel_id, "studio broadcast live");
        st.studio_event(StudioEventKind::StatusChanged, &live, None);
        Ok(types::StudioBroadcast::new(live, true))
    }

    /// Ends the broadcast (scheduled or live → ended): the program leaves the channel and
    /// its destinations, everyone leaves the studio, participants' keys are refused.
    async fn end_broadcast(
        &self,
        ctx: &Context<'_>,
        broadcast_id: ID,
    ) -> ApiResult<types::StudioBroadcast> {
        let (b, _) = host(ctx, &broadcast_id, "end the broadcast").await?;
        if b.status == BroadcastStatus::Ended {
            return Err(ApiError::new(code::CONFLICT, "the broadcast has already ended").into());
        }
        let ended = state(ctx).finish(&b).await?;
        Ok(types::StudioBroadcast::new(ended, true))
    }
}
