//! Real transport streams from ffmpeg (H.264/H.265 + AAC/Opus) through the demuxer, fed
//! in random-sized chunks; the video comes back out as Annex B and ffmpeg decodes it.
//! Skipped (with one line saying so) when ffmpeg is not installed.

use std::path::{Path, PathBuf};
use std::process::Command;

use weir_media::{Codec, TrackConfig, TrackId, parse_avcc};
use weir_ts::{DropReason, TsDemuxer, TsEvent, composition_offset};

fn ffmpeg_available() -> bool {
    Command::new("ffmpeg")
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn has_encoder(name: &str) -> bool {
    Command::new("ffmpeg")
        .args(["-hide_banner", "-encoders"])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(name))
}

/// A scratch directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let d = std::env::temp_dir().join(format!("weir-ts-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&d).expect("temp dir");
        Self(d)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Encodes 4 s of 640x360 30 fps video (GOP 50, 2 B-frames) and a 48 kHz sine.
fn encode(dir: &TempDir, video: &[&str], audio: &[&str]) -> Vec<u8> {
    let out = dir.0.join("in.ts");
    let mut c = Command::new("ffmpeg");
    c.args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", "4"])
        .args(video)
        .args(audio)
        .args(["-f", "mpegts"])
        .arg(&out);
    let o = c.output().expect("run ffmpeg");
    assert!(
        o.status.success(),
        "ffmpeg: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    std::fs::read(&out).expect("read ts")
}

/// A small deterministic generator (xorshift).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Feeds `data` in random chunks of 1..=3000 bytes, draining after each push.
fn demux(data: &[u8], seed: u64) -> Vec<TsEvent> {
    let mut rng = Rng(seed);
    let mut d = TsDemuxer::new();
    let mut events = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let n = (1 + rng.next() as usize % 3000).min(rest.len());
        d.push(&rest[..n]);
        rest = &rest[n..];
        events.extend(std::iter::from_fn(|| d.poll()));
    }
    d.finish();
    events.extend(std::iter::from_fn(|| d.poll()));
    events
}

struct Frame {
    track: TrackId,
    dts: u64,
    pts: u64,
    keyframe: bool,
    data: bytes::Bytes,
}

fn frames(events: &[TsEvent], track: TrackId) -> Vec<Frame> {
    events
        .iter()
        .filter_map(|e| match e {
            TsEvent::Frame {
                track: t,
                dts,
                pts,
                keyframe,
                data,
            } if *t == track => Some(Frame {
                track: *t,
                dts: *dts,
                pts: *pts,
                keyframe: *keyframe,
                data: data.clone(),
            }),
            _ => None,
        })
        .collect()
}

fn configs(events: &[TsEvent]) -> Vec<(TrackId, TrackConfig)> {
    events
        .iter()
        .filter_map(|e| match e {
            TsEvent::Track { id, config } => Some((*id, config.clone())),
            _ => None,
        })
        .collect()
}

fn drops(events: &[TsEvent]) -> Vec<DropReason> {
    events
        .iter()
        .filter_map(|e| match e {
            TsEvent::Dropped { reason } => Some(reason.clone()),
            _ => None,
        })
        .collect()
}

/// The parameter sets of an avcC or hvcC record.
fn parameter_sets(codec: Codec, record: &[u8]) -> Vec<Vec<u8>> {
    if codec == Codec::H264 {
        let (sps, pps) = parse_avcc(record).expect("valid avcC");
        return sps.iter().chain(&pps).map(|n| n.to_vec()).collect();
    }
    let mut out = Vec::new();
    let mut p = 23;
    for _ in 0..record[22] {
        let count = u16::from_be_bytes([record[p + 1], record[p + 2]]);
        p += 3;
        for _ in 0..count {
            let len = usize::from(u16::from_be_bytes([record[p], record[p + 1]]));
            out.push(record[p + 2..p + 2 + len].to_vec());
            p += 2 + len;
        }
    }
    out
}

/// The video back as an Annex B stream (parameter sets before each key frame), decoded
/// by ffmpeg: returns the number of frames it decoded, asserting it reported no error.
fn ffmpeg_decodes(video: &[Frame], config: &TrackConfig, dir: &TempDir) -> usize {
    let TrackConfig::Video(v) = config else {
        panic!("not video")
    };
    let sets = parameter_sets(v.codec, &v.record);
    let mut es = Vec::new();
    for f in video {
        if f.keyframe {
            for s in &sets {
                es.extend([0, 0, 0, 1]);
                es.extend(s);
            }
        }
        let mut p = &f.data[..];
        while p.len() >= 4 {
            let len = u32::from_be_bytes([p[0], p[1], p[2], p[3]]) as usize;
            es.extend([0, 0, 0, 1]);
            es.extend(&p[4..4 + len]);
            p = &p[4 + len..];
        }
        assert!(p.is_empty(), "length prefixes cover the sample");
    }
    let path = dir.0.join("video.es");
    std::fs::write(&path, es).expect("write es");
    let format = if v.codec == Codec::H264 {
        "h264"
    } else {
        "hevc"
    };
    decoded_frames(&path, format)
}

