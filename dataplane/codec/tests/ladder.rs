//! A real ladder: a synthetic 1280x720 30 fps H.264 source with an irregular GOP through
//! GStreamer, checked frame by frame and decoded again.

use std::collections::BTreeSet;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use weir_codec::synth::{SynthSpec, synth_h264};
use weir_codec::{
    EncoderKind, Ladder, LadderConfig, LadderOutput, PerTitleConfig, PushError, Rung,
    cpu_ladder_available, default_ladder,
};
use weir_media::{Frame, TrackConfig, VideoConfig, parse_avcc, parse_sps};

fn skip() -> bool {
    match cpu_ladder_available() {
        Ok(()) => false,
        Err(e) => {
            eprintln!("skipping ladder test: {e}");
            true
        }
    }
}

fn source() -> (VideoConfig, Vec<Frame>) {
    let spec = SynthSpec {
        extra_keyframes: vec![75],
        start_ticks: 123_456_000,
        ..SynthSpec::default()
    };
    let (config, frames) = synth_h264(&spec).expect("synthetic source");
    assert_eq!(frames.len(), 150);
    (config, frames)
}

fn keys(frames: &[Frame]) -> BTreeSet<i64> {
    frames
        .iter()
        .filter(|f| f.keyframe)
        .map(|f| f.pts)
        .collect()
}

/// Per rung: its configs and frames, in output order.
#[derive(Default, Debug)]
struct RungOut {
    configs: Vec<VideoConfig>,
    frames: Vec<Frame>,
}

/// Pushes every frame (retrying never: the backlog bound is set high), finishes, and
/// collects outputs until `Finished`.
fn run(ladder: &Ladder, frames: &[Frame]) -> (Vec<RungOut>, Vec<LadderOutput>) {
    run_at(ladder, frames, None)
}

/// [`run`], pushing at most `speed` × real time when given.
fn run_at(
    ladder: &Ladder,
    frames: &[Frame],
    speed: Option<f64>,
) -> (Vec<RungOut>, Vec<LadderOutput>) {
    let (tx, rx) = mpsc::channel::<()>();
    ladder.set_notify(Box::new(move || {
        let _ = tx.send(());
    }));
    let mut outs: Vec<RungOut> = ladder.rungs().iter().map(|_| RungOut::default()).collect();
    let mut other = Vec::new();
    let drain = |outs: &mut Vec<RungOut>, other: &mut Vec<LadderOutput>| {
        let mut finished = false;
        while let Some(o) = ladder.try_recv() {
            match o {
                LadderOutput::Config {
                    rung,
                    config: TrackConfig::Video(v),
                } => outs[rung].configs.push(v),
                LadderOutput::Frame { rung, frame } => outs[rung].frames.push(frame),
                LadderOutput::Finished => finished = true,
                o => other.push(o),
            }
        }
        finished
    };
    let mut finished = false;
    let started = Instant::now();
    for f in frames {
        if let Some(speed) = speed {
            let media = (f.dts - frames[0].dts) as f64 / 90_000.0 / speed;
            let due = started + Duration::from_secs_f64(media.max(0.0));
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
        }
        ladder.push(f).expect("push");
        finished |= drain(&mut outs, &mut other);
    }
    ladder.finish();
    let deadline = Instant::now() + Duration::from_secs(300);
    while !finished && Instant::now() < deadline {
        let _ = rx.recv_timeout(Duration::from_millis(200));
        finished |= drain(&mut outs, &mut other);
    }
    assert!(finished, "ladder did not finish: {:?}", ladder.stats());
    (outs, other)
}

fn nal_types(data: &[u8]) -> Vec<u8> {
    let mut p = data;
    let mut types = Vec::new();
    while !p.is_empty() {
        assert!(p.len() >= 4, "truncated length prefix");
        let len = u32::from_be_bytes([p[0], p[1], p[2], p[3]]) as usize;
        assert!(len > 0 && p.len() >= 4 + len, "bad NAL length {len}");
        types.push(p[4] & 0x1f);
        p = &p[4 + len..];
    }
    types
}

