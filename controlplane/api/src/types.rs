//! GraphQL object types, converted from the store's records. Times are Unix milliseconds.

use async_graphql::{Enum, ID, InputObject, SimpleObject};
use weir_store as s;

mod recording;

pub use recording::{Clip, Recording};

/// A channel's transcode setting.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum Transcode {
    /// As the data-plane node is configured (`[node.ladder] enabled`).
    NodeDefault,
    /// Always: viewers get the ladder's renditions (1080p…360p, never above the source).
    On,
    /// Never: the source is packaged as it comes.
    Off,
}

impl From<s::Transcode> for Transcode {
    fn from(t: s::Transcode) -> Self {
        match t {
            s::Transcode::NodeDefault => Transcode::NodeDefault,
            s::Transcode::On => Transcode::On,
            s::Transcode::Off => Transcode::Off,
        }
    }
}

impl From<Transcode> for s::Transcode {
    fn from(t: Transcode) -> Self {
        match t {
            Transcode::NodeDefault => s::Transcode::NodeDefault,
            Transcode::On => s::Transcode::On,
            Transcode::Off => s::Transcode::Off,
        }
    }
}

/// A channel's recording setting.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum RecordSetting {
    /// As the data-plane node is configured (`[node] record`).
    NodeDefault,
    /// Always: every broadcast becomes a recording (VOD).
    On,
    /// Never.
    Off,
}

impl From<s::RecordSetting> for RecordSetting {
    fn from(t: s::RecordSetting) -> Self {
        match t {
            s::RecordSetting::NodeDefault => RecordSetting::NodeDefault,
            s::RecordSetting::On => RecordSetting::On,
            s::RecordSetting::Off => RecordSetting::Off,
        }
    }
}

impl From<RecordSetting> for s::RecordSetting {
    fn from(t: RecordSetting) -> Self {
        match t {
            RecordSetting::NodeDefault => s::RecordSetting::NodeDefault,
            RecordSetting::On => s::RecordSetting::On,
            RecordSetting::Off => s::RecordSetting::Off,
        }
    }
}

/// A role.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum Role {
    /// Operator.
    Admin,
    /// Creator; owns channels.
    Owner,
    /// Moderates a channel.
    Moderator,
    /// Studio guest on a channel.
    Guest,
    /// Watches.
    Viewer,
}

impl From<s::Role> for Role {
    fn from(r: s::Role) -> Self {
        match r {
            s::Role::Admin => Role::Admin,
            s::Role::Owner => Role::Owner,
            s::Role::Moderator => Role::Moderator,
            s::Role::Guest => Role::Guest,
            s::Role::Viewer => Role::Viewer,
        }
    }
}

impl From<Role> for s::Role {
    fn from(r: Role) -> Self {
        match r {
            Role::Admin => s::Role::Admin,
            Role::Owner => s::Role::Owner,
            Role::Moderator => s::Role::Moderator,
            Role::Guest => s::Role::Guest,
            Role::Viewer => s::Role::Viewer,
        }
    }
}

/// A user account.
#[derive(SimpleObject, Clone, Debug)]
pub struct User {
    /// Id.
    pub id: ID,
    /// Login name.
    pub username: String,
    /// E-mail.
    pub email: String,
    /// Global role.
    pub role: Role,
    /// Disabled accounts cannot log in.
    pub disabled: bool,
    /// Creation time (ms).
    pub created_at: i64,
}

impl From<s::User> for User {
    fn from(u: s::User) -> Self {
        Self {
            id: ID(u.id),
            username: u.username,
            email: u.email,
            role: u.role.into(),
            disabled: u.disabled,
            created_at: u.created_at,
        }
    }
}

