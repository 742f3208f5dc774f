//! A minimal LL-HLS "player" on a thread: GETs the multivariant playlist (which hands out a
//! viewer session), follows the variant URI, and keeps issuing blocking playlist reloads
//! (`_HLS_msn`/`_HLS_part` from the preload hint) until stopped.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::MediaPlaylist;
use crate::http::get_with_timeout;

/// What a player did.
#[derive(Debug, Default, Clone)]
pub struct PlayerStats {
    /// Multivariant playlist fetches that succeeded.
    pub multivariant_ok: usize,
    /// Media playlist requests answered 200.
    pub playlists_ok: usize,
    /// Requests that failed or were answered with an error status once the media
    /// playlist had been served (first few kept).
    pub errors: Vec<String>,
    /// Failed requests before the first media playlist was served (it may not exist for
    /// a moment after the stream goes live; players retry).
    pub startup_retries: usize,
    /// The variant URI it followed.
    pub variant: Option<String>,
    /// The highest next media sequence number seen.
    pub last_msn: u64,
    /// Whether it saw `#EXT-X-ENDLIST`.
    pub saw_end: bool,
}

/// A running player thread.
pub struct Player {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicUsize>,
    handle: Option<JoinHandle<PlayerStats>>,
}

/// `part-<msn>-<idx>.m4s` → (msn, idx).
pub fn parse_part_name(uri: &str) -> Option<(u64, u64)> {
    let name = uri.rsplit('/').next()?.split('?').next()?;
    let (m, i) = name
        .strip_prefix("part-")?
        .strip_suffix(".m4s")?
        .split_once('-')?;
    Some((m.parse().ok()?, i.parse().ok()?))
}

impl Player {
    /// Starts playing `/live/<slug>/index.m3u8` from 127.0.0.1:`port`; gives up by itself
    /// after `max` even when not stopped.
    pub fn start(port: u16, slug: &str, max: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicUsize::new(0));
        let handle = {
            let (stop, ok, slug) = (stop.clone(), ok.clone(), slug.to_owned());
            std::thread::spawn(move || run(port, &slug, &stop, &ok, Instant::now() + max))
        };
        Self {
            stop,
            ok,
            handle: Some(handle),
        }
    }

    /// Media playlist requests answered 200 so far.
    pub fn playlists_ok(&self) -> usize {
        self.ok.load(Ordering::Relaxed)
    }

    /// Stops the player and returns what it did.
    pub fn stop(mut self) -> PlayerStats {
        self.stop.store(true, Ordering::Relaxed);
        self.handle
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for Player {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn run(port: u16, slug: &str, stop: &AtomicBool, ok: &AtomicUsize, until: Instant) -> PlayerStats {
    let mut st = PlayerStats::default();
    let timeout = Duration::from_secs(8);
    let live = || !stop.load(Ordering::Relaxed) && Instant::now() < until;
    let err = |st: &mut PlayerStats, e: String| {
        if st.playlists_ok == 0 {
            st.startup_retries += 1;
        } else if st.errors.len() < 10 {
            st.errors.push(e);
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    // The multivariant playlist: it hands out the viewer session in the variant URI.
    let mv_path = format!("/live/{slug}/index.m3u8");
    let variant = loop {
        if !live() {
            return st;
        }
        match get_with_timeout(port, &mv_path, timeout) {
            Ok(r) if r.status == 200 => {
                st.multivariant_ok += 1;
                match crate::variant_uri(&r.text()) {
                    Some(v) => break v,
                    None => err(&mut st, format!("no variant in {}", r.text())),
                }
            }
            Ok(r) => err(&mut st, format!("{mv_path}: {}", r.status)),
            Err(e) => err(&mut st, format!("{mv_path}: {e}")),
        }
    };
    st.variant = Some(variant.clone());
    let media = format!("/live/{slug}/{variant}");
    let sep = if media.contains('?') { '&' } else { '?' };
    let mut next: Option<(u64, u64)> = None;
    while live() {
        let path = match next {
            Some((msn, part)) => format!("{media}{sep}_HLS_msn={msn}&_HLS_part={part}"),
            None => media.clone(),
        };
        match get_with_timeout(port, &path, timeout) {
            Ok(r) if r.status == 200 => {
                st.playlists_ok += 1;
                ok.fetch_add(1, Ordering::Relaxed);
                let pl = MediaPlaylist::parse(&r.text());
                st.last_msn = st.last_msn.max(pl.next_msn());
                next = pl.preload_hint.as_deref().and_then(parse_part_name);
                if pl.ended {
                    st.saw_end = true;
                    // Nothing to block on: poll like a player showing the end.
                    std::thread::sleep(Duration::from_millis(500));
                } else if next.is_none() {
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
            Ok(r) => {
                next = None;
                err(&mut st, format!("{path}: {}", r.status));
            }
            Err(e) => {
                next = None;
                err(&mut st, format!("{path}: {e}"));
            }
        }
    }
    st
}
