//! The records the control plane keeps. Times are Unix milliseconds.

use serde::{Deserialize, Serialize};

/// A role. Users carry a global role (`Admin`, `Owner` for creators, `Viewer`); channels
/// grant per-channel roles (`Moderator`, `Guest`) to other users.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Operator: everything, every owner's objects, nodes.
    Admin,
    /// A creator: owns channels and everything under them.
    Owner,
    /// Moderates a channel: reads its streams, recordings and viewers.
    Moderator,
    /// A studio guest on a channel: reads its live state.
    Guest,
    /// Watches; owns nothing.
    Viewer,
}

impl Role {
    /// The lowercase name used in storage and tokens.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Owner => "owner",
            Role::Moderator => "moderator",
            Role::Guest => "guest",
            Role::Viewer => "viewer",
        }
    }

    /// Parses [`Role::as_str`] output.
    pub fn parse(s: &str) -> Option<Role> {
        Some(match s {
            "admin" => Role::Admin,
            "owner" => Role::Owner,
            "moderator" => Role::Moderator,
            "guest" => Role::Guest,
            "viewer" => Role::Viewer,
            _ => return None,
        })
    }
}

/// An account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    /// Id.
    pub id: String,
    /// Unique login name (lowercase `[a-z0-9_.-]`).
    pub username: String,
    /// Unique e-mail (lowercase).
    pub email: String,
    /// Argon2 PHC string.
    pub password_hash: String,
    /// Global role.
    pub role: Role,
    /// Disabled accounts cannot log in or refresh.
    pub disabled: bool,
    /// Creation time.
    pub created_at: i64,
}

/// A stored refresh token (the token itself is never stored, only its hash).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RefreshToken {
    /// Hex SHA-256 of the opaque token.
    pub token_hash: String,
    /// Owner.
    pub user_id: String,
    /// Rotation family: every token issued from one login shares it.
    pub family_id: String,
    /// Expiry.
    pub expires_at: i64,
    /// Set when the token was exchanged; a second use is a replay.
    pub used: bool,
    /// Issue time.
    pub created_at: i64,
}

/// A per-channel role grant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelMember {
    /// The user.
    pub user_id: String,
    /// `Moderator` or `Guest`.
    pub role: Role,
}

/// A channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Channel {
    /// Id.
    pub id: String,
    /// Owner's user id.
    pub owner_id: String,
    /// Unique URL name.
    pub slug: String,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Moderators and guests.
    pub members: Vec<ChannelMember>,
    /// Creation time.
    pub created_at: i64,
    /// Last update.
    pub updated_at: i64,
}

impl Channel {
    /// The per-channel role of `user_id`, if any (owner included).
    pub fn member_role(&self, user_id: &str) -> Option<Role> {
        if self.owner_id == user_id {
            return Some(Role::Owner);
        }
        self.members
            .iter()
            .find(|m| m.user_id == user_id)
            .map(|m| m.role)
    }
}

/// Metadata of an issued stream key (the secret itself is never stored).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamKeyMeta {
    /// Key id (embedded in the key, checked by the data plane).
    pub key_id: String,
    /// Channel.
    pub channel_id: String,
    /// Issue time.
    pub created_at: i64,
    /// Revocation time.
    pub revoked_at: Option<i64>,
}

/// A stream (one publishing session).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StreamState {
    /// Ingest connected, not yet producing media.
    Starting,
    /// Media flowing.
    Live,
    /// Over.
    Ended,
}

/// One rendition of a stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rendition {
    /// Name (`source`, `720p`…).
    pub name: String,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Bits per second.
    pub bitrate: u64,
}

/// A publishing session of a channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stream {
    /// Id.
    pub id: String,
    /// Channel.
    pub channel_id: String,
    /// State.
    pub state: StreamState,
    /// Ingest protocol (`rtmp`, `srt`, `webrtc`).
    pub protocol: String,
    /// The data-plane node carrying it.
    pub node_id: Option<String>,
    /// Start time.
    pub started_at: i64,
    /// When it went live.
    pub live_at: Option<i64>,
    /// End time.
    pub ended_at: Option<i64>,
    /// Renditions.
    pub renditions: Vec<Rendition>,
    /// Highest viewer count seen.
    pub peak_viewers: u64,
}

/// A relay destination, with its stream key sealed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Destination {
    /// Id.
    pub id: String,
    /// Channel.
    pub channel_id: String,
    /// Display name.
    pub name: String,
    /// Platform (`youtube`, `twitch`, `rtmp`…).
    pub platform: String,
    /// Ingest URL.
    pub url: String,
    /// The destination's stream key, encrypted ([`crate::SecretBox`]).
    pub stream_key_sealed: String,
    /// Whether relaying is on.
    pub enabled: bool,
    /// Creation time.
    pub created_at: i64,
}

/// A recording of a stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recording {
    /// Id.
    pub id: String,
    /// Channel.
    pub channel_id: String,
    /// Stream it came from.
    pub stream_id: String,
    /// Where it lives (path or object-store URL).
    pub location: String,
    /// Duration.
    pub duration_ms: u64,
    /// Size.
    pub size_bytes: u64,
    /// Creation time.
    pub created_at: i64,
}

/// Who may watch a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    /// Anyone.
    Public,
    /// Only subscribers.
    SubscriberOnly,
}

/// The playback policy of a channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entitlement {
    /// Channel.
    pub channel_id: String,
    /// Access.
    pub access: Access,
    /// Playback URLs must be signed.
    pub signed_urls: bool,
    /// Lifetime of a signed URL.
    pub signed_url_ttl_secs: u32,
    /// Allowed countries (ISO codes); empty: everywhere.
    pub geo_allow: Vec<String>,
    /// Minimum viewer age, if any.
    pub min_age: Option<u8>,
    /// Last update.
    pub updated_at: i64,
}

impl Entitlement {
    /// The default policy: public, unsigned.
    pub fn public(channel_id: &str) -> Self {
        Self {
            channel_id: channel_id.to_string(),
            access: Access::Public,
            signed_urls: false,
            signed_url_ttl_secs: 3600,
            geo_allow: Vec::new(),
            min_age: None,
            updated_at: 0,
        }
    }
}

/// Load a node reports with each heartbeat.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeLoad {
    /// Streams ingested.
    pub streams: u32,
    /// Viewers served.
    pub viewers: u64,
    /// CPU use, 0.0–1.0 per core averaged.
    pub cpu: f32,
    /// Egress, bits per second.
    pub egress_bps: u64,
}

/// A data-plane node registered under a lease.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// Id.
    pub id: String,
    /// Address the control plane and peers use.
    pub address: String,
    /// Shard count.
    pub shards: u32,
    /// Version string.
    pub version: String,
    /// Load.
    pub load: NodeLoad,
    /// Last heartbeat.
    pub last_seen: i64,
}
