//! A/V sync of the studio's program, end to end: a guest publishes a flash and a beep
//! at the same instant every second (ffmpeg over RTMP, OBS-like x264 with B-frames); the
//! host goes live with an nginx-rtmp destination (Debian `libnginx-mod-rtmp`, started by
//! the test). The program is read back over LL-HLS and from the destination, and in both
//! the flash (the picture's mean luma) and the beep (the audio's RMS level) start within
//! 80 ms of each other.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use weir_e2e::graphql::{create_channel, gql_ok, register_and_login};
use weir_e2e::nginx_rtmp::RtmpServer;
use weir_e2e::{KillOnDrop, Node, NodeOptions, require, wait_until};

const PASSWORD: &str = "correct horse battery staple";
/// The bound the issue sets on the program's A/V offset.
const MAX_OFFSET: f64 = 0.080;

/// A guest whose picture flashes white and whose tone beeps for 100 ms every second.
fn flashing_guest(url: &str, seconds: u32) -> KillOnDrop {
    require("ffmpeg");
    let video = "color=c=black:size=320x180:rate=30,format=yuv420p,\
                 geq=lum='if(lt(mod(T\\,1)\\,0.1)\\,235\\,16)':cb=128:cr=128";
    let audio = "aevalsrc='if(lt(mod(t\\,1)\\,0.1)\\,0.5*sin(2*PI*1000*t)\\,0)':s=48000";
    let child = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-re"])
        .args(["-f", "lavfi", "-i", video, "-f", "lavfi", "-i", audio])
        .args(["-t", &seconds.to_string(), "-pix_fmt", "yuv420p"])
        .args([
            "-c:v", "libx264", "-preset", "veryfast", "-bf", "2", "-g", "60",
        ])
        .args(["-c:a", "aac", "-b:a", "96k", "-f", "flv", url])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ffmpeg");
    KillOnDrop(child)
}

