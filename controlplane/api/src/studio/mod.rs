//! The studio in the control plane: broadcasts, participants, invitations, images, the
//! program scene sent to the data plane's compositor ([`crate::StudioDirector`]), and
//! the signalling the studio page subscribes to.
//!
//! # Flow
//!
//! 1. The host (an account with `ManageStudio` on the channel) creates a broadcast
//!    (`createStudioBroadcast`), uploads images (`POST /v1/studio/<broadcast>/images`),
//!    and invites guests (`inviteGuest` → a signed, expiring token and the page path
//!    carrying it; `revokeInvitation` withdraws it).
//! 2. A guest opens the link and calls `joinStudio(invitation, displayName)` without an
//!    account: the answer holds a *participant token* (send it as
//!    `Authorization: Bearer …` on `POST /graphql`, or as `token` in graphql-ws
//!    `connection_init`), the participant, and the WHIP path with the publish key of the
//!    participant's own node stream (`studio-<broadcast>-<participant>`). The host joins
//!    the same way with `joinStudioAsHost` (an account's access token).
//! 3. Everyone publishes WHIP to the node and waits backstage; the host calls
//!    `bringOnStage` / `sendBackstage` / `removeParticipant`, `setParticipantMedia`
//!    (mute, hide, gain; a guest may turn its own camera and microphone off, and on again
//!    unless the host turned them off), `setLayout`, `setOverlays`, `showBanner` (a
//!    name and title, or a chat message by id) and `hideBanner`. Each change that
//!    affects the program sends the whole scene to the director (`compose`), whose
//!    composed program is the hidden stream `StudioBroadcast.programStream`
//!    (`programHlsPath`, `programWhepPath` on the node's HTTP port): the host's preview.
//! 4. `goLive` forwards the program to the channel (a channel stream key minted for it:
//!    LL-HLS/WebRTC viewers, recording, relays to the channel's destinations);
//!    `endBroadcast` ends it, everyone leaves and every participant key is refused.
//!
//! # Signalling: `subscription studioEvents(broadcastId)`
//!
//! Over graphql-ws on `/graphql` (host: access token; guest: participant token). Each
//! event is `{ kind, broadcast { … }, participant { … } }` with the broadcast's whole
//! state after the change (participants included), so a page can render from the latest
//! event alone. The first event is a `SNAPSHOT`; then:
//!
//! | kind | when | `participant` |
//! |---|---|---|
//! | `PARTICIPANT_JOINED` | `joinStudio`, `joinStudioAsHost` | who joined |
//! | `PARTICIPANT_LEFT` | `removeParticipant` (or the end) | who left |
//! | `PARTICIPANT_CHANGED` | `setParticipantMedia` | who changed |
//! | `STAGE_CHANGED` | `bringOnStage`, `sendBackstage` | who moved |
//! | `LAYOUT_CHANGED` | `setLayout` | — |
//! | `OVERLAYS_CHANGED` | `setOverlays` | — |
//! | `BANNER_CHANGED` | `showBanner`, `hideBanner` | — |
//! | `STATUS_CHANGED` | `goLive` (scheduled → live), `endBroadcast` (→ ended) | — |
//! | `BROADCAST_CHANGED` | `updateStudioBroadcast` | — |
//! | `BROADCAST_DELETED` | `deleteStudioBroadcast` (the stream then ends) | — |
//!
//! A guest's subscription ends when the guest leaves or is removed. Media never goes
//! through here: WHIP/WHEP on the node.
//!
//! # Roles
//!
//! Host operations need `ManageStudio` on the channel (owner, admin); reading needs
//! `ReadStudio` (moderators and channel guests too) or a participant token of that
//! broadcast. A participant token authorises only its holder's own actions
//! (`setParticipantMedia` on itself, `removeParticipant` of itself, reading its broadcast
//! and subscribing to it); any host operation answers `FORBIDDEN` saying so.

mod access;
mod events;
mod http;
mod live;
mod mutation;
mod publish;
mod query;
mod scene;
mod stage;
pub mod token;
mod types;

pub use access::StudioGuest;
pub use events::{StudioEvent, StudioEventKind};
pub use publish::StudioPublish;

pub(crate) use access::authenticate_participant;
pub(crate) use events::StudioSubscriptions;
pub(crate) use http::routes;
pub(crate) use live::LiveMutations;
pub(crate) use mutation::StudioMutations;
pub(crate) use query::StudioQueries;
pub(crate) use stage::StageMutations;

/// How long a participant token lasts.
pub(crate) const PARTICIPANT_TTL_SECS: u64 = 12 * 3600;
/// Default and longest invitation lifetime.
pub(crate) const INVITATION_TTL_SECS: u64 = 24 * 3600;
pub(crate) const MAX_INVITATION_TTL_SECS: u64 = 30 * 24 * 3600;