/// Decodes a rung's output with avdec_h264; returns (frames decoded, width, height).
fn decode(config: &VideoConfig, frames: &[Frame]) -> (usize, i32, i32) {
    let caps = gst::Caps::builder("video/x-h264")
        .field("stream-format", "avc")
        .field("alignment", "au")
        .field("codec_data", gst::Buffer::from_slice(config.record.clone()))
        .build();
    let src = gst_app::AppSrc::builder()
        .caps(&caps)
        .format(gst::Format::Time)
        .build();
    let dec = gst::ElementFactory::make("avdec_h264")
        .build()
        .expect("avdec_h264");
    let sink = gst_app::AppSink::builder().sync(false).build();
    let pipeline = gst::Pipeline::new();
    pipeline
        .add_many([src.upcast_ref(), &dec, sink.upcast_ref()])
        .expect("add");
    gst::Element::link_many([src.upcast_ref(), &dec, sink.upcast_ref()]).expect("link");
    pipeline.set_state(gst::State::Playing).expect("playing");
    for f in frames {
        let mut b = gst::Buffer::from_slice(f.data.clone());
        let bm = b.get_mut().expect("writable");
        bm.set_pts(gst::ClockTime::from_nseconds(f.pts as u64 * 100_000 / 9));
        bm.set_dts(gst::ClockTime::from_nseconds(f.dts as u64 * 100_000 / 9));
        src.push_buffer(b).expect("push");
    }
    src.end_of_stream().expect("eos");
    let (mut n, mut w, mut h) = (0, 0, 0);
    while let Ok(s) = sink.pull_sample() {
        if let Some(st) = s.caps().and_then(|c| c.structure(0).map(|s| s.to_owned())) {
            w = st.get::<i32>("width").unwrap_or(0);
            h = st.get::<i32>("height").unwrap_or(0);
        }
        n += 1;
    }
    let _ = pipeline.set_state(gst::State::Null);
    (n, w, h)
}

fn check_encoded_rung(out: &RungOut, src: &[Frame], width: u16, height: u16) {
    let src_keys = keys(src);
    let src_pts: BTreeSet<i64> = src.iter().map(|f| f.pts).collect();
    assert_eq!(out.configs.len(), 1, "one avcC per rung");
    let cfg = &out.configs[0];
    assert_eq!((cfg.width, cfg.height), (width, height));
    assert_eq!(cfg.record[4] & 3, 3, "4-byte NAL lengths");
    let (sps, pps) = parse_avcc(&cfg.record).expect("avcC parses");
    assert!(!pps.is_empty());
    let info = parse_sps(sps[0]).expect("SPS parses");
    assert_eq!(
        (info.width, info.height),
        (u32::from(width), u32::from(height))
    );

    assert_eq!(
        out.frames.len(),
        src.len(),
        "{width}x{height}: every frame encoded"
    );
    assert_eq!(
        keys(&out.frames),
        src_keys,
        "{width}x{height}: keyframes at the source's"
    );
    let pts: BTreeSet<i64> = out.frames.iter().map(|f| f.pts).collect();
    assert_eq!(pts, src_pts, "PTS are the source's");
    for w in out.frames.windows(2) {
        assert!(w[1].dts > w[0].dts, "DTS increase");
    }
    for f in &out.frames {
        assert!(f.dts <= f.pts, "dts {} after pts {}", f.dts, f.pts);
        let types = nal_types(&f.data);
        assert_eq!(
            f.keyframe,
            types.contains(&5),
            "IDR exactly on keyframes: {types:?}"
        );
    }
    let (n, w, h) = decode(cfg, &out.frames);
    assert_eq!((n, w, h), (src.len(), i32::from(width), i32::from(height)));
}

