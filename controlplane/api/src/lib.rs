//! The GraphQL API of the control plane.
//!
//! - [`router`] / [`serve`]: axum routes at `/graphql` — POST for queries and mutations,
//!   GET with a websocket upgrade for subscriptions (graphql-ws and the legacy
//!   subscriptions-transport-ws protocols), GET from a browser for GraphiQL.
//!   [`serve_with_routes`] serves other control-plane routes (the chat gateway's) on the
//!   same port.
//! - [`ApiState`]: store, account service, the binary's [`StreamKeyIssuer`], limits; it
//!   also carries the event-ingest API the data plane calls ([`ApiState::stream_started`],
//!   [`ApiState::stream_live`], [`ApiState::stream_ended`], [`ApiState::viewer_count`],
//!   [`ApiState::node_heartbeat`]) which feeds subscriptions.
//! - `liveChannel`: what a watch page shows anyone (title, live, viewers); `/graphql`
//!   answers cross-origin requests (CORS, any origin: the API takes bearer tokens, never
//!   cookies), so the node's watch page on another port can call it.
//! - Chat ([`ApiState::set_chat`]): `chatHistory`, `moderateChat`, `chatMessages` over
//!   the `weir-chat` gateway (whose own websocket and HTTP routes
//!   [`serve_with_routes`] can serve on the same port).
//! - The studio ([`studio`]): broadcasts, participants, invitations, images, the
//!   program scene for the data plane's [`StudioDirector`]
//!   ([`ApiState::set_studio_director`]), `studioEvents` signalling, image uploads on
//!   `/v1/studio/<broadcast>/images`, and [`ApiState::studio_publish`] for participants'
//!   publish keys.
//! - Clips: `createClip` / `deleteClip` and `Recording.clips`; the binary's
//!   [`ClipMaker`] ([`ApiState::set_clip_maker`]) cuts them on the recording's node.
//! - Destinations changed while live reach the broadcast at once through the binary's
//!   [`RelayDirector`] ([`ApiState::set_relay_director`]).
//! - [`node_api`]: the same ingest over HTTP for nodes in other processes (split mode).
//! - Every resolver checks the caller's role on the object (see `weir_auth::roles`);
//!   objects of other owners read as `NOT_FOUND`. Errors carry `extensions.code`
//!   ([`error::code`]).
//! - Limits: body size, query depth and complexity, token buckets per IP and per user
//!   (for `POST /graphql` and for each graphql-ws operation alike), `login`/`register`
//!   per IP, failed logins per account (in `weir_auth`), argon2 on a bounded pool.
//! - graphql-ws connections re-check their token and account at each operation and
//!   periodically, and are closed (4401) when the token expired, the account was disabled
//!   or deleted, or the session was revoked.
//! - The SDL ([`sdl`]) is committed at `schemas/graphql/schema.graphql`; a test compares
//!   them (`WEIR_UPDATE_SCHEMA=1 cargo test -p weir-api` rewrites the file).

mod chat;
mod clipper;
mod ctx;
mod director;
pub mod error;
mod events;
mod graphiql;
mod http;
mod issuer;
mod mutation;
pub mod node_api;
mod pagination;
mod playback;
mod prober;
mod query;
pub mod ratelimit;
mod relays;
mod schema;
mod state;
pub mod studio;
mod subscription;
mod types;
mod watch;
mod ws;

pub use clipper::{ClipFuture, ClipMaker, MadeClip};
pub use director::{
    DirectorFuture, ProgramScene, SceneBanner, SceneImage, SceneLayout, SceneParticipant,
    StudioDirector,
};
pub use events::{Event, RecordingFinished, RecordingStarted, RelayDestination};
pub use http::{ClientIp, router, serve, serve_with_routes, serve_with_shutdown};
pub use issuer::StreamKeyIssuer;
pub use prober::{DestinationProber, ProbeFuture};
pub use relays::RelayDirector;
pub use schema::{ApiSchema, build_schema, sdl};
pub use state::{ApiConfig, ApiState};
pub use studio::{StudioEvent, StudioEventKind, StudioGuest, StudioPublish};
