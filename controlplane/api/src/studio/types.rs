//! GraphQL types of the studio.

use async_graphql::{ComplexObject, Context, Enum, ID, SimpleObject};
use weir_store as s;

use crate::ctx::state;
use crate::error::{ApiResult, gql};

/// Where a broadcast stands.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum BroadcastStatus {
    /// Created; the studio is open, the program is not on the channel yet.
    Scheduled,
    /// The program goes to the channel and its destinations.
    Live,
    /// Over.
    Ended,
}

impl From<s::BroadcastStatus> for BroadcastStatus {
    fn from(v: s::BroadcastStatus) -> Self {
        match v {
            s::BroadcastStatus::Scheduled => Self::Scheduled,
            s::BroadcastStatus::Live => Self::Live,
            s::BroadcastStatus::Ended => Self::Ended,
        }
    }
}

/// How the program places the participants on stage.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum StudioLayout {
    /// One participant (the spotlight, else the first on stage) fills the canvas.
    Solo,
    /// Equal tiles (2×2, 3×3 … as the count needs).
    Grid,
    /// The spotlight large, the others in small tiles.
    Spotlight,
    /// The spotlight large on the left, the others stacked on the right.
    Sidebar,
    /// The spotlight fills the canvas, the next participant in an inset.
    Pip,
}

impl From<s::StudioLayout> for StudioLayout {
    fn from(v: s::StudioLayout) -> Self {
        match v {
            s::StudioLayout::Solo => Self::Solo,
            s::StudioLayout::Grid => Self::Grid,
            s::StudioLayout::Spotlight => Self::Spotlight,
            s::StudioLayout::Sidebar => Self::Sidebar,
            s::StudioLayout::Pip => Self::Pip,
        }
    }
}

impl From<StudioLayout> for s::StudioLayout {
    fn from(v: StudioLayout) -> Self {
        match v {
            StudioLayout::Solo => Self::Solo,
            StudioLayout::Grid => Self::Grid,
            StudioLayout::Spotlight => Self::Spotlight,
            StudioLayout::Sidebar => Self::Sidebar,
            StudioLayout::Pip => Self::Pip,
        }
    }
}

/// A participant's role.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum ParticipantRole {
    /// The host.
    Host,
    /// A guest (joined with an invitation).
    Guest,
}

/// On stage (in the program) or backstage.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum Stage {
    /// In the program.
    OnStage,
    /// Waiting.
    Backstage,
}

/// A lower-third banner.
#[derive(SimpleObject, Clone, Debug)]
pub struct StudioBanner {
    /// First line.
    pub title: String,
    /// Second line.
    pub subtitle: String,
    /// The chat message shown, when picked from the chat.
    pub chat_message_id: Option<i64>,
}

/// Someone in a studio.
#[derive(SimpleObject, Clone, Debug)]
pub struct Participant {
    /// Id.
    pub id: ID,
    /// The broadcast.
    pub broadcast_id: ID,
    /// Host or guest.
    pub role: ParticipantRole,
    /// Shown name.
    pub display_name: String,
    /// Their account, if any.
    pub user_id: Option<ID>,
    /// On stage or backstage.
    pub stage: Stage,
    /// Microphone in the mix.
    pub audio_enabled: bool,
    /// Camera shown.
    pub video_enabled: bool,
    /// The host turned the microphone off (only the host turns it on again).
    pub audio_locked: bool,
    /// The host turned the camera off (only the host turns it on again).
    pub video_locked: bool,
    /// Mix gain, 0.0–2.0.
    pub gain: f64,
    /// Join time.
    pub joined_at: i64,
    /// When they left (null while present).
    pub left_at: Option<i64>,
    /// The node stream they publish to (its LL-HLS: `/live/<stream>/index.m3u8`).
    pub stream: String,
    /// Where others watch this participant over WebRTC (`/whep/<stream>` on the node).
    pub whep_path: String,
}

impl From<s::Participant> for Participant {
    fn from(p: s::Participant) -> Self {
        Self {
            whep_path: format!("/whep/{}", p.stream),
            id: ID(p.id),
            broadcast_id: ID(p.broadcast_id),
            role: match p.role {
                s::ParticipantRole::Host => ParticipantRole::Host,
                s::ParticipantRole::Guest => ParticipantRole::Guest,
            },
            display_name: p.display_name,
            user_id: p.user_id.map(ID),
            stage: match p.stage {
                s::Stage::OnStage => Stage::OnStage,
                s::Stage::Backstage => Stage::Backstage,
            },
            audio_enabled: p.audio_enabled,
            video_enabled: p.video_enabled,
            audio_locked: p.audio_locked,
            video_locked: p.video_locked,
            gain: f64::from(p.gain),
            joined_at: p.joined_at,
            left_at: p.left_at,
            stream: p.stream,
        }
    }
}

/// An invitation (the token is shown once, by `inviteGuest`).
#[derive(SimpleObject, Clone, Debug)]
pub struct Invitation {
    /// Id.
    pub id: ID,
    /// The broadcast.
    pub broadcast_id: ID,
    /// Expiry.
    pub expires_at: i64,
    /// Revocation time.
    pub revoked_at: Option<i64>,
    /// Guests who joined with it.
    pub uses: i32,
    /// Creation time.
    pub created_at: i64,
}

impl From<s::Invitation> for Invitation {
    fn from(i: s::Invitation) -> Self {
        Self {
            id: ID(i.id),
            broadcast_id: ID(i.broadcast_id),
            expires_at: i.expires_at,
            revoked_at: i.revoked_at,
            uses: i32::try_from(i.uses).unwrap_or(i32::MAX),
            created_at: i.created_at,
        }
    }
}

