//! A CDN in front of the origin: Debian's nginx as a caching reverse proxy with request
//! collapsing (`proxy_cache_lock`), 100 LL-HLS players behind it. Every viewer gets the
//! same URLs and blocking reloads are cacheable (`max-age=2`), so the origin sees about one
//! blocking playlist request per part, whatever the number of players, and every player
//! keeps up with the live edge.
//!
//! Measured at the origin (its `weir_http_playlist_requests_total{blocking="yes"}`
//! counter, or nginx's access log where the node does not export it) over a window while
//! the players play; parts produced in that window are counted from the origin's playlist.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use weir_e2e::http::get;
use weir_e2e::nginx::CachingProxy;
use weir_e2e::player::{Player, PlayerStats};
use weir_e2e::{
    Node, Process, fetch_playlist, ffmpeg_publish, metric, require, require_nginx, variant_uri,
    wait_until,
};

const SLUG: &str = "cdn";
/// ffmpeg publishes this long (the test stops it when done).
const PUBLISH_SECONDS: u32 = 45;
const PLAYERS: usize = 100;
/// Players play this long in all …
const PLAY: Duration = Duration::from_secs(20);
/// … and are measured after this warm-up (all started, past their first playlists).
const WARMUP: Duration = Duration::from_secs(4);
/// Upstream blocking playlist requests per new part allowed (ideal: 1).
const MAX_UPSTREAM_PER_PART: f64 = 3.0;
/// The players' blocking requests must outnumber the upstream ones this many times.
const MIN_COLLAPSE: f64 = 50.0;
const BLOCKING_METRIC: &str = "weir_http_playlist_requests_total";

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Polls the origin's media playlist (non-blocking, straight to the origin) and records
/// when each part first appeared (Unix seconds).
struct PartSampler {
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<BTreeMap<(u64, u64), f64>>>,
}

impl PartSampler {
    fn start(port: u16, media_path: String) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let handle = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut seen = BTreeMap::new();
                while !stop.load(Ordering::Relaxed) {
                    let pl = fetch_playlist(port, &media_path);
                    let now = unix_now();
                    for (msn, idx, _) in pl.indexed_parts() {
                        seen.entry((msn, idx)).or_insert(now);
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                seen
            })
        };
        Self {
            stop,
            handle: Some(handle),
        }
    }

    fn finish(mut self) -> BTreeMap<(u64, u64), f64> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for PartSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[test]
