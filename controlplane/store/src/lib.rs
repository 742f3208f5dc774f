//! Control-plane storage: the records (users, refresh tokens, channels, stream-key
//! metadata and revocations, streams, destinations with sealed keys, recordings,
//! entitlements, follows, nodes, viewer counts, studio broadcasts with their participants,
//! invitations and images) and the backends that keep them.
//!
//! Shape: backends implement one small trait, [`Kv`] (get / put with TTL / delete / list a
//! bucket / compare-and-swap). [`Store`] implements the domain operations once over any
//! `Kv`, so every backend gets identical semantics, checked by one [`conformance`] suite:
//!
//! - [`EmbeddedKv`]: a redb file in a data directory (single node, default, survives restart);
//! - [`EtcdKv`]: etcd (split deployments; key layout in `schemas/etcd/keys.md`);
//! - `ScyllaKv` (cargo feature `scylla`): Scylla/Cassandra (history at scale; DDL in
//!   `schemas/cql/weir.cql`, statements checked by [`cql`]);
//! - [`MemoryKv`], for tests.
//!
//! Destination stream keys are sealed with ChaCha20-Poly1305 ([`SecretBox`]) before they
//! reach any backend.

mod channels;
mod child;
mod clips;
pub mod conformance;
pub mod cql;
mod crypto;
mod destinations;
mod embedded;
mod entitlements;
mod error;
mod etcd;
mod follows;
pub mod ids;
mod keys;
mod kv;
mod memory;
mod model;
mod nodes;
mod recordings;
#[cfg(feature = "scylla")]
mod scylla;
mod store;
mod streams;
pub mod studio;
mod tokens;
mod users;

pub use channels::normalize_slug;
pub use crypto::SecretBox;
pub use destinations::DestinationPatch;
pub use embedded::EmbeddedKv;
pub use error::{Result, StoreError};
pub use etcd::EtcdKv;
pub use keys::Revocation;
pub use kv::Kv;
pub use memory::MemoryKv;
pub use model::*;
#[cfg(feature = "scylla")]
pub use scylla::ScyllaKv;
pub use store::Store;
pub use studio::{
    BroadcastPatch, BroadcastStatus, Invitation, MediaPatch, NewBroadcast, NewParticipant,
    OverlayPatch, Participant, ParticipantRole, Stage, StudioBanner, StudioBroadcast, StudioImage,
    StudioKey, StudioLayout, UploadError,
};
pub use tokens::Consume;
pub use users::{normalize_email, normalize_username};