fn decoded_frames(path: &Path, format: &str) -> usize {
    let o = Command::new("ffmpeg")
        .args(["-hide_banner", "-v", "error", "-f", format, "-i"])
        .arg(path)
        .args(["-f", "framecrc", "-"])
        .output()
        .expect("run ffmpeg");
    assert!(o.status.success());
    let errors = String::from_utf8_lossy(&o.stderr);
    assert!(errors.trim().is_empty(), "ffmpeg decode errors: {errors}");
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .count()
}

/// Positions of key frames in presentation order.
fn keyframes_in_presentation_order(video: &[Frame]) -> Vec<usize> {
    let mut by_pts: Vec<&Frame> = video.iter().collect();
    by_pts.sort_by_key(|f| f.pts);
    by_pts
        .iter()
        .enumerate()
        .filter(|(_, f)| f.keyframe)
        .map(|(i, _)| i)
        .collect()
}

/// The checks every file gets; returns the events.
fn check_file(dir: &TempDir, ts: &[u8], video_codec: Codec, audio_codec: Codec) -> Vec<TsEvent> {
    let name = dir
        .0
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let started = std::time::Instant::now();
    let events = demux(ts, 0x5eed);
    let took = started.elapsed();
    println!(
        "{name}: {} KiB demuxed in {took:?} ({:.0} MB/s)",
        ts.len() / 1024,
        ts.len() as f64 / took.as_secs_f64() / 1e6
    );
    // Any split gives the same events.
    assert_eq!(events, demux(ts, 42), "events depend on the chunking");
    assert!(drops(&events).is_empty(), "{:?}", drops(&events));

    let configs = configs(&events);
    assert_eq!(configs.len(), 2, "{configs:?}");
    let video_config = &configs
        .iter()
        .find(|c| c.0 == TrackId::VIDEO)
        .expect("video")
        .1;
    let audio_config = &configs
        .iter()
        .find(|c| c.0 == TrackId::AUDIO)
        .expect("audio")
        .1;
    let TrackConfig::Video(v) = video_config else {
        panic!()
    };
    assert_eq!((v.codec, v.width, v.height), (video_codec, 640, 360));
    let TrackConfig::Audio(a) = audio_config else {
        panic!()
    };
    assert_eq!(
        (a.codec, a.sample_rate, a.channels),
        (audio_codec, 48_000, 1)
    );

    let video = frames(&events, TrackId::VIDEO);
    assert_eq!(video.len(), 120);
    assert!(video[0].keyframe);
    assert_eq!(keyframes_in_presentation_order(&video), vec![0, 50, 100]);
    let reordered = video.iter().filter(|f| f.pts != f.dts).count();
    assert!(reordered > 60, "{reordered} frames with pts != dts");
    assert!(video.windows(2).all(|w| w[1].dts > w[0].dts));
    assert!(video.iter().all(|f| composition_offset(f.dts, f.pts) >= 0));
    let span = video.last().map_or(0, |f| f.dts) - video[0].dts;
    assert_eq!(span, 119 * 3000);

    let audio = frames(&events, TrackId::AUDIO);
    let step = if audio_codec == Codec::Aac {
        1920
    } else {
        1800
    };
    let expected = 4 * 90_000 / step;
    assert!(
        audio.len().abs_diff(expected as usize) <= 3,
        "{} audio frames, expected about {expected}",
        audio.len()
    );
    assert!(
        audio
            .iter()
            .all(|f| f.keyframe && f.pts == f.dts && f.track == TrackId::AUDIO)
    );
    assert!(audio.windows(2).all(|w| w[1].pts - w[0].pts == step));
    if audio_codec == Codec::Aac {
        // Raw AAC: no ADTS sync word left.
        assert!(
            audio
                .iter()
                .all(|f| !(f.data[0] == 0xff && f.data[1] & 0xf0 == 0xf0))
        );
    }

    assert_eq!(ffmpeg_decodes(&video, video_config, dir), 120);
    events
}

