//! Studio signalling: the events every change emits and the `studioEvents`
//! subscription (protocol in the [module overview](super)).

use async_graphql::{Context, Enum, ID, SimpleObject, Subscription};
use futures_util::stream::{self, Stream as FStream};
use tokio::sync::broadcast::error::RecvError;
use weir_store::{Participant, StudioBroadcast};

use crate::ctx::state;
use crate::error::gql;
use crate::events::Event;
use crate::state::ApiState;

use super::access::{Reader, guest, reader};
use super::types;

/// What changed in a studio.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum StudioEventKind {
    /// The state when the subscription starts.
    Snapshot,
    /// Someone joined (backstage).
    ParticipantJoined,
    /// Someone left or was removed.
    ParticipantLeft,
    /// Someone's camera, microphone or gain changed.
    ParticipantChanged,
    /// Someone was brought on stage or sent backstage.
    StageChanged,
    /// Layout, spotlight or transition.
    LayoutChanged,
    /// Background, logo or overlay.
    OverlaysChanged,
    /// A banner was shown or hidden.
    BannerChanged,
    /// Scheduled → live → ended.
    StatusChanged,
    /// Title, description, schedule or recording settings.
    BroadcastChanged,
    /// The broadcast was deleted (the subscription ends).
    BroadcastDeleted,
}

/// One studio change, as the event bus carries it.
#[derive(Debug, Clone, PartialEq)]
pub struct StudioEvent {
    /// What changed.
    pub kind: StudioEventKind,
    /// The broadcast after the change.
    pub broadcast: StudioBroadcast,
    /// Who, for participant events.
    pub participant: Option<Participant>,
}

/// A studio event as subscribers get it.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(name = "StudioEvent")]
pub struct StudioEventOut {
    /// What changed.
    pub kind: StudioEventKind,
    /// The broadcast's id.
    pub broadcast_id: ID,
    /// The broadcast after the change (participants included).
    pub broadcast: types::StudioBroadcast,
    /// Who, for participant and stage events.
    pub participant: Option<types::Participant>,
}

impl ApiState {
    /// Tells the broadcast's subscribers what changed.
    pub(crate) fn studio_event(
        &self,
        kind: StudioEventKind,
        broadcast: &StudioBroadcast,
        participant: Option<&Participant>,
    ) {
        let _ = self.inner.events.send(Event::Studio(Box::new(StudioEvent {
            kind,
            broadcast: broadcast.clone(),
            participant: participant.cloned(),
        })));
    }
}

fn out(e: StudioEvent, host: bool) -> StudioEventOut {
    StudioEventOut {
        kind: e.kind,
        broadcast_id: ID(e.broadcast.id.clone()),
        broadcast: types::StudioBroadcast::new(e.broadcast, host),
        participant: e.participant.map(Into::into),
    }
}

#[derive(Default)]
pub(crate) struct StudioSubscriptions;

#[Subscription]
impl StudioSubscriptions {
    /// The studio's signalling: a `SNAPSHOT`, then every change of the broadcast, its
    /// participants, scene and status (see the table in the API's studio docs). Host:
    /// access token; participant: its participant token (its stream ends when it leaves).
    async fn studio_events(
        &self,
        ctx: &Context<'_>,
        broadcast_id: ID,
    ) -> async_graphql::Result<impl FStream<Item = StudioEventOut>> {
        let (b, who) = reader(ctx, &broadcast_id).await?;
        let host = who == Reader::Host;
        let me = guest(ctx).map(|g| g.participant_id.clone());
        let rx = state(ctx).subscribe_events();
        // Subscribe before reading the snapshot, so no change falls between them.
        let b = state(ctx)
            .store()
            .get_studio_broadcast(&b.id)
            .await
            .map_err(gql)?
            .unwrap_or(b);
        let first = StudioEvent {
            kind: StudioEventKind::Snapshot,
            broadcast: b,
            participant: None,
        };
        let id = broadcast_id.to_string();
        let rest = stream::unfold(Some(rx), move |rx| {
            let id = id.clone();
            let me = me.clone();
            async move {
                let mut rx = rx?;
                loop {
                    match rx.recv().await {
                        Ok(Event::Studio(e)) if e.broadcast.id == id => {
                            let me_left = e.kind == StudioEventKind::ParticipantLeft
                                && me.is_some()
                                && e.participant.as_ref().map(|p| &p.id) == me.as_ref();
                            let ended = me.is_some()
                                && e.broadcast.status == weir_store::BroadcastStatus::Ended;
                            let last =
                                e.kind == StudioEventKind::BroadcastDeleted || me_left || ended;
                            let item = out(*e, host);
                            return Some((item, if last { None } else { Some(rx) }));
                        }
                        Ok(_) => {}
                        Err(RecvError::Lagged(n)) => {
                            tracing::debug!(skipped = n, "studio subscriber lagged");
                        }
                        Err(RecvError::Closed) => return None,
                    }
                }
            }
        });
        Ok(stream::StreamExt::chain(
            stream::once(async move { out(first, host) }),
            rest,
        ))
    }
}
