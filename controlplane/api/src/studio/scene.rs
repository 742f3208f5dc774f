//! The program scene of a broadcast, as the director gets it, and when it is sent.

use std::sync::Arc;

use weir_store::{BroadcastStatus, Stage, StoreError, StudioBroadcast, StudioLayout};

use crate::director::{ProgramScene, SceneBanner, SceneImage, SceneLayout, SceneParticipant};
use crate::state::ApiState;

fn layout(l: StudioLayout) -> SceneLayout {
    match l {
        StudioLayout::Solo => SceneLayout::Solo,
        StudioLayout::Grid => SceneLayout::Grid,
        StudioLayout::Spotlight => SceneLayout::Spotlight,
        StudioLayout::Sidebar => SceneLayout::Sidebar,
        StudioLayout::Pip => SceneLayout::PictureInPicture,
    }
}

async fn image(
    st: &ApiState,
    channel_id: &str,
    id: Option<&String>,
) -> Result<Option<SceneImage>, StoreError> {
    let Some(id) = id else { return Ok(None) };
    let (Some(meta), Some(data)) = (
        st.store().get_studio_image(channel_id, id).await?,
        st.store().studio_image_data(channel_id, id).await?,
    ) else {
        return Ok(None);
    };
    Ok(Some(SceneImage {
        id: meta.id,
        mime: meta.mime,
        data: Arc::from(data),
    }))
}

/// The whole scene of `b`: participants on stage in stage order, the spotlight when it
/// is on stage, images with their bytes, the banner.
pub(crate) async fn program_scene(
    st: &ApiState,
    b: &StudioBroadcast,
) -> Result<ProgramScene, StoreError> {
    let mut on: Vec<_> = st
        .store()
        .list_participants(&b.id)
        .await?
        .into_iter()
        .filter(|p| p.present() && p.stage == Stage::OnStage)
        .collect();
    on.sort_by(|x, y| (x.stage_order, &x.id).cmp(&(y.stage_order, &y.id)));
    let spotlight = b
        .spotlight
        .clone()
        .filter(|s| on.iter().any(|p| &p.id == s));
    Ok(ProgramScene {
        broadcast_id: b.id.clone(),
        program_stream: b.program_stream(),
        layout: layout(b.layout),
        spotlight,
        participants: on
            .into_iter()
            .map(|p| SceneParticipant {
                id: p.id,
                name: p.display_name,
                stream: p.stream,
                audio: p.audio_enabled,
                video: p.video_enabled,
                gain: p.gain,
            })
            .collect(),
        background: image(st, &b.channel_id, b.background_image.as_ref()).await?,
        logo: image(st, &b.channel_id, b.logo_image.as_ref()).await?,
        overlay: image(st, &b.channel_id, b.overlay_image.as_ref()).await?,
        banner: b.banner.as_ref().map(|x| SceneBanner {
            title: x.title.clone(),
            subtitle: x.subtitle.clone(),
        }),
        transition_ms: b.transition_ms,
    })
}

impl ApiState {
    /// Sends the scene of `b` to the director after a change that affects the program
    /// (nothing when no director is set or the broadcast ended). A refusal is logged:
    /// the session's change stands, and the next change sends the whole scene again.
    pub(crate) async fn recompose(&self, b: &StudioBroadcast) {
        let Some(director) = self.studio_director().cloned() else {
            return;
        };
        if b.status == BroadcastStatus::Ended {
            return;
        }
        let scene = match program_scene(self, b).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(broadcast_id = %b.id, error = %e, "cannot build the program scene");
                return;
            }
        };
        if let Err(why) = director.compose(scene).await {
            metrics::counter!("weir_studio_compose_failures_total").increment(1);
            tracing::warn!(broadcast_id = %b.id, %why, "the compositor refused the scene");
        }
    }
}