/// Tokens returned by login and refresh.
// `Debug` (below) leaves the tokens out.
#[derive(SimpleObject, Clone)]
pub struct AuthPayload {
    /// JWT for `Authorization: Bearer` (short-lived).
    pub access_token: String,
    /// Access token expiry (Unix seconds).
    pub access_expires_at: i64,
    /// Opaque refresh token: single use, rotated by `refresh`.
    pub refresh_token: String,
    /// Refresh token expiry (ms).
    pub refresh_expires_at: i64,
    /// The user.
    pub user: User,
}

/// A per-channel role grant.
#[derive(SimpleObject, Clone, Debug)]
pub struct ChannelMember {
    /// User id.
    pub user_id: ID,
    /// Moderator or guest.
    pub role: Role,
}

/// A channel.
#[derive(SimpleObject, Clone, Debug)]
pub struct Channel {
    /// Id.
    pub id: ID,
    /// Owner's user id.
    pub owner_id: ID,
    /// URL name.
    pub slug: String,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Moderators and guests.
    pub members: Vec<ChannelMember>,
    /// The caller's role on this channel.
    pub my_role: Role,
    /// Whether its broadcasts are transcoded into adaptive renditions.
    pub transcode: Transcode,
    /// Whether its broadcasts are recorded (see `recordings`).
    pub record: RecordSetting,
    /// Creation time (ms).
    pub created_at: i64,
    /// Last update (ms).
    pub updated_at: i64,
}

impl Channel {
    /// Converts, with the caller's role.
    pub fn new(c: s::Channel, my_role: s::Role) -> Self {
        Self {
            id: ID(c.id),
            owner_id: ID(c.owner_id),
            slug: c.slug,
            title: c.title,
            description: c.description,
            members: c
                .members
                .into_iter()
                .map(|m| ChannelMember {
                    user_id: ID(m.user_id),
                    role: m.role.into(),
                })
                .collect(),
            my_role: my_role.into(),
            transcode: c.transcode.into(),
            record: c.record.into(),
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

/// Stream key metadata (the secret is never shown again).
#[derive(SimpleObject, Clone, Debug)]
pub struct StreamKey {
    /// Key id.
    pub key_id: ID,
    /// Channel.
    pub channel_id: ID,
    /// Issue time (ms).
    pub created_at: i64,
    /// Revocation time (ms).
    pub revoked_at: Option<i64>,
}

impl From<s::StreamKeyMeta> for StreamKey {
    fn from(k: s::StreamKeyMeta) -> Self {
        Self {
            key_id: ID(k.key_id),
            channel_id: ID(k.channel_id),
            created_at: k.created_at,
            revoked_at: k.revoked_at,
        }
    }
}

/// A newly issued key: the only time the secret is returned.
#[derive(SimpleObject, Clone, Debug)]
pub struct PlaybackUrl {
    /// Path and query on any data-plane node's HTTP origin, e.g.
    /// `/live/<slug>/index.m3u8?exp=…&sig=…`.
    pub url: String,
    /// When a signed URL stops working (Unix seconds); null for public channels.
    pub expires_at: Option<i64>,
}

/// A freshly issued stream key.
// `Debug` (below) leaves the secret out.
#[derive(SimpleObject, Clone)]
pub struct IssuedStreamKey {
    /// Metadata.
    pub key: StreamKey,
    /// The secret to paste into the encoder. Shown once.
    pub secret: String,
}

/// What `Debug` prints instead of a secret.
pub(crate) const REDACTED: &str = "<redacted>";

impl std::fmt::Debug for AuthPayload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthPayload")
            .field("access_token", &REDACTED)
            .field("access_expires_at", &self.access_expires_at)
            .field("refresh_token", &REDACTED)
            .field("refresh_expires_at", &self.refresh_expires_at)
            .field("user", &self.user)
            .finish()
    }
}

impl std::fmt::Debug for IssuedStreamKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedStreamKey")
            .field("key", &self.key)
            .field("secret", &REDACTED)
            .finish()
    }
}

/// Session state.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum StreamState {
    /// Connected, not yet producing media.
    Starting,
    /// Media flowing.
    Live,
    /// Over.
    Ended,
}

