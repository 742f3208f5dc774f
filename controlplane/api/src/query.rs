//! Queries. Every resolver checks the caller's role on the object it reads.

use async_graphql::connection::Connection;
use async_graphql::{Context, ID, Object};
use weir_auth::Permission;

use crate::ctx::{channel_with, principal, require_global, state};
use crate::error::{ApiError, ApiResult, gql};
use crate::pagination::{PageArgs, paginate};
use crate::types::{
    Channel, Destination, Entitlement, Node, PlaybackUrl, Recording, Stream, StreamKey, User,
};

/// The query root.
#[derive(async_graphql::MergedObject, Default)]
#[graphql(name = "Query")]
pub struct QueryRoot(CoreQueries, crate::studio::StudioQueries);

/// Accounts, channels, streams, recordings, nodes, chat.
#[derive(Default)]
pub struct CoreQueries;

#[Object]
impl CoreQueries {
    /// A page of a channel's chat (id or slug) before message `before` (default: the
    /// newest), oldest first; at most 100 (default 50). Public, like the chat itself.
    async fn chat_history(
        &self,
        ctx: &Context<'_>,
        channel_id: ID,
        before: Option<i64>,
        limit: Option<i32>,
    ) -> ApiResult<crate::chat::ChatPage> {
        crate::chat::history(ctx, &channel_id, before, limit).await
    }

    /// A channel (id or slug) as its watch page shows it to anyone: title, live state,
    /// viewers, followers (and whether the caller follows it). Public.
    async fn live_channel(
        &self,
        ctx: &Context<'_>,
        channel: ID,
    ) -> ApiResult<crate::watch::LiveChannel> {
        crate::watch::live_channel(ctx, &channel).await
    }

    /// The channels the caller follows, newest follow first.
    async fn followed_channels(
        &self,
        ctx: &Context<'_>,
    ) -> ApiResult<Vec<crate::watch::LiveChannel>> {
        crate::watch::followed_channels(ctx).await
    }

    /// The caller.
    async fn me(&self, ctx: &Context<'_>) -> ApiResult<User> {
        let who = principal(ctx)?;
        let u = state(ctx)
            .store()
            .get_user(&who.user_id)
            .await
            .map_err(gql)?
            .ok_or_else(ApiError::unauthenticated)?;
        Ok(u.into())
    }

