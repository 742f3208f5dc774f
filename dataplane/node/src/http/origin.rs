//! Routes of the HTTP origin.
//!
//! ```text
//! /live/<channel>/index.m3u8                multivariant playlist (no-cache)
//! /live/<channel>/manifest.mpd              DASH manifest over the same CMAF objects (renditions;
//!                                           a muxed broadcast gets its tracks packaged on demand)
//! /time                                     the server clock (DASH UTCTiming)
//! /vod/<recording>/…                        recordings: EVENT playlist while recording, then VOD
//!                                           (see `vod`)
//! /live/<channel>/<broadcast>/media.m3u8    LL-HLS media playlist (blocking reload, delta updates)
//! /live/<channel>/<broadcast>/<object>      init segment, part or segment (immutable)
//! /live/<channel>/<broadcast>/<rendition>/… the same, per rendition (a transcode ladder:
//!                                           one CMAF track per playlist, see `renditions`)
//! /whip, /whep                              WebRTC (see `webrtc`)
//! /watch/<channel>, /web/…                  the browser pages (see `web`)
//! /metrics                                  Prometheus text format (unless `metrics_listen`
//!                                           serves it elsewhere)
//! /healthz                                  liveness
//! ```
//! The broadcast id in object URLs is 128 random bits and changes with every new
//! broadcast on a channel, so immutable caching is safe even though segment numbers
//! restart. A channel whose playback policy needs signed URLs is played only under a
//! signed path, `/live/<channel>/t.<exp>.<sig>/…` (the same routes below it): every
//! playlist and object is checked, so playback stops when the token expires. Tokens are
//! per channel and expiry, not per viewer: viewers handed one in the same window share
//! URLs, and a CDN caches them like any other.
//!
//! Every viewer gets the same URLs (no per-viewer session in them), so a CDN in front
//! collapses identical requests, blocking reloads included; viewers are counted from
//! media fetches (see `delivery`). Requests read the broadcast's current snapshot and
//! never lock its packager; blocked requests wait for the position they need.

use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use weir_hls::{
    ObjectAnswer, ObjectKind, ObjectName, PlaylistAnswer, PlaylistQuery, Position, Rope, Snapshot,
};

use super::request::{Method, Request};
use super::response::{Response, SegmentStream};
use crate::delivery::HlsDelivery;
use crate::hooks::PublishAuth;
use crate::registry::{Registry, Stream};
use crate::renditions::Rendition;
use crate::webrtc::WebrtcShard;

const PLAYLIST: &str = "application/vnd.apple.mpegurl";
const DASH: &str = "application/dash+xml";
const MPD_NAME: &str = "manifest.mpd";

/// How long a DASH request waits for the first MPD of a broadcast whose tracks it just
/// had packaged (about a segment: the packager joins at the latest key frame).
const MPD_WAIT: Duration = Duration::from_secs(6);

/// The open MPD of `stream`. A broadcast packaged as it came gets its tracks packaged
/// one per playlist on the first request, which then waits up to [`MPD_WAIT`] for it.
async fn mpd_of(stream: &Arc<Stream>, registry: &Registry) -> Option<Bytes> {
    let mpd = || stream.renditions.get().and_then(|set| set.mpd.clone());
    if let Some(m) = mpd() {
        return Some(m);
    }
    if !registry.package_tracks(stream) {
        return None;
    }
    let deadline = Instant::now() + MPD_WAIT;
    while Instant::now() < deadline && !stream.is_ended() {
        compio::time::sleep(Duration::from_millis(50)).await;
        if let Some(m) = mpd() {
            return Some(m);
        }
    }
    None
}
const MP4: &str = "video/mp4";
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const NO_CACHE: &str = "no-cache";
const BLOCKING: &str = "public, max-age=2";

