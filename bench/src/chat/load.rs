//! The chat load generator (tokio): one task per websocket connection ("member").
//! Every member reads its room; writers (members with a token) also send at the rate
//! the driver sets, each message's text starting with its send time (Unix µs, the
//! machine's one clock), so a member computes send → delivery latency from the frame
//! alone. Members track the ids of their room (monotonic from the `welcome`'s
//! `last_id`) to count missed and repeated messages.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// Latency histogram: 0.1 ms buckets up to 10 s, then one overflow bucket.
pub struct Hist {
    buckets: Vec<AtomicU64>,
}

const BUCKET_US: u64 = 100;
const BUCKETS: usize = 100_000;

impl Default for Hist {
    fn default() -> Self {
        Self {
            buckets: (0..=BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

impl Hist {
    fn record(&self, us: u64) {
        let i = ((us / BUCKET_US) as usize).min(BUCKETS);
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
    }

    /// Samples recorded.
    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum()
    }

    /// The `p`-th percentile in ms (upper bound of its bucket); NaN when empty.
    pub fn percentile_ms(&self, p: f64) -> f64 {
        let n = self.count();
        if n == 0 {
            return f64::NAN;
        }
        let rank = ((p / 100.0) * n as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, b) in self.buckets.iter().enumerate() {
            seen += b.load(Ordering::Relaxed);
            if seen >= rank {
                // The last bucket holds everything past the histogram's range.
                if i >= BUCKETS {
                    return f64::INFINITY;
                }
                return (i as u64 + 1) as f64 * BUCKET_US as f64 / 1000.0;
            }
        }
        f64::INFINITY
    }
}

/// One connection to open.
#[derive(Debug, Clone)]
pub struct Member {
    /// Gateway port.
    pub port: u16,
    /// Channel id.
    pub channel: Arc<str>,
    /// Room index.
    pub room: usize,
    /// Access token (writers).
    pub token: Option<Arc<str>>,
    /// Writer index (`Some` for writers).
    pub writer: Option<usize>,
}

/// State shared by the members and the driver.
pub struct Shared {
    /// New messages received by all members (each id once per member).
    pub deliveries: AtomicU64,
    /// Histogram slot latencies go to (0: not measured).
    pub phase: AtomicUsize,
    /// Latency histograms, one per phase.
    pub hists: Vec<Hist>,
    /// Messages writers sent.
    pub sent: AtomicU64,
    /// `ack`s received.
    pub acked: AtomicU64,
    /// `error`s received for sends.
    pub refused: AtomicU64,
    /// Refusals by code.
    pub codes: Mutex<BTreeMap<String, u64>>,
    /// Highest acked id per room.
    pub room_max: Vec<AtomicU64>,
    /// Members that got their `welcome` and history.
    pub ready: AtomicUsize,
    /// Members whose connection failed.
    pub failed: AtomicUsize,
    /// First connection error seen.
    pub first_error: Mutex<Option<String>>,
    /// Messages per second per writer.
    pub rate: watch::Sender<f64>,
    /// Set to end every member.
    pub stop: watch::Sender<bool>,
}

impl Shared {
    /// State for `rooms` rooms and `phases` measured phases.
    pub fn new(rooms: usize, phases: usize) -> Arc<Self> {
        Arc::new(Self {
            deliveries: AtomicU64::new(0),
            phase: AtomicUsize::new(0),
            hists: (0..=phases).map(|_| Hist::default()).collect(),
            sent: AtomicU64::new(0),
            acked: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            codes: Mutex::new(BTreeMap::new()),
            room_max: (0..rooms).map(|_| AtomicU64::new(0)).collect(),
            ready: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
            first_error: Mutex::new(None),
            rate: watch::channel(0.0).0,
            stop: watch::channel(false).0,
        })
    }
}

/// What one member saw.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Room index.
    pub room: usize,
    /// Connected and joined.
    pub joined: bool,
    /// The room's newest id at join (`welcome.last_id`).
    pub start_id: u64,
    /// Newest id received.
    pub last_id: u64,
    /// Ids skipped (a gap in the sequence).
    pub missing: u64,
    /// Ids received again or out of order.
    pub repeated: u64,
    /// The server closed the connection before the end (close code, if sent).
    pub closed_early: Option<Option<u16>>,
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

fn leading_u64(s: &str) -> Option<u64> {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    s[..end].parse().ok()
}

const MESSAGE: &str = r#"{"type":"message","id":"#;

/// A message frame's id and the send time at the start of its text (the bench's own
/// format: the server writes `type`, then `id` first).
fn parse_message(json: &str) -> Option<(u64, Option<u64>)> {
    let rest = json.strip_prefix(MESSAGE)?;
    let id = leading_u64(rest)?;
    let sent = rest
        .find(r#""text":""#)
        .and_then(|i| leading_u64(&rest[i + 8..]));
    Some((id, sent))
}

fn ws_config() -> WebSocketConfig {
    // Small buffers: 10k connections in one process.
    WebSocketConfig::default()
        .read_buffer_size(8 * 1024)
        .write_buffer_size(0)
        .max_write_buffer_size(64 * 1024)
}

type Ws = tokio_tungstenite::WebSocketStream<TcpStream>;

async fn connect(m: &Member) -> anyhow::Result<(Ws, u64)> {
    let stream = TcpStream::connect(("127.0.0.1", m.port)).await?;
    stream.set_nodelay(true)?;
    let url = match &m.token {
        Some(t) => format!("ws://127.0.0.1:{}/v1/chat/{}?token={t}", m.port, m.channel),
        None => format!("ws://127.0.0.1:{}/v1/chat/{}", m.port, m.channel),
    };
    let (mut ws, _) =
        tokio_tungstenite::client_async_with_config(url, stream, Some(ws_config())).await?;
    let mut start = None;
    // `welcome`, then `history`.
    while let Some(f) = tokio::time::timeout(Duration::from_secs(30), ws.next()).await? {
        let Message::Text(t) = f? else { continue };
        let v: serde_json::Value = serde_json::from_str(t.as_str())?;
        match v["type"].as_str() {
            Some("welcome") => start = v["last_id"].as_u64(),
            Some("history") => break,
            Some("error") => anyhow::bail!("refused: {v}"),
            _ => {}
        }
    }
    Ok((ws, start.unwrap_or(0)))
}

/// Runs one member until [`Shared::stop`]; `gate` bounds the connections being opened.
pub async fn member(m: Member, sh: Arc<Shared>, gate: Arc<Semaphore>) -> Outcome {
    let mut out = Outcome {
        room: m.room,
        ..Outcome::default()
    };
    let permit = gate.acquire_owned().await;
    let mut joined = None;
    for attempt in 0..3 {
        match connect(&m).await {
            Ok(j) => {
                joined = Some(j);
                break;
            }
            Err(e) => {
                if attempt == 2 {
                    sh.failed.fetch_add(1, Ordering::Relaxed);
                    if let Ok(mut f) = sh.first_error.lock() {
                        f.get_or_insert(e.to_string());
                    }
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    drop(permit);
    let Some((ws, start)) = joined else {
        return out;
    };
    out.joined = true;
    out.start_id = start;
    out.last_id = start;
    sh.ready.fetch_add(1, Ordering::Relaxed);
    let (mut sink, mut stream) = ws.split();
    let mut rate_rx = sh.rate.subscribe();
    let mut stop_rx = sh.stop.subscribe();
    let far = || Instant::now() + Duration::from_secs(3600);
    let mut next_send = far();
    let mut period = Duration::ZERO;
    let mut seq = 0u64;
    loop {
        tokio::select! {
            biased;
            _ = stop_rx.changed() => break,
            r = rate_rx.changed(), if m.writer.is_some() => {
                if r.is_err() { break; }
                let rate = *rate_rx.borrow_and_update();
                if rate > 0.0 {
                    period = Duration::from_secs_f64(1.0 / rate);
                    // Writers spread over the period (golden-ratio phases).
                    let phase = (m.writer.unwrap_or(0) as f64 * 0.618_034).fract();
                    next_send = Instant::now() + period.mul_f64(phase);
                } else {
                    next_send = far();
                }
            }
            () = tokio::time::sleep_until(next_send), if m.writer.is_some() => {
                let now = Instant::now();
                seq += 1;
                let text = format!(
                    r#"{{"type":"send","text":"{} w{} n{seq}","nonce":"{seq}"}}"#,
                    now_us(),
                    m.writer.unwrap_or(0)
                );
                if sink.send(Message::text(text)).await.is_err() {
                    out.closed_early = Some(None);
                    break;
                }
                sh.sent.fetch_add(1, Ordering::Relaxed);
                next_send += period;
                if next_send + Duration::from_secs(1) < now {
                    next_send = now + period; // fell behind: no burst to catch up
                }
            }
            f = stream.next() => match f {
                Some(Ok(Message::Text(t))) => on_text(t.as_str(), &m, &sh, &mut out),
                Some(Ok(Message::Close(c))) => {
                    out.closed_early = Some(c.map(|c| u16::from(c.code)));
                    break;
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => {
                    out.closed_early = Some(None);
                    break;
                }
            },
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), sink.close()).await;
    out
}

fn on_text(json: &str, m: &Member, sh: &Shared, out: &mut Outcome) {
    if let Some((id, sent)) = parse_message(json) {
        if id <= out.last_id {
            out.repeated += 1;
            return;
        }
        out.missing += id - out.last_id - 1;
        out.last_id = id;
        sh.deliveries.fetch_add(1, Ordering::Relaxed);
        let phase = sh.phase.load(Ordering::Relaxed);
        if phase > 0
            && let Some(sent) = sent
        {
            sh.hists[phase].record(now_us().saturating_sub(sent));
        }
        return;
    }
    if json.starts_with(r#"{"type":"ack""#) {
        let v: serde_json::Value = serde_json::from_str(json).unwrap_or_default();
        if let Some(id) = v["id"].as_u64() {
            sh.acked.fetch_add(1, Ordering::Relaxed);
            sh.room_max[m.room].fetch_max(id, Ordering::Relaxed);
        }
    } else if json.starts_with(r#"{"type":"error""#) {
        let v: serde_json::Value = serde_json::from_str(json).unwrap_or_default();
        if v.get("nonce").is_some_and(|n| !n.is_null()) {
            sh.refused.fetch_add(1, Ordering::Relaxed);
        }
        let code = v["code"].as_str().unwrap_or("?").to_owned();
        if let Ok(mut c) = sh.codes.lock() {
            *c.entry(code).or_default() += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_id_and_send_time_of_a_message_frame() {
        let f = r#"{"type":"message","id":42,"ts":1,"user":{"id":"u","name":"n"},"text":"1764740000123456 w3 n9"}"#;
        assert_eq!(parse_message(f), Some((42, Some(1_764_740_000_123_456))));
        assert_eq!(parse_message(r#"{"type":"ack","id":3}"#), None);
    }

    #[test]
    fn percentiles_are_bucket_upper_bounds() {
        let h = Hist::default();
        for us in [50, 150, 150, 20_000_000] {
            h.record(us);
        }
        assert_eq!(h.count(), 4);
        assert!((h.percentile_ms(50.0) - 0.2).abs() < 1e-9);
        assert!(h.percentile_ms(100.0).is_infinite());
    }
}
