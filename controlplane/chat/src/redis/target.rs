//! Where the Redis of the fan-out is and how to sign in: `host:port`, or a URL
//! `redis://[[user]:password@]host[:port][/db]` (RFC 3986 userinfo, percent-encoded).
//! The password never appears in logs or errors: [`RedisTarget`]'s `Display` and `Debug`
//! leave it out.

use std::fmt;

use crate::error::{ChatError, Result};

/// A parsed Redis address with its credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisTarget {
    /// `host:port` to connect to.
    pub addr: String,
    /// ACL user (Redis 6+); `None` with a password: the default user.
    pub user: Option<String>,
    /// Sent with `AUTH` right after connecting.
    pub password: Option<String>,
    /// Database selected with `SELECT` (keys only: pub/sub ignores databases).
    pub db: Option<u32>,
}

impl RedisTarget {
    /// Parses `host:port` or a `redis://` URL; `rediss://` (TLS) is refused with a
    /// clear error, as is anything else unexpected.
    pub fn parse(s: &str) -> Result<Self> {
        let bad = |why: &str| ChatError::BadRequest(format!("chat Redis address: {why}"));
        let s = s.trim();
        if s.starts_with("rediss://") {
            return Err(bad(
                "TLS (rediss://) is not supported; reach Redis over a private network or a local TLS tunnel",
            ));
        }
        let rest = match s.split_once("://") {
            Some(("redis", rest)) => rest,
            Some((scheme, _)) => return Err(bad(&format!("unknown scheme {scheme}://"))),
            None => s,
        };
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (userinfo, host) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let addr = if has_port(host) {
            host.to_string()
        } else {
            format!("{host}:6379")
        };
        let (user, password) = match userinfo {
            None => (None, None),
            Some(u) => {
                let (user, pass) = u.split_once(':').unwrap_or(("", u));
                let user = decode(user).ok_or_else(|| bad("bad percent-encoding in the user"))?;
                let pass =
                    decode(pass).ok_or_else(|| bad("bad percent-encoding in the password"))?;
                (
                    (!user.is_empty()).then_some(user),
                    (!pass.is_empty()).then_some(pass),
                )
            }
        };
        if user.is_some() && password.is_none() {
            return Err(bad("a user needs a password"));
        }
        let db = match path.trim_end_matches('/') {
            "" => None,
            d => Some(
                d.parse()
                    .map_err(|_| bad("the path must be a database number"))?,
            ),
        };
        Ok(Self {
            addr,
            user,
            password,
            db,
        })
    }
}

/// Whether `host` ends with a port (`h:1`, `[::1]:1`; not a bare IPv6 address).
fn has_port(host: &str) -> bool {
    match host.rsplit_once(':') {
        Some((h, p)) => {
            !p.is_empty()
                && p.bytes().all(|b| b.is_ascii_digit())
                && (!h.contains(':') || h.ends_with(']'))
        }
        None => false,
    }
}

/// Percent-decodes `s` (UTF-8); `None` on a bad escape.
fn decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

impl fmt::Display for RedisTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.user, &self.password) {
            (Some(u), _) => write!(f, "redis://{u}:***@{}", self.addr)?,
            (None, Some(_)) => write!(f, "redis://:***@{}", self.addr)?,
            _ => write!(f, "redis://{}", self.addr)?,
        }
        match self.db {
            Some(db) => write!(f, "/{db}"),
            None => Ok(()),
        }
    }
}

impl fmt::Debug for RedisTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RedisTarget({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> RedisTarget {
        RedisTarget::parse(s).expect(s)
    }

    #[test]
    fn plain_addresses_and_urls() {
        assert_eq!(p("127.0.0.1:6380").addr, "127.0.0.1:6380");
        assert_eq!(p("redis://cache").addr, "cache:6379");
        assert_eq!(p("redis://[::1]:7000/").addr, "[::1]:7000");
        assert_eq!(p("redis://[::1]").addr, "[::1]:6379");
        let t = p("redis://chat:s%40cr%3At@10.0.0.5:6379/2");
        assert_eq!(t.user.as_deref(), Some("chat"));
        assert_eq!(t.password.as_deref(), Some("s@cr:t"));
        assert_eq!(t.db, Some(2));
        let t = p("redis://:pw@h");
        assert_eq!((t.user, t.password.as_deref()), (None, Some("pw")));
    }

    #[test]
    fn the_password_stays_out_of_display_and_debug() {
        let t = p("redis://chat:hunter2@h:1/3");
        assert_eq!(t.to_string(), "redis://chat:***@h:1/3");
        assert!(!format!("{t:?}").contains("hunter2"));
        assert_eq!(p("redis://:hunter2@h:1").to_string(), "redis://:***@h:1");
    }

    #[test]
    fn bad_addresses_are_refused_clearly() {
        for (s, why) in [
            ("rediss://h:1", "TLS"),
            ("http://h:1", "unknown scheme"),
            ("redis://", "no host"),
            ("redis://u:@h", "needs a password"),
            ("redis://h/x", "database number"),
            ("redis://:%zz@h", "percent-encoding"),
        ] {
            let e = RedisTarget::parse(s).expect_err(s).to_string();
            assert!(e.contains(why), "{s}: {e}");
            assert!(!e.contains("%zz"), "{s}: {e}");
        }
    }
}
