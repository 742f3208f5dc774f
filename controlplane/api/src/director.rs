//! The studio's director: how the control plane tells the data plane what the program
//! of a studio broadcast shows, and when it goes live.
//!
//! The binary provides it (the node's compositor in-process for `weir serve`). The
//! control plane owns the studio session (broadcast, participants, layout, overlays) and
//! sends the whole scene on every change; the director is idempotent per broadcast.
//!
//! - [`StudioDirector::compose`] starts (or updates) the compositor of a broadcast: it
//!   subscribes to every on-stage participant's stream and publishes the composed
//!   program as the hidden stream [`ProgramScene::program_stream`] — what the host's
//!   program preview plays, before and during the show.
//! - [`StudioDirector::go_live`] forwards that program to the channel with the channel's
//!   stream key, admitted like any ingest: LL-HLS/WebRTC viewers, recording and relays to
//!   the channel's destinations take it from there.
//! - [`StudioDirector::end`] stops both.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// What a director call answers: `Err` with a reason safe to show (never a key).
pub type DirectorFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// The layout of a program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SceneLayout {
    /// One participant fills the canvas (the spotlight, else the first on stage).
    Solo,
    /// Everyone on stage in equal tiles (2×2, 3×3 … as the count needs).
    Grid,
    /// The spotlight large, the others in a row of small tiles below.
    Spotlight,
    /// The spotlight large on the left, the others stacked on the right.
    Sidebar,
    /// The spotlight fills the canvas, the next participant in a small inset.
    PictureInPicture,
}

/// One participant on stage, in stage order.
#[derive(Debug, Clone, PartialEq)]
pub struct SceneParticipant {
    /// The participant's id (stable for the session).
    pub id: String,
    /// Display name (lower-third label).
    pub name: String,
    /// The node stream (channel URL name) this participant publishes to over WHIP.
    pub stream: String,
    /// Their microphone is in the mix.
    pub audio: bool,
    /// Their camera is shown (else their tile shows a placeholder with the name).
    pub video: bool,
    /// Mix gain, 0.0–2.0 (1.0: as sent).
    pub gain: f32,
}

/// An uploaded image (PNG or JPEG, type- and size-checked by the control plane).
#[derive(Debug, Clone, PartialEq)]
pub struct SceneImage {
    /// Content id (a hash of the bytes): the director may cache decoded images by it.
    pub id: String,
    /// `image/png` or `image/jpeg`.
    pub mime: String,
    /// The file.
    pub data: Arc<[u8]>,
}

/// A lower-third banner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SceneBanner {
    /// First line (a name, a headline, a chat message).
    pub title: String,
    /// Second, smaller line (may be empty).
    pub subtitle: String,
}

/// Everything the program of a studio broadcast shows.
#[derive(Debug, Clone, PartialEq)]
pub struct ProgramScene {
    /// The studio broadcast's id.
    pub broadcast_id: String,
    /// The hidden node stream the composed program is published as (preview).
    pub program_stream: String,
    /// The layout.
    pub layout: SceneLayout,
    /// The featured participant (solo, spotlight, sidebar, picture-in-picture main).
    pub spotlight: Option<String>,
    /// Participants on stage, in stage order (backstage ones are not listed).
    pub participants: Vec<SceneParticipant>,
    /// Drawn under everything (scaled to cover the canvas).
    pub background: Option<SceneImage>,
    /// Drawn in the top-right corner.
    pub logo: Option<SceneImage>,
    /// Drawn over everything at canvas size (a PNG with transparency).
    pub overlay: Option<SceneImage>,
    /// A lower-third banner, when one is shown.
    pub banner: Option<SceneBanner>,
    /// How long a layout change takes (tiles move), milliseconds; 0: a cut.
    pub transition_ms: u32,
}

/// Composes studio programs and takes them live.
pub trait StudioDirector: Send + Sync + 'static {
    /// Starts, or updates, the compositor of `scene.broadcast_id`.
    fn compose(&self, scene: ProgramScene) -> DirectorFuture;
    /// Forwards the program of `broadcast_id` to the channel `stream_key` publishes to.
    fn go_live(&self, broadcast_id: &str, stream_key: &str) -> DirectorFuture;
    /// Stops the forwarding and the compositor of `broadcast_id` (no error when neither runs).
    fn end(&self, broadcast_id: &str) -> DirectorFuture;
}
