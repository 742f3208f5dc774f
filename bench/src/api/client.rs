//! A keep-alive HTTP/1.1 JSON client (one request at a time per connection).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::Context as _;
use serde_json::{Value, json};

/// One connection to 127.0.0.1:`port`.
pub struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Conn {
    /// Connects.
    pub fn connect(port: u16) -> anyhow::Result<Self> {
        Self::connect_from(port, [127, 0, 0, 1])
    }

    /// Connects from loopback address `from` (127.0.0.0/8: a client address of its own,
    /// for per-IP limits such as logins).
    pub fn connect_from(port: u16, from: [u8; 4]) -> anyhow::Result<Self> {
        let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
        sock.bind(&std::net::SocketAddr::from((from, 0)).into())?;
        sock.connect(&std::net::SocketAddr::from(([127, 0, 0, 1], port)).into())?;
        let s: TcpStream = sock.into();
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        Ok(Self {
            reader: BufReader::new(s.try_clone()?),
            writer: s,
        })
    }

    /// POSTs JSON; returns the status and the JSON body.
    pub fn post_json(
        &mut self,
        path: &str,
        bearer: Option<&str>,
        body: &Value,
    ) -> anyhow::Result<(u16, Value)> {
        let body = body.to_string();
        let auth = bearer
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        write!(
            self.writer,
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n{auth}Content-Length: {}\r\n\r\n{body}",
            body.len()
        )?;
        let mut status = 0;
        let mut len: Option<usize> = None;
        let mut line = String::new();
        loop {
            line.clear();
            anyhow::ensure!(self.reader.read_line(&mut line)? > 0, "connection closed");
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if status == 0 {
                status = l.split_whitespace().nth(1).context("status")?.parse()?;
            } else if let Some((k, v)) = l.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                len = Some(v.trim().parse()?);
            }
        }
        let len = len.context("response without Content-Length")?;
        anyhow::ensure!(len <= 1 << 20, "response too large");
        let mut buf = vec![0; len];
        self.reader.read_exact(&mut buf)?;
        Ok((status, serde_json::from_slice(&buf).unwrap_or(Value::Null)))
    }

    /// Runs a GraphQL operation.
    pub fn graphql(
        &mut self,
        bearer: Option<&str>,
        query: &str,
        variables: Value,
    ) -> anyhow::Result<Value> {
        let (_, v) = self.post_json(
            "/graphql",
            bearer,
            &json!({"query": query, "variables": variables}),
        )?;
        Ok(v)
    }
}
