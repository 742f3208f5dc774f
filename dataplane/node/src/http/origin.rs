//! Routes of the HTTP origin.
//!
//! ```text
//! /live/<channel>/index.m3u8                multivariant playlist (no-cache)
//! /live/<channel>/<broadcast>/media.m3u8    LL-HLS media playlist (blocking reload, delta updates)
//! /live/<channel>/<broadcast>/<object>      init segment, part or segment (immutable)
//! /metrics                                  Prometheus text format
//! /healthz                                  liveness
//! ```
//! The broadcast id in object URLs is random and changes with every new broadcast on a
//! channel, so immutable caching is safe even though segment numbers restart. Channels
//! whose playback policy needs signed URLs get 403 on playlists without a valid
//! `exp`/`sig`; the multivariant playlist carries the token onto its variant URI, and
//! objects are reachable only through the (unguessable) broadcast directory it names.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use weir_hls::{ObjectAnswer, ObjectKind, PlaylistAnswer, PlaylistQuery, Rope};

use super::request::{Method, Request};
use super::response::Response;
use crate::hooks::{PlaybackAccess, PublishAuth};
use crate::registry::{Registry, Stream, StreamState};

const PLAYLIST: &str = "application/vnd.apple.mpegurl";
const MP4: &str = "video/mp4";
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const NO_CACHE: &str = "no-cache";
const BLOCKING: &str = "public, max-age=2";

/// Answers one request.
pub async fn respond(req: &Request, registry: &Registry, auth: &dyn PublishAuth) -> Response {
    match req.method {
        Method::Get | Method::Head => {}
        Method::Options => {
            let mut r = Response::error(204, "");
            r.body = Rope::default();
            r.extra.push(("Access-Control-Max-Age", "86400".to_owned()));
            return r;
        }
        Method::Other => return Response::error(405, "only GET, HEAD and OPTIONS are served"),
    }
    let path = req.path.as_str();
    if path == "/healthz" {
        return Response::ok("text/plain", "no-store", Bytes::from_static(b"ok\n"));
    }
    if path == "/metrics" {
        let body = crate::metrics_setup::render();
        return Response::ok("text/plain; version=0.0.4", "no-store", Bytes::from(body));
    }
    let Some(rest) = path.strip_prefix("/live/") else {
        return Response::error(404, "not found");
    };
    let parts: Vec<&str> = rest.split('/').collect();
    let Some(stream) = parts.first().and_then(|c| registry.get(c)) else {
        return Response::error(404, "no such stream");
    };
    let signed = stream.signed_playback.load(Ordering::Relaxed);
    if signed {
        let access = match parts.as_slice() {
            [_, "index.m3u8"] | [_, _, "media.m3u8"] => {
                Some(auth.playback_access(&stream.channel, &req.query))
            }
            _ => None,
        };
        // A player already watching (an active viewer session) keeps reloading after its
        // URL expires; starting playback needs an unexpired URL.
        let watching = || {
            matches!(parts.as_slice(), [_, _, "media.m3u8"])
                && session_of(&req.query).is_some_and(|s| stream.viewer_active(s, Instant::now()))
        };
        match access {
            None | Some(PlaybackAccess::Allowed) => {}
            Some(PlaybackAccess::Expired) if watching() => {}
            Some(_) => {
                metrics::counter!("weir_http_playback_refused_total").increment(1);
                return Response::error(
                    403,
                    "this channel needs a signed playback URL (or it expired)",
                );
            }
        }
    }
    match parts.as_slice() {
        [_, "index.m3u8"] => multivariant(&stream, signed.then_some(req.query.as_str())),
        [_, bid, "media.m3u8"] if *bid == stream.broadcast_id => {
            media_playlist(&stream, &req.query).await
        }
        [_, bid, object] if *bid == stream.broadcast_id => media_object(&stream, object).await,
        _ => Response::error(404, "not found"),
    }
}

/// A new viewer session id: random, because on channels with signed playback an active
/// session lets a player keep reloading after its URL expires.
fn new_session() -> u64 {
    let mut b = [0u8; 8];
    if weir_streamkey::random_bytes(&mut b).is_ok() {
        return u64::from_be_bytes(b);
    }
    // No OS randomness (never seen in practice): splitmix64 over a clock-seeded counter.
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let mut z = NEXT
        .fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed)
        .wrapping_add(crate::registry::wallclock_ms());
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The viewer session named by `s=` in a query string.
fn session_of(query: &str) -> Option<u64> {
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix("s="))
        .and_then(|v| u64::from_str_radix(v, 16).ok())
}

