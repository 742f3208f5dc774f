//! Signed playback tokens: `exp=<unix seconds>&sig=<Ed25519 over the channel and expiry>`.

use crate::{KeyError, KeySigner, KeyVerifier};

const PLAYBACK_DOMAIN: &str = "weir/playback/v2";

fn playback_message(channel: &str, expires_at: u64) -> String {
    format!("{PLAYBACK_DOMAIN}:{channel}:{expires_at}")
}

impl KeySigner {
    /// The query string (`exp=…&sig=…`) that lets a player open `channel` until
    /// `expires_at` (UNIX seconds).
    pub fn sign_playback(&self, channel: &str, expires_at: u64) -> String {
        let sig = self.sign(&playback_message(channel, expires_at));
        format!("exp={expires_at}&sig={sig}")
    }

    /// Checks a playback query string (see [`KeyVerifier::verify_playback`]).
    pub fn verify_playback(&self, channel: &str, query: &str, now: u64) -> Result<(), KeyError> {
        self.verifier().verify_playback(channel, query, now)
    }
}

impl KeyVerifier {
    /// Checks the `exp` and `sig` parameters of a playback request's query string.
    pub fn verify_playback(&self, channel: &str, query: &str, now: u64) -> Result<(), KeyError> {
        if query.len() > 1024 {
            return Err(KeyError::Malformed);
        }
        let param = |name: &str| {
            query
                .split('&')
                .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
        };
        // Canonical digits only (no sign, no leading zeros): one spelling per token.
        let exp: u64 = param("exp")
            .filter(|v| {
                v.bytes().all(|b| b.is_ascii_digit()) && (v.len() == 1 || !v.starts_with('0'))
            })
            .and_then(|v| v.parse().ok())
            .ok_or(KeyError::Malformed)?;
        let sig = param("sig").ok_or(KeyError::Malformed)?;
        self.check(&playback_message(channel, exp), sig)?;
        if now > exp {
            return Err(KeyError::Expired);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_playback_urls_verify_until_they_expire() {
        let s = KeySigner::new(b"secret");
        let edge = s.verifier().clone();
        let q = s.sign_playback("show", 1000);
        assert_eq!(
            edge.verify_playback("show", &format!("s=1&{q}"), 999),
            Ok(())
        );
        assert_eq!(
            edge.verify_playback("show", &q, 1001),
            Err(KeyError::Expired)
        );
        assert_eq!(
            edge.verify_playback("other", &q, 999),
            Err(KeyError::BadSignature)
        );
        let longer = q.replace("exp=1000", "exp=9999");
        assert_eq!(
            edge.verify_playback("show", &longer, 999),
            Err(KeyError::BadSignature)
        );
        assert_eq!(
            edge.verify_playback("show", "", 0),
            Err(KeyError::Malformed)
        );
    }
}
