//! A scripted RTMP publisher: reads an FLV file (made by ffmpeg) and replays its tags in
//! real time through weir's own RTMP client session (`weir_rtmp::ClientSession`) over a
//! blocking socket. A plan decides, tag by tag, what is sent and with which timestamp, so a
//! test can do what ffmpeg cannot do live: stop the video while the audio goes on, or send
//! tracks whose clocks are seconds apart in send order.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{BufMut as _, Bytes, BytesMut};
use weir_rtmp::{ClientConfig, ClientEvent, ClientOutput, ClientSession, MediaKind};

use crate::{output, require};

/// What a tag carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagKind {
    Audio,
    Video,
    Script,
}

/// One FLV tag.
#[derive(Debug, Clone)]
pub struct Tag {
    pub kind: TagKind,
    /// Timestamp in the file, in ms.
    pub ts: u32,
    /// The tag body, as RTMP carries it.
    pub body: Bytes,
}

impl Tag {
    /// A video key frame (not a sequence header).
    pub fn is_keyframe(&self) -> bool {
        self.kind == TagKind::Video
            && self.body.first().is_some_and(|b| (b >> 4) & 0x07 == 1)
            && !self.is_config()
    }

    /// Codec configuration (AVC sequence header, AAC AudioSpecificConfig) or script data.
    pub fn is_config(&self) -> bool {
        let b = &self.body;
        match self.kind {
            TagKind::Script => true,
            TagKind::Video => b.len() >= 2 && b[0] & 0x0f == 7 && b[1] == 0,
            TagKind::Audio => b.len() >= 2 && b[0] >> 4 == 10 && b[1] == 0,
        }
    }
}

/// Reads every audio, video and script tag of an FLV file, in file order (with the
/// project's own FLV file reader).
pub fn read_tags(path: &Path) -> Vec<Tag> {
    let data = Bytes::from(
        std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display())),
    );
    let tags = weir_flv::file::read_tags(&data)
        .unwrap_or_else(|e| panic!("{} is not an FLV file: {e}", path.display()));
    tags.into_iter()
        .filter_map(|t| {
            let kind = match t.tag_type {
                weir_flv::file::TAG_AUDIO => TagKind::Audio,
                weir_flv::file::TAG_VIDEO => TagKind::Video,
                weir_flv::file::TAG_SCRIPT => TagKind::Script,
                _ => return None,
            };
            (!t.body.is_empty()).then_some(Tag {
                kind,
                ts: t.timestamp,
                body: t.body,
            })
        })
        .collect()
}

/// Encodes `seconds` of synthetic 640x360 30 fps H.264 (key frame every `gop` frames, no
/// B-frames) + 48 kHz AAC into an FLV file under `dir` (as fast as the CPU allows).
pub fn make_flv(dir: &Path, name: &str, seconds: u32, gop: u32) -> std::path::PathBuf {
    require("ffmpeg");
    let path = dir.join(name);
    let (ok, _, err) = output(
        Command::new("ffmpeg")
            .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-y"])
            .args(["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30"])
            .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
            .args(["-t", &seconds.to_string(), "-pix_fmt", "yuv420p"])
            .args([
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-tune",
                "zerolatency",
            ])
            .args(["-g", &gop.to_string(), "-keyint_min", &gop.to_string()])
            .args(["-c:a", "aac", "-b:a", "96k", "-f", "flv"])
            .arg(&path)
            .stdin(Stdio::null()),
    );
    assert!(ok, "ffmpeg could not make {}: {err}", path.display());
    path
}

/// What to do with one frame (not config) tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Send it with this RTMP timestamp (ms).
    At(u32),
    /// Do not send it.
    Skip,
}

/// One tag that went out (or was skipped).
#[derive(Debug, Clone)]
pub struct Sent {
    pub kind: TagKind,
    /// Its timestamp in the file.
    pub file_ts: u32,
    /// The timestamp it was sent with (`None`: skipped).
    pub sent_ts: Option<u32>,
    pub keyframe: bool,
    /// When it was due (or sent).
    pub at: Instant,
    /// The same moment as Unix milliseconds (to line up with a browser's `Date.now()`).
    pub unix_ms: f64,
}

/// What the publisher did.
#[derive(Debug, Default, Clone)]
pub struct Report {
    pub sent: Vec<Sent>,
    /// Worst lateness of a send against real time.
    pub max_lag: Duration,
    pub error: Option<String>,
}

impl Report {
    /// The first tag of `kind` skipped, and the first of that kind sent after it.
    pub fn gap(&self, kind: TagKind) -> Option<(&Sent, &Sent)> {
        let first_skip = self
            .sent
            .iter()
            .position(|s| s.kind == kind && s.sent_ts.is_none())?;
        let resumed = self.sent[first_skip..]
            .iter()
            .find(|s| s.kind == kind && s.sent_ts.is_some())?;
        Some((&self.sent[first_skip], resumed))
    }
}

