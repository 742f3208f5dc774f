//! What the program shows, as the control plane describes it.

use std::sync::Arc;
use std::time::Duration;

use crate::layout::Layout;

/// One participant on stage, in stage order.
#[derive(Debug, Clone, PartialEq)]
pub struct Participant {
    /// Stable id within the session.
    pub id: String,
    /// Display name.
    pub name: String,
    /// The node stream (channel name) the participant publishes to.
    pub stream: String,
    /// Microphone in the mix.
    pub audio: bool,
    /// Camera shown (else a placeholder).
    pub video: bool,
    /// Mix gain, clamped to 0.0–2.0.
    pub gain: f32,
}

/// An image (PNG or JPEG file bytes).
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    /// Content id: equal ids are equal images.
    pub id: String,
    /// The file.
    pub data: Arc<[u8]>,
}

/// A lower-third banner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Banner {
    /// First line.
    pub title: String,
    /// Second line (may be empty).
    pub subtitle: String,
}

/// Everything the program shows.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Scene {
    /// The layout.
    pub layout: Layout,
    /// The featured participant's id.
    pub spotlight: Option<String>,
    /// On stage, in order.
    pub participants: Vec<Participant>,
    /// Under everything, scaled to cover the canvas.
    pub background: Option<Image>,
    /// Top-right corner.
    pub logo: Option<Image>,
    /// Over everything at canvas size.
    pub overlay: Option<Image>,
    /// The lower third.
    pub banner: Option<Banner>,
    /// Length of the animation between two layouts.
    pub transition: Duration,
}

impl Scene {
    /// Index of the featured participant in stage order.
    pub fn featured(&self) -> Option<usize> {
        let id = self.spotlight.as_deref()?;
        self.participants.iter().position(|p| p.id == id)
    }

    /// The participant with `id`.
    pub fn participant(&self, id: &str) -> Option<&Participant> {
        self.participants.iter().find(|p| p.id == id)
    }
}
