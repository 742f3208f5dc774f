//! Relay destinations. Every change also reaches the channel's live broadcast at once
//! (see `crate::relays`).

use async_graphql::{Context, ID, InputObject, Object};
use weir_auth::Permission;
use weir_store::DestinationPatch;

use crate::ctx::{channel_with, principal, state};
use crate::error::{ApiError, ApiResult, gql};
use crate::types::{Destination, DestinationTest};

/// Longest a destination test may take.
const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

#[derive(Default)]
pub(crate) struct DestinationMutations;

/// A new destination.
// `Debug` (below) leaves the stream key out.
#[derive(InputObject)]
pub struct DestinationInput {
    /// Display name.
    pub name: String,
    /// Platform (`youtube`, `twitch`, `rtmp`…).
    pub platform: String,
    /// Ingest URL (`rtmp://`, `rtmps://`, `srt://`).
    pub url: String,
    /// The destination's stream key; stored encrypted, never shown again.
    pub stream_key: String,
}

/// Changes to a destination; absent fields stay.
// `Debug` (below) leaves the stream key out.
#[derive(InputObject, Default)]
pub struct DestinationUpdate {
    /// Name.
    pub name: Option<String>,
    /// URL.
    pub url: Option<String>,
    /// Stream key.
    pub stream_key: Option<String>,
    /// Enabled.
    pub enabled: Option<bool>,
}

impl std::fmt::Debug for DestinationInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DestinationInput")
            .field("name", &self.name)
            .field("platform", &self.platform)
            .field("url", &self.url)
            .field("stream_key", &crate::types::REDACTED)
            .finish()
    }
}

impl std::fmt::Debug for DestinationUpdate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DestinationUpdate")
            .field("name", &self.name)
            .field("url", &self.url)
            .field(
                "stream_key",
                &self.stream_key.as_ref().map(|_| crate::types::REDACTED),
            )
            .field("enabled", &self.enabled)
            .finish()
    }
}

/// May the caller manage destination `id`? Answers its channel's id.
async fn check(ctx: &Context<'_>, id: &str) -> ApiResult<String> {
    principal(ctx)?;
    let d = state(ctx)
        .store()
        .get_destination(id)
        .await
        .map_err(gql)?
        .ok_or_else(|| ApiError::not_found("destination"))?;
    channel_with(ctx, &d.channel_id, Permission::ManageDestinations)
        .await
        .map_err(|e| {
            if e.message.contains("not found") {
                ApiError::not_found("destination").into()
            } else {
                e
            }
        })?;
    Ok(d.channel_id)
}

#[Object]
impl DestinationMutations {
    /// Adds a destination; a live broadcast of the channel starts relaying to it.
    async fn create_destination(
        &self,
        ctx: &Context<'_>,
        channel_id: ID,
        input: DestinationInput,
    ) -> ApiResult<Destination> {
        channel_with(ctx, &channel_id, Permission::ManageDestinations).await?;
        let d = state(ctx)
            .store()
            .create_destination(
                &channel_id,
                &input.name,
                &input.platform,
                &input.url,
                &input.stream_key,
            )
            .await
            .map_err(gql)?;
        state(ctx).destinations_changed(&channel_id).await;
        Ok(Destination::new(d, &input.stream_key))
    }

    /// Changes a destination; a live broadcast reconnects to a new URL or key, stops
    /// relaying to a disabled destination and starts relaying to an enabled one.
    async fn update_destination(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: DestinationUpdate,
    ) -> ApiResult<Destination> {
        let channel_id = check(ctx, &id).await?;
        let store = state(ctx).store();
        let patch = DestinationPatch {
            name: input.name,
            url: input.url,
            stream_key: input.stream_key,
            enabled: input.enabled,
        };
        let d = store.update_destination(&id, patch).await.map_err(gql)?;
        let key = store.destination_stream_key(&d).map_err(gql)?;
        state(ctx).destinations_changed(&channel_id).await;
        Ok(Destination::new(d, &key))
    }

    /// Checks a destination without going live: connects, completes the RTMP handshake
    /// and `publish` with its key, and leaves at once (no media sent).
    async fn test_destination(&self, ctx: &Context<'_>, id: ID) -> ApiResult<DestinationTest> {
        check(ctx, &id).await?;
        let st = state(ctx);
        let prober = st
            .destination_prober()
            .ok_or_else(|| {
                ApiError::new(
                    crate::error::code::SERVICE_UNAVAILABLE,
                    "destination tests are not available on this control plane",
                )
            })?
            .clone();
        let d = st
            .store()
            .get_destination(&id)
            .await
            .map_err(gql)?
            .ok_or_else(|| ApiError::not_found("destination"))?;
        let key = st.store().destination_stream_key(&d).map_err(gql)?;
        let answer = tokio::time::timeout(PROBE_TIMEOUT, prober.probe(&d.url, &key)).await;
        Ok(match answer {
            Ok(Ok(took)) => DestinationTest {
                ok: true,
                message: "the destination accepted the stream key".into(),
                millis: Some(i64::try_from(took.as_millis()).unwrap_or(i64::MAX)),
            },
            Ok(Err(why)) => DestinationTest {
                ok: false,
                message: why,
                millis: None,
            },
            Err(_) => DestinationTest {
                ok: false,
                message: format!("no answer within {} s", PROBE_TIMEOUT.as_secs()),
                millis: None,
            },
        })
    }

    /// Removes a destination; a live broadcast stops relaying to it (the destination
    /// is told the stream ended).
    async fn delete_destination(&self, ctx: &Context<'_>, id: ID) -> ApiResult<bool> {
        let channel_id = check(ctx, &id).await?;
        let deleted = state(ctx)
            .store()
            .delete_destination(&id)
            .await
            .map_err(gql)?;
        state(ctx).destinations_changed(&channel_id).await;
        Ok(deleted)
    }
}
