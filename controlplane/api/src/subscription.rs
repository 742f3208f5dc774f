//! Subscriptions (graphql-ws): stream state changes and live viewer counts of a channel.

use async_graphql::{Context, ID, Subscription};
use futures_util::stream::{self, Stream as FStream, StreamExt};
use tokio::sync::broadcast::{Receiver, error::RecvError};
use weir_auth::Permission;

use crate::ctx::{channel_with, state};
use crate::error::gql;
use crate::events::Event;
use crate::types::{Stream, ViewerCount};

/// The subscription root.
#[derive(async_graphql::MergedSubscription, Default)]
#[graphql(name = "Subscription")]
pub struct SubscriptionRoot(CoreSubscriptions, crate::studio::StudioSubscriptions);

/// Streams, viewers, chat.
#[derive(Default)]
pub struct CoreSubscriptions;

/// Turns the event channel into a stream of the items `pick` selects.
fn events<T, F>(rx: Receiver<Event>, pick: F) -> impl FStream<Item = T> + Send + 'static
where
    T: Send + 'static,
    F: Fn(Event) -> Option<T> + Send + Sync + Clone + 'static,
{
    stream::unfold(rx, move |mut rx| {
        let pick = pick.clone();
        async move {
            loop {
                match rx.recv().await {
                    Ok(ev) => {
                        if let Some(item) = pick(ev) {
                            return Some((item, rx));
                        }
                    }
                    Err(RecvError::Lagged(n)) => {
                        tracing::debug!(skipped = n, "subscriber lagged");
                    }
                    Err(RecvError::Closed) => return None,
                }
            }
        }
    })
}

#[Subscription]
impl CoreSubscriptions {
    /// Every state change (starting, live, ended) of the channel's sessions.
    async fn stream_state_changed(
        &self,
        ctx: &Context<'_>,
        channel_id: ID,
    ) -> async_graphql::Result<impl FStream<Item = Stream>> {
        channel_with(ctx, &channel_id, Permission::ReadStreams).await?;
        let ch = channel_id.to_string();
        Ok(events(state(ctx).subscribe_events(), move |ev| match ev {
            Event::StreamState(s) if s.channel_id == ch => Some((*s).into()),
            _ => None,
        }))
    }

    /// A channel's chat (id or slug) from now on: messages and moderation events.
    /// Public, like the chat itself; a subscriber that does not keep up is dropped.
    async fn chat_messages(
        &self,
        ctx: &Context<'_>,
        channel_id: ID,
    ) -> async_graphql::Result<impl FStream<Item = crate::chat::ChatEvent>> {
        crate::chat::events(ctx, &channel_id).await
    }

    /// The channel's total viewer count: the current value, then every change.
    async fn viewer_count(
        &self,
        ctx: &Context<'_>,
        channel_id: ID,
    ) -> async_graphql::Result<impl FStream<Item = ViewerCount>> {
        channel_with(ctx, &channel_id, Permission::ReadViewers).await?;
        let st = state(ctx);
        let rx = st.subscribe_events();
        let now = st.store().viewer_count(&channel_id).await.map_err(gql)?;
        let ch = channel_id.to_string();
        let first = ViewerCount {
            channel_id: channel_id.clone(),
            count: now as i64,
        };
        let rest = events(rx, move |ev| match ev {
            Event::Viewers { channel_id, count } if channel_id == ch => Some(ViewerCount {
                channel_id: ID(channel_id),
                count: count as i64,
            }),
            _ => None,
        });
        Ok(stream::once(async move { first }).chain(rest))
    }
}
