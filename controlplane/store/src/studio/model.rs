//! The studio's records: broadcasts, participants, invitations, uploaded images.

use serde::{Deserialize, Serialize};

/// Where a studio broadcast stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BroadcastStatus {
    /// Created (for now or later); the studio is open, the program is not on the channel.
    Scheduled,
    /// The program goes to the channel and its destinations.
    Live,
    /// Over: nobody can join, participants' keys are refused.
    Ended,
}

/// How the program places the participants on stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StudioLayout {
    /// One participant fills the canvas.
    Solo,
    /// Equal tiles.
    #[default]
    Grid,
    /// The spotlight large, the others small below.
    Spotlight,
    /// The spotlight large on the left, the others stacked on the right.
    Sidebar,
    /// The spotlight fills the canvas, the next one in an inset.
    Pip,
}

/// A lower-third banner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StudioBanner {
    /// First line.
    pub title: String,
    /// Second line (may be empty).
    pub subtitle: String,
    /// The chat message it shows, when picked from the chat.
    #[serde(default)]
    pub chat_message_id: Option<u64>,
}

/// A studio broadcast: one show, its scene settings and its state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StudioBroadcast {
    /// Id.
    pub id: String,
    /// The channel the program goes live on.
    pub channel_id: String,
    /// The host's user id.
    pub owner_id: String,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Status.
    pub status: BroadcastStatus,
    /// When it is planned to start (ms), if planned.
    pub scheduled_at: Option<i64>,
    /// When it went live.
    pub started_at: Option<i64>,
    /// When it ended.
    pub ended_at: Option<i64>,
    /// The program's layout.
    pub layout: StudioLayout,
    /// The featured participant.
    pub spotlight: Option<String>,
    /// Layout transition length (ms; 0 = cut).
    pub transition_ms: u32,
    /// Background image id.
    pub background_image: Option<String>,
    /// Logo image id.
    pub logo_image: Option<String>,
    /// Overlay image id.
    pub overlay_image: Option<String>,
    /// The banner shown now.
    pub banner: Option<StudioBanner>,
    /// Record each participant's own stream too (isolated tracks).
    pub record_isolated: bool,
    /// Id of the channel stream key the program went live with (revoked at the end).
    #[serde(default)]
    pub live_key_id: Option<String>,
    /// Creation time.
    pub created_at: i64,
    /// Last change.
    pub updated_at: i64,
}

impl StudioBroadcast {
    /// The short id used in node stream names (the random part of the id).
    pub fn short_id(&self) -> &str {
        short_id(&self.id)
    }

    /// The hidden node stream the compositor publishes the program as.
    pub fn program_stream(&self) -> String {
        format!("studio-{}-pgm", self.short_id())
    }
}

/// The last 12 characters of an id (its random part for [`crate::ids::new_id`] ids).
pub fn short_id(id: &str) -> &str {
    let cut = id.len().saturating_sub(12);
    id.get(cut..).unwrap_or(id)
}

/// A participant's role in the studio.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParticipantRole {
    /// The broadcast's host (an account with rights on the channel).
    Host,
    /// A guest who joined with an invitation.
    Guest,
}

/// Whether a participant is in the program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// In the program.
    OnStage,
    /// Waiting, not in the program.
    Backstage,
}

/// Someone in a studio broadcast.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Participant {
    /// Id.
    pub id: String,
    /// The broadcast.
    pub broadcast_id: String,
    /// Host or guest.
    pub role: ParticipantRole,
    /// Shown name.
    pub display_name: String,
    /// Their account, if they have one (hosts do).
    pub user_id: Option<String>,
    /// On stage or backstage.
    pub stage: Stage,
    /// Order on stage (when they were brought on; lower first).
    pub stage_order: i64,
    /// Microphone in the mix.
    pub audio_enabled: bool,
    /// Camera shown.
    pub video_enabled: bool,
    /// The host turned the microphone off (the guest cannot turn it back on).
    #[serde(default)]
    pub audio_locked: bool,
    /// The host turned the camera off (the guest cannot turn it back on).
    #[serde(default)]
    pub video_locked: bool,
    /// Mix gain, 0.0–2.0.
    pub gain: f32,
    /// When they joined.
    pub joined_at: i64,
    /// When they left or were removed.
    pub left_at: Option<i64>,
    /// The node stream they publish to (WHIP).
    pub stream: String,
    /// The id of their publish key.
    pub key_id: String,
}

impl Participant {
    /// Still in the studio.
    pub fn present(&self) -> bool {
        self.left_at.is_none()
    }
}

/// An invitation to a broadcast (the signed token itself is never stored).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Invitation {
    /// Id: the nonce the token carries.
    pub id: String,
    /// The broadcast.
    pub broadcast_id: String,
    /// Who created it.
    pub created_by: String,
    /// Expiry (ms).
    pub expires_at: i64,
    /// Revocation time.
    pub revoked_at: Option<i64>,
    /// Guests who joined with it.
    pub uses: u32,
    /// Creation time.
    pub created_at: i64,
}

/// A studio participant's publish key, by key id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StudioKey {
    /// The key id.
    pub key_id: String,
    /// The participant.
    pub participant_id: String,
    /// Their broadcast.
    pub broadcast_id: String,
}

/// An uploaded image (its bytes are stored beside it, in chunks).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StudioImage {
    /// Hex SHA-256 of the bytes.
    pub id: String,
    /// The channel it was uploaded for.
    pub channel_id: String,
    /// `image/png` or `image/jpeg`.
    pub mime: String,
    /// Pixels.
    pub width: u32,
    /// Pixels.
    pub height: u32,
    /// Bytes.
    pub size: u64,
    /// Upload time.
    pub created_at: i64,
}
