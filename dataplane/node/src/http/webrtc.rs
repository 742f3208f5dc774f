//! WHIP (RFC 9725) and WHEP endpoints (their browser pages are in `web`).
//!
//! ```text
//! POST   /whip[/<stream key>]        offer → 201 + answer, Location /whip/session/<id>
//!                                    (the key may come as `Authorization: Bearer <key>`)
//! POST   /whep/<channel>             offer → 201 + answer, Location /whep/session/<id>
//!                                    (a signed channel: /whep/<channel>/t.<exp>.<sig>, or the
//!                                    token as `Authorization: Bearer t.<exp>.<sig>`; the
//!                                    session ends when it expires)
//! PATCH  /whi{p,ep}/session/<id>     trickle ICE: 204 (ICE-lite: the server needs none
//!                                    of the client's candidates; checks reach it anyway)
//! DELETE /whi{p,ep}/session/<id>     ends the session
//! ```
//! Answers, and `OPTIONS` on the same paths, carry the configured STUN/TURN servers as
//! `Link: <url>; rel="ice-server"` headers (see `webrtc::ice_servers`).

use std::rc::Rc;

use bytes::Bytes;

use super::request::{Method, Request};
use super::response::Response;
use crate::webrtc::{self, Answered, Refused, WebrtcShard};

const SDP: &str = "application/sdp";

/// Answers a WHIP/WHEP request, or `None` when the path is not one of them.
pub async fn respond(req: &Request, rtc: &Rc<WebrtcShard>) -> Option<Response> {
    let path = req.path.as_str();
    let (kind, rest) = if let Some(r) = path.strip_prefix("/whip") {
        ("whip", r)
    } else if let Some(r) = path.strip_prefix("/whep") {
        ("whep", r)
    } else {
        return None;
    };
    if let Some(id) = rest.strip_prefix("/session/") {
        return Some(session_resource(req, rtc, id));
    }
    let name = rest.strip_prefix('/').unwrap_or(rest);
    if !rest.is_empty() && !rest.starts_with('/') {
        return None;
    }
    if req.method == Method::Options {
        // Clients that must relay ask for the ICE servers before their offer (RFC 9725
        // §4.6 allows them here too).
        let mut r = Response::error(204, "");
        r.body = weir_hls::Rope::default();
        r.extra.push(("Access-Control-Max-Age", "86400".to_owned()));
        push_links(&mut r, rtc);
        return Some(r);
    }
    if req.method != Method::Post {
        return Some(Response::error(405, "POST an SDP offer here"));
    }
    if !req
        .content_type
        .as_deref()
        .is_some_and(|t| t.to_ascii_lowercase().starts_with(SDP))
    {
        return Some(Response::error(415, "the offer must be application/sdp"));
    }
    let Ok(offer) = std::str::from_utf8(&req.body) else {
        return Some(Response::error(400, "the offer is not UTF-8"));
    };
    // Sessions are capped per client address and per node before any work is done.
    let permit = match rtc.admit(req.peer) {
        Ok(p) => p,
        Err(Refused { status, message }) => {
            metrics::counter!("weir_webrtc_offers_total", "endpoint" => kind, "result" => "refused")
                .increment(1);
            let mut r = Response::error(status, &message);
            r.extra.push(("Retry-After", "10".to_owned()));
            return Some(r);
        }
    };
    let result = if kind == "whip" {
        let bearer = req.authorization.as_deref().and_then(|a| {
            a.strip_prefix("Bearer ")
                .or_else(|| a.strip_prefix("bearer "))
        });
        let key = if name.is_empty() {
            bearer.unwrap_or("")
        } else {
            name
        };
        if key.is_empty() {
            return Some(Response::error(
                401,
                "a stream key is needed: POST /whip/<key> or Authorization: Bearer <key>",
            ));
        }
        webrtc::publish(rtc, key, offer, permit, req.peer).await
    } else {
        // A signed channel: `/whep/<channel>/t.<exp>.<sig>` (the token `playbackUrl`
        // hands out) or `Authorization: Bearer t.<exp>.<sig>`.
        let (channel, token) = match name.split_once('/') {
            Some((c, t)) => (c, Some(t)),
            None => (name, None),
        };
        let bearer = req.authorization.as_deref().and_then(|a| {
            a.strip_prefix("Bearer ")
                .or_else(|| a.strip_prefix("bearer "))
        });
        let token = token.or(bearer).and_then(|t| t.strip_prefix("t."));
        if channel.is_empty() || channel.contains('/') {
            return Some(Response::error(404, "POST /whep/<channel>"));
        }
        webrtc::play(rtc, channel, token, offer, permit).await
    };
    metrics::counter!("weir_webrtc_offers_total", "endpoint" => kind, "result" => if result.is_ok() { "answered" } else { "refused" })
        .increment(1);
    Some(match result {
        Ok(Answered { id, answer }) => {
            let mut r = Response::ok(SDP, "no-store", Bytes::from(answer));
            r.status = 201;
            r.extra.push(("Location", format!("/{kind}/session/{id}")));
            r.extra.push(("ETag", format!("\"{id}\"")));
            push_links(&mut r, rtc);
            r
        }
        Err(Refused { status, message }) => {
            tracing::debug!(endpoint = kind, status, %message, "offer refused");
            Response::error(status, &message)
        }
    })
}

/// The STUN/TURN servers for the client (RFC 9725 §4.6), one `Link` header each.
fn push_links(r: &mut Response, rtc: &WebrtcShard) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    for link in crate::webrtc::ice_servers::links(&rtc.ice_servers, now) {
        r.extra.push(("Link", link));
    }
}

fn session_resource(req: &Request, rtc: &WebrtcShard, id: &str) -> Response {
    match req.method {
        Method::Delete if rtc.directory.end(id) => Response::error(200, "session ended"),
        Method::Patch if rtc.directory.contains(id) => {
            let mut r = Response::error(204, "");
            r.body = weir_hls::Rope::default();
            r
        }
        Method::Delete | Method::Patch => Response::error(404, "no such session"),
        _ => Response::error(405, "PATCH (trickle ICE) or DELETE a session"),
    }
}
