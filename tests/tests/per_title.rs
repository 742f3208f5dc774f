//! Per-title bitrates end to end: a node with `per_title = true` and one 360p rung of
//! 800 kbit/s. ffmpeg publishes a still test card on one channel and grainy moving
//! video on another (both 640x360, so the rung is encoded, not passed through). The
//! still card's rung is set to the floor (0.3 × 800 = 240 kbit/s), the grainy one's to
//! the ceiling (1.5 × 800 = 1200 kbit/s), seen in the node's metrics and logs; and the
//! grainy rendition's measured AVERAGE-BANDWIDTH in the multivariant playlist is above
//! what the table alone would give it, so the encoder really took the new rate.

use std::process::{Command, Stdio};
use std::time::Duration;

use weir_e2e::http::get;
use weir_e2e::{Node, NodeOptions, list_attr, metric, require, stream_infs, wait_until};

/// ffmpeg publishing `seconds` of lavfi `video` (640x360, 30 fps) with AAC to `url`.
fn publish(url: &str, video: &str, seconds: u32) -> std::process::Child {
    require("ffmpeg");
    Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-re"])
        .args(["-f", "lavfi", "-i", video])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", &seconds.to_string(), "-pix_fmt", "yuv420p"])
        .args(["-c:v", "libx264", "-preset", "superfast", "-bf", "2"])
        .args(["-g", "60", "-b:v", "3000k", "-c:a", "aac", "-ac", "2"])
        .args(["-b:a", "96k", "-f", "flv", url])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ffmpeg")
}

#[test]
fn rung_bitrates_follow_the_content() {
    let config = weir_e2e::TempDir::new("per-title-config");
    let toml = config.0.join("weir.toml");
    std::fs::write(
        &toml,
        "[node.ladder]\nenabled = true\npassthrough_top = false\nper_title = true\n\
         shed_rungs_when_behind = false\n\
         [[node.ladder.rungs]]\nname = \"360p\"\nheight = 360\nvideo_kbps = 800\n",
    )
    .expect("config");
    let node = Node::start_with(NodeOptions {
        extra_args: vec!["--config".into(), toml.display().to_string()],
        ..NodeOptions::default()
    });
    assert!(
        node.log().contains("per-title bitrates"),
        "startup line: {}",
        node.log()
    );
    let rung_kbps = || metric(node.http_port, "weir_ladder_rung_kbps", &[("rung", "360p")]);

    // A still test card: the floor.
    let (_, still_key) = node.issue_key("still");
    let mut still = publish(
        &node.rtmp_url(&still_key),
        "smptebars=size=640x360:rate=30",
        14,
    );
    let floor = wait_until(Duration::from_secs(25), || rung_kbps() == Some(240.0));
    let _ = still.wait();
    assert!(
        floor,
        "still picture: rung at {:?} kbit/s, not 240\n{}",
        rung_kbps(),
        node.log()
    );

    // Grain on a moving pattern: the ceiling, and more bits than the table's 800k.
    let (_, grain_key) = node.issue_key("grain");
    let mut grain = publish(
        &node.rtmp_url(&grain_key),
        "testsrc2=size=640x360:rate=30,noise=alls=40:allf=t",
        20,
    );
    let ceiling = wait_until(Duration::from_secs(25), || rung_kbps() == Some(1200.0));
    assert!(
        ceiling,
        "grainy picture: rung at {:?} kbit/s, not 1200\n{}",
        rung_kbps(),
        node.log()
    );
    // Measured over segments encoded after the change (the window moves on).
    let mut mv = String::new();
    let above_table = wait_until(Duration::from_secs(15), || {
        mv = get(node.http_port, "/live/grain/index.m3u8").map_or(String::new(), |r| r.text());
        stream_infs(&mv).first().is_some_and(|(a, _)| {
            list_attr(a, "AVERAGE-BANDWIDTH")
                .and_then(|v| v.parse::<u64>().ok())
                .is_some_and(|b| b > 1_050_000)
        })
    });
    let _ = grain.kill();
    let _ = grain.wait();
    assert!(
        above_table,
        "the grainy rendition did not get more than the table's 800k + audio:\n{mv}\n{}",
        node.log()
    );
    assert!(
        node.log()
            .contains("per-title: rung bitrates follow the content"),
        "{}",
        node.log()
    );
}
