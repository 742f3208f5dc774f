//! `testDestination` for the control plane: connect to a destination, complete the RTMP
//! handshake, `connect` and `publish` with its key, then `FCUnpublish` + `deleteStream`
//! and leave — no media is sent. Uses the relay's URL parsing, address policy (SSRF)
//! and TLS, so a test says what a relay would meet.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use weir_api::{DestinationProber, ProbeFuture};
use weir_node::{AddressPolicy, Endpoint, TlsLayer};
use weir_rtmp::{ClientConfig, ClientEvent, ClientOutput, ClientSession};

/// Probes with the node's relay settings.
pub struct Prober {
    /// Internal destinations allowed (`relay_allow_internal`).
    pub allow_internal: bool,
    /// Extra CAs for `rtmps://` (`relay_ca_file`).
    pub ca_file: Option<PathBuf>,
}

impl DestinationProber for Prober {
    fn probe(&self, url: &str, stream_key: &str) -> ProbeFuture {
        let endpoint = Endpoint::parse(url, stream_key).map_err(|e| e.to_string());
        let policy = AddressPolicy {
            allow_internal: self.allow_internal,
        };
        let ca_file = self.ca_file.clone();
        Box::pin(async move {
            let endpoint = endpoint?;
            let tls = match endpoint.tls {
                true => Some(
                    weir_node::relay_tls_config(ca_file.as_deref()).map_err(|e| e.to_string())?,
                ),
                false => None,
            };
            probe(&endpoint, policy, tls).await
        })
    }
}

async fn resolve(endpoint: &Endpoint, policy: AddressPolicy) -> Result<Vec<SocketAddr>, String> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((endpoint.host.as_str(), endpoint.port))
        .await
        .map_err(|e| format!("cannot resolve {}: {e}", endpoint.host))?
        .collect();
    let mut refused = None;
    let allowed: Vec<SocketAddr> = addrs
        .into_iter()
        .filter(|a| match policy.refusal(a.ip()) {
            Some(why) => {
                refused = Some(format!(
                    "{} resolves to {}, {why}: refused",
                    endpoint.host,
                    a.ip()
                ));
                false
            }
            None => true,
        })
        .collect();
    match (allowed.is_empty(), refused) {
        (false, _) => Ok(allowed),
        (true, Some(why)) => Err(why),
        (true, None) => Err(format!("{} has no address", endpoint.host)),
    }
}

async fn probe(
    endpoint: &Endpoint,
    policy: AddressPolicy,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> Result<Duration, String> {
    let started = Instant::now();
    let addrs = resolve(endpoint, policy).await?;
    let mut socket = None;
    let mut last = String::new();
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(s) => {
                socket = Some(s);
                break;
            }
            Err(e) => last = format!("cannot connect to {addr}: {e}"),
        }
    }
    let mut socket = socket.ok_or(last)?;
    let _ = socket.set_nodelay(true);
    let mut tls = match tls {
        Some(c) => Some(TlsLayer::new(c, &endpoint.host).map_err(|e| e.to_string())?),
        None => None,
    };
    let mut session = ClientSession::new(ClientConfig {
        app: endpoint.app.clone(),
        tc_url: endpoint.tc_url.clone(),
        stream_name: endpoint.stream_name.clone(),
        out_chunk_size: 4096,
    });
    let mut buf = vec![0u8; 16 * 1024];
    let mut published = false;
    loop {
        let mut out = Vec::new();
        while let Some(o) = session.poll_output() {
            match o {
                ClientOutput::Transmit(b) => out.extend_from_slice(&b),
                ClientOutput::Event(ClientEvent::Rejected { code, description }) => {
                    return Err(format!(
                        "the destination refused the stream: {code} {description}"
                    ));
                }
                ClientOutput::Event(ClientEvent::Publishing { .. }) => published = true,
                ClientOutput::Event(_) => {}
            }
        }
        if let Some(t) = &mut tls {
            out = t.encode(&out).map_err(|e| e.to_string())?;
        }
        if !out.is_empty() {
            socket
                .write_all(&out)
                .await
                .map_err(|e| format!("write failed: {e}"))?;
        }
        if published {
            let took = started.elapsed();
            session.unpublish();
            let mut bye = Vec::new();
            while let Some(o) = session.poll_output() {
                if let ClientOutput::Transmit(b) = o {
                    bye.extend_from_slice(&b);
                }
            }
            if let Some(t) = &mut tls {
                bye = t.encode(&bye).map_err(|e| e.to_string())?;
            }
            let _ = socket.write_all(&bye).await;
            let _ = socket.shutdown().await;
            return Ok(took);
        }
        let n = socket
            .read(&mut buf)
            .await
            .map_err(|e| format!("read failed: {e}"))?;
        if n == 0 {
            return Err("the destination closed the connection before accepting the stream".into());
        }
        let data = match &mut tls {
            Some(t) => t.decode(&buf[..n]).map_err(|e| e.to_string())?,
            None => buf[..n].to_vec(),
        };
        session
            .handle_input(Instant::now(), &data)
            .map_err(|e| format!("RTMP error from the destination: {e}"))?;
    }
}