/// Answers one request.
pub async fn respond(
    req: &Request,
    registry: &Registry,
    auth: &dyn PublishAuth,
    rtc: &Rc<WebrtcShard>,
) -> Response {
    if let Some(r) = super::webrtc::respond(req, rtc).await {
        return r;
    }
    match req.method {
        Method::Get | Method::Head => {}
        Method::Options => {
            let mut r = Response::error(204, "");
            r.body = Rope::default();
            r.extra.push(("Access-Control-Max-Age", "86400".to_owned()));
            return r;
        }
        Method::Post | Method::Patch | Method::Delete | Method::Other => {
            return Response::error(405, "only GET, HEAD and OPTIONS are served here");
        }
    }
    let path = req.path.as_str();
    if path == "/healthz" {
        return Response::ok("text/plain", "no-store", Bytes::from_static(b"ok\n"));
    }
    if path == "/time" {
        // The clock DASH players sync to (the MPD's UTCTiming, ISO 8601 with ms).
        let now = weir_hls::format_iso8601_ms(crate::registry::wallclock_ms());
        return Response::ok("text/plain", "no-store", Bytes::from(now));
    }
    if path == "/metrics" && crate::metrics_setup::on_origin() {
        let body = crate::metrics_setup::render();
        return Response::ok("text/plain; version=0.0.4", "no-store", Bytes::from(body));
    }
    if let Some(page) =
        super::web::respond(path, &req.query, registry.watch_api(), registry.ingest())
    {
        return page;
    }
    if let Some(rest) = path.strip_prefix("/clips/") {
        return super::vod::respond_clip(rest, req, registry.clips().map(|c| &**c), auth).await;
    }
    if let Some(rest) = path.strip_prefix("/vod/") {
        return super::vod::respond(rest, req, registry.recorder(), auth).await;
    }
    let Some(rest) = path.strip_prefix("/live/") else {
        return Response::error(404, "not found");
    };
    let mut parts: Vec<&str> = rest.split('/').collect();
    let Some(stream) = parts.first().and_then(|c| registry.get(c)) else {
        return Response::error(404, "no such stream");
    };
    // `/live/<channel>/t.<exp>.<sig>/…`: a signed playback path. Every object of a signed
    // broadcast is fetched under it, so expiry (and with it a revoked entitlement) ends
    // playback, not only its start; relative URIs in the playlists keep the prefix.
    let token = parts.get(1).and_then(|p| p.strip_prefix("t."));
    if token.is_some() {
        parts.remove(1);
    }
    let signed = stream
        .signed_playback
        .load(Ordering::Relaxed)
        .then_some(stream.channel.as_str());
    if let Err(refused) = super::signed::check(auth, signed, token) {
        return refused;
    }
    let get = req.method == Method::Get;
    match parts.as_slice() {
        [_, "index.m3u8"] => {
            // A broadcast packaged as it came keeps its muxed playlist even when DASH
            // made its tracks into renditions too.
            let body = match (stream.renditions.get(), &stream.renditions_bus) {
                (Some(set), Some(_)) => Some(set.multivariant.clone()),
                (None, Some(_)) => None,
                (_, None) => stream.hls.snapshot().multivariant_playlist(),
            };
            match body {
                Some(body) => Response::ok(PLAYLIST, NO_CACHE, body),
                None => Response::error(404, "stream is starting: no tracks yet"),
            }
        }
        [_, MPD_NAME] => match mpd_of(&stream, registry).await {
            Some(open) => {
                let host = req.host.as_deref().filter(|h| {
                    h.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
                });
                let time_url = host.map_or_else(|| "/time".to_owned(), |h| format!("//{h}/time"));
                let close = Bytes::from(weir_hls::close_mpd(&time_url));
                Response::ok(DASH, NO_CACHE, Rope::from_pieces([open, close]))
            }
            None => {
                let mut r = Response::error(503, "stream is starting: no segments yet");
                r.extra.push(("Retry-After", "1".to_owned()));
                r
            }
        },
        [_, bid, "media.m3u8"] if *bid == stream.broadcast_id => {
            media_playlist(&stream.hls, &req.query).await
        }
        [_, bid, object] if *bid == stream.broadcast_id => {
            media_object(&stream.hls, object, get).await
        }
        [_, bid, rendition, file] if *bid == stream.broadcast_id => {
            let Some(r) = stream
                .renditions
                .get()
                .and_then(|set| set.get(rendition).cloned())
            else {
                return Response::error(404, "no such rendition");
            };
            if *file == weir_hls::MEDIA_PLAYLIST {
                media_playlist(&r.delivery, &req.query).await
            } else if let Some(resp) = segment_in_progress(&r, file, get).await {
                resp
            } else {
                media_object(&r.delivery, file, get).await
            }
        }
        _ => Response::error(404, "not found"),
    }
}

/// How long a blocked request may wait: three announced target durations (RFC 8216bis
/// 6.2.5.2).
fn block_limit(snapshot: &Snapshot) -> Duration {
    let target = snapshot.target_duration().max(Duration::from_secs(1));
    target * 3
}

