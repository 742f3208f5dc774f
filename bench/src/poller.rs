//! Latency pollers: one client per server type that follows a stream as a real player
//! would and records when each part (weir) or segment (nginx-rtmp) finished downloading.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::http::Client;
use crate::playlist::{Fetch, Follower, Start, dir_of, first_variant, parse_media, with_query};

/// One downloaded media object.
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    /// `(msn, part)`; part 0 for whole segments.
    pub key: (u64, u64),
    /// Duration in seconds.
    pub duration: f64,
    /// When its download completed.
    pub done: Instant,
}

/// What a poller has seen so far (shared: the poller may still be running).
pub type Timeline = Arc<Mutex<Vec<Object>>>;

/// How the poller follows the stream.
#[derive(Debug, Clone, Copy)]
pub enum Mode {
    /// LL-HLS: blocking playlist reload for the next part, then GET the part.
    BlockingReload,
    /// HLS: reload the playlist every interval, GET new segments.
    Poll(Duration),
}

/// Starts a poller thread for the playlist at `path`; it runs until `stop` is set, the
/// playlist ends or the server goes away. Errors are returned through the handle.
pub fn spawn(
    http: SocketAddr,
    path: String,
    mode: Mode,
    stop: Arc<AtomicBool>,
) -> (Timeline, std::thread::JoinHandle<anyhow::Result<()>>) {
    let timeline = Timeline::default();
    let t = timeline.clone();
    let handle = std::thread::spawn(move || follow(http, &path, mode, &stop, &t));
    (timeline, handle)
}

fn record(
    client: &mut Client,
    dir: &str,
    fetches: Vec<Fetch>,
    timeline: &Timeline,
) -> anyhow::Result<()> {
    for f in fetches {
        let r = client.get(&format!("{dir}{}", f.uri))?;
        if r.status != 200 {
            bail!("GET {} answered {}", f.uri, r.status);
        }
        let done = Instant::now();
        let mut t = timeline.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
        t.push(Object {
            key: f.key,
            duration: f.duration,
            done,
        });
    }
    Ok(())
}

fn follow(
    http: SocketAddr,
    path: &str,
    mode: Mode,
    stop: &AtomicBool,
    timeline: &Timeline,
) -> anyhow::Result<()> {
    let mut client = Client::new(http, Duration::from_secs(15));
    // Wait for the stream to appear.
    let first = loop {
        if stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        let r = client.get(path)?;
        if r.status == 200 {
            break r.text();
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let media_path = match mode {
        Mode::BlockingReload => {
            let v = first_variant(&first).context("no variant in the multivariant playlist")?;
            format!("{}{v}", dir_of(path))
        }
        Mode::Poll(_) => path.to_owned(),
    };
    let dir = dir_of(&media_path).to_owned();
    let mut follower = Follower::default();
    let mut query: Option<String> = None;
    while !stop.load(Ordering::Relaxed) {
        let url = match &query {
            Some(q) => with_query(&media_path, q),
            None => media_path.clone(),
        };
        let r = client.get(&url)?;
        match r.status {
            200 => {}
            // A blocked reload that timed out, or a playlist not there yet.
            503 | 404 => {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
            s => bail!("GET {url} answered {s}"),
        }
        let pl = parse_media(&r.text())?;
        let fetches = match mode {
            Mode::BlockingReload => follower.new_parts(&pl, Start::First),
            Mode::Poll(_) => follower.new_segments(&pl, Start::First),
        };
        record(&mut client, &dir, fetches, timeline)?;
        if pl.ended {
            break;
        }
        match mode {
            Mode::BlockingReload => query = follower.blocking_query(),
            Mode::Poll(every) => std::thread::sleep(every),
        }
    }
    Ok(())
}
