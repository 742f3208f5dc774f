//! Relay destinations: what the control plane hands a node, and how an `rtmp://` URL
//! plus a stream key becomes a connection plan.

use std::fmt;

/// A destination a broadcast is pushed to (multistreaming), as the control plane sends
/// it with the publish authorisation. `Debug` leaves the key out.
#[derive(Clone, PartialEq, Eq)]
pub struct RelayTarget {
    /// The control plane's destination id (status reports name it).
    pub id: String,
    /// Display name (`YouTube`), for logs.
    pub name: String,
    /// Ingest URL, `rtmp://host[:port]/app[/…]` or `rtmps://…`.
    pub url: String,
    /// The destination's stream key (secret: never logged).
    pub stream_key: String,
}

impl fmt::Debug for RelayTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RelayTarget")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("url", &self.url)
            .field("stream_key", &"<redacted>")
            .finish()
    }
}

/// Where and how to connect for one destination.
#[derive(Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Host name or address literal (brackets removed).
    pub host: String,
    /// TCP port (1935 for `rtmp`, 443 for `rtmps` unless given).
    pub port: u16,
    /// `rtmps`: TLS around RTMP.
    pub tls: bool,
    /// `connect`'s `app` (everything between the authority and the stream name).
    pub app: String,
    /// `connect`'s `tcUrl` (the URL without the stream name).
    pub tc_url: String,
    /// The publishing name: the stream key (and a `?query` the URL carried).
    pub stream_name: String,
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("app", &self.app)
            .finish_non_exhaustive()
    }
}

/// Why a destination URL cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// Not `rtmp://` or `rtmps://`.
    #[error("destination URL must start with rtmp:// or rtmps://")]
    Scheme,
    /// No host, a bad port, or no application path.
    #[error("destination URL is malformed: {0}")]
    Malformed(&'static str),
}

/// Longest URL or key accepted (they come from users through the control plane).
const MAX_LEN: usize = 2048;

impl Endpoint {
    /// Parses `url` and appends `key` as the stream name. Platforms give either an
    /// application URL (`rtmp://a.rtmp.youtube.com/live2`) and a key, or a URL that
    /// already ends in the key with an empty key field; both work.
    pub fn parse(url: &str, key: &str) -> Result<Self, TargetError> {
        if url.len() > MAX_LEN || key.len() > MAX_LEN {
            return Err(TargetError::Malformed("too long"));
        }
        let url = url.trim();
        let (tls, rest) = if let Some(r) = strip_prefix_ci(url, "rtmps://") {
            (true, r)
        } else if let Some(r) = strip_prefix_ci(url, "rtmp://") {
            (false, r)
        } else {
            return Err(TargetError::Scheme);
        };
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        if authority.contains('@') {
            return Err(TargetError::Malformed("credentials in the URL"));
        }
        let (host, port) = split_host_port(authority)?;
        let default_port = if tls { 443 } else { 1935 };
        let port = port.unwrap_or(default_port);
        let path = path.trim_end_matches('/');
        let key = key.trim();
        let (app, stream_name) = if key.is_empty() {
            // The key is the last path segment.
            match path.rsplit_once('/') {
                Some((app, name)) if !app.is_empty() && !name.is_empty() => {
                    (app.to_owned(), name.to_owned())
                }
                _ => return Err(TargetError::Malformed("no stream key")),
            }
        } else {
            (path.to_owned(), key.to_owned())
        };
        if app.is_empty() {
            return Err(TargetError::Malformed("no application path"));
        }
        if app.chars().chain(stream_name.chars()).any(char::is_control) {
            return Err(TargetError::Malformed("control characters"));
        }
        let scheme = if tls { "rtmps" } else { "rtmp" };
        let shown_host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.clone()
        };
        let tc_url = if port == default_port {
            format!("{scheme}://{shown_host}/{app}")
        } else {
            format!("{scheme}://{shown_host}:{port}/{app}")
        };
        Ok(Self {
            host,
            port,
            tls,
            app,
            tc_url,
            stream_name,
        })
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

fn split_host_port(authority: &str) -> Result<(String, Option<u16>), TargetError> {
    let bad_port = || TargetError::Malformed("bad port");
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (h, after) = rest
            .split_once(']')
            .ok_or(TargetError::Malformed("unclosed IPv6 literal"))?;
        match after.strip_prefix(':') {
            Some(p) => (h, Some(p)),
            None if after.is_empty() => (h, None),
            None => return Err(TargetError::Malformed("junk after the host")),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(TargetError::Malformed("no host"));
    }
    let port = match port {
        Some(p) => Some(
            p.parse::<u16>()
                .ok()
                .filter(|&p| p != 0)
                .ok_or_else(bad_port)?,
        ),
        None => None,
    };
    Ok((host.to_ascii_lowercase(), port))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn platform_urls_and_keys() {
        let e = Endpoint::parse("rtmp://a.rtmp.youtube.com/live2", "abcd-efgh").unwrap();
        assert_eq!(
            (e.host.as_str(), e.port, e.tls, e.app.as_str()),
            ("a.rtmp.youtube.com", 1935, false, "live2")
        );
        assert_eq!(e.tc_url, "rtmp://a.rtmp.youtube.com/live2");
        assert_eq!(e.stream_name, "abcd-efgh");

        let e = Endpoint::parse("rtmps://live-api-s.facebook.com:443/rtmp/", "FB-1?s=2").unwrap();
        assert_eq!((e.port, e.tls, e.app.as_str()), (443, true, "rtmp"));
        assert_eq!(e.tc_url, "rtmps://live-api-s.facebook.com/rtmp");
        assert_eq!(e.stream_name, "FB-1?s=2");

        // The key in the URL, none given apart.
        let e = Endpoint::parse("rtmp://127.0.0.1:19350/live/sub/key1", "").unwrap();
        assert_eq!(
            (e.port, e.app.as_str(), e.stream_name.as_str()),
            (19350, "live/sub", "key1")
        );
        assert_eq!(e.tc_url, "rtmp://127.0.0.1:19350/live/sub");

        let e = Endpoint::parse("RTMP://[::1]:1936/app", "k").unwrap();
        assert_eq!((e.host.as_str(), e.port), ("::1", 1936));
        assert_eq!(e.tc_url, "rtmp://[::1]:1936/app");
    }

    #[test]
    fn malformed_urls_are_refused() {
        for (url, key) in [
            ("http://x/app", "k"),
            ("rtmp://", "k"),
            ("rtmp://host", "k"),
            ("rtmp://host:0/app", "k"),
            ("rtmp://host:99999/app", "k"),
            ("rtmp://user:pw@host/app", "k"),
            ("rtmp://[::1/app", "k"),
            ("rtmp://host/app", ""),
            ("rtmp://host/app", "a\nb"),
        ] {
            assert!(Endpoint::parse(url, key).is_err(), "{url} {key:?}");
        }
        assert!(Endpoint::parse(&format!("rtmp://h/{}", "a".repeat(3000)), "k").is_err());
    }

    #[test]
    fn debug_never_shows_the_key() {
        let t = RelayTarget {
            id: "d1".into(),
            name: "YouTube".into(),
            url: "rtmp://a/live2".into(),
            stream_key: "secret-key".into(),
        };
        assert!(!format!("{t:?}").contains("secret-key"));
        let e = Endpoint::parse(&t.url, &t.stream_key).unwrap();
        assert!(!format!("{e:?}").contains("secret-key"));
    }
}
