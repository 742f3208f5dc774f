//! A bounded, sans-IO HTTP/1.1 request-head parser (on top of `httparse`).
//!
//! `GET`, `HEAD` and `OPTIONS` carry no body; `POST` and `PATCH` (WHIP/WHEP offers and
//! trickle candidates) may carry one of at most [`MAX_BODY_BYTES`] with a
//! `Content-Length` (chunked bodies are refused), so a connection never buffers more
//! than a head and one small body.

/// Longest request head accepted.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
const MAX_HEADERS: usize = 48;
/// Longest request body accepted (an SDP offer with simulcast is ~10 KiB).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Request methods the origin distinguishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    /// GET.
    Get,
    /// HEAD.
    Head,
    /// OPTIONS (CORS preflight).
    Options,
    /// POST (WHIP/WHEP offers).
    Post,
    /// PATCH (trickle ICE).
    Patch,
    /// DELETE (end a WHIP/WHEP session).
    Delete,
    /// Anything else (answered 405).
    Other,
}

/// A parsed request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// The path, without the query.
    pub path: String,
    /// The raw query string (after `?`), possibly empty.
    pub query: String,
    /// Whether the connection stays open after the response.
    pub keep_alive: bool,
    /// `Content-Length` of the body that follows the head (0 without one).
    pub content_length: usize,
    /// `Content-Type`, if sent.
    pub content_type: Option<String>,
    /// `Authorization`, if sent (WHIP clients send `Bearer <stream key>`).
    pub authorization: Option<String>,
    /// `Host`, if sent.
    pub host: Option<String>,
    /// `Range`, if sent (answered for recordings' segments).
    pub range: Option<String>,
    /// The body (filled in by the connection once it has arrived).
    pub body: bytes::Bytes,
    /// The client's address (filled in by the connection; WebRTC sessions are capped per
    /// address).
    pub peer: Option<std::net::IpAddr>,
}

/// A request that cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// Not HTTP/1.x, or a malformed head.
    #[error("malformed request: {0}")]
    Malformed(String),
    /// The head is longer than [`MAX_HEAD_BYTES`].
    #[error("request head too large")]
    TooLarge,
    /// A body on a method that takes none, a chunked body, or one over
    /// [`MAX_BODY_BYTES`].
    #[error("request body refused: {0}")]
    Body(&'static str),
}

impl RequestError {
    /// The HTTP status this error is answered with.
    pub fn status(&self) -> u16 {
        match self {
            RequestError::Malformed(_) => 400,
            RequestError::TooLarge => 431,
            RequestError::Body(_) => 413,
        }
    }
}

/// Parses request heads from a connection's read buffer.
#[derive(Debug, Default, Clone, Copy)]
pub struct RequestParser;