    /// A channel the caller owns, moderates or guests on (admins: any).
    async fn channel(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Channel> {
        let (ch, role) = channel_with(ctx, &id, Permission::ReadChannel).await?;
        Ok(Channel::new(ch, role))
    }

    /// A channel by slug, with the same visibility as `channel`.
    async fn channel_by_slug(&self, ctx: &Context<'_>, slug: String) -> ApiResult<Channel> {
        principal(ctx)?;
        let ch = state(ctx)
            .store()
            .channel_by_slug(&slug)
            .await
            .map_err(gql)?
            .ok_or_else(|| ApiError::not_found("channel"))?;
        let (ch, role) = channel_with(ctx, &ch.id, Permission::ReadChannel).await?;
        Ok(Channel::new(ch, role))
    }

    /// Channels the caller owns or is a member of (admins: all), oldest first.
    async fn channels(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        before: Option<String>,
        first: Option<i32>,
        last: Option<i32>,
    ) -> ApiResult<Connection<String, Channel>> {
        let who = principal(ctx)?;
        let store = state(ctx).store();
        let mut list: Vec<Channel> = Vec::new();
        if who.role == weir_store::Role::Admin {
            for c in store.list_channels().await.map_err(gql)? {
                list.push(Channel::new(c, weir_store::Role::Admin));
            }
        } else {
            let mut all = store.channels_owned_by(&who.user_id).await.map_err(gql)?;
            all.extend(
                store
                    .channels_with_member(&who.user_id)
                    .await
                    .map_err(gql)?,
            );
            all.sort_by(|a, b| a.id.cmp(&b.id));
            for c in all {
                if let Some(role) = c.member_role(&who.user_id) {
                    list.push(Channel::new(c, role));
                }
            }
        }
        let args = PageArgs {
            after,
            before,
            first,
            last,
        };
        paginate(list, |c| c.id.to_string(), args)
    }

    /// A channel's stream keys (metadata only).
    async fn stream_keys(&self, ctx: &Context<'_>, channel_id: ID) -> ApiResult<Vec<StreamKey>> {
        channel_with(ctx, &channel_id, Permission::ManageStreamKeys).await?;
        let keys = state(ctx)
            .store()
            .list_stream_keys(&channel_id)
            .await
            .map_err(gql)?;
        Ok(keys.into_iter().map(Into::into).collect())
    }

    /// A channel's sessions, newest first.
    async fn streams(
        &self,
        ctx: &Context<'_>,
        channel_id: ID,
        after: Option<String>,
        before: Option<String>,
        first: Option<i32>,
        last: Option<i32>,
    ) -> ApiResult<Connection<String, Stream>> {
        channel_with(ctx, &channel_id, Permission::ReadStreams).await?;
        let list = state(ctx)
            .store()
            .list_streams(&channel_id)
            .await
            .map_err(gql)?;
        let list: Vec<Stream> = list.into_iter().map(Into::into).collect();
        let args = PageArgs {
            after,
            before,
            first,
            last,
        };
        paginate(list, |s| s.id.to_string(), args)
    }

    /// One session.
    async fn stream(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Stream> {
        principal(ctx)?;
        let s = state(ctx)
            .store()
            .get_stream(&id)
            .await
            .map_err(gql)?
            .ok_or_else(|| ApiError::not_found("stream"))?;
        channel_with(ctx, &s.channel_id, Permission::ReadStreams)
            .await
            .map_err(|_| ApiError::not_found("stream"))?;
        Ok(s.into())
    }

    /// The channel's session in progress, if any.
    async fn current_stream(&self, ctx: &Context<'_>, channel_id: ID) -> ApiResult<Option<Stream>> {
        channel_with(ctx, &channel_id, Permission::ReadStreams).await?;
        let s = state(ctx)
            .store()
            .active_stream(&channel_id)
            .await
            .map_err(gql)?;
        Ok(s.map(Into::into))
    }

    /// The channel's viewers right now, over all nodes.
    async fn viewer_count(&self, ctx: &Context<'_>, channel_id: ID) -> ApiResult<i64> {
        channel_with(ctx, &channel_id, Permission::ReadViewers).await?;
        let n = state(ctx)
            .store()
            .viewer_count(&channel_id)
            .await
            .map_err(gql)?;
        Ok(n as i64)
    }

    /// A channel's relay destinations (owner and admins only).
    async fn destinations(&self, ctx: &Context<'_>, channel_id: ID) -> ApiResult<Vec<Destination>> {
        channel_with(ctx, &channel_id, Permission::ManageDestinations).await?;
        let store = state(ctx).store();
        let list = store.list_destinations(&channel_id).await.map_err(gql)?;
        // The relay states of the broadcast in progress, else of the last one.
        let relays = match store.active_stream(&channel_id).await.map_err(gql)? {
            Some(s) => s.relays,
            None => store
                .list_streams(&channel_id)
                .await
                .map_err(gql)?
                .into_iter()
                .next()
                .map(|s| s.relays)
                .unwrap_or_default(),
        };
        list.into_iter()
            .map(|d| {
                let key = store.destination_stream_key(&d).map_err(gql)?;
                let status = relays
                    .iter()
                    .find(|r| r.destination_id == d.id)
                    .cloned()
                    .map(Into::into);
                Ok(Destination {
                    status,
                    ..Destination::new(d, &key)
                })
            })
            .collect()
    }

    /// A channel's recordings, newest first. Their URLs carry a playback token for the
    /// channel (needed for recordings of signed broadcasts, ignored for others), lasting
    /// the policy's TTL plus the recording's duration.
    async fn recordings(
        &self,
        ctx: &Context<'_>,
        channel_id: ID,
        after: Option<String>,
        before: Option<String>,
        first: Option<i32>,
        last: Option<i32>,
    ) -> ApiResult<Connection<String, Recording>> {
        let (ch, _) = channel_with(ctx, &channel_id, Permission::ReadRecordings).await?;
        let st = state(ctx);
        let list = st.store().list_recordings(&channel_id).await.map_err(gql)?;
        let signer = crate::playback::VodSigner::for_channel(st, &channel_id, &ch.slug)
            .await
            .map_err(gql)?;
        let list: Vec<Recording> = list
            .into_iter()
            .map(|r| Recording::from(r).signed(&signer))
            .collect();
        let args = PageArgs {
            after,
            before,
            first,
            last,
        };
        paginate(list, |r| r.id.to_string(), args)
    }

    /// A channel's playback policy.
    async fn entitlement(&self, ctx: &Context<'_>, channel_id: ID) -> ApiResult<Entitlement> {
        channel_with(ctx, &channel_id, Permission::ReadEntitlements).await?;
        let e = state(ctx)
            .store()
            .get_entitlement(&channel_id)
            .await
            .map_err(gql)?;
        Ok(e.into())
    }

    /// Where to watch the channel. Public channels: the plain playlist path, for anyone.
    /// Channels whose policy requires signed URLs, or subscriber-only ones: a signed path
    /// `/live/<slug>/t.<exp>.<sig>/index.m3u8` under which every playlist and object of the
    /// broadcast is fetched, for signed-in members of the channel and admins (subscriptions
    /// themselves are not modelled yet). It expires after the policy's TTL, rounded up to a
    /// quarter of it so that viewers asking in the same window share URLs (and a CDN's
    /// cache); playback under it stops then: ask again before `expiresAt`.
    async fn playback_url(&self, ctx: &Context<'_>, channel_id: ID) -> ApiResult<PlaybackUrl> {
        let st = state(ctx);
        let ch = st
            .store()
            .get_channel(&channel_id)
            .await
            .map_err(gql)?
            .ok_or_else(|| ApiError::not_found("channel"))?;
        let e = st.store().get_entitlement(&channel_id).await.map_err(gql)?;
        let path = format!("/live/{}/index.m3u8", ch.slug);
        if !crate::state::requires_signature(&e) {
            return Ok(PlaybackUrl {
                url: path,
                expires_at: None,
            });
        }
        channel_with(ctx, &channel_id, Permission::ReadChannel).await?;
        let ttl = u64::from(e.signed_url_ttl_secs);
        let (token, exp) = crate::playback::token(
            &*st.inner.issuer,
            &ch.slug,
            crate::playback::now_secs(),
            ttl,
            0,
        );
        Ok(PlaybackUrl {
            url: format!("/live/{}/{token}/index.m3u8", ch.slug),
            expires_at: Some(i64::try_from(exp).unwrap_or(i64::MAX)),
        })
    }

    /// Live data-plane nodes (admins only).
    async fn nodes(&self, ctx: &Context<'_>) -> ApiResult<Vec<Node>> {
        require_global(ctx, Permission::Operate)?;
        let nodes = state(ctx).store().list_nodes().await.map_err(gql)?;
        Ok(nodes.into_iter().map(Into::into).collect())
    }

    /// Every user (admins only), oldest first.
    async fn users(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        before: Option<String>,
        first: Option<i32>,
        last: Option<i32>,
    ) -> ApiResult<Connection<String, User>> {
        require_global(ctx, Permission::Operate)?;
        let list = state(ctx).store().list_users().await.map_err(gql)?;
        let list: Vec<User> = list.into_iter().map(Into::into).collect();
        let args = PageArgs {
            after,
            before,
            first,
            last,
        };
        paginate(list, |u| u.id.to_string(), args)
    }
}
