//! Many cheap viewers on one compio thread: each keeps one keep-alive connection and
//! follows the live stream as a player does (weir: blocking reload + part GET;
//! nginx-rtmp: playlist poll + new segment GET), counting what it downloads.

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{bail, ensure};
use compio::BufResult;
use compio::io::{AsyncRead as _, AsyncWriteExt as _};
use compio::net::TcpStream;

use crate::http::{parse_head, request};
use crate::playlist::{Follower, Start, dir_of, first_variant, parse_media, with_query};
use crate::poller::Mode;

/// Download counters shared with the measuring thread.
#[derive(Debug, Default)]
pub struct Counters {
    /// Responses of any kind (playlists and media objects).
    pub responses: AtomicU64,
    /// Media objects (parts or segments).
    pub media: AtomicU64,
    /// Body bytes.
    pub bytes: AtomicU64,
    /// Failed requests or connections.
    pub errors: AtomicU64,
    /// Viewers connected and following.
    pub active: AtomicU64,
}

/// One keep-alive connection.
struct Conn {
    addr: SocketAddr,
    stream: TcpStream,
    acc: Vec<u8>,
    rbuf: Option<Vec<u8>>,
}

impl Conn {
    async fn connect(addr: SocketAddr) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Self {
            addr,
            stream,
            acc: Vec::with_capacity(8 * 1024),
            rbuf: Some(vec![0u8; 64 * 1024]),
        })
    }

    async fn fill(&mut self) -> anyhow::Result<usize> {
        let buf = self.rbuf.take().unwrap_or_else(|| vec![0u8; 64 * 1024]);
        let BufResult(res, buf) = self.stream.read(buf).await;
        let n = res?;
        ensure!(n > 0, "server closed the connection");
        self.rbuf = Some(buf);
        Ok(n)
    }

    /// GETs `path`: (status, body if `keep`, body length).
    async fn get(&mut self, path: &str, keep: bool) -> anyhow::Result<(u16, Vec<u8>, usize)> {
        let BufResult(res, _) = self.stream.write_all(request(path, self.addr)).await;
        res?;
        self.acc.clear();
        let head = loop {
            if let Some(h) = parse_head(&self.acc)? {
                break h;
            }
            let n = self.fill().await?;
            if let Some(b) = &self.rbuf {
                self.acc.extend_from_slice(&b[..n]);
            }
        };
        let mut have = self.acc.len() - head.len;
        let mut body = if keep {
            self.acc[head.len..].to_vec()
        } else {
            Vec::new()
        };
        while have < head.content_length {
            let n = self.fill().await?;
            if keep && let Some(b) = &self.rbuf {
                body.extend_from_slice(&b[..n]);
            }
            have += n;
        }
        ensure!(
            have == head.content_length,
            "unexpected bytes after the response"
        );
        Ok((head.status, body, have))
    }
}

/// Counts a viewer as active while it lives.
struct Active<'a>(&'a AtomicU64);

impl<'a> Active<'a> {
    fn new(n: &'a AtomicU64) -> Self {
        n.fetch_add(1, Ordering::Relaxed);
        Self(n)
    }
}

impl Drop for Active<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn follow(addr: SocketAddr, path: &str, mode: Mode, c: &Counters) -> anyhow::Result<()> {
    let mut conn = Conn::connect(addr).await?;
    let media_path = match mode {
        Mode::BlockingReload => {
            let (status, body, _) = conn.get(path, true).await?;
            ensure!(status == 200, "multivariant playlist answered {status}");
            let v = first_variant(&String::from_utf8_lossy(&body))
                .ok_or_else(|| anyhow::anyhow!("no variant"))?;
            format!("{}{v}", dir_of(path))
        }
        Mode::Poll(_) => path.to_owned(),
    };
    let dir = dir_of(&media_path).to_owned();
    let mut follower = Follower::default();
    let mut query: Option<String> = None;
    let _active = Active::new(&c.active);
    loop {
        let url = match &query {
            Some(q) => with_query(&media_path, q),
            None => media_path.clone(),
        };
        let (status, body, n) = conn.get(&url, true).await?;
        c.responses.fetch_add(1, Ordering::Relaxed);
        c.bytes.fetch_add(n as u64, Ordering::Relaxed);
        if status != 200 {
            c.errors.fetch_add(1, Ordering::Relaxed);
            compio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        let pl = parse_media(&String::from_utf8_lossy(&body))?;
        let fetches = match mode {
            Mode::BlockingReload => follower.new_parts(&pl, Start::Live),
            Mode::Poll(_) => follower.new_segments(&pl, Start::Live),
        };
        for f in fetches {
            let (status, _, n) = conn.get(&format!("{dir}{}", f.uri), false).await?;
            if status != 200 {
                bail!("GET {} answered {status}", f.uri);
            }
            c.responses.fetch_add(1, Ordering::Relaxed);
            c.media.fetch_add(1, Ordering::Relaxed);
            c.bytes.fetch_add(n as u64, Ordering::Relaxed);
        }
        if pl.ended {
            return Ok(());
        }
        match mode {
            Mode::BlockingReload => query = follower.blocking_query(),
            Mode::Poll(every) => compio::time::sleep(every).await,
        }
    }
}

/// Starts `n` viewers of `path` on a new thread, joining over `ramp`; they run until
/// `stop` is set. A viewer that fails reconnects after a second.
pub fn spawn(
    addr: SocketAddr,
    path: String,
    mode: Mode,
    n: usize,
    ramp: Duration,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<anyhow::Result<()>> {
    std::thread::spawn(move || {
        let rt = compio::runtime::Runtime::new()?;
        rt.block_on(async {
            let path: Rc<str> = path.into();
            for i in 0..n {
                let delay = ramp.mul_f64(i as f64 / n.max(1) as f64);
                let (path, c) = (path.clone(), counters.clone());
                compio::runtime::spawn(async move {
                    compio::time::sleep(delay).await;
                    loop {
                        let result = follow(addr, &path, mode, &c).await;
                        if result.is_ok() {
                            return;
                        }
                        c.errors.fetch_add(1, Ordering::Relaxed);
                        compio::time::sleep(Duration::from_secs(1)).await;
                    }
                })
                .detach();
            }
            while !stop.load(Ordering::Relaxed) {
                compio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        Ok(())
    })
}
