//! The studio director's calls between a control plane and a data-plane node, as JSON
//! (split deployments; `weir serve` calls the node's studio in-process).
//!
//! - `POST /v1/studio/compose` — a [`WireScene`] → `{"ok": true}`;
//! - `POST /v1/studio/go-live` — `{"broadcast_id", "stream_key"}` → `{"ok": true}`;
//! - `POST /v1/studio/end` — `{"broadcast_id"}` → `{"ok": true}`;
//!
//! each with `Authorization: Bearer <node token>`; a refusal is `4xx {"error": why}`
//! (shown to the host as is). Images travel inline (base64, at most 2 MiB each before
//! encoding, as the control plane's upload check allows), so a node needs no access to
//! the control plane's store.

use std::sync::Arc;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use weir_api::{ProgramScene, SceneBanner, SceneImage, SceneLayout, SceneParticipant};

/// The largest request body a node accepts (three images of 2 MiB, base64, and the rest).
pub const MAX_BODY: usize = 12 << 20;

/// A program scene on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireScene {
    broadcast_id: String,
    program_stream: String,
    layout: String,
    spotlight: Option<String>,
    participants: Vec<WireParticipant>,
    background: Option<WireImage>,
    logo: Option<WireImage>,
    overlay: Option<WireImage>,
    banner: Option<WireBanner>,
    transition_ms: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct WireParticipant {
    id: String,
    name: String,
    stream: String,
    audio: bool,
    video: bool,
    gain: f32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct WireImage {
    id: String,
    mime: String,
    /// Base64 (standard alphabet, padded).
    data: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct WireBanner {
    title: String,
    subtitle: String,
}

/// `go-live`'s body.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GoLive {
    /// The studio broadcast.
    pub broadcast_id: String,
    /// The channel stream key minted for the show.
    pub stream_key: String,
}

/// `end`'s body.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct End {
    /// The studio broadcast.
    pub broadcast_id: String,
}

fn layout_name(l: SceneLayout) -> &'static str {
    match l {
        SceneLayout::Solo => "solo",
        SceneLayout::Grid => "grid",
        SceneLayout::Spotlight => "spotlight",
        SceneLayout::Sidebar => "sidebar",
        SceneLayout::PictureInPicture => "pip",
    }
}

fn layout_of(name: &str) -> Result<SceneLayout, String> {
    Ok(match name {
        "solo" => SceneLayout::Solo,
        "grid" => SceneLayout::Grid,
        "spotlight" => SceneLayout::Spotlight,
        "sidebar" => SceneLayout::Sidebar,
        "pip" => SceneLayout::PictureInPicture,
        other => return Err(format!("unknown layout {other:?}")),
    })
}

impl From<&ProgramScene> for WireScene {
    fn from(s: &ProgramScene) -> Self {
        let image = |i: &Option<SceneImage>| {
            i.as_ref().map(|i| WireImage {
                id: i.id.clone(),
                mime: i.mime.clone(),
                data: base64::engine::general_purpose::STANDARD.encode(&i.data),
            })
        };
        Self {
            broadcast_id: s.broadcast_id.clone(),
            program_stream: s.program_stream.clone(),
            layout: layout_name(s.layout).to_owned(),
            spotlight: s.spotlight.clone(),
            participants: s
                .participants
                .iter()
                .map(|p| WireParticipant {
                    id: p.id.clone(),
                    name: p.name.clone(),
                    stream: p.stream.clone(),
                    audio: p.audio,
                    video: p.video,
                    gain: p.gain,
                })
                .collect(),
            background: image(&s.background),
            logo: image(&s.logo),
            overlay: image(&s.overlay),
            banner: s.banner.as_ref().map(|b| WireBanner {
                title: b.title.clone(),
                subtitle: b.subtitle.clone(),
            }),
            transition_ms: s.transition_ms,
        }
    }
}

impl TryFrom<WireScene> for ProgramScene {
    type Error = String;

    fn try_from(w: WireScene) -> Result<Self, String> {
        let image = |i: Option<WireImage>| -> Result<Option<SceneImage>, String> {
            i.map(|i| {
                let data = base64::engine::general_purpose::STANDARD
                    .decode(i.data.as_bytes())
                    .map_err(|e| format!("image {}: {e}", i.id))?;
                Ok(SceneImage {
                    id: i.id,
                    mime: i.mime,
                    data: Arc::from(data),
                })
            })
            .transpose()
        };
        Ok(Self {
            layout: layout_of(&w.layout)?,
            broadcast_id: w.broadcast_id,
            program_stream: w.program_stream,
            spotlight: w.spotlight,
            participants: w
                .participants
                .into_iter()
                .map(|p| SceneParticipant {
                    id: p.id,
                    name: p.name,
                    stream: p.stream,
                    audio: p.audio,
                    video: p.video,
                    gain: if p.gain.is_finite() { p.gain } else { 1.0 },
                })
                .collect(),
            background: image(w.background)?,
            logo: image(w.logo)?,
            overlay: image(w.overlay)?,
            banner: w.banner.map(|b| SceneBanner {
                title: b.title,
                subtitle: b.subtitle,
            }),
            transition_ms: w.transition_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scene_survives_the_wire() {
        let scene = ProgramScene {
            broadcast_id: "b1".into(),
            program_stream: "studio-b1-pgm".into(),
            layout: SceneLayout::PictureInPicture,
            spotlight: Some("p2".into()),
            participants: vec![SceneParticipant {
                id: "p1".into(),
                name: "Ada".into(),
                stream: "studio-b1-p1".into(),
                audio: true,
                video: false,
                gain: 0.5,
            }],
            background: Some(SceneImage {
                id: "i1".into(),
                mime: "image/png".into(),
                data: Arc::from(&b"\x89PNG\r\n\x1a\n\x00\xff"[..]),
            }),
            logo: None,
            overlay: None,
            banner: Some(SceneBanner {
                title: "Ada".into(),
                subtitle: "Guest".into(),
            }),
            transition_ms: 300,
        };
        let json = serde_json::to_string(&WireScene::from(&scene)).expect("json");
        let back: WireScene = serde_json::from_str(&json).expect("parse");
        assert_eq!(ProgramScene::try_from(back), Ok(scene));
    }

    #[test]
    fn bad_layouts_and_images_are_refused_with_the_reason() {
        let mut w = WireScene::from(&ProgramScene {
            broadcast_id: "b".into(),
            program_stream: "s".into(),
            layout: SceneLayout::Grid,
            spotlight: None,
            participants: vec![],
            background: None,
            logo: None,
            overlay: None,
            banner: None,
            transition_ms: 0,
        });
        w.layout = "mosaic".into();
        assert!(
            ProgramScene::try_from(w.clone())
                .expect_err("refused")
                .contains("mosaic")
        );
        w.layout = "grid".into();
        w.logo = Some(WireImage {
            id: "i9".into(),
            mime: "image/png".into(),
            data: "not base64!".into(),
        });
        assert!(
            ProgramScene::try_from(w)
                .expect_err("refused")
                .contains("i9")
        );
    }
}
