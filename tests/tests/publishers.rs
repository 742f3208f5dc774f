//! Publishers as they are in the wild, not as the other tests' tidy ffmpeg:
//!
//! - OBS-like x264: default settings (B-frames, key frames only every 250 frames, scene-cut
//!   on). `EXT-X-TARGETDURATION` stays fixed for the broadcast, long GOPs are cut so no
//!   segment outlasts it, ffmpeg decodes the LL-HLS cleanly and the B-frames survive
//!   (pts ≠ dts).
//! - Tracks whose clocks are 1.5 s apart in send order (audio sent ahead of, or behind, the
//!   video it belongs to). ffmpeg cannot send that: its muxer always interleaves packets by
//!   dts, whatever `-itsoffset`/`-max_interleave_delta` say (checked with `ffprobe
//!   -show_packets` on its FLV output), so a replay of an ffmpeg-made FLV through weir's
//!   own RTMP client sends the tags in file order, in real time, with one track's stamps
//!   shifted by 1.5 s. The timeline must take that in without jumps or discontinuities:
//!   2 s segments, clean decoding, and the first segment's audio starting 1.5 s from its
//!   video.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use weir_e2e::flv::{Action, FlvPublisher, Report, TagKind, make_flv, read_tags};
use weir_e2e::http::get;
use weir_e2e::{
    MediaPlaylist, Node, Process, TempDir, fetch_playlist, fetch_with_init, output, require,
    variant_uri, wait_until,
};

/// Waits for the multivariant playlist of `slug`; returns the media playlist path (without
/// any query) and the directory objects are under.
fn media_paths(node: &Node, slug: &str) -> (String, String) {
    let mv = format!("/live/{slug}/index.m3u8");
    assert!(
        wait_until(Duration::from_secs(20), || get(node.http_port, &mv)
            .is_ok_and(|r| r.status == 200)),
        "no multivariant playlist for {slug} (node log below)"
    );
    let variant = variant_uri(&get(node.http_port, &mv).expect("multivariant").text())
        .expect("a variant URI");
    let media = format!(
        "/live/{slug}/{}",
        variant.split('?').next().unwrap_or(&variant)
    );
    let base = media.rsplit_once('/').expect("dir").0.to_owned();
    (media, base)
}

/// ffmpeg decoding 10 s of the live stream (the multivariant playlist), as a process
/// whose output goes to `log`.
fn decoder(url: &str, log: &Path) -> Process {
    require("ffmpeg");
    let mut c = Command::new("ffmpeg");
    c.args(["-hide_banner", "-nostdin", "-v", "error", "-i", url])
        .args(["-t", "10", "-f", "null", "-"]);
    Process::spawn("ffmpeg decoder", c, log.to_path_buf())
}

/// Waits for the decoder: (exit 0 with empty error output, what it said).
fn decoded_cleanly(mut dec: Process) -> (bool, String) {
    let status = dec.wait_exit(Duration::from_secs(40));
    let log = dec.log();
    (
        status.is_some_and(|s| s.success()) && log.trim().is_empty(),
        format!("{status:?}: {log}"),
    )
}

/// What repeated reloads of a media playlist showed.
#[derive(Default)]
struct Watch {
    reloads: usize,
    target_durations: Vec<u64>,
    /// (msn, duration) of every full segment seen.
    segments: std::collections::BTreeMap<u64, f64>,
    discontinuities: usize,
    last: MediaPlaylist,
}

impl Watch {
    fn see(&mut self, pl: MediaPlaylist) {
        if pl.text.is_empty() {
            return;
        }
        self.reloads += 1;
        if let Some(td) = pl.target_duration
            && self.target_durations.last() != Some(&td)
        {
            self.target_durations.push(td);
        }
        for (msn, _, d) in &pl.segments {
            self.segments.insert(*msn, *d);
        }
        self.discontinuities = self.discontinuities.max(pl.discontinuities);
        self.last = pl;
    }
}

/// ffprobe's (codec_type, start_time) of each stream of a file.
fn stream_starts(file: &Path) -> Vec<(String, f64)> {
    let (ok, out, err) = output(
        Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-show_entries",
                "stream=codec_type,start_time",
                "-of",
                "csv=p=0",
            ])
            .arg(file),
    );
    assert!(ok, "ffprobe {}: {err}", file.display());
    out.lines()
        .filter_map(|l| {
            let (kind, start) = l.split_once(',')?;
            Some((kind.to_owned(), start.trim().parse().ok()?))
        })
        .collect()
}

