//! The studio compositor with real GStreamer: synthetic participants in, the program
//! decoded again and its tiles checked by colour.

use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use weir_codec::synth::{SynthSpec, synth_h264};
use weir_codec::{ComposeConfig, ComposeOutput, Compositor, cpu_ladder_available};
use weir_media::{Frame, TrackConfig, TrackKind, VideoConfig};
use weir_studio::{Canvas, InputState, Layout, Participant, Program, Scene, Stills, under};

const W: u32 = 320;
const H: u32 = 180;

fn available() -> bool {
    let ok = cpu_ladder_available().is_ok()
        && [
            "compositor",
            "audiomixer",
            "textoverlay",
            "avenc_aac",
            "videocrop",
        ]
        .iter()
        .all(|e| gst::ElementFactory::find(e).is_some());
    assert!(
        ok || std::env::var_os("WEIR_ALLOW_NO_GSTREAMER").is_some(),
        "GStreamer elements missing (cargo xtask setup)"
    );
    ok
}

fn source(pattern: &str) -> (VideoConfig, Vec<Frame>) {
    let spec = SynthSpec {
        width: 320,
        height: 240,
        fps: 15,
        frames: 45,
        gop: 15,
        bframes: 0,
        pattern: pattern.into(),
        ..SynthSpec::default()
    };
    synth_h264(&spec).expect("synthetic source")
}

fn guest(id: &str) -> Participant {
    Participant {
        id: id.into(),
        name: id.into(),
        stream: id.into(),
        audio: true,
        video: true,
        gain: 1.0,
    }
}

/// Decodes program frames to RGB; returns the last picture.
fn last_picture(config: &VideoConfig, frames: &[Frame]) -> Vec<u8> {
    let pipeline = gst::parse::launch(&format!(
        "appsrc name=src ! h264parse ! avdec_h264 ! videoconvert ! video/x-raw,format=RGB,width={W},height={H} ! appsink name=sink sync=false"
    ))
    .expect("decoder")
    .downcast::<gst::Pipeline>()
    .expect("pipeline");
    let src = pipeline
        .by_name("src")
        .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
        .expect("src");
    let sink = pipeline
        .by_name("sink")
        .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
        .expect("sink");
    src.set_caps(Some(
        &gst::Caps::builder("video/x-h264")
            .field("stream-format", "avc")
            .field("alignment", "au")
            .field("codec_data", gst::Buffer::from_slice(config.record.clone()))
            .build(),
    ));
    pipeline.set_state(gst::State::Playing).expect("play");
    for f in frames {
        let _ = src.push_buffer(gst::Buffer::from_slice(f.data.clone()));
    }
    let _ = src.end_of_stream();
    let mut last = Vec::new();
    while let Some(s) = sink.try_pull_sample(gst::ClockTime::from_seconds(5)) {
        if let Some(b) = s.buffer() {
            last = b.map_readable().expect("map").to_vec();
        }
    }
    let _ = pipeline.set_state(gst::State::Null);
    last
}

fn rgb_at(pic: &[u8], x: u32, y: u32) -> [u8; 3] {
    let i = ((y * W + x) * 3) as usize;
    [pic[i], pic[i + 1], pic[i + 2]]
}

struct Out {
    video: Option<VideoConfig>,
    frames: Vec<Frame>,
    audio_frames: usize,
}

fn drain(c: &Compositor, out: &mut Out) {
    while let Some(o) = c.try_recv() {
        match o {
            ComposeOutput::Config(_, TrackConfig::Video(v)) => out.video = Some(v),
            ComposeOutput::Config(..) => {}
            ComposeOutput::Frame(f) if f.track.kind == TrackKind::Video => out.frames.push(f),
            ComposeOutput::Frame(_) => out.audio_frames += 1,
            ComposeOutput::Failed(e) => panic!("compositor failed: {e}"),
        }
    }
}