fn a_caching_proxy_sends_about_one_blocking_reload_per_part_upstream() {
    require_nginx();
    require("ffmpeg");
    let node = Node::start();
    let (_, key) = node.issue_key(SLUG);
    let _ffmpeg = Process::spawn(
        "ffmpeg",
        ffmpeg_publish(&node.rtmp_url(&key), PUBLISH_SECONDS),
        node.dir.0.join("ffmpeg.log"),
    );
    let mv = format!("/live/{SLUG}/index.m3u8");
    assert!(
        wait_until(Duration::from_secs(15), || get(node.http_port, &mv)
            .is_ok_and(|r| r.status == 200)),
        "no multivariant playlist at the origin:\n{}",
        node.log()
    );
    let variant = variant_uri(&get(node.http_port, &mv).expect("multivariant").text())
        .expect("a variant URI");
    // The sampler reads the origin directly, without any query the origin may add.
    let media_path = format!(
        "/live/{SLUG}/{}",
        variant.split('?').next().unwrap_or(&variant)
    );
    assert!(
        wait_until(Duration::from_secs(15), || !fetch_playlist(
            node.http_port,
            &media_path
        )
        .parts
        .is_empty()),
        "no parts in {media_path}:\n{}",
        node.log()
    );

    let mut proxy = CachingProxy::start(node.http_port);
    let through = get(proxy.port, &mv).expect("multivariant through nginx");
    assert_eq!(
        through.status,
        200,
        "nginx did not pass the multivariant playlist: {}\n{}",
        through.text(),
        proxy.error_log()
    );

    let sampler = PartSampler::start(node.http_port, media_path.clone());
    let blocking = || metric(node.http_port, BLOCKING_METRIC, &[("blocking", "yes")]);
    let started = Instant::now();
    let players: Vec<Player> = (0..PLAYERS)
        .map(|_| {
            // Viewers arrive over about a second, not in one instant.
            std::thread::sleep(Duration::from_millis(10));
            Player::start(proxy.port, SLUG, PLAY + Duration::from_secs(30))
        })
        .collect();
    std::thread::sleep(WARMUP.saturating_sub(started.elapsed()));
    let (t_start, origin_start) = (unix_now(), blocking());
    std::thread::sleep(PLAY.saturating_sub(started.elapsed()));
    let (t_end, origin_end) = (unix_now(), blocking());
    let edge = fetch_playlist(node.http_port, &media_path);
    for p in &players {
        p.signal_stop();
    }
    let stats: Vec<PlayerStats> = players.into_iter().map(Player::stop).collect();
    let parts_seen = sampler.finish();
    proxy.stop();

    // Parts the origin produced in the window.
    let new_parts = parts_seen
        .values()
        .filter(|&&t| t > t_start && t <= t_end)
        .count();
    // What nginx saw, and what it sent upstream, in the window.
    let log: Vec<_> = proxy
        .access_log()
        .into_iter()
        .filter(|e| e.time > t_start && e.time <= t_end)
        .collect();
    let player_blocking: Vec<_> = log.iter().filter(|e| e.is_blocking_playlist()).collect();
    let log_upstream = player_blocking.iter().filter(|e| e.went_upstream()).count();
    let part_requests: Vec<_> = log.iter().filter(|e| e.is_part()).collect();
    let part_upstream = part_requests.iter().filter(|e| e.went_upstream()).count();
    let mut by_status: BTreeMap<String, usize> = BTreeMap::new();
    for e in &player_blocking {
        *by_status
            .entry(format!("{} {}", e.status, e.cache))
            .or_default() += 1;
    }
    let mut waits: Vec<f64> = player_blocking
        .iter()
        .filter(|e| !e.went_upstream())
        .map(|e| e.request_time)
        .collect();
    waits.sort_by(f64::total_cmp);
    let origin_blocking = origin_start.zip(origin_end).map(|(a, b)| b - a);
    // The origin's own count when it has one; else what nginx logged as sent upstream.
    let upstream = origin_blocking.unwrap_or(log_upstream as f64);
    let per_part = upstream / new_parts.max(1) as f64;
    let collapse = player_blocking.len() as f64 / upstream.max(1.0);
    let edge_msn = edge.next_msn();
    let laggards: Vec<(usize, u64)> = stats
        .iter()
        .enumerate()
        .filter(|(_, s)| s.last_msn + 2 < edge_msn)
        .map(|(i, s)| (i, s.last_msn))
        .collect();
    let with_errors: Vec<(usize, &Vec<String>)> = stats
        .iter()
        .enumerate()
        .filter(|(_, s)| !s.errors.is_empty())
        .map(|(i, s)| (i, &s.errors))
        .collect();
    let parts_fetched: usize = stats.iter().map(|s| s.parts).sum();
    let bytes: u64 = stats.iter().map(|s| s.media_bytes).sum();
    let variants: std::collections::BTreeSet<_> =
        stats.iter().filter_map(|s| s.variant.clone()).collect();

    let summary = format!(
        "window {:.1} s: {new_parts} new parts; blocking playlist requests: players {} \
         through nginx, upstream {upstream} ({}; nginx log says {log_upstream}) = {per_part:.2} \
         per part, collapse {collapse:.1}x; by status {by_status:?}; cached blocking answers \
         took p50 {:.3} s, p90 {:.3} s, max {:.3} s; parts: {} requests through nginx, {} \
         upstream ({:.2} per part); players fetched {parts_fetched} parts, {:.1} MB in all; \
         live edge msn {edge_msn}; {} distinct variant URIs (e.g. {:?})",
        t_end - t_start,
        player_blocking.len(),
        if origin_blocking.is_some() {
            "origin metric"
        } else {
            "origin exports no blocking-request counter: from nginx's log"
        },
        percentile(&waits, 0.5),
        percentile(&waits, 0.9),
        waits.last().copied().unwrap_or(f64::NAN),
        part_requests.len(),
        part_upstream,
        part_upstream as f64 / new_parts.max(1) as f64,
        bytes as f64 / 1e6,
        variants.len(),
        variants.iter().next(),
    );
    eprintln!("cdn_proxy: {summary}");
    let ctx = format!("{summary}\nlast origin playlist:\n{}", edge.text);

    assert!(
        new_parts >= 20,
        "the origin produced only {new_parts} parts in the window\n{ctx}"
    );
    assert!(
        with_errors.is_empty(),
        "{} players had errors, e.g. {:?}\n{ctx}",
        with_errors.len(),
        with_errors.first()
    );
    assert!(
        laggards.is_empty(),
        "{} players fell more than 2 segments behind the live edge (msn {edge_msn}), e.g. \
         {:?}\n{ctx}",
        laggards.len(),
        &laggards[..laggards.len().min(5)]
    );
    assert!(
        stats.iter().all(|s| s.parts > 0),
        "a player fetched no parts\n{ctx}"
    );
    assert!(
        per_part <= MAX_UPSTREAM_PER_PART,
        "the origin got {per_part:.2} blocking playlist requests per part through the cache \
         (at most {MAX_UPSTREAM_PER_PART}: identical requests should collapse; per-viewer URLs \
         defeat the cache)\n{ctx}"
    );
    assert!(
        collapse >= MIN_COLLAPSE,
        "the players made only {collapse:.1}x the blocking requests the origin got (at least \
         {MIN_COLLAPSE}x expected with {PLAYERS} players)\n{ctx}"
    );
}