/// A publisher thread.
pub struct FlvPublisher {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<Report>>,
}

fn unix_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

fn flush(
    stream: &mut TcpStream,
    session: &mut ClientSession,
) -> Result<Option<ClientEvent>, String> {
    let mut event = None;
    while let Some(out) = session.poll_output() {
        match out {
            ClientOutput::Transmit(b) => stream.write_all(&b).map_err(|e| format!("write: {e}"))?,
            ClientOutput::Event(e @ ClientEvent::Rejected { .. }) => {
                return Err(format!("publish refused: {e:?}"));
            }
            ClientOutput::Event(e) => event = Some(e),
        }
    }
    Ok(event)
}

fn media_kind(kind: TagKind) -> MediaKind {
    match kind {
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

impl FlvPublisher {
    /// Connects to `rtmp://127.0.0.1:port/live/<key>`, publishes, sends the config tags,
    /// then the frame tags in file order, each when due in real time by its file timestamp
    /// (relative to the first frame), as `plan` says. Ends after the last tag (closing the
    /// connection) or when stopped.
    pub fn start(
        port: u16,
        key: &str,
        tags: Vec<Tag>,
        plan: impl FnMut(&Tag) -> Action + Send + 'static,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let handle = {
            let (stop, key) = (stop.clone(), key.to_owned());
            std::thread::spawn(move || {
                let mut report = Report::default();
                if let Err(e) = publish(port, &key, &tags, plan, &stop, &mut report) {
                    report.error = Some(e);
                }
                report
            })
        };
        Self {
            stop,
            handle: Some(handle),
        }
    }

    /// Whether the thread has finished.
    pub fn finished(&self) -> bool {
        self.handle.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Waits for the end (stopping it first when `stop`).
    pub fn join(mut self, stop: bool) -> Report {
        if stop {
            self.stop.store(true, Ordering::Relaxed);
        }
        self.handle
            .take()
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default()
    }
}

impl Drop for FlvPublisher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn publish(
    port: u16,
    key: &str,
    tags: &[Tag],
    mut plan: impl FnMut(&Tag) -> Action,
    stop: &AtomicBool,
    report: &mut Report,
) -> Result<(), String> {
    let mut stream =
        TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let tc_url = format!("rtmp://127.0.0.1:{port}/live");
    let mut session = ClientSession::new(ClientConfig {
        app: "live".into(),
        tc_url,
        stream_name: key.to_owned(),
        out_chunk_size: 4096,
    });
    let mut buf = vec![0u8; 16 * 1024];
    while !session.is_publishing() {
        if let Some(ClientEvent::Publishing { .. }) = flush(&mut stream, &mut session)? {
            break;
        }
        let n = stream
            .read(&mut buf)
            .map_err(|e| format!("reading the RTMP handshake: {e}"))?;
        if n == 0 {
            return Err("server closed the connection before publishing started".into());
        }
        session
            .handle_input(Instant::now(), &buf[..n])
            .map_err(|e| format!("bad RTMP from the server: {e}"))?;
    }
    // Whatever the server sends from now on (acknowledgements, pings) is read and dropped,
    // so its socket buffer never fills.
    let mut reader = stream.try_clone().map_err(|e| e.to_string())?;
    std::thread::spawn(move || {
        let mut sink = [0u8; 4096];
        while reader.read(&mut sink).is_ok_and(|n| n > 0) {}
    });
    let (config, frames): (Vec<&Tag>, Vec<&Tag>) = tags.iter().partition(|t| t.is_config());
    for tag in config {
        let body = if tag.kind == TagKind::Script {
            set_data_frame(&tag.body)
        } else {
            tag.body.clone()
        };
        session.send_media(media_kind(tag.kind), 0, body);
    }
    flush(&mut stream, &mut session)?;
    let first = frames.iter().map(|t| t.ts).min().unwrap_or(0);
    let start = Instant::now();
    for tag in frames {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let due = start + Duration::from_millis(u64::from(tag.ts - first));
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let decision = plan(tag);
        if let Action::At(ts) = decision {
            session.send_media(media_kind(tag.kind), ts, tag.body.clone());
            flush(&mut stream, &mut session)?;
            report.max_lag = report
                .max_lag
                .max(Instant::now().saturating_duration_since(due));
        }
        report.sent.push(Sent {
            kind: tag.kind,
            file_ts: tag.ts,
            sent_ts: match decision {
                Action::At(ts) => Some(ts),
                Action::Skip => None,
            },
            keyframe: tag.is_keyframe(),
            at: Instant::now(),
            unix_ms: unix_ms(),
        });
    }
    let _ = stream.shutdown(std::net::Shutdown::Both);
    Ok(())
}
