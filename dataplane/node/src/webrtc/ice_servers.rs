//! STUN and TURN servers handed to WebRTC clients in `Link` headers (RFC 9725 §4.6), for
//! networks where the node's announced address is not enough (symmetric NATs, UDP
//! blocked: a TURN relay over TCP/TLS).
//!
//! Each server is configured as one string, its URL then `;`-separated parameters:
//!
//! ```text
//! stun:stun.example.com:3478
//! turn:turn.example.com:3478?transport=udp;username=weir;credential=s3cret
//! turns:turn.example.com:5349?transport=tcp;secret=<coturn static-auth-secret>[;ttl=86400]
//! ```
//! With `secret` (coturn's `use-auth-secret`, the "TURN REST API" scheme) every answer
//! carries short-lived credentials: username `<expiry>:weir`, credential
//! base64(HMAC-SHA1(secret, username)), so no long-lived TURN password reaches browsers.
//! Secrets never appear in logs or `Debug`.

use std::fmt;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;

/// Why an ICE server setting is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IceServerError {
    /// Not a `stun:`, `stuns:`, `turn:` or `turns:` URL.
    #[error("ICE server {0:?}: the URL must start with stun:, stuns:, turn: or turns:")]
    Scheme(String),
    /// A character a `Link` header cannot carry (`<>"`, spaces, control characters).
    #[error("ICE server {0:?}: characters a Link header cannot carry")]
    Characters(String),
    /// A parameter that is not `username`, `credential`, `secret` or `ttl`.
    #[error("ICE server {url:?}: unknown parameter {param:?} (username, credential, secret, ttl)")]
    Parameter {
        /// The server's URL.
        url: String,
        /// The parameter.
        param: String,
    },
    /// A TURN server needs credentials, a STUN server takes none.
    #[error("ICE server {0:?}: {1}")]
    Credentials(String, &'static str),
}

/// How a server's credentials are made.
#[derive(Clone, PartialEq, Eq)]
enum Credentials {
    None,
    Static {
        username: String,
        credential: String,
    },
    /// coturn `static-auth-secret`: credentials valid `ttl` seconds from each answer.
    Secret {
        secret: String,
        ttl: u64,
    },
}

/// One STUN or TURN server.
#[derive(Clone, PartialEq, Eq)]
pub struct IceServer {
    url: String,
    credentials: Credentials,
}

impl fmt::Debug for IceServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let creds = match &self.credentials {
            Credentials::None => "none",
            Credentials::Static { .. } => "static (redacted)",
            Credentials::Secret { .. } => "shared secret (redacted)",
        };
        f.debug_struct("IceServer")
            .field("url", &self.url)
            .field("credentials", &creds)
            .finish()
    }
}

impl std::str::FromStr for IceServer {
    type Err = IceServerError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut parts = s.trim().split(';');
        let url = parts.next().unwrap_or_default().trim().to_owned();
        let lower = url.to_ascii_lowercase();
        let turn = lower.starts_with("turn:") || lower.starts_with("turns:");
        if !turn && !lower.starts_with("stun:") && !lower.starts_with("stuns:") {
            return Err(IceServerError::Scheme(url));
        }
        let (mut username, mut credential, mut secret, mut ttl) = (None, None, None, 86_400);
        for p in parts {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let v = v.trim().to_owned();
            match k.trim() {
                "username" => username = Some(v),
                "credential" => credential = Some(v),
                "secret" => secret = Some(v),
                "ttl" => ttl = v.parse().unwrap_or(ttl),
                other => {
                    return Err(IceServerError::Parameter {
                        url,
                        param: other.to_owned(),
                    });
                }
            }
        }
        let clean = |t: &str| {
            !t.is_empty()
                && t.bytes()
                    .all(|b| b.is_ascii_graphic() && !b"<>\"\\".contains(&b))
        };
        let values = [Some(&url), username.as_ref(), credential.as_ref()];
        if values.into_iter().flatten().any(|v| !clean(v)) {
            return Err(IceServerError::Characters(url));
        }
        let credentials = match (turn, username, credential, secret) {
            (false, None, None, None) => Credentials::None,
            (false, ..) => {
                return Err(IceServerError::Credentials(
                    url,
                    "a STUN server takes no credentials",
                ));
            }
            (true, None, None, Some(secret)) if !secret.is_empty() => Credentials::Secret {
                secret,
                ttl: ttl.max(60),
            },
            (true, Some(username), Some(credential), None) => Credentials::Static {
                username,
                credential,
            },
            (true, ..) => {
                return Err(IceServerError::Credentials(
                    url,
                    "a TURN server needs username and credential, or secret",
                ));
            }
        };
        Ok(Self { url, credentials })
    }
}

