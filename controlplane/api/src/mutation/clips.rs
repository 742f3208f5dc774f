//! Clips of recordings: `createClip` records a pending clip, has the binary's
//! [`crate::ClipMaker`] cut it on the recording's node, and answers it ready (with its
//! HLS and MP4 addresses) or failed (with the reason); `deleteClip` removes it.

use async_graphql::{Context, ID, Object};
use weir_auth::Permission;

use crate::ctx::{channel_with, principal, state};
use crate::error::{ApiError, ApiResult, code, gql};
use crate::types::Clip;

/// Longest clip title, characters.
const MAX_TITLE: usize = 200;

#[derive(Default)]
pub(crate) struct ClipMutations;

#[Object]
impl ClipMutations {
    /// Cuts `[startMs, endMs)` of a recording (ms from its first frame; a recording still
    /// in progress is cut up to what is written). The clip starts on the first frame at
    /// or after `startMs`: the head up to the next keyframe is re-encoded, the rest
    /// copied. Answers when the cut is done: `READY`, or `FAILED` with `error`.
    async fn create_clip(
        &self,
        ctx: &Context<'_>,
        recording_id: ID,
        start_ms: i64,
        end_ms: i64,
        title: Option<String>,
    ) -> ApiResult<Clip> {
        let (rec, slug) = recording_to_manage(ctx, &recording_id).await?;
        let st = state(ctx);
        let maker = st.clip_maker().ok_or_else(|| {
            ApiError::new(
                code::SERVICE_UNAVAILABLE,
                "this deployment does not cut clips (clips are cut by `weir serve`)",
            )
        })?;
        if start_ms < 0 || end_ms <= start_ms {
            return Err(ApiError::bad_input("a clip needs 0 <= startMs < endMs").into());
        }
        let (start, end) = (start_ms as u64, end_ms as u64);
        if end - start > maker.max_ms() {
            return Err(ApiError::bad_input(format!(
                "a clip is at most {} s long",
                maker.max_ms() / 1000
            ))
            .into());
        }
        if rec.ended_at.is_some() && start >= rec.duration_ms {
            return Err(ApiError::bad_input(format!(
                "the recording is {} ms long",
                rec.duration_ms
            ))
            .into());
        }
        let title = title.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty());
        if title
            .as_ref()
            .is_some_and(|t| t.chars().count() > MAX_TITLE)
        {
            return Err(
                ApiError::bad_input(format!("a title is at most {MAX_TITLE} characters")).into(),
            );
        }
        let mut clip = weir_store::Clip {
            id: capability_id(),
            recording_id: rec.id.clone(),
            channel_id: rec.channel_id.clone(),
            title,
            start_ms: start,
            end_ms: end,
            status: weir_store::ClipStatus::Pending,
            error: None,
            hls_url: None,
            mp4_url: None,
            duration_ms: None,
            created_at: weir_store::ids::now_ms(),
        };
        st.store().put_clip(&clip).await.map_err(gql)?;
        match maker.make(&rec.id, &clip.id, start, end).await {
            Ok(made) => {
                let (hls, mp4) = urls(rec.playback_url.as_deref(), &clip.id);
                clip.status = weir_store::ClipStatus::Ready;
                clip.duration_ms = Some(made.duration_ms);
                clip.hls_url = Some(hls);
                clip.mp4_url = Some(mp4);
            }
            Err(why) => {
                clip.status = weir_store::ClipStatus::Failed;
                clip.error = Some(why);
            }
        }
        st.store().put_clip(&clip).await.map_err(gql)?;
        let signer = crate::playback::VodSigner::for_channel(st, &rec.channel_id, &slug)
            .await
            .map_err(gql)?;
        Ok(Clip::from(clip).signed(&signer))
    }

    /// Deletes a clip: its files on the node and its record.
    async fn delete_clip(&self, ctx: &Context<'_>, id: ID) -> ApiResult<bool> {
        principal(ctx)?;
        let st = state(ctx);
        let Some(clip) = st.store().get_clip(&id).await.map_err(gql)? else {
            return Err(ApiError::not_found("clip").into());
        };
        channel_with(ctx, &clip.channel_id, Permission::ManageRecordings)
            .await
            .map_err(|e| hide_channel(e, "clip"))?;
        if let Some(maker) = st.clip_maker() {
            maker
                .delete(&clip.recording_id, &clip.id)
                .await
                .map_err(|e| ApiError::new(code::SERVICE_UNAVAILABLE, e))?;
        }
        st.store().delete_clip(&id).await.map_err(gql)
    }
}

/// The recording `id` and its channel's slug, when the caller may manage its channel's
/// recordings.
async fn recording_to_manage(
    ctx: &Context<'_>,
    id: &str,
) -> ApiResult<(weir_store::Recording, String)> {
    principal(ctx)?;
    let rec = state(ctx)
        .store()
        .get_recording(id)
        .await
        .map_err(gql)?
        .ok_or_else(|| ApiError::not_found("recording"))?;
    let (ch, _) = channel_with(ctx, &rec.channel_id, Permission::ManageRecordings)
        .await
        .map_err(|e| hide_channel(e, "recording"))?;
    Ok((rec, ch.slug))
}

/// Another owner's channel reads as "`what` not found", not "channel not found".
fn hide_channel(e: async_graphql::Error, what: &str) -> async_graphql::Error {
    if e.message.contains("not found") {
        ApiError::not_found(what).into()
    } else {
        e
    }
}

/// A clip id: 128 random bits in hex. It is also the capability to play the clip (its
/// files are served under it), so it carries no guessable part.
fn capability_id() -> String {
    let mut b = [0u8; 16];
    weir_store::ids::random_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The clip's playlist and MP4 on the recording's node: the origin of the recording's
/// `/vod/` address (relative paths when it has none).
fn urls(recording_playback: Option<&str>, id: &str) -> (String, String) {
    let origin = recording_playback
        .and_then(|u| u.find("/vod/").map(|i| &u[..i]))
        .unwrap_or("");
    (
        format!("{origin}/clips/{id}/index.m3u8"),
        format!("{origin}/clips/{id}/clip.mp4"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_urls_are_on_the_recording_node() {
        assert_eq!(
            urls(Some("http://n1:8080/vod/r1/index.m3u8"), "c"),
            (
                "http://n1:8080/clips/c/index.m3u8".to_owned(),
                "http://n1:8080/clips/c/clip.mp4".to_owned()
            )
        );
        assert_eq!(urls(None, "c").0, "/clips/c/index.m3u8");
    }

    #[test]
    fn clip_ids_are_long_random_and_path_safe() {
        let (a, b) = (capability_id(), capability_id());
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
    }
}