impl From<s::StreamState> for StreamState {
    fn from(v: s::StreamState) -> Self {
        match v {
            s::StreamState::Starting => StreamState::Starting,
            s::StreamState::Live => StreamState::Live,
            s::StreamState::Ended => StreamState::Ended,
        }
    }
}

/// A rendition.
#[derive(SimpleObject, Clone, Debug)]
pub struct Rendition {
    /// Name.
    pub name: String,
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
    /// Bits per second.
    pub bitrate: i64,
}

/// One rung of a transcode ladder.
#[derive(SimpleObject, Clone, Debug)]
pub struct TranscoderRung {
    /// Rendition name (`720p`, `source`).
    pub name: String,
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
    /// Video bits per second now (per-title mode moves it; a passthrough rung shows the
    /// table's nominal rate, 0 when it has none).
    pub bitrate: i64,
    /// The source's own frames, not re-encoded.
    pub passthrough: bool,
    /// Switched off because the transcoder could not keep up.
    pub dropped: bool,
}

/// What a stream's transcoder is doing, as its node last reported it.
#[derive(SimpleObject, Clone, Debug)]
pub struct Transcoder {
    /// Encoder in use (`x264enc`, `nvh264enc`); null when the source is passed through.
    pub encoder: Option<String>,
    /// Whether it cannot keep up and has switched rungs off.
    pub overloaded: bool,
    /// Encoded rungs switched off, from the top.
    pub dropped_rungs: i32,
    /// The rungs, top first.
    pub rungs: Vec<TranscoderRung>,
    /// Why the source is packaged as it came instead of transcoded.
    pub failure: Option<String>,
    /// When the node reported this (ms).
    pub updated_at: i64,
}

impl From<s::TranscoderStatus> for Transcoder {
    fn from(t: s::TranscoderStatus) -> Self {
        Self {
            encoder: t.encoder,
            overloaded: t.dropped_rungs > 0,
            dropped_rungs: i32::try_from(t.dropped_rungs).unwrap_or(i32::MAX),
            rungs: t
                .rungs
                .into_iter()
                .map(|r| TranscoderRung {
                    name: r.name,
                    width: r.width,
                    height: r.height,
                    bitrate: i64::try_from(r.bitrate).unwrap_or(i64::MAX),
                    passthrough: r.passthrough,
                    dropped: r.dropped,
                })
                .collect(),
            failure: t.failure,
            updated_at: t.updated_at,
        }
    }
}

/// Where a relay to a destination stands.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum RelayState {
    /// Resolving, connecting or waiting for the destination to accept the publish.
    Connecting,
    /// Publishing to the destination.
    Live,
    /// The last attempt failed; the node tries again after a back-off.
    Retrying,
    /// Given up: the destination cannot be used as configured (see `reason`).
    Failed,
    /// The broadcast ended and the destination was told.
    Stopped,
}

/// A stream's relay to one destination (multistreaming).
#[derive(SimpleObject, Clone, Debug)]
pub struct Relay {
    /// The destination.
    pub destination_id: ID,
    /// Where it stands.
    pub state: RelayState,
    /// Why it is retrying or failed.
    pub reason: Option<String>,
    /// Bits per second sent recently (0 unless live).
    pub bitrate: i64,
    /// When the node reported it (ms).
    pub updated_at: i64,
}

impl From<s::RelayStatus> for Relay {
    fn from(r: s::RelayStatus) -> Self {
        let state = match r.state.as_str() {
            "live" => RelayState::Live,
            "retrying" => RelayState::Retrying,
            "failed" => RelayState::Failed,
            "stopped" => RelayState::Stopped,
            _ => RelayState::Connecting,
        };
        Self {
            destination_id: ID(r.destination_id),
            state,
            reason: r.reason,
            bitrate: i64::try_from(r.bitrate).unwrap_or(i64::MAX),
            updated_at: r.updated_at,
        }
    }
}

