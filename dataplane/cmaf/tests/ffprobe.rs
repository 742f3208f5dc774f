//! Real peer: ffprobe reads an init segment plus fragments of real H.264 + AAC frames.

use std::path::PathBuf;
use std::process::Command;

use weir_cmaf::test_support::{encode_fixture, tool_available};
use weir_cmaf::{FragmentTrack, InitTrack, Sample, fragment, init_segment};
use weir_media::{Frame, TrackConfig, TrackId};

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("weir-cmaf-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Samples of one track with durations from dts differences (the last repeats the previous).
fn samples(frames: &[&Frame], scale: impl Fn(i64) -> i64) -> Vec<Sample> {
    let mut out = Vec::with_capacity(frames.len());
    for (i, f) in frames.iter().enumerate() {
        let next = frames.get(i + 1).map(|n| scale(n.dts));
        let duration = match next {
            Some(n) => n - scale(f.dts),
            None => out.last().map_or(1024, |s: &Sample| i64::from(s.duration)),
        };
        out.push(Sample {
            duration: duration as u32,
            composition_offset: (scale(f.pts) - scale(f.dts)) as i32,
            keyframe: f.keyframe,
            data: f.data.clone(),
        });
    }
    out
}

#[test]
fn ffprobe_reads_init_and_fragments() {
    assert!(
        tool_available("ffmpeg") && tool_available("ffprobe"),
        "ffmpeg/ffprobe not installed: run `cargo xtask setup --test`"
    );
    let dir = temp_dir("probe");
    let fx = encode_fixture(&dir, 3, 30).expect("ffmpeg fixture");
    let video: Vec<&Frame> = fx
        .frames
        .iter()
        .filter(|f| f.track == TrackId::VIDEO)
        .collect();
    let audio: Vec<&Frame> = fx
        .frames
        .iter()
        .filter(|f| f.track == TrackId::AUDIO)
        .collect();
    assert_eq!(video.len(), 90);
    assert!(video[0].keyframe && video[30].keyframe && !video[1].keyframe);

    let mut out = init_segment(&[
        InitTrack {
            track_id: 1,
            config: TrackConfig::Video(fx.video.clone()),
        },
        InitTrack {
            track_id: 2,
            config: TrackConfig::Audio(fx.audio.clone()),
        },
    ])
    .to_vec();
    let vs = samples(&video, |t| t);
    let to_audio = |t: i64| t * 44_100 / 90_000;
    let as_ = samples(&audio, to_audio);
    // Fragments of 10 video frames (1/3 s), each with the audio samples of that span.
    let mut a_at = 0;
    for (n, chunk) in vs.chunks(10).enumerate() {
        let end_dts = video.get((n + 1) * 10).map_or(i64::MAX, |f| f.dts);
        let a_end = audio[a_at..]
            .iter()
            .position(|f| f.dts >= end_dts)
            .map_or(audio.len(), |p| a_at + p);
        let frag = fragment(
            n as u32 + 1,
            &[
                FragmentTrack {
                    track_id: 1,
                    base_decode_time: video[n * 10].dts as u64,
                    samples: chunk,
                },
                FragmentTrack {
                    track_id: 2,
                    base_decode_time: to_audio(audio[a_at].dts) as u64,
                    samples: &as_[a_at..a_end],
                },
            ],
        );
        out.extend_from_slice(&frag.to_bytes());
        a_at = a_end;
    }
    assert_eq!(a_at, audio.len());
    let file = dir.join("out.mp4");
    std::fs::write(&file, &out).expect("write");

    let probe = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-show_entries"])
        .arg("stream=codec_name,width,height,sample_rate,channels,nb_read_frames")
        .args(["-of", "compact=p=0:nk=0"])
        .arg(&file)
        .output()
        .expect("ffprobe runs");
    let stdout = String::from_utf8_lossy(&probe.stdout);
    let stderr = String::from_utf8_lossy(&probe.stderr);
    assert!(probe.status.success(), "ffprobe failed: {stderr}");
    assert!(
        stderr.trim().is_empty(),
        "ffprobe reported errors: {stderr}"
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(lines[0].contains("codec_name=h264"), "{stdout}");
    assert!(lines[0].contains("width=320|height=240"), "{stdout}");
    assert!(lines[0].contains("nb_read_frames=90"), "{stdout}");
    assert!(lines[1].contains("codec_name=aac"), "{stdout}");
    assert!(
        lines[1].contains("sample_rate=44100|channels=1"),
        "{stdout}"
    );
    assert!(
        lines[1].contains(&format!("nb_read_frames={}", audio.len())),
        "{stdout}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