/// The times (input timeline, seconds) at which `url`'s picture turns bright and its
/// audio turns loud, over `seconds` of it.
fn onsets(url: &str, live_edge: bool, seconds: u32) -> (Vec<f64>, Vec<f64>) {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-nostdin", "-loglevel", "info", "-copyts"]);
    if live_edge {
        cmd.args(["-live_start_index", "-1"]);
    }
    let graph = "[0:v]showinfo[v];[0:a]asetnsamples=n=240,astats=metadata=1:reset=1,\
                 ametadata=mode=print:key=lavfi.astats.Overall.RMS_level[a]";
    let out = cmd
        .args(["-i", url, "-t", &seconds.to_string()])
        .args(["-filter_complex", graph, "-map", "[v]", "-map", "[a]"])
        .args(["-f", "null", "-"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .output()
        .expect("ffmpeg");
    parse_onsets(&String::from_utf8_lossy(&out.stderr))
}

/// Rising edges of luma (showinfo's mean Y) and of audio level (astats RMS, dB).
fn parse_onsets(log: &str) -> (Vec<f64>, Vec<f64>) {
    let (mut video, mut audio) = (Vec::new(), Vec::new());
    let (mut bright, mut loud) = (true, true); // edges only after a dark/quiet start
    let mut audio_time = None;
    for line in log.lines() {
        if line.contains("Parsed_showinfo")
            && let (Some(t), Some(y)) = (field(line, "pts_time:"), mean_luma(line))
        {
            let now = y > 120.0;
            if now && !bright {
                video.push(t);
            }
            bright = now;
        } else if line.contains("Parsed_ametadata") {
            if let Some(t) = field(line, "pts_time:") {
                audio_time = Some(t);
            } else if let (Some(t), Some(db)) =
                (audio_time, line.split("RMS_level=").nth(1).map(str::trim))
            {
                let db: f64 = db.parse().unwrap_or(f64::NEG_INFINITY);
                let now = db > -30.0;
                if now && !loud {
                    audio.push(t);
                }
                loud = now;
            }
        }
    }
    (video, audio)
}

fn field(line: &str, name: &str) -> Option<f64> {
    line.split(name)
        .nth(1)?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn mean_luma(line: &str) -> Option<f64> {
    line.split("mean:[")
        .nth(1)?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The median offset of each flash to the nearest beep (positive: audio late).
fn av_offset(video: &[f64], audio: &[f64]) -> Option<(f64, usize)> {
    let mut offsets: Vec<f64> = video
        .iter()
        .filter_map(|v| {
            audio
                .iter()
                .map(|a| a - v)
                .filter(|d| d.abs() < 0.5)
                .min_by(|x, y| x.abs().total_cmp(&y.abs()))
        })
        .collect();
    if offsets.len() < 3 {
        return None;
    }
    offsets.sort_by(f64::total_cmp);
    Some((offsets[offsets.len() / 2], offsets.len()))
}

fn host_call(api: u16, token: &str, query: &str, vars: Value) -> Value {
    gql_ok(api, Some(token), query, vars)
}

#[test]
fn the_program_keeps_audio_and_video_in_sync_over_ll_hls_and_a_destination() {
    require("ffmpeg");
    let dest = RtmpServer::start();
    let node = Node::start_with(NodeOptions {
        extra_args: vec!["--relay-allow-internal".into(), "true".into()],
        ..NodeOptions::default()
    });
    assert!(
        node.wait_log("GraphQL API listening on", Duration::from_secs(20)),
        "no API"
    );
    let api = node.api_port;
    let host = register_and_login(api, "synchost", PASSWORD);
    let ht = host.access_token.as_str();
    let ch = create_channel(api, ht, "studio-sync");
    host_call(
        api,
        ht,
        "mutation($c: ID!, $i: DestinationInput!) { createDestination(channelId: $c, input: $i) { id } }",
        json!({ "c": ch, "i": { "name": "nginx", "platform": "rtmp", "url": dest.url(), "streamKey": "show" } }),
    );
    let d = host_call(
        api,
        ht,
        "mutation($c: ID!) { createStudioBroadcast(channelId: $c, input: { title: \"Sync\" }) { id programHlsPath } }",
        json!({ "c": ch }),
    );
    let b = d["createStudioBroadcast"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let program = node.http_url(
        d["createStudioBroadcast"]["programHlsPath"]
            .as_str()
            .expect("path"),
    );
    let inv = host_call(
        api,
        ht,
        "mutation($b: ID!) { inviteGuest(broadcastId: $b) { token } }",
        json!({ "b": b }),
    )["inviteGuest"]["token"]
        .as_str()
        .expect("token")
        .to_string();
    let g = gql_ok(
        api,
        None,
        "mutation($i: String!) { joinStudio(invitation: $i, displayName: \"Metronome\") { publishKey participant { id } } }",
        json!({ "i": inv }),
    )["joinStudio"]
        .clone();
    let _guest = flashing_guest(&node.rtmp_url(g["publishKey"].as_str().expect("key")), 120);
    host_call(
        api,
        ht,
        "mutation($p: ID!) { bringOnStage(participantId: $p) { id } }",
        json!({ "p": g["participant"]["id"] }),
    );
    host_call(
        api,
        ht,
        "mutation($b: ID!) { setLayout(broadcastId: $b, layout: SOLO, transitionMs: 0) { id } }",
        json!({ "b": b }),
    );

    // The program over LL-HLS, once the guest's flashes show in it.
    let mut hls = None;
    assert!(
        wait_until(Duration::from_secs(60), || {
            let (v, a) = onsets(&program, true, 6);
            hls = av_offset(&v, &a);
            hls.is_some()
        }),
        "no flash and beep pairs in the program; log:\n{}",
        node.log()
    );
    let (offset, pairs) = hls.expect("pairs");
    eprintln!(
        "program LL-HLS: A/V offset {:.0} ms over {pairs} flashes",
        offset * 1e3
    );
    assert!(
        offset.abs() < MAX_OFFSET,
        "program A/V offset {:.0} ms (audio late when positive)",
        offset * 1e3
    );

    // Live, and the destination gets the program in sync too.
    host_call(
        api,
        ht,
        "mutation($b: ID!) { goLive(broadcastId: $b) { status } }",
        json!({ "b": b }),
    );
    let mut relayed = None;
    assert!(
        wait_until(Duration::from_secs(60), || {
            let (v, a) = onsets(&dest.play_url("show"), false, 6);
            relayed = av_offset(&v, &a);
            relayed.is_some()
        }),
        "the destination never got the program; nginx:\n{}\nlog:\n{}",
        dest.error_log(),
        node.log()
    );
    let (offset, pairs) = relayed.expect("pairs");
    eprintln!(
        "nginx-rtmp destination: A/V offset {:.0} ms over {pairs} flashes",
        offset * 1e3
    );
    assert!(
        offset.abs() < MAX_OFFSET,
        "destination A/V offset {:.0} ms",
        offset * 1e3
    );
}

#[test]
fn onsets_are_the_rising_edges_of_luma_and_level() {
    let log = "\
[Parsed_showinfo_0 @ 0x1] n:   0 pts:      0 pts_time:0.000 fmt:yuv420p mean:[16 128 128] stdev:[0.0]
[Parsed_showinfo_0 @ 0x1] n:   1 pts:   3000 pts_time:1.000 fmt:yuv420p mean:[235 128 128] stdev:[0.0]
[Parsed_showinfo_0 @ 0x1] n:   2 pts:   6000 pts_time:1.033 fmt:yuv420p mean:[235 128 128] stdev:[0.0]
[Parsed_ametadata_3 @ 0x2] frame:0    pts:0       pts_time:0.98
[Parsed_ametadata_3 @ 0x2] lavfi.astats.Overall.RMS_level=-inf
[Parsed_ametadata_3 @ 0x2] frame:1    pts:240     pts_time:1.02
[Parsed_ametadata_3 @ 0x2] lavfi.astats.Overall.RMS_level=-9.1
";
    let (v, a) = parse_onsets(log);
    assert_eq!(v, vec![1.0]);
    assert_eq!(a, vec![1.02]);
    assert_eq!(
        av_offset(&v, &a),
        None,
        "fewer than three pairs say nothing"
    );
    let (o, n) = av_offset(&[1.0, 2.0, 3.0], &[1.02, 2.03, 3.01]).expect("pairs");
    assert_eq!(n, 3);
    assert!((o - 0.02).abs() < 1e-9);
}