/// Drops a few packets in the middle: reported, no panic, and later frames still come.
fn check_losses(ts: &[u8]) {
    // ffmpeg puts the first stream (video) on PID 0x100 and the second on 0x101.
    let pid = |p: &[u8]| u16::from_be_bytes([p[1] & 0x1f, p[2]]);
    let on = |want: u16| -> Vec<usize> {
        ts.chunks(188)
            .enumerate()
            .filter(|(_, p)| pid(p) == want)
            .map(|(i, _)| i)
            .collect()
    };
    let (video, audio) = (on(0x100), on(0x101));
    let lose = [
        video[video.len() / 3],
        video[video.len() / 3 + 1],
        video[2 * video.len() / 3],
        audio[audio.len() / 2],
    ];
    let mut damaged = Vec::with_capacity(ts.len());
    for (i, p) in ts.chunks(188).enumerate() {
        if !lose.contains(&i) {
            damaged.extend_from_slice(p);
        }
    }
    let events = demux(&damaged, 7);
    let lost = drops(&events);
    let gaps = lost
        .iter()
        .filter(|d| matches!(d, DropReason::Continuity { .. }))
        .count();
    assert_eq!(gaps, 3, "{lost:?}");
    let full = demux(ts, 7);
    // A lost packet costs its PES: one video frame (up to a GOP's worth of later frames
    // are still emitted: the bus consumer decides), or the 15 or so AAC frames ffmpeg
    // packs in an audio PES.
    for (track, most) in [(TrackId::VIDEO, 4), (TrackId::AUDIO, 20)] {
        let got = frames(&events, track);
        let all = frames(&full, track);
        let missing = all.len() - got.len();
        assert!(
            (1..=most).contains(&missing),
            "{track}: {} of {}",
            got.len(),
            all.len()
        );
        assert_eq!(
            got.last().map(|f| f.pts),
            all.last().map(|f| f.pts),
            "{track}: later frames still come"
        );
    }
    // Every frame that came is one ffmpeg also made, whole.
    let all = frames(&full, TrackId::VIDEO);
    for f in frames(&events, TrackId::VIDEO) {
        assert!(all.iter().any(|g| g.pts == f.pts && g.data == f.data));
    }
}

/// Truncations, byte flips and garbage never panic (weir_ts::fuzzing checks invariants).
fn check_damage(ts: &[u8]) {
    let mut rng = Rng(99);
    for _ in 0..30 {
        let cut = rng.next() as usize % ts.len();
        let mut data = vec![rng.next() as u8 & !1];
        data.extend_from_slice(&ts[..cut]);
        for _ in 0..rng.next() % 50 {
            let at = 1 + rng.next() as usize % (data.len() - 1).max(1);
            if let Some(b) = data.get_mut(at) {
                *b = rng.next() as u8;
            }
        }
        weir_ts::fuzzing::ts_demux(&data);
    }
    let noise: Vec<u8> = (0..200_000).map(|_| rng.next() as u8).collect();
    weir_ts::fuzzing::ts_demux(&noise);
}

macro_rules! require_ffmpeg {
    () => {
        if !ffmpeg_available() {
            println!("skipped: ffmpeg is not on PATH (install it: cargo xtask setup --test)");
            return;
        }
    };
}

const X264: &[&str] = &[
    "-c:v",
    "libx264",
    "-bf",
    "2",
    "-g",
    "50",
    "-sc_threshold",
    "0",
];

#[test]
fn ffmpeg_h264_aac() {
    require_ffmpeg!();
    let dir = TempDir::new("h264_aac");
    let ts = encode(&dir, X264, &["-c:a", "aac"]);
    check_file(&dir, &ts, Codec::H264, Codec::Aac);
    check_losses(&ts);
    check_damage(&ts);
}

#[test]
fn ffmpeg_hevc_aac() {
    require_ffmpeg!();
    if !has_encoder("libx265") {
        println!("skipped: this ffmpeg has no libx265");
        return;
    }
    let x265: &[&str] = &[
        "-c:v",
        "libx265",
        "-x265-params",
        "keyint=50:min-keyint=50:scenecut=0:bframes=2:log-level=error",
    ];
    let dir = TempDir::new("hevc_aac");
    let ts = encode(&dir, x265, &["-c:a", "aac"]);
    check_file(&dir, &ts, Codec::H265, Codec::Aac);
    check_losses(&ts);
}

#[test]
fn ffmpeg_h264_opus() {
    require_ffmpeg!();
    if !has_encoder("libopus") {
        println!("skipped: this ffmpeg has no libopus");
        return;
    }
    let dir = TempDir::new("h264_opus");
    let ts = encode(&dir, X264, &["-c:a", "libopus", "-b:a", "64k"]);
    let events = check_file(&dir, &ts, Codec::H264, Codec::Opus);
    let opus = frames(&events, TrackId::AUDIO);
    // 20 ms packets: config 31 = CELT FB 20 ms, or SILK/hybrid 20 ms.
    assert!(
        opus.iter()
            .all(|f| !f.data.is_empty() && f.data[0] >> 3 != 0)
    );
    check_losses(&ts);
}