#[test]
fn two_participants_in_a_grid_then_one_leaves() {
    if !available() {
        return;
    }
    let config = ComposeConfig {
        width: W,
        height: H,
        fps: 15,
        video_kbps: 800,
        latency: Duration::from_millis(150),
        ..ComposeConfig::default()
    };
    let c = Compositor::start(&config).expect("compositor");
    let canvas = Canvas {
        width: W,
        height: H,
    };
    let mut program = Program::new(canvas);
    let t0 = Instant::now();
    program.set_scene(
        t0,
        Scene {
            layout: Layout::Grid,
            participants: vec![guest("red"), guest("blue")],
            ..Scene::default()
        },
    );
    c.set_layers(
        &under(canvas, &Stills::default(), &program.plan(t0).placeholders),
        None,
    );
    let (red_cfg, red) = source("red");
    let (blue_cfg, blue) = source("blue");
    c.set_tracks("red", Some(&TrackConfig::Video(red_cfg)), None)
        .expect("red tracks");
    c.set_tracks("blue", Some(&TrackConfig::Video(blue_cfg)), None)
        .expect("blue tracks");
    for id in ["red", "blue"] {
        program.set_input(
            id,
            InputState {
                live: true,
                width: 320,
                height: 240,
            },
        );
    }
    c.apply(&program.plan(t0));

    let mut out = Out {
        video: None,
        frames: Vec::new(),
        audio_frames: 0,
    };
    let start = Instant::now();
    for i in 0..red.len() {
        c.push("red", &red[i]).expect("push red");
        c.push("blue", &blue[i]).expect("push blue");
        std::thread::sleep(
            (start + Duration::from_millis(66 * (i as u64 + 1)))
                .saturating_duration_since(Instant::now()),
        );
        drain(&c, &mut out);
    }
    // The encoder may start late on a loaded machine: wait for its output, not a clock.
    let deadline = Instant::now() + Duration::from_secs(20);
    while (out.video.is_none() || out.frames.len() < 20) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        drain(&c, &mut out);
    }
    let config_v = out.video.clone().expect("program video config");
    assert_eq!((config_v.width, config_v.height), (W as u16, H as u16));
    assert!(
        out.frames.len() >= 20,
        "{} program frames",
        out.frames.len()
    );
    // A steady frame rate: every frame 1/15 s after the previous one, whatever the
    // inputs' own cadence (they were pushed with jitter from this thread).
    let step = i64::from(weir_media::TIMESCALE) / 15;
    let steps: Vec<i64> = out.frames.windows(2).map(|w| w[1].dts - w[0].dts).collect();
    // (A loaded machine may make the live mixer skip a slot; it never bunches frames.)
    let exact = steps
        .iter()
        .filter(|d| (*d - step).abs() <= step / 10)
        .count();
    assert!(
        steps.iter().all(|d| *d >= step - step / 10) && exact * 10 >= steps.len() * 9,
        "frame steps {steps:?} (expected {step})"
    );
    assert!(out.audio_frames > 0, "the silent mix still produces audio");
    assert!(
        out.frames.windows(2).all(|w| w[1].dts > w[0].dts),
        "dts increase"
    );
    assert!(out.frames[0].keyframe);

    let pic = last_picture(&config_v, &out.frames);
    assert_eq!(pic.len(), (W * H * 3) as usize);
    let tiles = weir_studio::layout(Layout::Grid, 2, None, canvas);
    let centre = |i: usize| {
        let r = tiles[i].rect;
        rgb_at(&pic, (r.x + r.w / 2) as u32, (r.y + r.h / 2) as u32)
    };
    let (l, r) = (centre(0), centre(1));
    assert!(l[0] > 180 && l[2] < 80, "left tile is red: {l:?}");
    assert!(r[2] > 180 && r[0] < 80, "right tile is blue: {r:?}");
    let bg = rgb_at(&pic, W / 2, 4);
    assert!(bg.iter().all(|&v| v < 60), "backdrop between tiles: {bg:?}");

    // Blue leaves: the program goes on and blue's tile is gone.
    c.remove("blue");
    let n = out.frames.len();
    std::thread::sleep(Duration::from_millis(800));
    drain(&c, &mut out);
    assert!(
        out.frames.len() > n + 5,
        "the program goes on after a participant leaves"
    );
    c.stop();
}