#[test]
fn ladder_720p_source_to_720_480_360_with_source_keyframes() {
    if skip() {
        return;
    }
    let (config, frames) = source();
    let src_keys = keys(&frames);
    let gaps: BTreeSet<i64> = src_keys
        .iter()
        .zip(src_keys.iter().skip(1))
        .map(|(a, b)| b - a)
        .collect();
    assert!(
        src_keys.len() >= 4 && gaps.len() >= 2,
        "irregular GOP: {src_keys:?}"
    );
    assert!(frames.iter().any(|f| f.pts != f.dts), "source has B-frames");

    let cfg = LadderConfig {
        rungs: default_ladder(),
        max_input_backlog: Duration::from_secs(60),
        max_output_queue: 4096,
        overload: None,
        ..LadderConfig::default()
    };
    let ladder = Ladder::start(&cfg, &config).expect("ladder starts");
    let names: Vec<&str> = ladder.rungs().iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["720p", "480p", "360p"], "1080p capped away");
    let sel = ladder.selection().expect("encoded rungs");
    if !weir_codec_has("nvh264enc") {
        assert_eq!(sel.encoder, EncoderKind::X264);
    }
    let started = Instant::now();
    let (outs, other) = run(&ladder, &frames);
    eprintln!(
        "ladder ran 5 s of 720p in {:?} with {sel:?}",
        started.elapsed()
    );
    assert!(other.is_empty(), "{other:?}");
    check_encoded_rung(&outs[0], &frames, 1280, 720);
    check_encoded_rung(&outs[1], &frames, 854, 480);
    check_encoded_rung(&outs[2], &frames, 640, 360);
    // One decode timeline for every rung.
    let dts = |o: &RungOut| o.frames.iter().map(|f| f.dts).collect::<Vec<_>>();
    assert_eq!(dts(&outs[0]), dts(&outs[1]));
    assert_eq!(dts(&outs[0]), dts(&outs[2]));
    assert_eq!(outs[1].frames[0].track.index, 2);
    let stats = ladder.stats();
    assert_eq!(stats.pushed, 150);
    assert_eq!(stats.frames_out, [150, 150, 150]);
    ladder.stop();
}

/// The same ladder forced onto NVENC. It runs where GStreamer registers `nvh264enc` (an
/// NVIDIA driver and a GPU with NVENC; an H100/H200 has NVDEC only, so nvcodec registers no
/// encoder there); elsewhere it says in one line that it is skipped and why.
#[test]
fn nvenc_ladder_where_the_gpu_has_nvenc() {
    if skip() {
        return;
    }
    if !weir_codec_has("nvh264enc") {
        eprintln!(
            "skipping NVENC ladder test: GStreamer has no nvh264enc here (needs an NVIDIA \
             driver and a GPU with NVENC); engine selection and fallback are unit-tested in \
             weir_codec::select"
        );
        return;
    }
    let (config, frames) = source();
    let cfg = LadderConfig {
        rungs: default_ladder(),
        encoder: weir_codec::EncoderChoice::Nvenc,
        max_input_backlog: Duration::from_secs(60),
        max_output_queue: 4096,
        overload: None,
        ..LadderConfig::default()
    };
    let ladder = Ladder::start(&cfg, &config).expect("NVENC ladder starts");
    let sel = ladder.selection().expect("encoded rungs");
    assert_eq!(sel.encoder, EncoderKind::Nvenc, "{sel:?}");
    let (outs, other) = run(&ladder, &frames);
    assert!(other.is_empty(), "{other:?}");
    check_encoded_rung(&outs[0], &frames, 1280, 720);
    check_encoded_rung(&outs[1], &frames, 854, 480);
    check_encoded_rung(&outs[2], &frames, 640, 360);
    ladder.stop();
}

fn weir_codec_has(name: &str) -> bool {
    gst::init().is_ok() && gst::ElementFactory::find(name).is_some()
}