/// How a stream reaches its node.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum IngestProtocol {
    /// RTMP or RTMPS, Enhanced RTMP included (OBS, ffmpeg).
    Rtmp,
    /// SRT (MPEG-TS over SRT).
    Srt,
    /// WebRTC (WHIP).
    Webrtc,
    /// The studio's program (its compositor) or a studio guest's forwarded track.
    Studio,
    /// A protocol this API version does not know.
    Other,
}

impl IngestProtocol {
    /// The protocol a data-plane node reports (`rtmp`, `srt`, `webrtc`, `studio`).
    pub fn from_name(name: &str) -> Self {
        match name.to_ascii_lowercase().as_str() {
            "rtmp" | "rtmps" => Self::Rtmp,
            "srt" => Self::Srt,
            "webrtc" | "whip" => Self::Webrtc,
            "studio" => Self::Studio,
            _ => Self::Other,
        }
    }
}

/// A publishing session.
#[derive(SimpleObject, Clone, Debug)]
pub struct Stream {
    /// Id.
    pub id: ID,
    /// Channel.
    pub channel_id: ID,
    /// State.
    pub state: StreamState,
    /// How it reaches the node.
    pub protocol: IngestProtocol,
    /// Data-plane node.
    pub node_id: Option<String>,
    /// Start (ms).
    pub started_at: i64,
    /// Went live (ms).
    pub live_at: Option<i64>,
    /// End (ms).
    pub ended_at: Option<i64>,
    /// Renditions.
    pub renditions: Vec<Rendition>,
    /// Peak viewers.
    pub peak_viewers: i64,
    /// The transcoder, for a transcoded stream: encoder, rungs, overload, failure.
    pub transcoder: Option<Transcoder>,
    /// Its relays to the channel's destinations.
    pub relays: Vec<Relay>,
}

impl From<s::Stream> for Stream {
    fn from(v: s::Stream) -> Self {
        Self {
            id: ID(v.id),
            channel_id: ID(v.channel_id),
            state: v.state.into(),
            protocol: IngestProtocol::from_name(&v.protocol),
            node_id: v.node_id,
            started_at: v.started_at,
            live_at: v.live_at,
            ended_at: v.ended_at,
            renditions: v
                .renditions
                .into_iter()
                .map(|r| Rendition {
                    name: r.name,
                    width: r.width,
                    height: r.height,
                    bitrate: r.bitrate as i64,
                })
                .collect(),
            peak_viewers: v.peak_viewers as i64,
            transcoder: v.transcoder.map(Into::into),
            relays: v.relays.into_iter().map(Into::into).collect(),
        }
    }
}

/// A relay destination. The stream key is write-only: only its last characters show.
#[derive(SimpleObject, Clone, Debug)]
pub struct Destination {
    /// Id.
    pub id: ID,
    /// Channel.
    pub channel_id: ID,
    /// Name.
    pub name: String,
    /// Platform.
    pub platform: String,
    /// Ingest URL.
    pub url: String,
    /// `…` and the key's last 4 characters.
    pub stream_key_hint: String,
    /// Relaying on.
    pub enabled: bool,
    /// Creation time (ms).
    pub created_at: i64,
    /// The relay of the channel's current broadcast to it, when one is running or ran.
    pub status: Option<Relay>,
}

impl Destination {
    /// Converts, with the decrypted key's hint.
    pub fn new(d: s::Destination, plain_key: &str) -> Self {
        let tail: String = {
            let chars: Vec<char> = plain_key.chars().collect();
            chars[chars.len().saturating_sub(4)..].iter().collect()
        };
        Self {
            id: ID(d.id),
            channel_id: ID(d.channel_id),
            name: d.name,
            platform: d.platform,
            url: d.url,
            stream_key_hint: format!("…{tail}"),
            enabled: d.enabled,
            created_at: d.created_at,
            status: None,
        }
    }
}

