//! Recordings on the origin (see `recorder`).
//!
//! ```text
//! /vod/<recording id>/index.m3u8    EVENT playlist while recording (the DVR), VOD with
//!                                   EXT-X-ENDLIST once finished
//! /vod/<recording id>/init-<n>.mp4  init segment   (immutable)
//! /vod/<recording id>/seg-<n>.m4s   media segment  (immutable; single byte ranges: 206)
//! /vod/<recording id>/manifest.mpd  DASH, once finished (see `vod_dash`)
//! ```
//! A recording of a signed broadcast, and a clip of one, is served only under a playback
//! token for its channel, `/vod/<id>/t.<exp>.<sig>/…` and `/clips/<id>/t.<exp>.<sig>/…`
//! (see `signed`); others are open to whoever knows their random id.
//!
//! Playlists come from memory; segment files are read on a blocking thread, never on
//! the shard. Only files the recording's index lists are served (names are parsed, never
//! joined into paths as given). A recording whose media is only in the object store
//! (`record_keep_local = false`) is read from there by the store thread, with the same
//! `Range`/206 answers.

use bytes::Bytes;
use weir_hls::{ObjectName, Rope};

use super::request::Request;
use super::response::Response;
use crate::clips::Clips;
use crate::hooks::PublishAuth;
use crate::recorder::Recorder;

const PLAYLIST: &str = "application/vnd.apple.mpegurl";
const MP4: &str = "video/mp4";
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// A finished recording's playlist no longer changes (until retention deletes it).
const VOD_PLAYLIST: &str = "public, max-age=3600";
const EVENT_PLAYLIST: &str = "no-cache";
/// Largest segment read for one request (a segment is a few seconds of media).
const MAX_READ: u64 = 256 << 20;

/// A byte range of a `len`-byte object, as `Range: bytes=…` asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeAsk {
    /// No range, or one this origin answers whole (several ranges, other units).
    Whole,
    /// Bytes `start..=end`.
    Part(u64, u64),
    /// Outside the object: 416.
    Unsatisfiable,
}

