//! DASH objects of a recording on the origin (see `recorder::dash`): the static MPD of a
//! finished recording, rendered once and kept, and each track's init and media segments,
//! split from the recorder's muxed files when asked. Files are read on a blocking
//! thread, never on the shard, from the local disk or, for a recording kept only in the
//! object store, from the store.

use std::sync::Arc;

use bytes::Bytes;
use weir_hls::{ObjectName, Rope};

use super::response::Response;
use crate::recorder::dash::{self, Kind};
use crate::recorder::{Entry, Remote};

const DASH: &str = "application/dash+xml";
const MP4: &str = "video/mp4";
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// A finished recording's MPD no longer changes (until retention deletes it).
const VOD_MPD: &str = "public, max-age=3600";

/// Where a recording's files are read from.
#[derive(Clone)]
pub enum Source {
    /// Its directory on the local disk.
    Local(std::path::PathBuf),
    /// The object store, under the recording's id.
    Store(Arc<Remote>, String),
}

impl Source {
    /// File `name` of the recording, whole (blocking).
    fn read(&self, name: &str) -> Result<Bytes, String> {
        match self {
            Source::Local(dir) => std::fs::read(dir.join(name))
                .map(Bytes::from)
                .map_err(|e| format!("{name}: {e}")),
            Source::Store(store, id) => store
                .get_blocking(id, name)
                .map_err(|e| format!("{name}: {e}")),
        }
    }
}

/// Answers `file` (`manifest.mpd` or `dash/<v|a>/<object>`) of recording `entry`, whose
/// files are at `source`.
pub async fn respond(entry: Arc<Entry>, file: &str, source: Source) -> Response {
    if file == dash::MPD_FILE {
        return mpd(entry, source).await;
    }
    let Some((kind, object)) = file
        .strip_prefix("dash/")
        .and_then(|r| r.split_once('/'))
        .and_then(|(k, o)| Some((Kind::parse(k)?, ObjectName::parse(o)?)))
    else {
        return Response::error(404, "no such DASH object");
    };
    let (init_n, segment) = match object {
        ObjectName::Init(n) => (n, None),
        ObjectName::Segment(msn) => match entry.segment_entry(msn) {
            Some(s) => (s.init, Some(msn)),
            None => return Response::error(404, "no such segment"),
        },
        _ => return Response::error(404, "no such DASH object"),
    };
    if entry.init(init_n).is_none() {
        return Response::error(404, "no such init segment");
    }
    let made = crate::affinity::spawn_blocking(move || -> Result<Rope, String> {
        let init = source.read(&format!("init-{init_n}.mp4"))?;
        let tracks = dash::tracks(&init).map_err(|e| e.to_string())?;
        let track = dash::track_of(&tracks, kind).map_err(|e| e.to_string())?;
        match segment {
            None => dash::track_init(&init, track.id)
                .map(|b| Rope::from(Bytes::from(b)))
                .map_err(|e| e.to_string()),
            Some(msn) => {
                let seg = source.read(&format!("seg-{msn}.m4s"))?;
                dash::track_segment(&seg, track.id, msn).map_err(|e| e.to_string())
            }
        }
    })
    .await;
    match made {
        Ok(Ok(body)) => {
            metrics::counter!("weir_http_vod_requests_total", "kind" => "dash").increment(1);
            metrics::counter!("weir_http_vod_bytes_total").increment(body.len() as u64);
            Response::ok(MP4, IMMUTABLE, body)
        }
        Ok(Err(why)) => {
            tracing::debug!(%why, file, "DASH object not made");
            Response::error(404, &why)
        }
        Err(_) => Response::error(500, "read failed"),
    }
}

/// The MPD of a finished recording, rendered on the first request.
async fn mpd(entry: Arc<Entry>, source: Source) -> Response {
    let (index, finished) = entry.snapshot();
    if !finished {
        return Response::error(
            404,
            "DASH is offered once the recording is finished: play its HLS playlist meanwhile",
        );
    }
    if let Some(body) = entry.cached_mpd() {
        return Response::ok(DASH, VOD_MPD, body);
    }
    let rendered = crate::affinity::spawn_blocking(move || {
        // The first init segment that offers no DASH track says why.
        let mut refusal = None;
        let mpd = dash::render_mpd(&index, |n| {
            let init = source.read(&format!("init-{n}.mp4")).ok()?;
            match dash::tracks(&init) {
                Ok(t) => Some(t),
                Err(e) => {
                    refusal.get_or_insert(e);
                    None
                }
            }
        });
        (mpd, refusal)
    })
    .await;
    match rendered {
        Ok((_, Some(refusal))) => Response::error(404, &refusal.to_string()),
        Ok((mpd, None)) => {
            let body = Bytes::from(mpd);
            entry.cache_mpd(body.clone());
            metrics::counter!("weir_http_vod_requests_total", "kind" => "mpd").increment(1);
            Response::ok(DASH, VOD_MPD, body)
        }
        Err(_) => Response::error(500, "render failed"),
    }
}