/// The result of `testDestination`.
#[derive(SimpleObject, Clone, Debug)]
pub struct DestinationTest {
    /// The destination accepted the connection and the stream key.
    pub ok: bool,
    /// What happened (why it failed; never the key).
    pub message: String,
    /// How long the handshake and `publish` took, when it worked.
    pub millis: Option<i64>,
}

/// Who may watch.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum Access {
    /// Anyone.
    Public,
    /// Subscribers only.
    SubscriberOnly,
}

/// A channel's playback policy.
#[derive(SimpleObject, Clone, Debug)]
pub struct Entitlement {
    /// Channel.
    pub channel_id: ID,
    /// Access.
    pub access: Access,
    /// Playback URLs must be signed.
    pub signed_urls: bool,
    /// Signed URL lifetime (s).
    pub signed_url_ttl_secs: u32,
    /// Allowed countries; empty: all.
    pub geo_allow: Vec<String>,
    /// Minimum age.
    pub min_age: Option<u8>,
    /// Last update (ms).
    pub updated_at: i64,
}

impl From<s::Entitlement> for Entitlement {
    fn from(e: s::Entitlement) -> Self {
        Self {
            channel_id: ID(e.channel_id),
            access: match e.access {
                s::Access::Public => Access::Public,
                s::Access::SubscriberOnly => Access::SubscriberOnly,
            },
            signed_urls: e.signed_urls,
            signed_url_ttl_secs: e.signed_url_ttl_secs,
            geo_allow: e.geo_allow,
            min_age: e.min_age,
            updated_at: e.updated_at,
        }
    }
}

/// New playback policy.
#[derive(InputObject, Clone, Debug)]
pub struct EntitlementInput {
    /// Access.
    pub access: Access,
    /// Playback URLs must be signed.
    pub signed_urls: bool,
    /// Signed URL lifetime (s), 1 to 604800.
    #[graphql(default = 3600)]
    pub signed_url_ttl_secs: u32,
    /// Allowed countries (ISO 3166 alpha-2); empty: all.
    #[graphql(default)]
    pub geo_allow: Vec<String>,
    /// Minimum age.
    pub min_age: Option<u8>,
}

/// A data-plane node.
#[derive(SimpleObject, Clone, Debug)]
pub struct Node {
    /// Id.
    pub id: ID,
    /// Address.
    pub address: String,
    /// Shards.
    pub shards: u32,
    /// Version.
    pub version: String,
    /// Streams ingested.
    pub streams: u32,
    /// Viewers served.
    pub viewers: i64,
    /// CPU use (0–1).
    pub cpu: f32,
    /// Egress (bit/s).
    pub egress_bps: i64,
    /// Last heartbeat (ms).
    pub last_seen: i64,
}

impl From<s::Node> for Node {
    fn from(n: s::Node) -> Self {
        Self {
            id: ID(n.id),
            address: n.address,
            shards: n.shards,
            version: n.version,
            streams: n.load.streams,
            viewers: n.load.viewers as i64,
            cpu: n.load.cpu,
            egress_bps: n.load.egress_bps as i64,
            last_seen: n.last_seen,
        }
    }
}

/// A channel's live viewer count.
#[derive(SimpleObject, Clone, Debug)]
pub struct ViewerCount {
    /// Channel.
    pub channel_id: ID,
    /// Viewers over all nodes.
    pub count: i64,
}

#[cfg(test)]
mod protocol_tests {
    use super::IngestProtocol;

    #[test]
    fn node_protocol_names_map_to_the_enum() {
        for (name, p) in [
            ("rtmp", IngestProtocol::Rtmp),
            ("srt", IngestProtocol::Srt),
            ("webrtc", IngestProtocol::Webrtc),
            ("WEBRTC", IngestProtocol::Webrtc),
            ("studio", IngestProtocol::Studio),
            ("quic", IngestProtocol::Other),
        ] {
            assert_eq!(IngestProtocol::from_name(name), p, "{name}");
        }
    }
}
