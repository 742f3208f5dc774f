//! A real-time RTMP publisher: replays the test media through `weir_rtmp::ClientSession`
//! over a blocking socket, recording when each video frame left.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bytes::{BufMut as _, Bytes, BytesMut};
use weir_rtmp::{ClientConfig, ClientEvent, ClientOutput, ClientSession, MediaKind};

use crate::flv::{Media, Tag, TagKind};

/// Send buffer of a publisher's socket: small enough that a server which stops reading
/// shows up as a publisher falling behind within a second, as over a real uplink.
const SEND_BUFFER: usize = 256 * 1024;

/// What to publish where.
#[derive(Debug, Clone)]
pub struct Publish {
    /// RTMP server.
    pub rtmp: SocketAddr,
    /// Application (`live`).
    pub app: String,
    /// Stream name (weir: the stream key).
    pub stream_name: String,
    /// When the first frame is due.
    pub start_at: Instant,
    /// How long to publish.
    pub duration: Duration,
    /// Set to stop early.
    pub stop: Arc<AtomicBool>,
}

/// What a publisher did.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Media time (s since the first frame) and wall time each video frame was sent.
    pub sends: Vec<(f64, Instant)>,
    /// Per entry of `sends`: the hash of the frame's coded bytes
    /// (`outputs::sink::frame_hash`; 0 when it has none).
    pub video_hashes: Vec<u64>,
    /// Frames sent.
    pub frames: u64,
    /// Media bytes sent.
    pub bytes: u64,
    /// Worst lateness of a frame against real time.
    pub max_lag: Duration,
}

fn writer(
    stream: &mut TcpStream,
    session: &mut ClientSession,
) -> anyhow::Result<Option<ClientEvent>> {
    let mut event = None;
    while let Some(out) = session.poll_output() {
        match out {
            ClientOutput::Transmit(b) => stream.write_all(&b)?,
            ClientOutput::Event(e @ ClientEvent::Rejected { .. }) => {
                bail!("publish refused: {e:?}")
            }
            ClientOutput::Event(e) => event = Some(e),
        }
    }
    Ok(event)
}

fn connect(addr: SocketAddr) -> anyhow::Result<TcpStream> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    socket.set_send_buffer_size(SEND_BUFFER)?;
    socket.set_tcp_nodelay(true)?;
    socket.connect_timeout(&addr.into(), Duration::from_secs(5))?;
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
    Ok(stream)
}

fn kind(tag: &Tag) -> MediaKind {
    match tag.kind {
        TagKind::Audio => MediaKind::Audio,
        TagKind::Video => MediaKind::Video,
        TagKind::Script => MediaKind::Data,
    }
}

/// `@setDataFrame` in front of a script tag, as encoders send `onMetaData` over RTMP.
fn set_data_frame(body: &Bytes) -> Bytes {
    let mut b = BytesMut::with_capacity(body.len() + 16);
    b.put_u8(2);
    b.put_u16(13);
    b.put_slice(b"@setDataFrame");
    b.put_slice(body);
    b.freeze()
}

/// Connects, publishes and replays `media` in real time (looping) until the duration
/// ends or `stop` is set.
pub fn run(p: &Publish, media: &Media) -> anyhow::Result<Report> {
    let what = || format!("publishing to rtmp://{}/{}", p.rtmp, p.app);
    let mut stream = connect(p.rtmp).with_context(what)?;
    let mut session = ClientSession::new(ClientConfig {
        app: p.app.clone(),
        tc_url: format!("rtmp://{}/{}", p.rtmp, p.app),
        stream_name: p.stream_name.clone(),
        out_chunk_size: 4096,
    });
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if let Some(ClientEvent::Publishing { .. }) =
            writer(&mut stream, &mut session).with_context(what)?
        {
            break;
        }
        if session.is_publishing() {
            break;
        }
        let n = stream
            .read(&mut buf)
            .context("reading the RTMP handshake")?;
        if n == 0 {
            bail!("server closed the connection before publishing started");
        }
        session
            .handle_input(Instant::now(), &buf[..n])
            .context("bad RTMP from the server")?;
    }
    for tag in &media.config {
        let body = if tag.kind == TagKind::Script {
            set_data_frame(&tag.body)
        } else {
            tag.body.clone()
        };
        session.send_media(kind(tag), 0, body);
    }
    writer(&mut stream, &mut session)?;

    let start = p.start_at.max(Instant::now());
    let end = start + p.duration;
    let mut report = Report::default();
    'outer: for pass in 0u32.. {
        let offset = u64::from(pass) * u64::from(media.loop_ms);
        for tag in &media.frames {
            let ms = offset + u64::from(tag.ts);
            let due = start + Duration::from_millis(ms);
            if due >= end || p.stop.load(Ordering::Relaxed) {
                break 'outer;
            }
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            // RTMP timestamps are 32-bit milliseconds and wrap.
            session.send_media(kind(tag), ms as u32, tag.body.clone());
            writer(&mut stream, &mut session).with_context(what)?;
            let sent = Instant::now();
            report.max_lag = report.max_lag.max(sent.saturating_duration_since(due));
            report.frames += 1;
            report.bytes += tag.body.len() as u64;
            if tag.kind == TagKind::Video {
                report.sends.push((ms as f64 / 1000.0, sent));
                report
                    .video_hashes
                    .push(crate::outputs::sink::frame_hash(&tag.body).unwrap_or(0));
            }
        }
    }
    Ok(report)
}