#[test]
fn obs_like_x264_keeps_a_fixed_target_duration_and_its_b_frames() {
    require("ffmpeg");
    require("ffprobe");
    const SECONDS: u32 = 20;
    let node = Node::start();
    let (_, key) = node.issue_key("obs");
    // OBS's x264 defaults: preset veryfast, CBR 2500k, B-frames (3), keyint 250 (x264's
    // default: 8.3 s at 30 fps), scene-cut on, no zerolatency tune.
    let mut c = Command::new("ffmpeg");
    c.args(["-hide_banner", "-nostdin", "-loglevel", "error", "-re"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", &SECONDS.to_string(), "-pix_fmt", "yuv420p"])
        .args(["-c:v", "libx264", "-preset", "veryfast", "-bf", "3"])
        .args(["-b:v", "2500k", "-maxrate", "2500k", "-bufsize", "5000k"])
        .args(["-c:a", "aac", "-b:a", "160k", "-f", "flv"])
        .arg(node.rtmp_url(&key));
    let mut publisher = Process::spawn("ffmpeg publisher", c, node.dir.0.join("ffmpeg.log"));
    let (media, base) = media_paths(&node, "obs");

    let mut watch = Watch::default();
    let mut dec = None;
    let mut probed = None;
    let tmp = TempDir::new("obs");
    let deadline = Instant::now() + Duration::from_secs(u64::from(SECONDS) + 20);
    while publisher.running() && Instant::now() < deadline {
        let pl = fetch_playlist(node.http_port, &media);
        // Once a full segment exists: start decoding, and keep a segment for ffprobe.
        if !pl.segments.is_empty() && dec.is_none() {
            dec = Some(decoder(
                &node.http_url("/live/obs/index.m3u8"),
                &node.dir.0.join("decoder.log"),
            ));
        }
        if let (Some(map), Some(seg), None) = (&pl.map_uri, pl.segments.last(), &probed) {
            probed = Some(fetch_with_init(
                node.http_port,
                &format!("{base}/{map}"),
                &format!("{base}/{}", seg.1),
                &tmp.0,
                "segment.mp4",
            ));
        }
        watch.see(pl);
        std::thread::sleep(Duration::from_millis(300));
    }
    let status = publisher.wait_exit(Duration::from_secs(10));
    assert!(
        status.is_some_and(|s| s.success()),
        "the publisher failed ({status:?}):\n{}",
        publisher.log()
    );
    let (decoded, decoder_said) = decoded_cleanly(dec.expect("a decoder was started"));
    // B-frames made it through: presentation order differs from decode order.
    let file = probed.expect("a segment was fetched");
    let (ok, out, err) = output(
        Command::new("ffprobe")
            .args(["-v", "error", "-select_streams", "v"])
            .args(["-show_entries", "packet=pts,dts", "-of", "csv=p=0"])
            .arg(&file),
    );
    assert!(ok, "ffprobe: {err}");
    let packets: Vec<(i64, i64)> = out
        .lines()
        .filter_map(|l| {
            let (p, d) = l.split_once(',')?;
            Some((p.trim().parse().ok()?, d.trim().parse().ok()?))
        })
        .collect();
    let reordered = packets.iter().filter(|(p, d)| p != d).count();
    eprintln!(
        "obs-like x264: {} reloads, TARGETDURATION {:?}, segments {:?}; decoder clean: \
         {decoded}; a segment has {} video packets, {reordered} with pts != dts",
        watch.reloads,
        watch.target_durations,
        watch.segments,
        packets.len()
    );
    let ctx = format!("last playlist:\n{}", watch.last.text);
    assert_eq!(
        watch.target_durations.len(),
        1,
        "EXT-X-TARGETDURATION changed during the broadcast: {:?}\n{ctx}",
        watch.target_durations
    );
    let td = watch.target_durations[0] as f64;
    let long: Vec<_> = watch
        .segments
        .iter()
        .filter(|(_, d)| **d > td + 0.5)
        .collect();
    assert!(
        long.is_empty(),
        "segments longer than TARGETDURATION {td} + 0.5 s (key frames are 8.3 s apart: long \
         GOPs must be cut): {long:?}\n{ctx}"
    );
    assert!(
        watch.segments.len() >= 3,
        "too few segments in {SECONDS} s: {:?}\n{ctx}",
        watch.segments
    );
    assert!(
        decoded,
        "ffmpeg could not decode 10 s of the OBS-like stream cleanly: {decoder_said}"
    );
    assert!(
        !packets.is_empty() && reordered > 0,
        "no B-frames in the packaged segment (all pts == dts): {out}"
    );
}

/// Which track's stamps the replay shifts forward by [`SKEW_MS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ahead {
    /// Audio stamped 1.5 s later than the video sent with it.
    Audio,
    /// Video stamped 1.5 s later than the audio sent with it (audio "behind", as
    /// encoders with a slow audio path send it).
    Video,
}

const SKEW_MS: u32 = 1_500;
const SKEW_SECONDS: u32 = 22;

/// Median, over the audio tags sent, of (audio stamp − stamp of the video tag sent just
/// before it), in ms.
fn send_order_skew(report: &Report) -> f64 {
    let mut last_video = None;
    let mut diffs = Vec::new();
    for s in &report.sent {
        match (s.kind, s.sent_ts) {
            (TagKind::Video, Some(ts)) => last_video = Some(ts),
            (TagKind::Audio, Some(ts)) => {
                if let Some(v) = last_video {
                    diffs.push(f64::from(ts) - f64::from(v));
                }
            }
            _ => {}
        }
    }
    diffs.sort_by(f64::total_cmp);
    diffs.get(diffs.len() / 2).copied().unwrap_or(f64::NAN)
}

fn skewed_clocks(ahead: Ahead, slug: &str) {
    require("ffprobe");
    let node = Node::start();
    let (_, key) = node.issue_key(slug);
    let tmp = TempDir::new(slug);
    let tags = read_tags(&make_flv(&tmp.0, "skew.flv", SKEW_SECONDS, 60));
    let publisher = FlvPublisher::start(node.rtmp_port, &key, tags, move |t| {
        let shifted = match ahead {
            Ahead::Audio => t.kind == TagKind::Audio,
            Ahead::Video => t.kind == TagKind::Video,
        };
        Action::At(if shifted { t.ts + SKEW_MS } else { t.ts })
    });
    let (media, base) = media_paths(&node, slug);

    let mut watch = Watch::default();
    let mut dec = None;
    let mut first_segment = None;
    let deadline = Instant::now() + Duration::from_secs(u64::from(SKEW_SECONDS) + 15);
    while !publisher.finished() && Instant::now() < deadline {
        let pl = fetch_playlist(node.http_port, &media);
        if !pl.segments.is_empty() && dec.is_none() {
            dec = Some(decoder(
                &node.http_url(&format!("/live/{slug}/index.m3u8")),
                &node.dir.0.join("decoder.log"),
            ));
        }
        // The broadcast's first segment, while the window still has it.
        if let (Some(map), Some(seg), None) = (&pl.map_uri, pl.segments.first(), &first_segment) {
            first_segment = Some((
                seg.0,
                fetch_with_init(
                    node.http_port,
                    &format!("{base}/{map}"),
                    &format!("{base}/{}", seg.1),
                    &tmp.0,
                    "first.mp4",
                ),
            ));
        }
        watch.see(pl);
        std::thread::sleep(Duration::from_millis(250));
    }
    let report = publisher.join(false);
    assert!(report.error.is_none(), "publisher: {:?}", report.error);
    let skew = send_order_skew(&report);
    let expected_skew = match ahead {
        Ahead::Audio => f64::from(SKEW_MS),
        Ahead::Video => -f64::from(SKEW_MS),
    };
    // The premise: tags really went out interleaved with stamps 1.5 s apart.
    assert!(
        (skew - expected_skew).abs() < 100.0,
        "send order skew {skew} ms, meant {expected_skew} ms"
    );
    let log = node.log();
    let suspicious: Vec<&str> = log
        .lines()
        .filter(|l| {
            let l = l.to_lowercase();
            l.contains(" warn ")
                || l.contains("discontinu")
                || l.contains("jump")
                || l.contains("stall")
                || l.contains("fell behind")
        })
        .collect();
    let durations: Vec<f64> = watch.segments.values().copied().collect();
    eprintln!(
        "{slug}: send-order skew {skew} ms; segments {:?}; TARGETDURATION {:?}; first segment \
         {:?}",
        watch.segments,
        watch.target_durations,
        first_segment.as_ref().map(|f| f.0)
    );
    let ctx = format!("last playlist:\n{}", watch.last.text);
    assert!(
        suspicious.is_empty(),
        "the node logged trouble with the skewed clocks:\n{}",
        suspicious.join("\n")
    );
    assert_eq!(
        watch.discontinuities, 0,
        "EXT-X-DISCONTINUITY in the playlist\n{ctx}"
    );
    assert!(
        durations.len() >= 5,
        "too few segments: {durations:?}\n{ctx}"
    );
    // 2 s GOPs: every full segment ~2 s (the last one before the end may be shorter).
    let n = durations.len();
    let odd: Vec<_> = durations[..n - 1]
        .iter()
        .filter(|d| (**d - 2.0).abs() > 0.1)
        .collect();
    assert!(
        odd.is_empty(),
        "segments not ~2 s with 2 s GOPs: {durations:?}\n{ctx}"
    );
    let (decoded, decoder_said) = decoded_cleanly(dec.expect("a decoder was started"));
    assert!(
        decoded,
        "ffmpeg could not decode 10 s of the skewed stream cleanly: {decoder_said}"
    );

    // The first segment keeps the tracks' offset: audio starts 1.5 s from the video.
    let (msn, file) = first_segment.expect("the first segment was fetched");
    let starts = stream_starts(&file);
    let start = |kind: &str| {
        starts
            .iter()
            .find(|(k, _)| k == kind)
            .map(|s| s.1)
            .unwrap_or_else(|| panic!("no {kind} stream in segment {msn}: {starts:?}"))
    };
    let offset = start("audio") - start("video");
    eprintln!("{slug}: segment {msn} starts {starts:?}: audio − video = {offset:.3} s");
    assert!(
        (offset - expected_skew / 1000.0).abs() <= 0.1,
        "segment {msn}: audio starts {offset:.3} s from the video, meant {:.3} s: {starts:?}",
        expected_skew / 1000.0
    );
}

#[test]
fn audio_stamped_ahead_of_video_in_send_order() {
    skewed_clocks(Ahead::Audio, "skew-audio");
}

#[test]
fn audio_stamped_behind_video_in_send_order() {
    skewed_clocks(Ahead::Video, "skew-video");
}
