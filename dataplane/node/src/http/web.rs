//! The browser pages in `web/`, compiled into the binary (no files to deploy):
//!
//! ```text
//! /watch/<channel>                 the watch page: player (LL-HLS, or WebRTC), chat, title,
//!                                  live state, viewers, latency (web/watch.html)
//! /web/watch.js, /web/watch.css    its script and style
//! /web/chat.js                     the chat client and log (shared with the chat panel)
//! /web/hls.min.js?v=<tag>          hls.js from npm (web/package-lock.json; see build.rs)
//! /web/whip.html, /web/whep.html   WebRTC publish / play pages, /web/webrtc.js their helpers
//! /web/studio.html                 the studio: guest view (?invite=<token>) and host view
//!                                  (?broadcast=<id>; ?channel=<id> creates one)
//! /web/studio.js, /web/studio.css  its script and style
//! /studio/                         the creator dashboard: sign-up/in, channels, stream keys
//!                                  with OBS settings, destinations, live state and viewers,
//!                                  recordings (web/dashboard.html); /studio redirects here
//! /web/dashboard.js, /web/dashboard.css  its script and style
//! ```
//! The pages learn where the control plane's API and chat are from a `<meta>` the node fills
//! in (`[node] watch_api`); the dashboard also learns the node's RTMP port (the server URL it
//! tells encoders).

use bytes::Bytes;

use super::response::Response;

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// hls.js, installed by `npm ci` in `web/` (found by `build.rs`).
const HLS_JS: &str = include_str!(env!("WEIR_EMBED_HLS_JS"));
/// A tag of [`HLS_JS`]'s content, in its URL (so it may be cached for good).
const HLS_JS_TAG: &str = env!("WEIR_EMBED_HLS_JS_TAG");

const WATCH_HTML: &str = include_str!("../../../../web/watch.html");
const STUDIO_HTML: &str = include_str!("../../../../web/studio.html");
const DASHBOARD_HTML: &str = include_str!("../../../../web/dashboard.html");

/// The watch and studio pages' policy: their own scripts and styles only; media from blobs
/// (MSE) and connections to the control plane (any origin: `watch_api` may name another
/// host; the studio's WHIP goes to this node).
const PAGE_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; media-src 'self' blob:; worker-src blob:; \
     connect-src 'self' http: https: ws: wss:; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

/// Answers a page or asset request, or `None` when `path` is not one. `watch_api` is where
/// the pages find the control plane, `ingest` the RTMP port (`:PORT`) the dashboard shows.
pub fn respond(path: &str, query: &str, watch_api: &str, ingest: &str) -> Option<Response> {
    if let Some(channel) = path.strip_prefix("/watch/") {
        return Some(watch_page(channel, watch_api));
    }
    if path == "/web/studio.html" {
        return Some(page(STUDIO_HTML, watch_api, PAGE_CSP));
    }
    if path == "/studio/" {
        return Some(page(
            &DASHBOARD_HTML.replace("{{RTMP}}", &escape(ingest)),
            watch_api,
            PAGE_CSP,
        ));
    }
    if path == "/studio" {
        // Only a query of URL characters is carried over (it goes into a header).
        let plain = query.bytes().all(|b| b.is_ascii_graphic());
        return Some(redirect(if query.is_empty() || !plain {
            "/studio/".to_owned()
        } else {
            format!("/studio/?{query}")
        }));
    }
    let (body, content_type, cache): (&'static str, _, _) = match path {
        "/web/whip.html" => (include_str!("../../../../web/whip.html"), HTML, "no-cache"),
        "/web/whep.html" => (include_str!("../../../../web/whep.html"), HTML, "no-cache"),
        "/web/webrtc.js" => (include_str!("../../../../web/webrtc.js"), JS, "no-cache"),
        "/web/chat.js" => (include_str!("../../../../web/chat.js"), JS, "no-cache"),
        "/web/watch.js" => (include_str!("../../../../web/watch.js"), JS, "no-cache"),
        "/web/watch.css" => (include_str!("../../../../web/watch.css"), CSS, "no-cache"),
        "/web/studio.js" => (include_str!("../../../../web/studio.js"), JS, "no-cache"),
        "/web/studio.css" => (include_str!("../../../../web/studio.css"), CSS, "no-cache"),
        "/web/dashboard.js" => (include_str!("../../../../web/dashboard.js"), JS, "no-cache"),
        "/web/dashboard.css" => (
            include_str!("../../../../web/dashboard.css"),
            CSS,
            "no-cache",
        ),
        "/web/hls.min.js" => {
            // The tagged URL never changes content; anything else is revalidated.
            let tagged = query.split('&').any(|kv| kv == format!("v={HLS_JS_TAG}"));
            let cache = if tagged {
                "public, max-age=31536000, immutable"
            } else {
                "no-cache"
            };
            (HLS_JS, JS, cache)
        }
        _ => return None,
    };
    let mut r = Response::ok(content_type, cache, Bytes::from_static(body.as_bytes()));
    r.extra
        .push(("X-Content-Type-Options", "nosniff".to_owned()));
    Some(r)
}