#[test]
fn passthrough_top_and_frame_rate_cap() {
    if skip() {
        return;
    }
    let (config, frames) = source();
    let mut capped = Rung::new("360p15", 360, 400);
    capped.max_fps = Some(15);
    let cfg = LadderConfig {
        rungs: vec![Rung::new("720p", 720, 3000), capped],
        passthrough_top: true,
        max_input_backlog: Duration::from_secs(60),
        max_output_queue: 4096,
        overload: None,
        ..LadderConfig::default()
    };
    let ladder = Ladder::start(&cfg, &config).expect("ladder starts");
    assert!(ladder.rungs()[0].passthrough);
    let (outs, other) = run(&ladder, &frames);
    assert!(other.is_empty(), "{other:?}");
    // The passthrough rung is the source, byte for byte.
    assert_eq!(outs[0].configs, std::slice::from_ref(&config));
    assert_eq!(outs[0].frames.len(), frames.len());
    for (o, s) in outs[0].frames.iter().zip(&frames) {
        assert_eq!(
            (o.pts, o.dts, o.keyframe, &o.data),
            (s.pts, s.dts, s.keyframe, &s.data)
        );
    }
    // 15 fps from 30: every other frame plus any odd-numbered keyframe.
    let low = &outs[1];
    assert!(
        (75..=78).contains(&low.frames.len()),
        "{} frames",
        low.frames.len()
    );
    assert_eq!(keys(&low.frames), keys(&frames));
    let (n, w, h) = decode(&low.configs[0], &low.frames);
    assert_eq!((n, w, h), (low.frames.len(), 640, 360));
}

