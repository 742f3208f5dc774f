//! A small HTTP/1.1 JSON client for the control plane's node API (`/v1/node/*`).

use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use weir_node::RelayTarget;
use weir_store::{Node, RelayStatus, Rendition, TranscoderStatus};

use super::{CallError, ChannelPolicy, KeyAnswer};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const REPLY_TIMEOUT: Duration = Duration::from_secs(3);
const MAX_REPLY: usize = 1 << 20;

/// A control plane at `http://host:port`, authenticated by the node token.
#[derive(Clone)]
pub struct Remote {
    host_port: String,
    token: String,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("host_port", &self.host_port)
            .field("token", &"<redacted>")
            .finish()
    }
}

impl Remote {
    /// Parses `http://host:port` (no TLS: the node API is for the operator's network).
    pub fn new(url: &str, token: String) -> anyhow::Result<Self> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| anyhow::anyhow!("control plane URL must start with http://"))?;
        let host_port = rest.trim_end_matches('/').to_owned();
        anyhow::ensure!(host_port.contains(':'), "control plane URL needs a port");
        Ok(Self { host_port, token })
    }

    async fn post(&self, path: &str, body: &Value) -> Result<(u16, Value), CallError> {
        post_json(&self.host_port, &self.token, path, body, REPLY_TIMEOUT).await
    }

    async fn event(&self, body: Value) -> Result<Value, CallError> {
        self.post("/v1/node/events", &body).await.map(|(_, v)| v)
    }

    /// Key authorisation.
    pub async fn authorize(&self, key_id: &str) -> KeyAnswer {
        match self
            .post("/v1/node/authorize", &json!({ "key_id": key_id }))
            .await
        {
            Ok((_, v)) => match v.get("channel_id").and_then(Value::as_str) {
                Some(id) => KeyAnswer::Channel(ChannelPolicy {
                    channel_id: id.to_owned(),
                    signed_playback: v
                        .get("signed_playback")
                        .and_then(Value::as_bool)
                        .unwrap_or(false),
                    transcode: v.get("transcode").and_then(Value::as_bool),
                    record: v.get("record").and_then(Value::as_bool),
                    destinations: destinations(&v),
                }),
                None => KeyAnswer::Refused,
            },
            Err(CallError::Permanent(_)) => KeyAnswer::Refused,
            Err(CallError::Transient(_)) => KeyAnswer::Unreachable,
        }
    }

    /// `stream_started`; returns the stream id.
    pub async fn started(
        &self,
        channel_id: &str,
        node: &str,
        protocol: &str,
    ) -> Result<String, CallError> {
        let v = self
            .event(json!({"type": "stream_started", "channel_id": channel_id, "protocol": protocol, "node_id": node}))
            .await?;
        v.get("id")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| CallError::Permanent(format!("no stream id in {v}")))
    }

    /// `stream_live`.
    pub async fn live(&self, stream_id: &str, renditions: &[Rendition]) -> Result<(), CallError> {
        self.event(json!({"type": "stream_live", "stream_id": stream_id, "renditions": renditions}))
            .await
            .map(drop)
    }

    /// `stream_transcoder`.
    pub async fn transcoder(
        &self,
        stream_id: &str,
        status: &TranscoderStatus,
    ) -> Result<(), CallError> {
        self.event(
            json!({"type": "stream_transcoder", "stream_id": stream_id, "transcoder": status}),
        )
        .await
        .map(drop)
    }

    /// `stream_relays`.
    pub async fn relays(&self, stream_id: &str, statuses: &[RelayStatus]) -> Result<(), CallError> {
        self.event(json!({"type": "stream_relays", "stream_id": stream_id, "relays": statuses}))
            .await
            .map(drop)
    }

    /// `stream_ended`.
    pub async fn ended(&self, stream_id: &str) -> Result<(), CallError> {
        self.event(json!({"type": "stream_ended", "stream_id": stream_id}))
            .await
            .map(drop)
    }

    /// `recording_started`, `recording_finished`: the event's fields with its type.
    pub async fn recording(
        &self,
        kind: &str,
        fields: &impl serde::Serialize,
    ) -> Result<(), CallError> {
        let mut body =
            serde_json::to_value(fields).map_err(|e| CallError::Permanent(e.to_string()))?;
        if let Some(o) = body.as_object_mut() {
            o.insert("type".to_owned(), Value::from(kind));
        }
        self.event(body).await.map(drop)
    }

    /// `recording_deleted`.
    pub async fn recording_deleted(&self, recording_id: &str) -> Result<(), CallError> {
        self.event(json!({"type": "recording_deleted", "recording_id": recording_id}))
            .await
            .map(drop)
    }

    /// `viewer_count`.
    pub async fn viewers(&self, channel_id: &str, node: &str, n: u64) -> Result<(), CallError> {
        self.event(
            json!({"type": "viewer_count", "channel_id": channel_id, "node_id": node, "count": n}),
        )
        .await
        .map(drop)
    }

    /// `heartbeat`.
    pub async fn heartbeat(&self, node: &Node, lease: Duration) -> Result<(), CallError> {
        self.event(json!({"type": "heartbeat", "node": node, "ttl_secs": lease.as_secs()}))
            .await
            .map(drop)
    }
}

/// The relay destinations of an authorisation answer (malformed entries are skipped).
fn destinations(v: &Value) -> Vec<RelayTarget> {
    let text = |d: &Value, k: &str| d.get(k).and_then(Value::as_str).map(str::to_owned);
    v.get("destinations")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|d| {
                    Some(RelayTarget {
                        id: text(d, "id")?,
                        name: text(d, "name").unwrap_or_default(),
                        url: text(d, "url")?,
                        stream_key: text(d, "stream_key").unwrap_or_default(),
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The node's own sentence from a refusal (`"422: {"error": …}"`), else the text as is.
pub(crate) fn refusal_sentence(text: String) -> String {
    text.split_once(": ")
        .and_then(|(_, body)| serde_json::from_str::<Value>(body).ok())
        .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or(text)
}

/// One JSON POST to `host_port` with a bearer `token`, answered within `reply_timeout`:
/// 2xx is the reply, 4xx a permanent refusal, anything else transient.
pub(crate) async fn post_json(
    host_port: &str,
    token: &str,
    path: &str,
    body: &Value,
    reply_timeout: Duration,
) -> Result<(u16, Value), CallError> {
    let t = |e: String| CallError::Transient(e);
    let body = body.to_string();
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        host_port,
        token,
        body.len()
    );
    let mut s = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(host_port))
        .await
        .map_err(|_| t("connect timed out".into()))?
        .map_err(|e| t(e.to_string()))?;
    let exchange = async {
        s.write_all(req.as_bytes()).await?;
        let mut raw = Vec::new();
        (&mut s)
            .take(MAX_REPLY as u64)
            .read_to_end(&mut raw)
            .await?;
        Ok::<_, std::io::Error>(raw)
    };
    let raw = tokio::time::timeout(reply_timeout, exchange)
        .await
        .map_err(|_| t("reply timed out".into()))?
        .map_err(|e| t(e.to_string()))?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| t("malformed reply".into()))?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| t("malformed status line".into()))?;
    let value = serde_json::from_slice(&raw[split + 4..]).unwrap_or(Value::Null);
    match status {
        200..=299 => Ok((status, value)),
        400..=499 => Err(CallError::Permanent(format!("{status}: {value}"))),
        _ => Err(t(format!("{status}: {value}"))),
    }
}
