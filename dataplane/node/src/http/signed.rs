//! Signed playback paths: `<prefix>/t.<exp>.<sig>/<rest>`.
//!
//! The token is a path segment, not a query, so that every object below it (playlists,
//! init and media segments, parts, pictures, clips) carries it through relative URIs and
//! a CDN caches one URL per token window. What is behind it decides whether it is needed:
//! a live broadcast whose channel's policy signs playback, a recording of such a
//! broadcast, a clip of such a recording. Elsewhere a token is accepted and ignored, so
//! the control plane may hand one out without knowing which case a file is in.

use crate::hooks::{PlaybackAccess, PublishAuth};

use super::response::Response;

/// Splits a leading `t.<exp>.<sig>/` segment off `rest`: the token (without `t.`) and
/// what follows it.
pub fn split_token(rest: &str) -> (Option<&str>, &str) {
    match rest.split_once('/') {
        Some((first, after)) => match first.strip_prefix("t.") {
            Some(token) => (Some(token), after),
            None => (None, rest),
        },
        None => (None, rest),
    }
}

/// Whether an object may be served: `signed` is the channel whose token it needs (None:
/// anyone who knows its path), `token` what the path carried. A refusal is a 403 that
/// says why.
pub fn check(
    auth: &dyn PublishAuth,
    signed: Option<&str>,
    token: Option<&str>,
) -> Result<(), Response> {
    let Some(channel) = signed else {
        return Ok(());
    };
    let access = token.map_or(PlaybackAccess::Denied, |t| {
        // `<exp>.<sig>`: the signature is URL-safe base64, which has no dots.
        let query = t
            .split_once('.')
            .map(|(exp, sig)| format!("exp={exp}&sig={sig}"))
            .unwrap_or_default();
        auth.playback_access(channel, &query)
    });
    match access {
        PlaybackAccess::Allowed => Ok(()),
        refused => Err(refusal(refused)),
    }
}

/// 403 for an object without a valid (or with an expired) playback token.
fn refusal(access: PlaybackAccess) -> Response {
    metrics::counter!("weir_http_playback_refused_total").increment(1);
    let reason = if access == PlaybackAccess::Expired {
        "this signed playback URL has expired: get a new one"
    } else {
        "this channel's playback needs a signed URL (…/t.<exp>.<sig>/…): ask the API for one"
    };
    Response::error(403, reason)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hooks::{LocalFuture, PublishGrant, PublishRefusal};

    /// Grants `exp=1&sig=ok` on channel `c`; `exp=1&sig=old` has expired.
    struct Auth;

    impl PublishAuth for Auth {
        fn authorize(&self, _: &str, _: &str) -> LocalFuture<Result<PublishGrant, PublishRefusal>> {
            unreachable!("not asked here")
        }

        fn playback_access(&self, channel: &str, query: &str) -> PlaybackAccess {
            match (channel, query) {
                ("c", "exp=1&sig=ok") => PlaybackAccess::Allowed,
                ("c", "exp=1&sig=old") => PlaybackAccess::Expired,
                _ => PlaybackAccess::Denied,
            }
        }
    }

    #[test]
    fn the_token_is_the_first_segment_only() {
        assert_eq!(
            split_token("t.1.ok/index.m3u8"),
            (Some("1.ok"), "index.m3u8")
        );
        assert_eq!(split_token("index.m3u8"), (None, "index.m3u8"));
        assert_eq!(split_token("t.1.ok"), (None, "t.1.ok"));
        assert_eq!(split_token("a/t.1.ok/x"), (None, "a/t.1.ok/x"));
    }

    #[test]
    fn only_what_is_signed_needs_a_token_and_then_a_valid_one() {
        assert!(check(&Auth, None, None).is_ok());
        assert!(
            check(&Auth, None, Some("9.forged")).is_ok(),
            "ignored when open"
        );
        assert!(check(&Auth, Some("c"), Some("1.ok")).is_ok());
        for (token, why) in [
            (None, "needs a signed URL"),
            (Some("1.forged"), "needs a signed URL"),
            (Some("nodot"), "needs a signed URL"),
            (Some("1.old"), "expired"),
        ] {
            let r = check(&Auth, Some("c"), token).expect_err("refused");
            assert_eq!(r.status, 403);
            let body = r.body.to_bytes();
            let body = String::from_utf8_lossy(&body);
            assert!(body.contains(why), "{token:?}: {body}");
        }
        // Another channel's token opens nothing here.
        assert!(check(&Auth, Some("d"), Some("1.ok")).is_err());
    }
}
