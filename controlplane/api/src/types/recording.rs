//! Recordings and their clips as the API shows them, with their URLs under a playback
//! token (see `playback`).

use async_graphql::{Enum, ID, SimpleObject};
use weir_store as s;

/// A recording.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct Recording {
    /// Id.
    pub id: ID,
    /// Channel.
    pub channel_id: ID,
    /// Stream.
    pub stream_id: ID,
    /// Location.
    pub location: String,
    /// Duration (ms).
    pub duration_ms: i64,
    /// Size.
    pub size_bytes: i64,
    /// Creation time (ms).
    pub created_at: i64,
    /// The HLS playlist: an EVENT playlist (DVR) while recording, VOD once finished.
    pub playback_url: Option<String>,
    /// Media segments.
    pub segments: i64,
    /// When it was finished (ms); null while it is being recorded.
    pub ended_at: Option<i64>,
    /// Once finished: a poster image (JPEG, 640 px wide) on the recording's node, made a
    /// few seconds after the end (404 until then).
    pub poster_url: Option<String>,
    /// Once finished: its thumbnail track (WebVTT cues → 160 px JPEGs, one per 10 s),
    /// for seek-bar previews.
    pub thumbnails_url: Option<String>,
    /// Once finished: the same VOD as a static DASH MPD (one Representation per track;
    /// H.264 with AAC or Opus).
    pub dash_url: Option<String>,
    /// A studio guest's isolated track: the participant (null for a channel's own
    /// recordings and the studio's program).
    pub studio_participant_id: Option<ID>,
}

impl From<s::Recording> for Recording {
    fn from(r: s::Recording) -> Self {
        let (poster_url, thumbnails_url) =
            (picture_url(&r, "poster.jpg"), picture_url(&r, "thumbs.vtt"));
        Self {
            poster_url,
            thumbnails_url,
            dash_url: picture_url(&r, "manifest.mpd"),
            id: ID(r.id),
            channel_id: ID(r.channel_id),
            stream_id: ID(r.stream_id),
            location: r.location,
            duration_ms: r.duration_ms as i64,
            size_bytes: r.size_bytes as i64,
            created_at: r.created_at,
            playback_url: r.playback_url,
            segments: r.segments as i64,
            ended_at: r.ended_at,
            studio_participant_id: r.studio_participant_id.map(ID),
        }
    }
}

impl Recording {
    /// Its URLs under a playback token (see `playback`).
    pub(crate) fn signed(self, signer: &crate::playback::VodSigner<'_>) -> Self {
        let d = u64::try_from(self.duration_ms).unwrap_or(0);
        let sign = |u: Option<String>| u.map(|u| signer.sign(&u, d));
        Self {
            playback_url: sign(self.playback_url),
            poster_url: sign(self.poster_url),
            thumbnails_url: sign(self.thumbnails_url),
            dash_url: sign(self.dash_url),
            ..self
        }
    }
}

impl Clip {
    /// Its URLs under a playback token (see `playback`).
    pub(crate) fn signed(self, signer: &crate::playback::VodSigner<'_>) -> Self {
        let d = self
            .duration_ms
            .map_or(0, |d| u64::try_from(d).unwrap_or(0));
        let sign = |u: Option<String>| u.map(|u| signer.sign(&u, d));
        Self {
            hls_url: sign(self.hls_url),
            mp4_url: sign(self.mp4_url),
            ..self
        }
    }
}

/// `file` beside a finished recording's playlist (its pictures, its MPD).
fn picture_url(r: &s::Recording, file: &str) -> Option<String> {
    r.ended_at?;
    let base = r.playback_url.as_deref()?.strip_suffix("index.m3u8")?;
    Some(format!("{base}{file}"))
}

#[async_graphql::ComplexObject]
impl Recording {
    /// Its clips, oldest first (as readable as the recording itself; URLs under a
    /// playback token like the recording's).
    async fn clips(&self, ctx: &async_graphql::Context<'_>) -> crate::error::ApiResult<Vec<Clip>> {
        let st = crate::ctx::state(ctx);
        let list = st
            .store()
            .list_clips(&self.channel_id, &self.id)
            .await
            .map_err(crate::error::gql)?;
        if list.is_empty() {
            return Ok(Vec::new());
        }
        let slug = st
            .store()
            .get_channel(&self.channel_id)
            .await
            .map_err(crate::error::gql)?
            .map(|c| c.slug)
            .unwrap_or_default();
        let signer = crate::playback::VodSigner::for_channel(st, &self.channel_id, &slug)
            .await
            .map_err(crate::error::gql)?;
        Ok(list
            .into_iter()
            .map(|c| Clip::from(c).signed(&signer))
            .collect())
    }
}

/// Where a clip is.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum ClipStatus {
    /// Being cut.
    Pending,
    /// Playable and downloadable.
    Ready,
    /// The cut failed (`error` says why).
    Failed,
}

/// A highlight of a recording: starts on the frame asked for, playable as HLS and
/// downloadable as MP4.
#[derive(SimpleObject, Clone, Debug)]
pub struct Clip {
    /// Id.
    pub id: ID,
    /// The recording it is cut from.
    pub recording_id: ID,
    /// The recording's channel.
    pub channel_id: ID,
    /// Title.
    pub title: Option<String>,
    /// Start, ms from the recording's first frame.
    pub start_ms: i64,
    /// End (exclusive), ms, as asked.
    pub end_ms: i64,
    /// Where it is.
    pub status: ClipStatus,
    /// Why it failed.
    pub error: Option<String>,
    /// The HLS playlist (once ready).
    pub hls_url: Option<String>,
    /// The MP4 download, which answers byte ranges (once ready).
    pub mp4_url: Option<String>,
    /// Its real duration, ms (once ready): first frame to the end of the last.
    pub duration_ms: Option<i64>,
    /// Creation time (ms).
    pub created_at: i64,
}

impl From<s::Clip> for Clip {
    fn from(c: s::Clip) -> Self {
        Self {
            id: ID(c.id),
            recording_id: ID(c.recording_id),
            channel_id: ID(c.channel_id),
            title: c.title,
            start_ms: c.start_ms as i64,
            end_ms: c.end_ms as i64,
            status: match c.status {
                s::ClipStatus::Pending => ClipStatus::Pending,
                s::ClipStatus::Ready => ClipStatus::Ready,
                s::ClipStatus::Failed => ClipStatus::Failed,
            },
            error: c.error,
            hls_url: c.hls_url,
            mp4_url: c.mp4_url,
            duration_ms: c.duration_ms.map(|d| d as i64),
            created_at: c.created_at,
        }
    }
}