/// A channel name as the origin serves it: URL-safe characters only.
fn valid_channel(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

fn watch_page(channel: &str, watch_api: &str) -> Response {
    let channel = channel.strip_suffix('/').unwrap_or(channel);
    if !valid_channel(channel) {
        return Response::error(404, "no such channel: /watch/<channel>");
    }
    page(WATCH_HTML, watch_api, PAGE_CSP)
}

/// A permanent redirect to `location` (a path on this node).
fn redirect(location: String) -> Response {
    let mut r = Response::error(301, "moved");
    r.extra.push(("Location", location));
    r
}

/// A page template with the API's address and hls.js's tag filled in, under `csp`.
fn page(template: &str, watch_api: &str, csp: &str) -> Response {
    let page = template
        .replace("{{API}}", &escape(watch_api))
        .replace("{{HLS_TAG}}", HLS_JS_TAG);
    let mut r = Response::ok(HTML, "no-cache", Bytes::from(page));
    r.extra.push(("Content-Security-Policy", csp.to_owned()));
    r.extra
        .push(("X-Content-Type-Options", "nosniff".to_owned()));
    r.extra.push(("Referrer-Policy", "no-referrer".to_owned()));
    r
}

/// Escapes text for an HTML attribute value.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watch_page_names_the_api_escaped_and_refuses_odd_channels() {
        let r = respond("/watch/demo", "", "https://api.example.com/\"><x", "").expect("page");
        assert_eq!(r.status, 200);
        let body = String::from_utf8(r.body.to_bytes().to_vec()).expect("utf-8");
        assert!(body.contains("content=\"https://api.example.com/&quot;&gt;&lt;x\""));
        assert!(body.contains(&format!("/web/hls.min.js?v={HLS_JS_TAG}")));
        assert!(!body.contains("{{"));
        for bad in ["/watch/", "/watch/a/b", "/watch/%3Cscript%3E", "/watch/a b"] {
            assert_eq!(
                respond(bad, "", ":8090", ":1935").expect("answer").status,
                404,
                "{bad}"
            );
        }
        assert_eq!(
            respond("/watch/demo/", "", ":8090", ":1935")
                .expect("page")
                .status,
            200
        );
    }

    #[test]
    fn studio_page_names_the_api_and_its_assets_are_served() {
        let r = respond("/web/studio.html", "invite=x", ":8090", "").expect("page");
        assert_eq!(r.status, 200);
        let body = String::from_utf8(r.body.to_bytes().to_vec()).expect("utf-8");
        assert!(body.contains("<meta name=\"weir-api\" content=\":8090\">"));
        assert!(body.contains(&format!("/web/hls.min.js?v={HLS_JS_TAG}")));
        assert!(body.contains("/web/studio.js"));
        assert!(!body.contains("{{"));
        assert!(r.extra.iter().any(|(k, _)| *k == "Content-Security-Policy"));
        for (asset, kind) in [("/web/studio.js", JS), ("/web/studio.css", CSS)] {
            let r = respond(asset, "", "", "").expect(asset);
            assert_eq!(r.status, 200, "{asset}");
            assert_eq!(r.content_type, kind, "{asset}");
            assert!(r.body.len() > 1000, "{asset} is embedded");
        }
    }

    #[test]
    fn dashboard_is_served_under_studio_with_the_ingest_port() {
        let r = respond("/studio/", "", ":8090", ":19350").expect("page");
        assert_eq!(r.status, 200);
        let body = String::from_utf8(r.body.to_bytes().to_vec()).expect("utf-8");
        assert!(body.contains("<meta name=\"weir-rtmp\" content=\":19350\">"));
        assert!(body.contains("<meta name=\"weir-api\" content=\":8090\">"));
        assert!(body.contains(&format!("/web/hls.min.js?v={HLS_JS_TAG}")));
        assert!(!body.contains("{{"));
        let moved = respond("/studio", "api=x", "", "").expect("redirect");
        assert_eq!(moved.status, 301);
        assert!(
            moved
                .extra
                .iter()
                .any(|(k, v)| *k == "Location" && v == "/studio/?api=x")
        );
        for (asset, kind) in [("/web/dashboard.js", JS), ("/web/dashboard.css", CSS)] {
            let r = respond(asset, "", "", "").expect(asset);
            assert_eq!(r.content_type, kind, "{asset}");
            assert!(r.body.len() > 1000, "{asset} is embedded");
        }
    }

    #[test]
    fn hls_js_is_embedded_and_cached_only_under_its_tag() {
        let tagged = respond("/web/hls.min.js", &format!("v={HLS_JS_TAG}"), "", "").expect("js");
        assert!(tagged.cache_control.contains("immutable"));
        assert!(tagged.body.len() > 100_000, "hls.min.js is embedded whole");
        let plain = respond("/web/hls.min.js", "", "", "").expect("js");
        assert_eq!(plain.cache_control, "no-cache");
        assert!(respond("/web/nothing.js", "", "", "").is_none());
    }
}