#[test]
fn a_full_input_queue_drops_up_to_the_next_keyframe() {
    if skip() {
        return;
    }
    let (config, frames) = source();
    let cfg = LadderConfig {
        rungs: vec![Rung::new("360p", 360, 700)],
        max_input_backlog: Duration::ZERO,
        overload: None,
        ..LadderConfig::default()
    };
    let ladder = Ladder::start(&cfg, &config).expect("ladder starts");
    let mut results = Vec::new();
    for f in &frames {
        results.push(ladder.push(f));
    }
    // Pushed in microseconds, decoded in milliseconds: the zero backlog overflows.
    let full = results.iter().position(|r| *r == Err(PushError::Full));
    assert!(full.is_some(), "{results:?}");
    let stats = ladder.stats();
    if let Some(i) = full {
        // After an overflow only a keyframe is taken again.
        let next_ok = results[i..].iter().position(|r| r.is_ok()).map(|j| i + j);
        if let Some(j) = next_ok {
            assert!(frames[j].keyframe);
            assert!(
                results[i + 1..j]
                    .iter()
                    .all(|r| matches!(r, Err(PushError::AwaitingKeyframe) | Err(PushError::Full)))
            );
        }
        assert!(stats.dropped_full >= 1);
    }
    ladder.finish();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut out = Vec::new();
    loop {
        match ladder.try_recv() {
            Some(LadderOutput::Finished) => break,
            Some(LadderOutput::Frame { frame, .. }) => out.push(frame),
            Some(_) => {}
            None if Instant::now() > deadline => panic!("no Finished"),
            None => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    assert!(!out.is_empty());
    assert!(keys(&out).is_subset(&keys(&frames)));
    assert!(out[0].keyframe);
    assert_eq!(ladder.push(&frames[0]), Err(PushError::Closed));
}

#[test]
fn b_frames_take_the_encoder_dts() {
    if skip() {
        return;
    }
    let (config, frames) = source();
    let cfg = LadderConfig {
        rungs: vec![Rung::new("360p", 360, 700)],
        tuning: weir_codec::EncoderTuning {
            bframes: 2,
            zerolatency: false,
        },
        max_input_backlog: Duration::from_secs(60),
        max_output_queue: 4096,
        overload: None,
        ..LadderConfig::default()
    };
    let ladder = Ladder::start(&cfg, &config).expect("ladder starts");
    let (outs, other) = run(&ladder, &frames);
    assert!(other.is_empty(), "{other:?}");
    let out = &outs[0];
    assert!(
        out.frames.iter().any(|f| f.pts != f.dts),
        "output has B-frames"
    );
    check_encoded_rung(out, &frames, 640, 360);
}

#[test]
fn overload_drops_the_top_rungs_and_every_rung_stays_decodable() {
    if skip() {
        return;
    }
    let (config, frames) = source();
    let cfg = LadderConfig {
        rungs: default_ladder(),
        max_input_backlog: Duration::from_secs(60),
        max_output_queue: 4096,
        // Pushed unpaced, the ladder is seconds "behind live" at once.
        overload: Some(weir_codec::OverloadConfig {
            high_lag: Duration::from_millis(300),
            sustain: Duration::ZERO,
            drop_cooldown: Duration::from_millis(100),
            ..weir_codec::OverloadConfig::default()
        }),
        ..LadderConfig::default()
    };
    let ladder = Ladder::start(&cfg, &config).expect("ladder starts");
    let (outs, other) = run(&ladder, &frames);
    assert!(
        other
            .iter()
            .any(|o| matches!(o, LadderOutput::Overloaded { .. })),
        "{other:?}"
    );
    assert!(
        outs[0].frames.len() < frames.len(),
        "the top rung was dropped"
    );
    assert_eq!(
        outs[2].frames.len(),
        frames.len(),
        "the lowest rung always stays"
    );
    for out in &outs {
        if out.frames.is_empty() {
            continue;
        }
        assert!(out.frames[0].keyframe);
        assert!(keys(&out.frames).is_subset(&keys(&frames)));
        let (n, _, _) = decode(&out.configs[0], &out.frames);
        assert_eq!(n, out.frames.len());
    }
    assert!(ladder.stats().dropped_rungs >= 1);
}

/// Per-title mode: a still picture gets the floor of the table, noise its ceiling, and
/// the encoder really changes its rate while playing (the noisy rung's output after the
/// change is well above the table's bitrate).
#[test]
fn per_title_follows_the_content() {
    if skip() {
        return;
    }
    let per_title = PerTitleConfig {
        window: Duration::from_secs(2),
        ..PerTitleConfig::default()
    };
    let config = LadderConfig {
        rungs: vec![Rung::new("360p", 360, 500)],
        overload: None,
        per_title: Some(per_title),
        max_input_backlog: Duration::from_secs(60),
        ..LadderConfig::default()
    };
    let mut seen = Vec::new();
    // `black`: a still picture costs the probe almost nothing (a gradient such as
    // `colors` still costs ~0.03 bit/pixel, which lands just above the floor, and
    // videotestsrc `smpte` has a corner of snow).
    for pattern in ["black", "snow"] {
        let spec = SynthSpec {
            pattern: pattern.into(),
            frames: 180,
            bframes: 0,
            ..SynthSpec::default()
        };
        let (source, frames) = synth_h264(&spec).expect("synthetic source");
        let ladder = Ladder::start(&config, &source).expect("ladder");
        let (outs, other) = run_at(&ladder, &frames, Some(2.0));
        let changes: Vec<(Vec<u32>, u32)> = other
            .into_iter()
            .filter_map(|o| match o {
                LadderOutput::Bitrates {
                    kbps,
                    complexity_millibits,
                } => Some((kbps, complexity_millibits)),
                _ => None,
            })
            .collect();
        assert_eq!(changes.len(), 1, "{pattern}: one change, {changes:?}");
        // The rung's output over the last second (media time).
        let last = outs[0].frames.iter().map(|f| f.pts).max().expect("frames");
        let bytes: usize = outs[0]
            .frames
            .iter()
            .filter(|f| f.pts > last - 90_000)
            .map(|f| f.data.len())
            .sum();
        seen.push((pattern, changes[0].clone(), bytes * 8 / 1000));
    }
    let (_, (still, still_c), _) = &seen[0];
    let (_, (noise, noise_c), noise_kbits) = &seen[1];
    assert!(still_c < noise_c, "{seen:?}");
    assert_eq!(still[0], 150, "floor: 0.3 × 500 ({seen:?})");
    assert_eq!(noise[0], 750, "ceiling: 1.5 × 500 ({seen:?})");
    assert!(
        *noise_kbits > 600,
        "the encoder took the new rate: {noise_kbits} kbit in the last second ({seen:?})"
    );
}
