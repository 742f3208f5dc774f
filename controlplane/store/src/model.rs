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

/// An account. `Debug` leaves the password hash out.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
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

/// A stored refresh token (the token itself is never stored, only its hash). `Debug`
/// leaves the hash out (it is the record's lookup key).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
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
    /// Whether its broadcasts are transcoded into the ladder.
    #[serde(default)]
    pub transcode: Transcode,
    /// Whether its broadcasts are recorded (VOD).
    #[serde(default)]
    pub record: RecordSetting,
    /// Creation time.
    pub created_at: i64,
    /// Last update.
    pub updated_at: i64,
}

/// A channel's transcode setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transcode {
    /// As the data-plane node is configured (`[node.ladder] enabled`).
    #[default]
    NodeDefault,
    /// Always run the ladder (adaptive renditions).
    On,
    /// Never: the source is packaged as it comes.
    Off,
}

/// A channel's recording setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordSetting {
    /// As the data-plane node is configured (`[node] record`).
    #[default]
    NodeDefault,
    /// Always record its broadcasts.
    On,
    /// Never.
    Off,
}

impl RecordSetting {
    /// The node's view: `Some(true)` on, `Some(false)` off, `None` its own default.
    pub fn as_override(self) -> Option<bool> {
        match self {
            RecordSetting::NodeDefault => None,
            RecordSetting::On => Some(true),
            RecordSetting::Off => Some(false),
        }
    }
}

impl Transcode {
    /// The node's view: `Some(true)` on, `Some(false)` off, `None` its own default.
    pub fn as_override(self) -> Option<bool> {
        match self {
            Transcode::NodeDefault => None,
            Transcode::On => Some(true),
            Transcode::Off => Some(false),
        }
    }
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

/// One rung of a stream's transcode ladder, as its node last reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TranscoderRung {
    /// Rendition name (`720p`, `source`).
    pub name: String,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Video bits per second (per-title mode moves it; nominal or 0 for a passthrough rung).
    pub bitrate: u64,
    /// The source's own frames, not re-encoded.
    pub passthrough: bool,
    /// Switched off because the transcoder could not keep up.
    pub dropped: bool,
}

/// What a stream's transcoder is doing, as its node last reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TranscoderStatus {
    /// Encoder in use (`x264enc`, `nvh264enc`); none when the source is passed through.
    pub encoder: Option<String>,
    /// The ladder's rungs, top first.
    pub rungs: Vec<TranscoderRung>,
    /// Encoded rungs switched off from the top because the transcoder fell behind.
    pub dropped_rungs: u32,
    /// Why the source is packaged as it came instead of transcoded.
    pub failure: Option<String>,
    /// When the control plane received it (ms; set by the store).
    #[serde(default)]
    pub updated_at: i64,
}

impl TranscoderStatus {
    /// Most rungs kept (a ladder has a handful).
    pub const MAX_RUNGS: usize = 16;
    /// Longest name or failure text kept, in bytes.
    pub const MAX_TEXT: usize = 512;

    /// The status cut to the bounds above (it comes from a node over the network).
    pub fn bounded(mut self) -> Self {
        fn cut(s: &mut String) {
            if s.len() > TranscoderStatus::MAX_TEXT {
                let mut end = TranscoderStatus::MAX_TEXT;
                while !s.is_char_boundary(end) {
                    end -= 1;
                }
                s.truncate(end);
            }
        }
        self.rungs.truncate(Self::MAX_RUNGS);
        for r in &mut self.rungs {
            cut(&mut r.name);
        }
        if let Some(e) = &mut self.encoder {
            cut(e);
        }
        if let Some(f) = &mut self.failure {
            cut(f);
        }
        self
    }
}

/// Where a stream's relay to one destination stands, as its node last reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayStatus {
    /// The destination.
    pub destination_id: String,
    /// `connecting`, `live`, `retrying`, `failed` or `stopped`.
    pub state: String,
    /// Why it is retrying or failed.
    pub reason: Option<String>,
    /// Bits per second sent recently (0 unless live).
    pub bitrate: u64,
    /// When the control plane received it (ms; set by the store).
    #[serde(default)]
    pub updated_at: i64,
}

