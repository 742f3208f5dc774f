//! The studio director for the control plane: scenes go to the node's compositor
//! ([`weir_node::StudioHub`]), and "go live" authorises the channel's stream key exactly
//! as an ingest would before the node forwards the program to it.

use std::sync::Arc;
use std::time::Duration;

use weir_api::{DirectorFuture, ProgramScene, SceneLayout, StudioDirector};
use weir_node::StudioHub;
use weir_studio::{Banner, Image, Layout, Participant, Scene};

use crate::keys::KeyAuth;

/// Longest wait for the studio thread to answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(15);

/// Drives the node's studio.
pub struct Director {
    /// The node's studio.
    pub hub: StudioHub,
    /// How publish keys are checked (the channel's grant: destinations, recording).
    pub auth: Arc<KeyAuth>,
}

/// The data plane's form of the control plane's scene.
pub fn scene(s: &ProgramScene) -> Scene {
    let image = |i: &Option<weir_api::SceneImage>| {
        i.as_ref().map(|i| Image {
            id: i.id.clone(),
            data: i.data.clone(),
        })
    };
    Scene {
        layout: match s.layout {
            SceneLayout::Solo => Layout::Solo,
            SceneLayout::Grid => Layout::Grid,
            SceneLayout::Spotlight => Layout::Spotlight,
            SceneLayout::Sidebar => Layout::Sidebar,
            SceneLayout::PictureInPicture => Layout::PictureInPicture,
        },
        spotlight: s.spotlight.clone(),
        participants: s
            .participants
            .iter()
            .map(|p| Participant {
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
        banner: s.banner.as_ref().map(|b| Banner {
            title: b.title.clone(),
            subtitle: b.subtitle.clone(),
        }),
        transition: Duration::from_millis(u64::from(s.transition_ms.min(5000))),
    }
}

async fn answered<F: std::future::Future<Output = Result<(), String>>>(f: F) -> Result<(), String> {
    tokio::time::timeout(ANSWER_TIMEOUT, f)
        .await
        .unwrap_or_else(|_| Err("the studio did not answer in time".to_owned()))
}

impl StudioDirector for Director {
    fn compose(&self, s: ProgramScene) -> DirectorFuture {
        let hub = self.hub.clone();
        Box::pin(async move {
            let scene = scene(&s);
            answered(async {
                hub.compose(&s.broadcast_id, &s.program_stream, scene)
                    .await
                    .map_err(|e| e.to_string())
            })
            .await
        })
    }

    fn go_live(&self, broadcast_id: &str, stream_key: &str) -> DirectorFuture {
        let hub = self.hub.clone();
        let grant = self.auth.grant(stream_key);
        let id = broadcast_id.to_owned();
        Box::pin(async move {
            let grant = grant.await.map_err(|r| r.reason)?;
            answered(async { hub.go_live(&id, grant).await.map_err(|e| e.to_string()) }).await
        })
    }

    fn end(&self, broadcast_id: &str) -> DirectorFuture {
        let ended = self.hub.end(broadcast_id);
        tracing::debug!(studio = broadcast_id, ended, "studio broadcast ended");
        Box::pin(async { Ok(()) })
    }
}
