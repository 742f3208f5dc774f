//! What a channel's watch page shows anyone, signed in or not: its title, whether it is
//! live, its viewers over all nodes and its followers (`liveChannel`); and following
//! (`followChannel`, `unfollowChannel`, `followedChannels`: any signed-in user). Nothing
//! else of the channel is public (members, keys, destinations and settings stay behind
//! `channel`).

use async_graphql::{Context, ID, Object, SimpleObject};
use weir_store::StreamState;

use crate::ctx::{principal, state};
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
    /// Users following the channel.
    follower_count: i64,
    /// When the caller began following the channel (ms); null when it does not, or
    /// when the caller is anonymous.
    followed_at: Option<i64>,
}

/// A channel by id or slug.
async fn load(ctx: &Context<'_>, channel: &str) -> ApiResult<weir_store::Channel> {
    let store = state(ctx).store();
    match store.get_channel(channel).await.map_err(gql)? {
        Some(ch) => Ok(ch),
        None => store
            .channel_by_slug(channel)
            .await
            .map_err(gql)?
            .ok_or_else(|| ApiError::not_found("channel").into()),
    }
}

/// `liveChannel(channel)`: `channel` is an id or a slug.
pub(crate) async fn live_channel(ctx: &Context<'_>, channel: &str) -> ApiResult<LiveChannel> {
    describe(ctx, load(ctx, channel).await?).await
}

async fn describe(ctx: &Context<'_>, ch: weir_store::Channel) -> ApiResult<LiveChannel> {
    let store = state(ctx).store();
    let stream = store.active_stream(&ch.id).await.map_err(gql)?;
    let live = stream
        .as_ref()
        .is_some_and(|s| s.state == StreamState::Live);
    let viewer_count = if live {
        store.viewer_count(&ch.id).await.map_err(gql)? as i64
    } else {
        0
    };
    let followed_at = match ctx.data_opt::<weir_auth::Principal>() {
        Some(who) => store
            .follow_since(&ch.id, &who.user_id)
            .await
            .map_err(gql)?,
        None => None,
    };
    Ok(LiveChannel {
        follower_count: store.follower_count(&ch.id).await.map_err(gql)? as i64,
        followed_at,
        id: ID(ch.id),
        slug: ch.slug,
        title: ch.title,
        description: ch.description,
        live,
        live_since: stream.filter(|_| live).and_then(|s| s.live_at),
        viewer_count,
    })
}

/// Following channels.
#[derive(Default)]
pub(crate) struct FollowMutations;

#[Object]
impl FollowMutations {
    /// The caller follows `channel` (id or slug); following again keeps the first date
    /// (followers-only chat counts a follow's age from it).
    async fn follow_channel(&self, ctx: &Context<'_>, channel: ID) -> ApiResult<LiveChannel> {
        let who = principal(ctx)?;
        let ch = load(ctx, &channel).await?;
        state(ctx)
            .store()
            .follow(&ch.id, &who.user_id)
            .await
            .map_err(gql)?;
        describe(ctx, ch).await
    }

    /// The caller stops following `channel` (id or slug); no error when it did not.
    async fn unfollow_channel(&self, ctx: &Context<'_>, channel: ID) -> ApiResult<LiveChannel> {
        let who = principal(ctx)?;
        let ch = load(ctx, &channel).await?;
        state(ctx)
            .store()
            .unfollow(&ch.id, &who.user_id)
            .await
            .map_err(gql)?;
        describe(ctx, ch).await
    }
}

/// `followedChannels`: the caller's follows, newest first (channels since deleted are
/// left out).
pub(crate) async fn followed_channels(ctx: &Context<'_>) -> ApiResult<Vec<LiveChannel>> {
    let who = principal(ctx)?;
    let store = state(ctx).store();
    let mut out = Vec::new();
    for (id, _) in store.followed_channels(&who.user_id).await.map_err(gql)? {
        if let Some(ch) = store.get_channel(&id).await.map_err(gql)? {
            out.push(describe(ctx, ch).await?);
        }
    }
    Ok(out)
}