/// The `exp`/`sig` parameters of a signed playback query, to carry onto the variant URI.
fn token_of(query: &str) -> String {
    query
        .split('&')
        .filter(|kv| kv.starts_with("exp=") || kv.starts_with("sig="))
        .fold(String::new(), |mut acc, kv| {
            acc.push('&');
            acc.push_str(kv);
            acc
        })
}

fn multivariant(stream: &Stream, signed_query: Option<&str>) -> Response {
    let Some(text) = stream.state.lock().hls.multivariant_playlist() else {
        return Response::error(404, "stream is starting: no tracks yet");
    };
    // Point the variant at this broadcast's directory, with a viewer session.
    let text = String::from_utf8_lossy(&text);
    let session = new_session();
    let mut out = String::with_capacity(text.len() + 64);
    for line in text.lines() {
        if !line.starts_with('#') && !line.is_empty() {
            out.push_str(&stream.broadcast_id);
            out.push('/');
            out.push_str(line);
            out.push_str(&format!("?s={session:x}"));
            if let Some(q) = signed_query {
                out.push_str(&token_of(q));
            }
            out.push('\n');
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    Response::ok(PLAYLIST, NO_CACHE, Bytes::from(out))
}

/// How long a blocked request may wait: three target durations (RFC 8216bis 6.2.5.2).
fn block_limit(stream: &Stream) -> Duration {
    let target = stream.segment_target.as_secs_f64().ceil().max(1.0);
    Duration::from_secs_f64(target * 3.0)
}

/// Runs `check` against the stream until it answers, waiting for changes up to the limit.
async fn wait_for<T>(
    stream: &Arc<Stream>,
    mut check: impl FnMut(&StreamState) -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + block_limit(stream);
    loop {
        let listener = stream.changed.listen();
        if let Some(answer) = check(&stream.state.lock()) {
            return Some(answer);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || compio::time::timeout(left, listener).await.is_err() {
            return None;
        }
    }
}

async fn media_playlist(stream: &Arc<Stream>, query: &str) -> Response {
    let q = match PlaylistQuery::parse(query) {
        Ok(q) => q,
        Err(e) => return Response::error(400, &e.to_string()),
    };
    if let Some(session) = session_of(query) {
        stream.touch_viewer(session, Instant::now());
    }
    let blocking = q.msn.is_some();
    let answer = wait_for(stream, |st| match st.hls.media_playlist(&q) {
        PlaylistAnswer::Wait => None,
        other => Some(other),
    })
    .await;
    match answer {
        Some(PlaylistAnswer::Ready(body)) => {
            Response::ok(PLAYLIST, if blocking { BLOCKING } else { NO_CACHE }, body)
        }
        Some(PlaylistAnswer::BadRequest(why)) => Response::error(400, why),
        Some(PlaylistAnswer::NotReady) => Response::error(404, "no playlist yet"),
        Some(PlaylistAnswer::Wait) | None => {
            Response::error(503, "the requested part did not appear in time")
        }
    }
}

async fn media_object(stream: &Arc<Stream>, name: &str) -> Response {
    let answer = wait_for(stream, |st| match st.hls.object(name) {
        ObjectAnswer::Wait => None,
        other => Some(other),
    })
    .await;
    match answer {
        Some(ObjectAnswer::Ready(body, kind)) => {
            let kind = match kind {
                ObjectKind::Init => "init",
                ObjectKind::Part => "part",
                ObjectKind::Segment => "segment",
            };
            metrics::counter!("weir_http_objects_total", "kind" => kind).increment(1);
            metrics::counter!("weir_http_object_bytes_total", "kind" => kind)
                .increment(body.len() as u64);
            Response::ok(MP4, IMMUTABLE, body)
        }
        Some(ObjectAnswer::Gone) => Response::error(404, "no such object"),
        Some(ObjectAnswer::Wait) | None => Response::error(503, "object did not appear in time"),
    }
}
