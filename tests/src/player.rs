//! A minimal LL-HLS "player" on a thread: GETs the multivariant playlist, follows the
//! variant URI, fetches the init segment and the parts of the last segment listed, then
//! keeps issuing blocking playlist reloads (`_HLS_msn`/`_HLS_part` from the preload hint),
//! fetching every new part each reload lists, in order, until stopped. Like a real LL-HLS
//! player, it downloads the media: the origin counts viewers from media fetches.

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
    /// Init segments fetched.
    pub inits: usize,
    /// Parts fetched (answered 200).
    pub parts: usize,
    /// Bytes of media (init segments and parts) fetched.
    pub media_bytes: u64,
    /// The last part fetched: (msn, index in its segment).
    pub last_part: Option<(u64, u64)>,
}

/// A running player thread.
pub struct Player {
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
    handle: Option<JoinHandle<PlayerStats>>,
}

/// What a running player has done so far, readable from other threads.
#[derive(Debug, Default)]
struct Counters {
    playlists_ok: AtomicUsize,
    parts: AtomicUsize,
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
        let counters = Arc::new(Counters::default());
        let handle = {
            let (stop, counters, slug) = (stop.clone(), counters.clone(), slug.to_owned());
            std::thread::Builder::new()
                .name(format!("player-{slug}"))
                .stack_size(512 * 1024)
                .spawn(move || run(port, &slug, &stop, &counters, Instant::now() + max))
                .expect("spawn player thread")
        };
        Self {
            stop,
            counters,
            handle: Some(handle),
        }
    }

    /// Media playlist requests answered 200 so far.
    pub fn playlists_ok(&self) -> usize {
        self.counters.playlists_ok.load(Ordering::Relaxed)
    }

    /// Parts fetched so far.
    pub fn parts_fetched(&self) -> usize {
        self.counters.parts.load(Ordering::Relaxed)
    }

    /// Asks the player to stop without waiting for it (see [`Player::stop`]).
    pub fn signal_stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
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

fn run(
    port: u16,
    slug: &str,
    stop: &AtomicBool,
    counters: &Counters,
    until: Instant,
) -> PlayerStats {
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
    // Objects are relative to the media playlist.
    let base = media
        .split('?')
        .next()
        .and_then(|p| p.rsplit_once('/'))
        .map_or_else(|| format!("/live/{slug}"), |(dir, _)| dir.to_owned());
    let sep = if media.contains('?') { '&' } else { '?' };
    let mut next: Option<(u64, u64)> = None;
    let mut init: Option<String> = None;
    while live() {
        let path = match next {
            Some((msn, part)) => format!("{media}{sep}_HLS_msn={msn}&_HLS_part={part}"),
            None => media.clone(),
        };
        match get_with_timeout(port, &path, timeout) {
            Ok(r) if r.status == 200 => {
                st.playlists_ok += 1;
                counters.playlists_ok.fetch_add(1, Ordering::Relaxed);
                let pl = MediaPlaylist::parse(&r.text());
                st.last_msn = st.last_msn.max(pl.next_msn());
                next = pl.preload_hint.as_deref().and_then(parse_part_name);
                if let Some(map) = pl.map_uri.as_ref().filter(|m| init.as_ref() != Some(m))
                    && fetch_media(port, &base, map, timeout, &mut st, &err)
                {
                    st.inits += 1;
                    init = Some(map.clone());
                }
                fetch_new_parts(port, &base, &pl, timeout, &mut st, counters, &err, &live);
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

/// GETs one media object under `base`; records bytes or the error.
fn fetch_media(
    port: u16,
    base: &str,
    uri: &str,
    timeout: Duration,
    st: &mut PlayerStats,
    err: &impl Fn(&mut PlayerStats, String),
) -> bool {
    let path = format!("{base}/{uri}");
    match get_with_timeout(port, &path, timeout) {
        Ok(r) if r.status == 200 => {
            st.media_bytes += r.body.len() as u64;
            true
        }
        Ok(r) => {
            err(st, format!("{path}: {}", r.status));
            false
        }
        Err(e) => {
            err(st, format!("{path}: {e}"));
            false
        }
    }
}

/// Fetches, in order, the parts `pl` lists after the last one fetched; on the first
/// playlist, only those of the last segment listed (where a player starts).
#[allow(clippy::too_many_arguments)]
fn fetch_new_parts(
    port: u16,
    base: &str,
    pl: &MediaPlaylist,
    timeout: Duration,
    st: &mut PlayerStats,
    counters: &Counters,
    err: &impl Fn(&mut PlayerStats, String),
    live: &impl Fn() -> bool,
) {
    let parts = pl.indexed_parts();
    let from = match st.last_part {
        Some(last) => parts.iter().position(|p| (p.0, p.1) > last),
        None => parts
            .last()
            .map(|l| l.0)
            .and_then(|msn| parts.iter().position(|p| p.0 == msn)),
    };
    let Some(from) = from else {
        return;
    };
    for (msn, idx, uri) in &parts[from..] {
        if !live() {
            return;
        }
        if !fetch_media(port, base, uri, timeout, st, err) {
            // A player would retry; the next reload lists it again.
            return;
        }
        st.parts += 1;
        counters.parts.fetch_add(1, Ordering::Relaxed);
        st.last_part = Some((*msn, *idx));
    }
}
