//! The studio: broadcasts (a show with its scene settings), participants (host and
//! guests, on stage or backstage), invitations (the signed token is made by the API; the
//! store keeps the nonce, expiry and revocation), participants' publish keys, and images
//! uploaded for backgrounds, logos and overlays.
//!
//! Layout (every backend, through [`crate::Kv`]):
//!
//! - `studio-broadcasts/<channel>` / `studio-broadcasts-index/<id>`: broadcasts;
//! - `studio-participants/<broadcast>` / `studio-participants-index/<id>`: participants;
//! - `studio-invitations/<broadcast>` / `studio-invitations-index/<id>`: invitations;
//! - `studio-keys/<key id>`: which participant a publish key belongs to;
//! - `studio-images/<channel>/<image id>` metadata, and the bytes in chunks of
//!   [`IMAGE_CHUNK`] under `studio-image-data/<channel>/<image id>` (etcd refuses values
//!   over 1.5 MiB).
//!
//! Every record is bounded: text lengths, [`MAX_PRESENT`] participants at once,
//! [`MAX_PARTICIPANT_RECORDS`] per broadcast, [`MAX_INVITATIONS`] per broadcast,
//! [`MAX_BROADCASTS`] per channel, [`MAX_IMAGES`] per channel of at most
//! [`image::MAX_IMAGE_BYTES`].

mod broadcasts;
pub mod image;
mod images;
pub use images::UploadError;
mod invitations;
mod model;
mod participants;

pub use broadcasts::{BroadcastPatch, NewBroadcast, OverlayPatch};
pub use model::*;
pub use participants::{MediaPatch, NewParticipant};

use crate::child::Kind;

/// Most participants in a studio at once.
pub const MAX_PRESENT: usize = 16;
/// Most participant records per broadcast (people who left included).
pub const MAX_PARTICIPANT_RECORDS: usize = 200;
/// Most invitations per broadcast.
pub const MAX_INVITATIONS: usize = 100;
/// Most broadcasts per channel.
pub const MAX_BROADCASTS: usize = 500;
/// Most images per channel.
pub const MAX_IMAGES: usize = 64;
/// Bytes per stored image chunk.
pub const IMAGE_CHUNK: usize = 256 * 1024;

pub(crate) const BROADCASTS: Kind = Kind {
    stem: "studio-broadcasts",
    what: "studio broadcast",
};
pub(crate) const PARTICIPANTS: Kind = Kind {
    stem: "studio-participants",
    what: "participant",
};
pub(crate) const INVITATIONS: Kind = Kind {
    stem: "studio-invitations",
    what: "invitation",
};
pub(crate) const STUDIO_KEYS: &str = "studio-keys";
