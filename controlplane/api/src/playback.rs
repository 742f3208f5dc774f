//! Playback tokens in URLs: `…/t.<exp>.<sig>/<file>`, a path segment the data plane
//! checks on every object below it (live playlists and segments, recordings, clips).
//!
//! A token is per channel and expiry, not per viewer. Its expiry is rounded up to a
//! quarter of the channel's TTL, so viewers asking in the same window get the same URLs
//! and a CDN caches them as one. Recordings and clips are always handed out with one:
//! whoever may read them is a member of the channel, and the node ignores the token where
//! the recording was not made signed, so a channel that changes its policy later still
//! gets URLs that work.

use crate::issuer::StreamKeyIssuer;
use crate::state::ApiState;

/// Seconds since the UNIX epoch.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The path segment `t.<exp>.<sig>` that opens `channel` for `ttl` seconds after `now`
/// plus `extra` (how long the media behind it plays), and that expiry.
pub fn token(
    issuer: &dyn StreamKeyIssuer,
    channel: &str,
    now: u64,
    ttl: u64,
    extra: u64,
) -> (String, u64) {
    let ttl = ttl.max(1);
    let window = (ttl / 4).max(1);
    let exp = (now + ttl + extra).div_ceil(window) * window;
    let q = issuer.sign_playback(channel, exp);
    // `exp=<exp>&sig=<sig>` → `t.<exp>.<sig>` (the signature is URL-safe base64: no dots).
    (q.replacen("exp=", "t.", 1).replacen("&sig=", ".", 1), exp)
}

/// `url` with `token` as the segment before its file name (`…/<id>/t.…/index.m3u8`).
pub fn with_token(url: &str, token: &str) -> String {
    match url.rsplit_once('/') {
        Some((dir, file)) => format!("{dir}/{token}/{file}"),
        None => url.to_owned(),
    }
}

/// Signs the recording and clip URLs of one channel for the caller.
pub struct VodSigner<'a> {
    issuer: &'a dyn StreamKeyIssuer,
    channel: String,
    ttl: u64,
    now: u64,
}

impl<'a> VodSigner<'a> {
    /// For `channel` (its slug) with its policy's token lifetime `ttl` (seconds).
    pub fn new(issuer: &'a dyn StreamKeyIssuer, channel: &str, ttl: u64) -> Self {
        Self {
            issuer,
            channel: channel.to_owned(),
            ttl,
            now: now_secs(),
        }
    }

    /// For the channel `channel_id` (`slug`), its token lifetime read from its policy.
    pub async fn for_channel(
        st: &'a ApiState,
        channel_id: &str,
        slug: &str,
    ) -> Result<Self, weir_store::StoreError> {
        let e = st.store().get_entitlement(channel_id).await?;
        Ok(Self::new(
            &*st.inner.issuer,
            slug,
            u64::from(e.signed_url_ttl_secs),
        ))
    }

    /// `url` under a token that lasts the TTL plus `duration_ms` (a viewer who starts it
    /// now can watch it to the end).
    pub fn sign(&self, url: &str, duration_ms: u64) -> String {
        let (token, _) = token(
            self.issuer,
            &self.channel,
            self.now,
            self.ttl,
            duration_ms.div_ceil(1000),
        );
        with_token(url, &token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Issuer;

    impl StreamKeyIssuer for Issuer {
        fn issue(&self, _: &str) -> (String, String) {
            unreachable!()
        }
        fn revoke(&self, _: &str) {}
        fn sign_playback(&self, channel: &str, expires_at: u64) -> String {
            format!("exp={expires_at}&sig={channel}-sig")
        }
    }

    #[test]
    fn expiry_is_rounded_up_to_a_quarter_of_the_ttl_plus_the_media() {
        assert_eq!(
            token(&Issuer, "c", 1000, 400, 0),
            ("t.1400.c-sig".into(), 1400)
        );
        assert_eq!(token(&Issuer, "c", 1001, 400, 0).1, 1500);
        assert_eq!(token(&Issuer, "c", 1000, 400, 150).1, 1600);
        assert_eq!(
            token(&Issuer, "c", 7, 0, 0).1,
            8,
            "a TTL of 0 is one second"
        );
    }

    #[test]
    fn the_token_goes_before_the_file_name() {
        assert_eq!(
            with_token("http://n:8080/vod/r1/index.m3u8", "t.9.s"),
            "http://n:8080/vod/r1/t.9.s/index.m3u8"
        );
        assert_eq!(
            with_token("/clips/c1/clip.mp4", "t.9.s"),
            "/clips/c1/t.9.s/clip.mp4"
        );
        let v = VodSigner {
            issuer: &Issuer,
            channel: "ch".into(),
            ttl: 400,
            now: 1000,
        };
        assert_eq!(
            v.sign("/vod/r1/poster.jpg", 99_001),
            "/vod/r1/t.1500.ch-sig/poster.jpg"
        );
    }
}
