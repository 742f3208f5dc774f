//! The SRT stream id a caller sends in its handshake (`SRTO_STREAMID`).
//!
//! Two forms are in use and both are accepted:
//! - **plain**: the whole id is the resource, e.g. `ffmpeg … "srt://host:9000?streamid=<key>"`
//!   or `live/<key>`;
//! - the **access-control syntax** of the SRT spec: `#!::r=live/<key>,m=publish,u=alice`,
//!   comma-separated `key=value` pairs (`r` resource, `m` mode, `u` user, `s` session,
//!   `t` type, `h` host); unknown keys are ignored.
//!
//! MediaMTX-style `publish:live/<key>` and `read:live/<key>` prefixes set the mode too.
//! Callers that take the id from a URL (ffmpeg, srt-live-transmit) pass `%XX` escapes on
//! verbatim — `streamid=%23!::r=…` is how `#` gets into a URL — so escapes are decoded.
//! Ids are at most [`MAX_STREAM_ID`] bytes (libsrt's limit).

/// Longest stream id accepted, in bytes (the SRT handshake carries at most 512).
pub const MAX_STREAM_ID: usize = 512;

/// What the caller wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Send media to the server (the default when the id does not say).
    Publish,
    /// Receive media from the server.
    Request,
    /// Both directions.
    Bidirectional,
}

/// A parsed stream id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamRequest {
    /// The resource (`live/<key>`, `<key>`).
    pub resource: String,
    /// The requested direction.
    pub mode: Mode,
    /// The user name, when the access-control syntax names one.
    pub user: Option<String>,
}

/// Why a stream id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamIdError {
    /// No stream id, or an empty resource.
    #[error("no stream id: publish with ?streamid=<stream key>")]
    Missing,
    /// Longer than [`MAX_STREAM_ID`].
    #[error("stream id longer than {MAX_STREAM_ID} bytes")]
    TooLong,
    /// An `m=` value that is not `publish`, `request` or `bidirectional`.
    #[error("unknown stream id mode {0:?}")]
    UnknownMode(String),
    /// A `#!::` pair without `=`.
    #[error("malformed stream id pair {0:?}")]
    Malformed(String),
}

impl StreamRequest {
    /// Parses a stream id (see the module docs for the accepted forms).
    pub fn parse(id: &str) -> Result<Self, StreamIdError> {
        if id.len() > MAX_STREAM_ID {
            return Err(StreamIdError::TooLong);
        }
        let decoded = percent_decode(id.trim());
        let id = decoded.as_str();
        let request = match id.strip_prefix("#!::") {
            Some(pairs) => Self::parse_pairs(pairs)?,
            None => Self::parse_plain(id),
        };
        if request.resource.is_empty() {
            return Err(StreamIdError::Missing);
        }
        Ok(request)
    }

    fn parse_plain(id: &str) -> Self {
        let (mode, resource) = if let Some(r) = id.strip_prefix("publish:") {
            (Mode::Publish, r)
        } else if let Some(r) = id.strip_prefix("read:") {
            (Mode::Request, r)
        } else {
            (Mode::Publish, id)
        };
        Self {
            resource: resource.to_owned(),
            mode,
            user: None,
        }
    }

    fn parse_pairs(pairs: &str) -> Result<Self, StreamIdError> {
        let mut request = Self {
            resource: String::new(),
            mode: Mode::Publish,
            user: None,
        };
        for pair in pairs.split(',').filter(|p| !p.is_empty()) {
            let (k, v) = pair
                .split_once('=')
                .ok_or_else(|| StreamIdError::Malformed(pair.to_owned()))?;
            match k.trim() {
                "r" => request.resource = v.trim().to_owned(),
                "u" => request.user = Some(v.trim().to_owned()),
                "m" => {
                    request.mode = match v.trim() {
                        "publish" => Mode::Publish,
                        "request" => Mode::Request,
                        "bidirectional" => Mode::Bidirectional,
                        other => return Err(StreamIdError::UnknownMode(other.to_owned())),
                    }
                }
                _ => {}
            }
        }
        Ok(request)
    }

    /// Splits the resource into an application and a name, the way RTMP addresses a
    /// stream (`live/<key>` → `("live", "<key>")`); a bare `<key>` gets `default_app`.
    pub fn app_and_name<'a>(&'a self, default_app: &'a str) -> (&'a str, &'a str) {
        let r = self.resource.trim_matches('/');
        match r.rsplit_once('/') {
            Some((app, name)) => (app, name),
            None => (default_app, r),
        }
    }
}

/// Decodes `%XX` escapes; anything else (a lone `%`, invalid UTF-8) is kept as it was.
fn percent_decode(s: &str) -> String {
    if !s.contains('%') {
        return s.to_owned();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (
            b[i],
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, ..) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| s.to_owned())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn plain_ids() {
        let r = StreamRequest::parse("abc123").unwrap();
        assert_eq!(r.mode, Mode::Publish);
        assert_eq!(r.app_and_name("live"), ("live", "abc123"));
        let r = StreamRequest::parse("live/abc123").unwrap();
        assert_eq!(r.app_and_name("x"), ("live", "abc123"));
        let r = StreamRequest::parse("publish:live/k").unwrap();
        assert_eq!(
            (r.mode, r.app_and_name("x")),
            (Mode::Publish, ("live", "k"))
        );
        let r = StreamRequest::parse("read:live/k").unwrap();
        assert_eq!(r.mode, Mode::Request);
    }

    #[test]
    fn access_control_syntax() {
        let r = StreamRequest::parse("#!::r=live/key1,m=publish,u=alice,t=stream").unwrap();
        assert_eq!(r.resource, "live/key1");
        assert_eq!(r.mode, Mode::Publish);
        assert_eq!(r.user.as_deref(), Some("alice"));
        let r = StreamRequest::parse("#!::m=request,r=key2").unwrap();
        assert_eq!(
            (r.mode, r.app_and_name("live")),
            (Mode::Request, ("live", "key2"))
        );
    }

    #[test]
    fn escaped_ids() {
        let r = StreamRequest::parse("%23!::r=live/k1,m=publish").unwrap();
        assert_eq!(r.app_and_name("x"), ("live", "k1"));
        assert_eq!(StreamRequest::parse("a%2").unwrap().resource, "a%2");
        assert_eq!(StreamRequest::parse("%ff%fe").unwrap().resource, "%ff%fe");
    }

    #[test]
    fn refusals() {
        assert_eq!(StreamRequest::parse(""), Err(StreamIdError::Missing));
        assert_eq!(
            StreamRequest::parse("#!::m=publish"),
            Err(StreamIdError::Missing)
        );
        assert_eq!(
            StreamRequest::parse("#!::r=a,m=play"),
            Err(StreamIdError::UnknownMode("play".into()))
        );
        assert!(matches!(
            StreamRequest::parse("#!::r=a,oops"),
            Err(StreamIdError::Malformed(_))
        ));
        assert_eq!(
            StreamRequest::parse(&"k".repeat(MAX_STREAM_ID + 1)),
            Err(StreamIdError::TooLong)
        );
    }
}
