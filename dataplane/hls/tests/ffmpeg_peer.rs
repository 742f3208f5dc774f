//! Real peer: ffmpeg's HLS demuxer plays the packaged stream of real H.264 + AAC frames
//! from files (playlist, init segment, segments), and ffprobe decodes every part.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use weir_cmaf::test_support::{encode_fixture, tool_available};
use weir_hls::{LiveStream, ObjectAnswer, PlaylistQuery};
use weir_media::TrackId;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("weir-hls-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Writes the media playlist and every object it names into `dir`.
fn write_out(s: &LiveStream, dir: &Path) -> String {
    let text = playlist_for(s, PlaylistQuery::default());
    std::fs::write(dir.join("media.m3u8"), &text).expect("write playlist");
    for line in text.lines() {
        let name = if let Some(uri) = line.strip_prefix("#EXT-X-MAP:") {
            attr(&format!("X:{uri}"), "URI").expect("uri").to_owned()
        } else if line.starts_with("#EXT-X-PART:") {
            attr(line, "URI").expect("uri").to_owned()
        } else if !line.starts_with('#') && !line.is_empty() {
            line.to_owned()
        } else {
            continue;
        };
        match s.object(&name) {
            ObjectAnswer::Ready(bytes, _) => {
                std::fs::write(dir.join(&name), bytes.to_bytes()).expect("write")
            }
            other => panic!("{name}: {other:?}"),
        }
    }
    text
}

/// `codec_name,nb_read_frames` per stream.
fn probe(args: &[&str], input: &Path) -> Vec<String> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-show_entries"])
        .arg("stream=codec_name,nb_read_frames")
        .args(["-of", "csv=p=0"])
        .args(args)
        .arg(input)
        .output()
        .expect("ffprobe runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "ffprobe: {stderr}"
    );
    // An HLS input lists its streams twice (in its program and on their own).
    let mut lines: Vec<String> = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        if !line.is_empty() && !lines.iter().any(|l| l == line) {
            lines.push(line.to_owned());
        }
    }
    lines
}

#[test]
fn ffmpeg_plays_the_packaged_stream() {
    assert!(
        tool_available("ffmpeg") && tool_available("ffprobe"),
        "ffmpeg/ffprobe not installed: run `cargo xtask setup --test`"
    );
    let dir = temp_dir("peer");
    // 5 s at 30 fps with a key frame every second: 1 s segments, 200 ms parts.
    let fx = encode_fixture(&dir.join("src"), 5, 30).expect("ffmpeg fixture");
    let video_frames = fx
        .frames
        .iter()
        .filter(|f| f.track == TrackId::VIDEO)
        .count();
    let audio_frames = fx
        .frames
        .iter()
        .filter(|f| f.track == TrackId::AUDIO)
        .count();
    assert_eq!(video_frames, 150);

    let mut s = LiveStream::new(config(200, 1000, 20, 20));
    s.set_tracks(Some(fx.video.clone()), Some(fx.audio.clone()));
    for f in fx.frames.clone() {
        let wall = EPOCH_MS + (f.dts / 90) as u64;
        s.push_frame(wall, f);
    }
    s.end();
    let out = dir.join("out");
    std::fs::create_dir_all(&out).expect("mkdir");
    let text = write_out(&s, &out);
    assert_eq!(segments(&text).len(), 5);

    // ffmpeg's HLS demuxer reads the whole (ended) playlist without complaint.
    let run = Command::new("ffmpeg")
        .args(["-v", "error", "-nostdin", "-i"])
        .arg(out.join("media.m3u8"))
        .args(["-f", "null", "-"])
        .output()
        .expect("ffmpeg runs");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        run.status.success() && stderr.trim().is_empty(),
        "ffmpeg: {stderr}"
    );

    // Every frame comes out of the playlist.
    let streams = probe(&[], &out.join("media.m3u8"));
    assert_eq!(
        streams,
        [
            format!("h264,{video_frames}"),
            format!("aac,{audio_frames}")
        ]
    );

    // A part on its own (after the init segment) is decodable too: the first part of
    // segment 2 starts with a key frame and holds 6 video frames.
    let mut joined = std::fs::read(out.join("init-0.mp4")).expect("init");
    joined.extend_from_slice(&std::fs::read(out.join("part-2-0.m4s")).expect("part"));
    let single = out.join("single.mp4");
    std::fs::write(&single, joined).expect("write");
    let streams = probe(&[], &single);
    assert_eq!(streams[0], "h264,6");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn ffmpeg_decodes_across_a_video_stall() {
    assert!(
        tool_available("ffmpeg") && tool_available("ffprobe"),
        "ffmpeg/ffprobe not installed: run `cargo xtask setup --test`"
    );
    let dir = temp_dir("stall");
    // 14 s with a key frame every second: A/V for 4 s, audio only for 5 s, then A/V again
    // from the key frame at 9 s.
    let fx = encode_fixture(&dir.join("src"), 14, 30).expect("ffmpeg fixture");
    let mut s = LiveStream::new(config(200, 2000, 20, 20));
    s.set_tracks(Some(fx.video.clone()), Some(fx.audio.clone()));
    let (mut video_in, mut audio_in, mut stalled) = (0, 0, false);
    for f in fx.frames.clone() {
        let t = f.dts - 90_000;
        let video = f.track == TrackId::VIDEO;
        if video && (4 * 90_000..9 * 90_000).contains(&t) {
            continue;
        }
        if video {
            video_in += 1;
        } else {
            audio_in += 1;
        }
        let wall = EPOCH_MS + (f.dts / 90) as u64;
        s.push_frame(wall, f);
        stalled |= s.snapshot().video_stalled();
    }
    assert!(stalled);
    assert!(!s.snapshot().video_stalled());
    assert_eq!(video_in, 120 + 150);
    s.end();
    let out = dir.join("out");
    std::fs::create_dir_all(&out).expect("mkdir");
    let text = write_out(&s, &out);

    // init + every segment, one after another, decodes without a single error.
    let mut joined = std::fs::read(out.join("init-0.mp4")).expect("init");
    for (_, uri) in segments(&text) {
        joined.extend_from_slice(&std::fs::read(out.join(&uri)).expect("segment"));
    }
    let file = out.join("joined.mp4");
    std::fs::write(&file, joined).expect("write");
    for input in [&file, &out.join("media.m3u8")] {
        let run = Command::new("ffmpeg")
            .args(["-v", "error", "-nostdin", "-i"])
            .arg(input)
            .args(["-f", "null", "-"])
            .output()
            .expect("ffmpeg runs");
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(
            run.status.success() && stderr.trim().is_empty(),
            "ffmpeg on {}: {stderr}",
            input.display()
        );
    }
    // Every frame that went in comes out.
    assert_eq!(
        probe(&[], &file),
        [format!("h264,{video_in}"), format!("aac,{audio_in}")]
    );
    let _ = std::fs::remove_dir_all(&dir);
}
