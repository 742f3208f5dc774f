//! What a channel's watch page shows anyone, signed in or not: its title, whether it is
//! live, and its viewers over all nodes (`liveChannel`). Nothing else of the channel is
//! public (members, keys, destinations and settings stay behind `channel`).

use async_graphql::{Context, ID, SimpleObject};
use weir_store::StreamState;

use crate::ctx::state;
use crate::error::{ApiError, ApiResult, gql};

/// A channel as its viewers see it.
#[derive(SimpleObject)]
pub(crate) struct LiveChannel {
    /// Id.
    id: ID,
    /// URL name.
    slug: String,
    /// Title.
    title: String,
    /// Description.
    description: String,
    /// Whether a broadcast is live now (media flowing).
    live: bool,
    /// When the broadcast in progress went live (ms), if it is live.
    live_since: Option<i64>,
    /// Viewers right now, over all nodes (0 when offline).
    viewer_count: i64,
}

/// `liveChannel(channel)`: `channel` is an id or a slug.
pub(crate) async fn live_channel(ctx: &Context<'_>, channel: &str) -> ApiResult<LiveChannel> {
    let store = state(ctx).store();
    let ch = match store.get_channel(channel).await.map_err(gql)? {
        Some(ch) => ch,
        None => store
            .channel_by_slug(channel)
            .await
            .map_err(gql)?
            .ok_or_else(|| ApiError::not_found("channel"))?,
    };
    let stream = store.active_stream(&ch.id).await.map_err(gql)?;
    let live = stream
        .as_ref()
        .is_some_and(|s| s.state == StreamState::Live);
    let viewer_count = if live {
        store.viewer_count(&ch.id).await.map_err(gql)? as i64
    } else {
        0
    };
    Ok(LiveChannel {
        id: ID(ch.id),
        slug: ch.slug,
        title: ch.title,
        description: ch.description,
        live,
        live_since: stream.filter(|_| live).and_then(|s| s.live_at),
        viewer_count,
    })
}
