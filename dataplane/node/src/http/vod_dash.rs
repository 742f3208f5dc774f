//! DASH objects of a recording on the origin (see `recorder::dash`): the static MPD of a
//! finished recording, rendered once and kept, and each track's init and media segments,
//! split from the recorder's muxed files when asked. Files are read on a blocking
//! thread, never on the shard.

use std::sync::Arc;

use bytes::Bytes;
use weir_hls::{ObjectName, Rope};

use super::response::Response;
use crate::recorder::Entry;
use crate::recorder::dash::{self, Kind};

const DASH: &str = "application/dash+xml";
const MP4: &str = "video/mp4";
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// A finished recording's MPD no longer changes (until retention deletes it).
const VOD_MPD: &str = "public, max-age=3600";

/// Answers `file` (`manifest.mpd` or `dash/<v|a>/<object>`) of recording `entry`.
pub async fn respond(entry: Arc<Entry>, file: &str) -> Response {
    if file == dash::MPD_FILE {
        return mpd(entry).await;
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
    let Some((init_path, _)) = entry.init(init_n) else {
        return Response::error(404, "no such init segment");
    };
    let seg_path = segment.and_then(|msn| entry.segment(msn).map(|(p, _)| (msn, p)));
    let made = compio::runtime::spawn_blocking(move || -> Result<Rope, String> {
        let init = std::fs::read(&init_path).map_err(|e| e.to_string())?;
        let tracks = dash::tracks(&init).map_err(|e| e.to_string())?;
        let track = dash::track_of(&tracks, kind).map_err(|e| e.to_string())?;
        match seg_path {
            None => dash::track_init(&init, track.id)
                .map(|b| Rope::from(Bytes::from(b)))
                .map_err(|e| e.to_string()),
            Some((msn, path)) => {
                let seg = Bytes::from(std::fs::read(&path).map_err(|e| e.to_string())?);
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
async fn mpd(entry: Arc<Entry>) -> Response {
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
    let dir = entry.dir.clone();
    let rendered = compio::runtime::spawn_blocking(move || {
        // The first init segment that offers no DASH track says why.
        let mut refusal = None;
        let mpd = dash::render_mpd(&index, |n| {
            let init = std::fs::read(dir.join(format!("init-{n}.mp4"))).ok()?;
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
