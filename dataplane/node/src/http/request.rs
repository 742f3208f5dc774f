//! A bounded, sans-IO HTTP/1.1 request-head parser (on top of `httparse`).
//!
//! The origin only serves `GET`, `HEAD` and `OPTIONS`; a request announcing a body is
//! refused so the connection can never be made to buffer one.

/// Longest request head accepted.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
const MAX_HEADERS: usize = 48;

/// Request methods the origin distinguishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    /// GET.
    Get,
    /// HEAD.
    Head,
    /// OPTIONS (CORS preflight).
    Options,
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
    /// The request carries a body, which the origin never accepts.
    #[error("request bodies are not accepted")]
    Body,
}

impl RequestError {
    /// The HTTP status this error is answered with.
    pub fn status(&self) -> u16 {
        match self {
            RequestError::Malformed(_) => 400,
            RequestError::TooLarge => 431,
            RequestError::Body => 413,
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
        for h in req.headers.iter() {
            if h.name.eq_ignore_ascii_case("connection") {
                let v = String::from_utf8_lossy(h.value).to_ascii_lowercase();
                if v.contains("close") {
                    keep_alive = false;
                } else if v.contains("keep-alive") {
                    keep_alive = true;
                }
            } else if h.name.eq_ignore_ascii_case("transfer-encoding")
                || (h.name.eq_ignore_ascii_case("content-length")
                    && h.value
                        .iter()
                        .any(|&b| b != b'0' && !b.is_ascii_whitespace()))
            {
                return Err(RequestError::Body);
            }
        }
        Ok(Some((
            Request {
                method,
                path: path.to_owned(),
                query: query.to_owned(),
                keep_alive,
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
        assert_eq!(
            RequestParser.parse(b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"),
            Err(RequestError::Body)
        );
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
