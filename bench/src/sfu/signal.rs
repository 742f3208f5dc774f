//! Signalling over plain HTTP/1.1 on loopback: one request per connection
//! (`Connection: close`), for WHIP/WHEP offers and Janus's JSON API.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};

/// Largest response accepted.
const MAX_RESPONSE: usize = 1 << 20;

/// A response: status and body.
#[derive(Debug)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// The body (chunked bodies decoded).
    pub body: String,
}

/// Sends one request and reads the whole reply.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: &str,
    timeout: Duration,
) -> anyhow::Result<Reply> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .with_context(|| format!("connecting to {addr}"))?;
    s.set_read_timeout(Some(timeout))?;
    s.set_nodelay(true)?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: weir-bench\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(t) = content_type {
        head.push_str(&format!("Content-Type: {t}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes())?;
    s.write_all(body.as_bytes())?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 16384];
    loop {
        let n = s
            .read(&mut buf)
            .with_context(|| format!("{method} {path}: reading the reply"))?;
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
        ensure!(
            raw.len() <= MAX_RESPONSE,
            "{method} {path}: reply too large"
        );
    }
    parse(&raw).with_context(|| format!("{method} {path}"))
}

fn parse(raw: &[u8]) -> anyhow::Result<Reply> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("no complete response head")?;
    let head = std::str::from_utf8(&raw[..end]).context("head is not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .context("bad status line")?;
    let mut chunked = false;
    let mut length = None;
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            if k.eq_ignore_ascii_case("transfer-encoding")
                && v.trim().eq_ignore_ascii_case("chunked")
            {
                chunked = true;
            } else if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse::<usize>().ok();
            }
        }
    }
    let mut body = &raw[end + 4..];
    if let Some(n) = length {
        body = body.get(..n).unwrap_or(body);
    }
    let body = if chunked {
        dechunk(body)?
    } else {
        body.to_vec()
    };
    Ok(Reply {
        status,
        body: String::from_utf8(body).context("body is not UTF-8")?,
    })
}

fn dechunk(mut b: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = b
            .windows(2)
            .position(|w| w == b"\r\n")
            .context("chunk size line")?;
        let size_text = std::str::from_utf8(&b[..line_end])?;
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .context("bad chunk size")?;
        b = &b[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        let Some(chunk) = b.get(..size) else {
            bail!("truncated chunk");
        };
        out.extend_from_slice(chunk);
        b = b.get(size + 2..).unwrap_or(&[]);
    }
}

/// POSTs an SDP offer to a WHIP/WHEP endpoint; returns the answer.
pub fn post_offer(addr: SocketAddr, path: &str, offer: &str) -> anyhow::Result<String> {
    let r = request(
        addr,
        "POST",
        path,
        Some("application/sdp"),
        offer,
        Duration::from_secs(10),
    )?;
    ensure!(
        r.status == 201,
        "POST {path} answered {}: {}",
        r.status,
        r.body.trim()
    );
    Ok(r.body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_chunked_and_sized_replies() {
        let r = parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
            .expect("chunked");
        assert_eq!((r.status, r.body.as_str()), (200, "abcde"));
        let r = parse(b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nokextra").expect("sized");
        assert_eq!((r.status, r.body.as_str()), (201, "ok"));
    }
}