/// An invitation just made: the token is in this answer only.
#[derive(SimpleObject, Clone, Debug)]
pub struct InvitationLink {
    /// The invitation.
    pub invitation: Invitation,
    /// The signed token (give it to the guest; `joinStudio` takes it).
    pub token: String,
    /// The studio page path carrying it (on the node's HTTP port).
    pub path: String,
}

/// An uploaded image.
#[derive(SimpleObject, Clone, Debug)]
pub struct StudioImage {
    /// Id (hex SHA-256 of the bytes).
    pub id: ID,
    /// `image/png` or `image/jpeg`.
    pub mime: String,
    /// Pixels.
    pub width: i32,
    /// Pixels.
    pub height: i32,
    /// Bytes.
    pub size: i64,
}

impl From<s::StudioImage> for StudioImage {
    fn from(i: s::StudioImage) -> Self {
        Self {
            id: ID(i.id),
            mime: i.mime,
            width: i32::try_from(i.width).unwrap_or(i32::MAX),
            height: i32::try_from(i.height).unwrap_or(i32::MAX),
            size: i64::try_from(i.size).unwrap_or(i64::MAX),
        }
    }
}

/// A studio broadcast.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct StudioBroadcast {
    /// Id.
    pub id: ID,
    /// The channel it goes live on.
    pub channel_id: ID,
    /// The host's user id.
    pub owner_id: ID,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Status.
    pub status: BroadcastStatus,
    /// Planned start.
    pub scheduled_at: Option<i64>,
    /// When it went live.
    pub started_at: Option<i64>,
    /// When it ended.
    pub ended_at: Option<i64>,
    /// The program's layout.
    pub layout: StudioLayout,
    /// The featured participant.
    pub spotlight_participant_id: Option<ID>,
    /// Layout transition, ms.
    pub transition_ms: i32,
    /// Background image.
    pub background_image_id: Option<ID>,
    /// Logo image.
    pub logo_image_id: Option<ID>,
    /// Overlay image.
    pub overlay_image_id: Option<ID>,
    /// The banner shown now.
    pub banner: Option<StudioBanner>,
    /// Each participant's own stream is recorded too (isolated tracks).
    pub record_isolated_tracks: bool,
    /// The node stream of the composed program (the host's preview).
    pub program_stream: String,
    /// The program over LL-HLS on the node: `/live/<programStream>/index.m3u8`.
    pub program_hls_path: String,
    /// The program over WebRTC on the node: `/whep/<programStream>`.
    pub program_whep_path: String,
    /// Creation time.
    pub created_at: i64,
    /// Last change.
    pub updated_at: i64,
    #[graphql(skip)]
    pub(crate) host: bool,
}

impl StudioBroadcast {
    /// The GraphQL view; `host` callers also see invitations.
    pub(crate) fn new(b: s::StudioBroadcast, host: bool) -> Self {
        let program = b.program_stream();
        Self {
            program_hls_path: format!("/live/{program}/index.m3u8"),
            program_whep_path: format!("/whep/{program}"),
            program_stream: program,
            id: ID(b.id),
            channel_id: ID(b.channel_id),
            owner_id: ID(b.owner_id),
            title: b.title,
            description: b.description,
            status: b.status.into(),
            scheduled_at: b.scheduled_at,
            started_at: b.started_at,
            ended_at: b.ended_at,
            layout: b.layout.into(),
            spotlight_participant_id: b.spotlight.map(ID),
            transition_ms: i32::try_from(b.transition_ms).unwrap_or(i32::MAX),
            background_image_id: b.background_image.map(ID),
            logo_image_id: b.logo_image.map(ID),
            overlay_image_id: b.overlay_image.map(ID),
            banner: b.banner.map(|x| StudioBanner {
                title: x.title,
                subtitle: x.subtitle,
                chat_message_id: x
                    .chat_message_id
                    .map(|i| i64::try_from(i).unwrap_or(i64::MAX)),
            }),
            record_isolated_tracks: b.record_isolated,
            created_at: b.created_at,
            updated_at: b.updated_at,
            host,
        }
    }
}

#[ComplexObject]
impl StudioBroadcast {
    /// Participants present (with `includeLeft`, those who left too), in join order.
    async fn participants(
        &self,
        ctx: &Context<'_>,
        include_left: Option<bool>,
    ) -> ApiResult<Vec<Participant>> {
        let all = state(ctx)
            .store()
            .list_participants(&self.id)
            .await
            .map_err(gql)?;
        Ok(all
            .into_iter()
            .filter(|p| include_left == Some(true) || p.present())
            .map(Into::into)
            .collect())
    }

    /// The invitations (the host only; empty for others).
    async fn invitations(&self, ctx: &Context<'_>) -> ApiResult<Vec<Invitation>> {
        if !self.host {
            return Ok(Vec::new());
        }
        let all = state(ctx)
            .store()
            .list_invitations(&self.id)
            .await
            .map_err(gql)?;
        Ok(all.into_iter().map(Into::into).collect())
    }
}

/// What joining a studio gives a participant.
#[derive(SimpleObject, Clone, Debug)]
pub struct StudioJoin {
    /// The participant (backstage).
    pub participant: Participant,
    /// The bearer token for this participant's own actions and the studio's events.
    pub participant_token: String,
    /// When the participant token expires (Unix ms).
    pub expires_at: i64,
    /// The stream key this participant publishes its camera and microphone with.
    pub publish_key: String,
    /// Where to publish over WHIP on the node: `/whip/<publishKey>`.
    pub whip_path: String,
    /// The broadcast.
    pub broadcast: StudioBroadcast,
}