/// Parses a `Range` header (RFC 9110 14.1.2) against an object of `len` bytes: one range
/// `a-b`, `a-` or `-n`; anything else is answered whole.
pub fn parse_range(header: Option<&str>, len: u64) -> RangeAsk {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return RangeAsk::Whole;
    };
    if spec.contains(',') {
        return RangeAsk::Whole;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeAsk::Whole;
    };
    let num = |s: &str| -> Option<u64> {
        (!s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    match (a.is_empty(), num(a), num(b)) {
        (true, _, Some(n)) if n > 0 && len > 0 => RangeAsk::Part(len.saturating_sub(n), len - 1),
        (true, _, _) => RangeAsk::Unsatisfiable,
        (false, Some(start), _) if start >= len => RangeAsk::Unsatisfiable,
        (false, Some(start), None) if b.is_empty() => RangeAsk::Part(start, len - 1),
        (false, Some(start), Some(end)) if end >= start => RangeAsk::Part(start, end.min(len - 1)),
        _ => RangeAsk::Whole,
    }
}

/// Answers `/vod/<rest>`.
pub async fn respond(
    rest: &str,
    req: &Request,
    recorder: Option<&Recorder>,
    auth: &dyn PublishAuth,
) -> Response {
    let Some(recorder) = recorder else {
        return Response::error(404, "recording is off on this node");
    };
    let Some((id, file)) = rest.split_once('/') else {
        return Response::error(404, "not found");
    };
    let Some(entry) = recorder.catalog().get(id) else {
        return Response::error(404, "no such recording");
    };
    let (token, file) = super::signed::split_token(file);
    if let Err(refused) = super::signed::check(auth, entry.signed.as_deref(), token) {
        return refused;
    }
    if file == weir_hls::MULTIVARIANT_PLAYLIST {
        let (body, finished) = entry.playlist();
        metrics::counter!("weir_http_vod_requests_total", "kind" => "playlist").increment(1);
        let cache = if finished {
            VOD_PLAYLIST
        } else {
            EVENT_PLAYLIST
        };
        return Response::ok(PLAYLIST, cache, body);
    }
    if file == crate::recorder::dash::MPD_FILE || file.starts_with("dash/") {
        let source = match recorder.store() {
            Some(store) if entry.is_remote() => {
                super::vod_dash::Source::Store(store.clone(), id.to_owned())
            }
            _ => super::vod_dash::Source::Local(entry.dir.clone()),
        };
        return super::vod_dash::respond(entry, file, source).await;
    }
    if entry.is_remote()
        && let Some(store) = recorder.store()
    {
        return from_store(store, id, file, &entry, req).await;
    }
    if crate::recorder::thumbs::is_picture_file(file) {
        let path = entry.dir.join(file);
        let Ok(meta) = std::fs::metadata(&path) else {
            return Response::error(404, "no such picture (made once the recording is finished)");
        };
        let kind = if file.ends_with(".vtt") {
            "text/vtt"
        } else {
            "image/jpeg"
        };
        metrics::counter!("weir_http_vod_requests_total", "kind" => "picture").increment(1);
        return ranged(path, meta.len(), req, kind, "weir_http_vod_bytes_total").await;
    }
    let found = match ObjectName::parse(file) {
        Some(ObjectName::Segment(msn)) => entry.segment(msn).map(|f| (f, "segment")),
        Some(ObjectName::Init(n)) => entry.init(n).map(|f| (f, "init")),
        _ => None,
    };
    let Some(((path, len), kind)) = found else {
        return Response::error(404, "no such object");
    };
    metrics::counter!("weir_http_vod_requests_total", "kind" => kind).increment(1);
    // HEAD reads too: its Content-Length is the body's (HEAD of a segment is rare).
    ranged(path, len, req, MP4, "weir_http_vod_bytes_total").await
}

/// Answers `/clips/<clip id>/<file>`: the clip's playlist and its MP4 (single byte
/// ranges: 206). A clip's files never change once written (its id is new for each).
pub async fn respond_clip(
    rest: &str,
    req: &Request,
    clips: Option<&Clips>,
    auth: &dyn PublishAuth,
) -> Response {
    let Some(clips) = clips else {
        return Response::error(404, "clips are off on this node");
    };
    let Some((id, file)) = rest.split_once('/') else {
        return Response::error(404, "not found");
    };
    let (token, file) = super::signed::split_token(file);
    let Some((path, len)) = clips.file(id, file) else {
        return Response::error(404, "no such clip");
    };
    let signed = clips.signed(id);
    if let Err(refused) = super::signed::check(auth, signed.as_deref(), token) {
        return refused;
    }
    let kind = if file == crate::clips::PLAYLIST_FILE {
        PLAYLIST
    } else {
        MP4
    };
    metrics::counter!("weir_http_clip_requests_total").increment(1);
    ranged(path, len, req, kind, "weir_http_clip_bytes_total").await
}

/// Answers a file of a recording that is only in the object store.
async fn from_store(
    store: &std::sync::Arc<crate::recorder::Remote>,
    id: &str,
    file: &str,
    entry: &crate::recorder::Entry,
    req: &Request,
) -> Response {
    let (len, kind, what) = if crate::recorder::thumbs::is_picture_file(file) {
        let kind = if file.ends_with(".vtt") {
            "text/vtt"
        } else {
            "image/jpeg"
        };
        (None, kind, "picture")
    } else {
        let found = match ObjectName::parse(file) {
            Some(ObjectName::Segment(msn)) => entry.segment(msn).map(|(_, n)| (n, "segment")),
            Some(ObjectName::Init(n)) => entry.init(n).map(|(_, n)| (n, "init")),
            _ => None,
        };
        let Some((len, what)) = found else {
            return Response::error(404, "no such object");
        };
        (Some(len), MP4, what)
    };
    metrics::counter!("weir_http_vod_requests_total", "kind" => what).increment(1);
    let window = |len: u64| match parse_range(req.range.as_deref(), len) {
        RangeAsk::Whole => Some((0, len.saturating_sub(1), false)),
        RangeAsk::Part(a, b) => Some((a, b, true)),
        RangeAsk::Unsatisfiable => None,
    };
    let (body, len, start, end, partial) = if let Some(len) = len {
        let Some((start, end, partial)) = window(len) else {
            return unsatisfiable(len);
        };
        let body = if len == 0 {
            Bytes::new()
        } else {
            match store.get(id, file, Some(start..end + 1)).await {
                Ok(b) => b,
                Err(e) => return store_failed(id, file, &e),
            }
        };
        (body, len, start, end, partial)
    } else {
        // A picture's size is not indexed: it is small, read whole and cut here.
        let whole = match store.get(id, file, None).await {
            Ok(b) => b,
            Err(e) => return store_failed(id, file, &e),
        };
        let len = whole.len() as u64;
        let Some((start, end, partial)) = window(len) else {
            return unsatisfiable(len);
        };
        let body = if partial {
            whole.slice(start as usize..end as usize + 1)
        } else {
            whole
        };
        (body, len, start, end, partial)
    };
    if body.len() as u64 != if len == 0 { 0 } else { end + 1 - start } {
        return Response::error(502, "the recording store answered a short read");
    }
    metrics::counter!("weir_http_vod_bytes_total").increment(body.len() as u64);
    let mut r = Response::ok(kind, IMMUTABLE, Rope::from(body));
    r.extra.push(("Accept-Ranges", "bytes".to_owned()));
    if partial {
        r.status = 206;
        r.extra
            .push(("Content-Range", format!("bytes {start}-{end}/{len}")));
    }
    r
}

fn store_failed(id: &str, file: &str, e: &crate::recorder::StoreError) -> Response {
    if matches!(e, crate::recorder::StoreError::NotFound) {
        return Response::error(404, "no such object");
    }
    metrics::counter!("weir_record_store_errors_total", "op" => "read").increment(1);
    tracing::debug!(recording = %id, file, error = %e, "record store read failed");
    Response::error(502, "the recording store is unavailable")
}

fn unsatisfiable(len: u64) -> Response {
    let mut r = Response::error(416, "range not satisfiable");
    r.extra.push(("Content-Range", format!("bytes */{len}")));
    r
}

/// Answers an immutable file of `len` bytes as `kind`, whole or the single range `req`
/// asks for, counting the bytes sent in `bytes_metric`.
async fn ranged(
    path: std::path::PathBuf,
    len: u64,
    req: &Request,
    kind: &'static str,
    bytes_metric: &'static str,
) -> Response {
    let (start, end, partial) = match parse_range(req.range.as_deref(), len) {
        RangeAsk::Whole => (0, len.saturating_sub(1), false),
        RangeAsk::Part(a, b) => (a, b, true),
        RangeAsk::Unsatisfiable => {
            let mut r = Response::error(416, "range not satisfiable");
            r.extra.push(("Content-Range", format!("bytes */{len}")));
            return r;
        }
    };
    let count = if len == 0 { 0 } else { end + 1 - start };
    if count > MAX_READ {
        return Response::error(500, "object too large");
    }
    let path_shown = path.display().to_string();
    let body = if count == 0 {
        Rope::default()
    } else {
        let read = crate::affinity::spawn_blocking(move || read_at(&path, start, count)).await;
        match read {
            Ok(Ok(bytes)) => Rope::from(bytes),
            Ok(Err(e)) => {
                tracing::debug!(error = %e, path = %path_shown, "object unreadable");
                return Response::error(404, "no such object");
            }
            Err(_) => return Response::error(500, "read failed"),
        }
    };
    metrics::counter!(bytes_metric).increment(body.len() as u64);
    let mut r = Response::ok(kind, IMMUTABLE, body);
    r.extra.push(("Accept-Ranges", "bytes".to_owned()));
    if partial {
        r.status = 206;
        r.extra
            .push(("Content-Range", format!("bytes {start}-{end}/{len}")));
    }
    r
}

/// Reads `count` bytes of `path` from `start` (blocking).
fn read_at(path: &std::path::Path, start: u64, count: u64) -> std::io::Result<Bytes> {
    use std::io::{Read as _, Seek as _, SeekFrom};
    let mut f = std::fs::File::open(path)?;
    f.seek(SeekFrom::Start(start))?;
    let mut buf = vec![0u8; usize::try_from(count).unwrap_or(0)];
    f.read_exact(&mut buf)?;
    Ok(Bytes::from(buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        use RangeAsk::*;
        let r = |h: &str| parse_range(Some(h), 1000);
        assert_eq!(parse_range(None, 1000), Whole);
        assert_eq!(r("bytes=0-99"), Part(0, 99));
        assert_eq!(r("bytes=900-"), Part(900, 999));
        assert_eq!(r("bytes=-100"), Part(900, 999));
        assert_eq!(r("bytes=-5000"), Part(0, 999));
        assert_eq!(r("bytes=500-5000"), Part(500, 999));
        assert_eq!(r("bytes=1000-"), Unsatisfiable);
        assert_eq!(r("bytes=-0"), Unsatisfiable);
        assert_eq!(r("bytes=0-1,5-9"), Whole);
        assert_eq!(r("bytes=9-1"), Whole);
        assert_eq!(r("items=0-1"), Whole);
        assert_eq!(r("bytes=+1-2"), Whole);
        assert_eq!(r("bytes=99999999999999999999999-"), Whole);
    }
}
