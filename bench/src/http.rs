//! A minimal HTTP/1.1 GET client: keep-alive, `Content-Length` bodies only (what both
//! servers send). The head parser is shared by the blocking client here and the
//! compio viewers.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};

/// Longest response head accepted.
const MAX_HEAD: usize = 16 * 1024;
/// Largest body accepted.
const MAX_BODY: usize = 64 << 20;

/// A parsed response head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// Status code.
    pub status: u16,
    /// Bytes of the head, up to and including the blank line.
    pub len: usize,
    /// The body length.
    pub content_length: usize,
}

/// Parses a response head from the start of `buf`: `Ok(None)` while incomplete.
pub fn parse_head(buf: &[u8]) -> anyhow::Result<Option<Head>> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        ensure!(
            buf.len() <= MAX_HEAD,
            "response head longer than {MAX_HEAD} bytes"
        );
        return Ok(None);
    };
    let text = std::str::from_utf8(&buf[..end]).context("response head is not UTF-8")?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut words = status_line.split(' ');
    ensure!(
        words.next().is_some_and(|v| v.starts_with("HTTP/1.")),
        "bad status line {status_line:?}"
    );
    let status: u16 = words
        .next()
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("bad status line {status_line:?}"))?;
    let mut content_length = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            bail!("bad header line {line:?}");
        };
        if name.eq_ignore_ascii_case("content-length") {
            let n: usize = value.trim().parse().context("bad Content-Length")?;
            ensure!(n <= MAX_BODY, "body of {n} bytes is too large");
            content_length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            bail!("chunked responses are not supported");
        }
    }
    Ok(Some(Head {
        status,
        len: end + 4,
        content_length: content_length.unwrap_or(0),
    }))
}

/// The bytes of a keep-alive GET request.
pub fn request(path: &str, host: SocketAddr) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: weir-bench\r\nAccept: */*\r\n\r\n")
        .into_bytes()
}

/// A response with its body.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A blocking keep-alive client for one server; reconnects when the server closes.
#[derive(Debug)]
pub struct Client {
    addr: SocketAddr,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
    timeout: Duration,
}

impl Client {
    /// A client for `addr` whose reads give up after `timeout`.
    pub fn new(addr: SocketAddr, timeout: Duration) -> Self {
        Self {
            addr,
            stream: None,
            buf: Vec::with_capacity(256 * 1024),
            timeout,
        }
    }

    /// GETs `path`; one retry on a fresh connection if a kept-alive one fails.
    pub fn get(&mut self, path: &str) -> anyhow::Result<Response> {
        let reused = self.stream.is_some();
        match self.try_get(path) {
            Ok(r) => Ok(r),
            Err(_) if reused => {
                self.stream = None;
                self.try_get(path)
            }
            Err(e) => Err(e),
        }
        .with_context(|| format!("GET http://{}{path}", self.addr))
    }

    fn try_get(&mut self, path: &str) -> anyhow::Result<Response> {
        if self.stream.is_none() {
            let s = TcpStream::connect_timeout(&self.addr, Duration::from_secs(5))?;
            s.set_nodelay(true)?;
            s.set_read_timeout(Some(self.timeout))?;
            self.stream = Some(s);
        }
        let Some(stream) = self.stream.as_mut() else {
            bail!("not connected");
        };
        let result = exchange(stream, &mut self.buf, &request(path, self.addr));
        if result.is_err() {
            self.stream = None;
        }
        result
    }
}

fn exchange(stream: &mut TcpStream, buf: &mut Vec<u8>, req: &[u8]) -> anyhow::Result<Response> {
    stream.write_all(req)?;
    buf.clear();
    let mut chunk = [0u8; 64 * 1024];
    let head = loop {
        if let Some(h) = parse_head(buf)? {
            break h;
        }
        let n = stream.read(&mut chunk)?;
        ensure!(n > 0, "connection closed before the response head");
        buf.extend_from_slice(&chunk[..n]);
    };
    let total = head.len + head.content_length;
    while buf.len() < total {
        let n = stream.read(&mut chunk)?;
        ensure!(n > 0, "connection closed inside the body");
        buf.extend_from_slice(&chunk[..n]);
    }
    ensure!(buf.len() == total, "unexpected bytes after the response");
    Ok(Response {
        status: head.status,
        body: buf[head.len..total].to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_heads() {
        assert_eq!(
            parse_head(b"HTTP/1.1 200 OK\r\nContent-Le").expect("ok"),
            None
        );
        let h = parse_head(b"HTTP/1.1 404 Not Found\r\ncontent-length: 5\r\n\r\nhello")
            .expect("ok")
            .expect("complete");
        assert_eq!((h.status, h.len, h.content_length), (404, 45, 5));
        assert!(parse_head(b"SPDY 200\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n").is_err());
        assert!(parse_head(&[b'x'; MAX_HEAD + 1]).is_err());
    }
}