impl RequestParser {
    /// Tries to parse one request head at the start of `buf`.
    ///
    /// `Ok(None)` means more bytes are needed; `Ok(Some((req, n)))` consumed `n` bytes.
    pub fn parse(&self, buf: &[u8]) -> Result<Option<(Request, usize)>, RequestError> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        let status = req
            .parse(buf)
            .map_err(|e| RequestError::Malformed(e.to_string()))?;
        let consumed = match status {
            httparse::Status::Partial if buf.len() > MAX_HEAD_BYTES => {
                return Err(RequestError::TooLarge);
            }
            httparse::Status::Partial => return Ok(None),
            httparse::Status::Complete(n) if n > MAX_HEAD_BYTES => {
                return Err(RequestError::TooLarge);
            }
            httparse::Status::Complete(n) => n,
        };
        let method = match req.method {
            Some("GET") => Method::Get,
            Some("HEAD") => Method::Head,
            Some("OPTIONS") => Method::Options,
            Some("POST") => Method::Post,
            Some("PATCH") => Method::Patch,
            Some("DELETE") => Method::Delete,
            _ => Method::Other,
        };
        let target = req.path.unwrap_or("/");
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        if !path.starts_with('/') {
            return Err(RequestError::Malformed(
                "request target is not a path".into(),
            ));
        }
        let version = req.version.unwrap_or(1);
        let mut keep_alive = version == 1;
        let mut content_length = 0usize;
        let (mut content_type, mut authorization, mut host, mut range) = (None, None, None, None);
        let text = |v: &[u8]| String::from_utf8_lossy(v).trim().to_owned();
        for h in req.headers.iter() {
            if h.name.eq_ignore_ascii_case("connection") {
                let v = String::from_utf8_lossy(h.value).to_ascii_lowercase();
                if v.contains("close") {
                    keep_alive = false;
                } else if v.contains("keep-alive") {
                    keep_alive = true;
                }
            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                return Err(RequestError::Body("chunked bodies are not accepted"));
            } else if h.name.eq_ignore_ascii_case("content-length") {
                content_length = text(h.value)
                    .parse()
                    .map_err(|_| RequestError::Malformed("bad Content-Length".into()))?;
            } else if h.name.eq_ignore_ascii_case("content-type") {
                content_type = Some(text(h.value));
            } else if h.name.eq_ignore_ascii_case("authorization") {
                authorization = Some(text(h.value));
            } else if h.name.eq_ignore_ascii_case("host") {
                host = Some(text(h.value));
            } else if h.name.eq_ignore_ascii_case("range") {
                range = Some(text(h.value));
            }
        }
        if content_length > 0 && !matches!(method, Method::Post | Method::Patch) {
            return Err(RequestError::Body("this method takes no body"));
        }
        if content_length > MAX_BODY_BYTES {
            return Err(RequestError::Body("body too large"));
        }
        Ok(Some((
            Request {
                method,
                path: path.to_owned(),
                query: query.to_owned(),
                keep_alive,
                content_length,
                content_type,
                authorization,
                host,
                range,
                body: bytes::Bytes::new(),
                peer: None,
            },
            consumed,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pipelined_gets() {
        let buf = b"GET /live/a/index.m3u8?_HLS_msn=3 HTTP/1.1\r\nHost: x\r\n\r\nHEAD /b HTTP/1.0\r\n\r\n";
        let (r, n) = RequestParser.parse(buf).expect("ok").expect("complete");
        assert_eq!(r.method, Method::Get);
        assert_eq!(r.path, "/live/a/index.m3u8");
        assert_eq!(r.query, "_HLS_msn=3");
        assert!(r.keep_alive);
        let (r2, _) = RequestParser
            .parse(&buf[n..])
            .expect("ok")
            .expect("complete");
        assert_eq!(r2.method, Method::Head);
        assert!(!r2.keep_alive);
    }

    #[test]
    fn partial_oversized_and_garbage() {
        assert_eq!(RequestParser.parse(b"GET / HTTP/1.1\r\nHo"), Ok(None));
        let mut big = b"GET / HTTP/1.1\r\nX: ".to_vec();
        big.resize(MAX_HEAD_BYTES + 10, b'a');
        assert_eq!(RequestParser.parse(&big), Err(RequestError::TooLarge));
        assert!(RequestParser.parse(b"\x00\x01\x02garbage\r\n\r\n").is_err());
        assert!(matches!(
            RequestParser.parse(b"GET / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"),
            Err(RequestError::Body(_))
        ));
        assert!(matches!(
            RequestParser.parse(b"POST / HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n"),
            Err(RequestError::Body(_))
        ));
        assert!(matches!(
            RequestParser.parse(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Err(RequestError::Body(_))
        ));
        let (r, n) = RequestParser
            .parse(b"POST /whip HTTP/1.1\r\nContent-Length: 5\r\nAuthorization: Bearer k\r\nContent-Type: application/sdp\r\n\r\nhello")
            .expect("ok")
            .expect("complete");
        assert_eq!((r.method, r.content_length), (Method::Post, 5));
        assert_eq!(r.authorization.as_deref(), Some("Bearer k"));
        assert_eq!(r.content_type.as_deref(), Some("application/sdp"));
        assert_eq!(n, 98);
    }

    #[test]
    fn random_input_never_panics() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..5000 {
            let mut buf = b"GET /live/".to_vec();
            for _ in 0..(x % 200) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let alphabet = b"ab/?=&\r\n :%\x00";
                buf.push(alphabet[(x % alphabet.len() as u64) as usize]);
            }
            let _ = RequestParser.parse(&buf);
        }
    }
}
