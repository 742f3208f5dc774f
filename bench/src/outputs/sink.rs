//! The destination every relay pushes to in `bench outputs`: an RTMP server of our own
//! (`weir_rtmp::ServerSession` over blocking sockets, a thread per connection) that
//! accepts any publish and records when each video frame arrived, by a hash of its
//! coded bytes — the same frame is recognised whichever relay re-framed it.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use weir_rtmp::{MediaKind, ServerConfig, ServerEvent, ServerOutput, ServerSession};

/// One video frame received.
#[derive(Debug, Clone)]
pub struct Arrival {
    /// The publishing name the relay used (one per destination).
    pub stream: String,
    /// Hash of the frame's coded bytes (see [`frame_hash`]).
    pub hash: u64,
    /// When it was read.
    pub at: Instant,
}

/// The running sink.
pub struct Sink {
    /// Its loopback port.
    pub port: u16,
    arrivals: Arc<Mutex<Vec<Arrival>>>,
    stop: Arc<AtomicBool>,
}

/// Hash of an FLV video body's coded bytes: after the 5-byte legacy AVC header (what
/// both weir and nginx-rtmp send for H.264), so header rewrites do not matter.
pub fn frame_hash(body: &[u8]) -> Option<u64> {
    let legacy_avc = body.len() > 5 && body[0] & 0x0f == 7 && body[1] == 1;
    legacy_avc.then(|| {
        body[5..].iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
    })
}

impl Sink {
    /// Listens on a free loopback port.
    pub fn start() -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        listener.set_nonblocking(true)?;
        let arrivals = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (a, s) = (arrivals.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, peer)) => {
                        if std::env::var_os("WEIR_BENCH_DEBUG").is_some() {
                            crate::progress!("sink: connection from {peer}");
                        }
                        let (a, s) = (a.clone(), s.clone());
                        std::thread::spawn(move || serve(conn, &a, &s));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        Ok(Self {
            port,
            arrivals,
            stop,
        })
    }

    /// Takes what arrived so far.
    pub fn take(&self) -> Vec<Arrival> {
        std::mem::take(&mut *self.arrivals.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn serve(mut conn: TcpStream, arrivals: &Mutex<Vec<Arrival>>, stop: &AtomicBool) {
    let _ = conn.set_nodelay(true);
    let _ = conn.set_read_timeout(Some(Duration::from_millis(500)));
    let mut session = ServerSession::new(ServerConfig::default());
    let mut names = std::collections::HashMap::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut batch = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let n = match conn.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue;
            }
            Err(_) => return,
        };
        let now = Instant::now();
        if let Err(e) = session.handle_input(now, &buf[..n]) {
            crate::progress!("sink: a relay's RTMP was refused: {e}");
            return;
        }
        while let Some(out) = session.poll_output() {
            match out {
                ServerOutput::Transmit(b) => {
                    if conn.write_all(&b).is_err() {
                        return;
                    }
                }
                ServerOutput::Event(ServerEvent::PublishRequested {
                    stream_id, name, ..
                }) => {
                    if std::env::var_os("WEIR_BENCH_DEBUG").is_some() {
                        crate::progress!("sink: publish {name:?}");
                    }
                    names.insert(stream_id, name);
                    session.accept_publish(stream_id);
                }
                ServerOutput::Event(ServerEvent::Media {
                    stream_id,
                    kind: MediaKind::Video,
                    payload,
                    ..
                }) => {
                    if let Some(hash) = frame_hash(&payload) {
                        let stream = names.get(&stream_id).cloned().unwrap_or_default();
                        batch.push(Arrival {
                            stream,
                            hash,
                            at: now,
                        });
                    }
                }
                ServerOutput::Event(_) => {}
            }
        }
        if !batch.is_empty() {
            arrivals
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .append(&mut batch);
        }
    }
}