impl IceServer {
    /// Its `Link` header value at UNIX time `now` (seconds).
    pub fn link(&self, now: u64) -> String {
        let creds = match &self.credentials {
            Credentials::None => None,
            Credentials::Static {
                username,
                credential,
            } => Some((username.clone(), credential.clone())),
            Credentials::Secret { secret, ttl } => {
                let username = format!("{}:weir", now + ttl);
                Some((username.clone(), rest_credential(secret, &username)))
            }
        };
        match creds {
            None => format!("<{}>; rel=\"ice-server\"", self.url),
            Some((u, c)) => format!(
                "<{}>; rel=\"ice-server\"; username=\"{u}\"; credential=\"{c}\"; credential-type=\"password\"",
                self.url
            ),
        }
    }
}

/// The TURN REST API credential for `username`: base64(HMAC-SHA1(secret, username)).
fn rest_credential(secret: &str, username: &str) -> String {
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(username.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The `Link` header values for `servers` at UNIX time `now`.
pub fn links(servers: &[IceServer], now: u64) -> Vec<String> {
    servers.iter().map(|s| s.link(now)).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn stun_and_static_turn_servers_become_link_headers() {
        let stun: IceServer = "stun:stun.example.com:3478".parse().unwrap();
        assert_eq!(
            stun.link(0),
            "<stun:stun.example.com:3478>; rel=\"ice-server\""
        );
        let turn: IceServer = "turn:t.example.com:3478?transport=udp;username=weir;credential=pw"
            .parse()
            .unwrap();
        assert_eq!(
            turn.link(0),
            "<turn:t.example.com:3478?transport=udp>; rel=\"ice-server\"; username=\"weir\"; credential=\"pw\"; credential-type=\"password\""
        );
        assert!(!format!("{turn:?}").contains("pw"), "{turn:?}");
    }

    #[test]
    fn a_shared_secret_gives_short_lived_credentials_coturn_accepts() {
        let t: IceServer = "turns:t.example.com:5349?transport=tcp;secret=north;ttl=600"
            .parse()
            .unwrap();
        let link = t.link(1_700_000_000);
        assert!(link.contains("username=\"1700000600:weir\""), "{link}");
        // coturn's check, base64(HMAC-SHA1(secret, username)), as given by
        // `echo -n 1700000600:weir | openssl dgst -sha1 -hmac north -binary | base64`.
        assert!(
            link.contains("credential=\"5Uu9h4nee++TJhHR1MuNsfbXoCw=\""),
            "{link}"
        );
        assert!(!format!("{t:?}").contains("north"));
    }

    #[test]
    fn bad_settings_are_refused_with_a_reason() {
        for (bad, why) in [
            ("http://x", "must start with"),
            ("turn:x:3478", "needs username and credential"),
            ("turn:x:3478;username=u", "needs username and credential"),
            ("stun:x;username=u;credential=p", "takes no credentials"),
            ("turn:x;username=u;credential=p\"q", "cannot carry"),
            ("stun:x y", "cannot carry"),
            ("stun:x;realm=r", "unknown parameter"),
        ] {
            let e = bad.parse::<IceServer>().unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}