impl RelayStatus {
    /// Most relays kept per stream (a node relays a broadcast to up to 1,024).
    pub const MAX_PER_STREAM: usize = 256;
    /// The states a node may report.
    pub const STATES: [&'static str; 5] = ["connecting", "live", "retrying", "failed", "stopped"];
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
    /// The transcoder's last report, for a transcoded stream.
    #[serde(default)]
    pub transcoder: Option<TranscoderStatus>,
    /// Its relays to the channel's destinations (multistreaming).
    #[serde(default)]
    pub relays: Vec<RelayStatus>,
}

/// A relay destination, with its stream key sealed. `Debug` leaves the sealed key out.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
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
    /// Where players fetch it (the recording node's `/vod/<id>/index.m3u8`).
    #[serde(default)]
    pub playback_url: Option<String>,
    /// Media segments.
    #[serde(default)]
    pub segments: u64,
    /// When it was finished (ms); None while it is being recorded.
    #[serde(default)]
    pub ended_at: Option<i64>,
    /// For a studio guest's isolated track: the participant it is of (the recording is
    /// listed under the studio broadcast's channel).
    #[serde(default)]
    pub studio_participant_id: Option<String>,
}

/// Where a clip is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClipStatus {
    /// Being cut on the recording's node.
    Pending,
    /// Playable.
    Ready,
    /// The cut failed (`Clip::error` says why).
    Failed,
}

/// A highlight of a recording, cut on the node that has it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Clip {
    /// Id (also its directory on the node: the capability to play it).
    pub id: String,
    /// The recording it is cut from.
    pub recording_id: String,
    /// The recording's channel.
    pub channel_id: String,
    /// Title.
    pub title: Option<String>,
    /// Start, ms from the recording's first frame.
    pub start_ms: u64,
    /// End (exclusive), ms, as asked.
    pub end_ms: u64,
    /// Where it is.
    pub status: ClipStatus,
    /// Why it failed.
    #[serde(default)]
    pub error: Option<String>,
    /// The HLS playlist (once ready).
    #[serde(default)]
    pub hls_url: Option<String>,
    /// The MP4 download (once ready).
    #[serde(default)]
    pub mp4_url: Option<String>,
    /// Its real duration (once ready), ms.
    #[serde(default)]
    pub duration_ms: Option<u64>,
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
    /// Where the control plane reaches the node's studio director
    /// (`http://host:port`), when the node runs one.
    #[serde(default)]
    pub studio_url: Option<String>,
}

/// What `Debug` prints instead of a secret.
pub(crate) const REDACTED: &str = "<redacted>";

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("email", &self.email)
            .field("password_hash", &REDACTED)
            .field("role", &self.role)
            .field("disabled", &self.disabled)
            .field("created_at", &self.created_at)
            .finish()
    }
}

impl std::fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefreshToken")
            .field("token_hash", &REDACTED)
            .field("user_id", &self.user_id)
            .field("family_id", &self.family_id)
            .field("expires_at", &self.expires_at)
            .field("used", &self.used)
            .field("created_at", &self.created_at)
            .finish()
    }
}

impl std::fmt::Debug for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Destination")
            .field("id", &self.id)
            .field("channel_id", &self.channel_id)
            .field("name", &self.name)
            .field("platform", &self.platform)
            .field("url", &self.url)
            .field("stream_key_sealed", &REDACTED)
            .field("enabled", &self.enabled)
            .field("created_at", &self.created_at)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_holds_no_secrets() {
        let u = User {
            id: "u1".into(),
            username: "alice".into(),
            email: "a@example.com".into(),
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$SALTSALT$HASHHASH".into(),
            role: Role::Owner,
            disabled: false,
            created_at: 1,
        };
        let t = RefreshToken {
            token_hash: "5f2b0cafe0123456789abcdef".into(),
            user_id: "u1".into(),
            family_id: "fam".into(),
            expires_at: 2,
            used: false,
            created_at: 1,
        };
        let d = Destination {
            id: "d1".into(),
            channel_id: "c1".into(),
            name: "yt".into(),
            platform: "youtube".into(),
            url: "rtmp://a/b".into(),
            stream_key_sealed: "c2VhbGVkLWtleS1ieXRlcw".into(),
            enabled: true,
            created_at: 1,
        };
        let patch = crate::DestinationPatch {
            stream_key: Some("live_plaintext_key".into()),
            ..Default::default()
        };
        let out = format!(
            "{u:?} {t:?} {d:?} {patch:?} {:?}",
            crate::Consume::Replayed(t.clone())
        );
        for secret in [
            "argon2id",
            "HASHHASH",
            "5f2b0cafe",
            "c2VhbGVk",
            "live_plaintext_key",
        ] {
            assert!(!out.contains(secret), "{secret} leaked: {out}");
        }
        assert!(out.contains("alice") && out.contains("<redacted>"), "{out}");
    }
}