/// Asks `check` of the current snapshot until it answers, waiting for the position it
/// names up to the block limit. Returns the answer and, when it had to wait, when the
/// snapshot that answered was published.
async fn wait_for<T>(
    hls: &HlsDelivery,
    mut check: impl FnMut(&Snapshot) -> Result<T, weir_hls::Position>,
) -> Option<(T, Option<Instant>)> {
    let mut snapshot = hls.snapshot();
    let mut published = None;
    let deadline = Instant::now() + block_limit(&snapshot);
    loop {
        match check(&snapshot) {
            Ok(answer) => return Some((answer, published)),
            Err(needed) => {
                let (s, at) = hls.wait_for(needed, deadline).await?;
                snapshot = s;
                published = Some(at);
            }
        }
    }
}

async fn media_playlist(hls: &HlsDelivery, query: &str) -> Response {
    let q = match PlaylistQuery::parse(query) {
        Ok(q) => q,
        Err(e) => return Response::error(400, &e.to_string()),
    };
    let blocking = q.msn.is_some();
    metrics::counter!("weir_http_playlist_requests_total", "blocking" => if blocking { "yes" } else { "no" })
        .increment(1);
    let answer = wait_for(hls, |s| match s.media_playlist(&q) {
        PlaylistAnswer::Wait(needed) => Err(needed),
        other => Ok(other),
    })
    .await;
    let (answer, available_at) = answer.map_or((None, None), |(a, at)| (Some(a), at));
    match answer {
        Some(PlaylistAnswer::Ready(body)) => {
            let mut r = Response::ok(PLAYLIST, if blocking { BLOCKING } else { NO_CACHE }, body);
            r.available_at = available_at;
            r
        }
        Some(PlaylistAnswer::BadRequest(why)) => Response::error(400, why),
        Some(PlaylistAnswer::NotReady) => Response::error(404, "no playlist yet"),
        Some(PlaylistAnswer::Wait(_)) | None => {
            Response::error(503, "the requested part did not appear in time")
        }
    }
}

/// A request for a rendition's segment in progress (or the next one, about to start):
/// low-latency DASH asks for it before it is complete, so it is sent with chunked
/// transfer as its parts are made (see `conn`). None for any other object.
async fn segment_in_progress(r: &Arc<Rendition>, name: &str, get: bool) -> Option<Response> {
    let Some(ObjectName::Segment(msn)) = ObjectName::parse(name) else {
        return None;
    };
    let snapshot = r.delivery.snapshot();
    let live = snapshot.position().msn;
    if snapshot.is_ended() || (msn != live && msn != live.saturating_add(1)) {
        return None;
    }
    if msn > live {
        // Wait for its first part, then stream it.
        let deadline = Instant::now() + block_limit(&snapshot);
        r.delivery
            .wait_for(Position::after_part(msn, 0), deadline)
            .await?;
    }
    if get {
        r.delivery.fetched(msn, None);
    }
    metrics::counter!("weir_http_objects_total", "kind" => "segment_in_progress").increment(1);
    let mut resp = Response::ok(MP4, IMMUTABLE, Rope::default());
    resp.segment_stream = Some(SegmentStream {
        rendition: r.clone(),
        msn,
    });
    Some(resp)
}

async fn media_object(hls: &HlsDelivery, name: &str, get: bool) -> Response {
    let answer = wait_for(hls, |s| match s.object(name) {
        ObjectAnswer::Wait(needed) => Err(needed),
        other => Ok(other),
    })
    .await;
    let (answer, available_at) = answer.map_or((None, None), |(a, at)| (Some(a), at));
    match answer {
        Some(ObjectAnswer::Ready(body, kind)) => {
            let label = match kind {
                ObjectKind::Init => "init",
                ObjectKind::Part => "part",
                ObjectKind::Segment => "segment",
            };
            if get {
                match ObjectName::parse(name) {
                    Some(ObjectName::Part(msn, i)) => hls.fetched(msn, Some(i)),
                    Some(ObjectName::Segment(msn)) => hls.fetched(msn, None),
                    _ => {}
                }
            }
            metrics::counter!("weir_http_objects_total", "kind" => label).increment(1);
            metrics::counter!("weir_http_object_bytes_total", "kind" => label)
                .increment(body.len() as u64);
            let mut r = Response::ok(MP4, IMMUTABLE, body);
            r.available_at = available_at;
            r
        }
        Some(ObjectAnswer::Gone) => Response::error(404, "no such object"),
        Some(ObjectAnswer::Wait(_)) | None => Response::error(503, "object did not appear in time"),
    }
}
