//! The studio's composed program against the real `weir serve`: two guests publish with
//! their participant keys (ffmpeg over RTMP: a red picture with a 440 Hz tone, a blue one
//! with 1000 Hz), the host brings them on stage and switches grid → spotlight; the
//! program is read back over LL-HLS with ffmpeg: each grid tile shows its guest's colour,
//! the spotlight fills the picture with the chosen guest, both tones are in the mix and a
//! muted guest's is not. `goLive` then forwards the program to the channel (its LL-HLS
//! plays), and `endBroadcast` ends it.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use weir_e2e::graphql::{create_channel, gql_ok, register_and_login};
use weir_e2e::http::get;
use weir_e2e::studio::{H, W, frame, is_blue, is_red, mean, raw, until_frame};
use weir_e2e::{KillOnDrop, Node, require, variant_uri, wait_until};

const PASSWORD: &str = "correct horse battery staple";
/// ffmpeg publishing a flat `colour` picture and a `tone` Hz sine over RTMP, OBS-like
/// x264 (B-frames, 2 s GOP), for `seconds`.
fn guest(url: &str, colour: &str, tone: u32, seconds: u32) -> KillOnDrop {
    require("ffmpeg");
    let video = format!("color=c={colour}:size=640x360:rate=30");
    let audio = format!("sine=frequency={tone}:sample_rate=48000");
    let child = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-re"])
        .args(["-f", "lavfi", "-i", &video, "-f", "lavfi", "-i", &audio])
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

/// Two seconds of the program's audio (mono, 48 kHz).
fn audio(url: &str) -> Vec<f32> {
    raw(Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-loglevel", "error"])
        .args(["-live_start_index", "-1", "-i", url, "-vn", "-t", "2"])
        .args(["-ac", "1", "-ar", "48000", "-f", "f32le", "-"]))
    .unwrap_or_default()
    .chunks_exact(4)
    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    .collect()
}

/// The power of `hz` in `samples` relative to their total power (Goertzel).
fn tone_share(samples: &[f32], hz: f64) -> f64 {
    let w = 2.0 * std::f64::consts::PI * hz / 48_000.0;
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0f64, 0f64);
    let mut total = 0f64;
    for &x in samples {
        let x = f64::from(x);
        total += x * x;
        let s = x + coeff * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    if total == 0.0 {
        0.0
    } else {
        // A pure tone of the whole window scores about 0.5 (N/2 normalisation).
        power / (total * samples.len() as f64 / 2.0)
    }
}

fn studio(api: u16, token: &str, query: &str, vars: Value) -> Value {
    gql_ok(api, Some(token), query, vars)
}

#[test]
fn studio_program_composes_guests_and_goes_live() {
    let node = Node::start();
    assert!(
        node.wait_log("GraphQL API listening on", Duration::from_secs(20)),
        "no API"
    );
    let api = node.api_port;
    let host = register_and_login(api, "programhost", PASSWORD);
    let ht = host.access_token.as_str();
    let ch = create_channel(api, ht, "studio-program");
    let d = studio(
        api,
        ht,
        "mutation($c: ID!) { createStudioBroadcast(channelId: $c, input: { title: \"Show\" }) { id programHlsPath } }",
        json!({ "c": ch }),
    );
    let b = d["createStudioBroadcast"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let program = node.http_url(
        d["createStudioBroadcast"]["programHlsPath"]
            .as_str()
            .expect("programHlsPath"),
    );

    // Two guests join with invitations and publish with their own keys.
    let mut guests = Vec::new();
    for (name, colour, tone) in [("Red", "red", 440), ("Blue", "blue", 1000)] {
        let inv = studio(
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
            "mutation($i: String!, $n: String!) { joinStudio(invitation: $i, displayName: $n) { publishKey participant { id } } }",
            json!({ "i": inv, "n": name }),
        )["joinStudio"]
            .clone();
        let key = g["publishKey"].as_str().expect("key").to_string();
        let pid = g["participant"]["id"].as_str().expect("id").to_string();
        let publisher = guest(&node.rtmp_url(&key), colour, tone, 90);
        guests.push((pid, publisher));
    }
    let (red, blue) = (guests[0].0.clone(), guests[1].0.clone());
    for (pid, _) in &guests {
        studio(
            api,
            ht,
            "mutation($p: ID!) { bringOnStage(participantId: $p) { id } }",
            json!({ "p": pid }),
        );
    }
    studio(
        api,
        ht,
        "mutation($b: ID!) { setLayout(broadcastId: $b, layout: GRID, transitionMs: 0) { id } }",
        json!({ "b": b }),
    );

    // Grid of two: red on the left, blue on the right (in join order).
    let grid = until_frame(&program, Duration::from_secs(40), |f| {
        is_red(mean(f, 4, W / 2 - 4, H / 2 - 4, H / 2 + 4))
            && is_blue(mean(f, W / 2 + 4, W - 4, H / 2 - 4, H / 2 + 4))
    });
    assert!(
        grid.is_some(),
        "the program never showed red | blue; last frame centre colours: {:?}; log:\n{}",
        frame(&program).map(|f| (
            mean(&f, 4, W / 2 - 4, H / 2 - 4, H / 2 + 4),
            mean(&f, W / 2 + 4, W - 4, H / 2 - 4, H / 2 + 4)
        )),
        node.log()
    );

    // Both tones are in the mix.
    let pcm = audio(&program);
    assert!(
        pcm.len() > 48_000,
        "no program audio ({} samples)",
        pcm.len()
    );
    let (a, c) = (tone_share(&pcm, 440.0), tone_share(&pcm, 1000.0));
    assert!(a > 0.1 && c > 0.1, "tones 440 Hz {a:.3}, 1000 Hz {c:.3}");

    // Spotlight on blue: the middle of the picture is blue.
    studio(
        api,
        ht,
        "mutation($b: ID!, $p: ID!) { setLayout(broadcastId: $b, layout: SPOTLIGHT, spotlightParticipantId: $p, transitionMs: 300) { id } }",
        json!({ "b": b, "p": blue }),
    );
    let spot = until_frame(&program, Duration::from_secs(15), |f| {
        is_blue(mean(f, W / 3, W / 2, H / 3, 2 * H / 3))
    });
    assert!(spot.is_some(), "the spotlight never showed blue");

    // Muting red takes its tone out of the mix.
    studio(
        api,
        ht,
        "mutation($p: ID!) { setParticipantMedia(participantId: $p, audioEnabled: false) { audioEnabled } }",
        json!({ "p": red }),
    );
    assert!(
        wait_until(Duration::from_secs(15), || {
            let pcm = audio(&program);
            pcm.len() > 48_000 && tone_share(&pcm, 440.0) < 0.02 && tone_share(&pcm, 1000.0) > 0.1
        }),
        "the muted guest's tone stayed in the mix"
    );

    // Go live: the channel plays the program.
    studio(
        api,
        ht,
        "mutation($b: ID!) { goLive(broadcastId: $b) { status } }",
        json!({ "b": b }),
    );
    let live = "/live/studio-program/index.m3u8";
    assert!(
        wait_until(Duration::from_secs(30), || get(node.http_port, live)
            .map(|r| r.status == 200 && r.text().contains("#EXT-X-STREAM-INF"))
            .unwrap_or(false)),
        "the channel never went live: {:?}; log:\n{}",
        get(node.http_port, live).map(|r| (r.status, r.text())),
        node.log()
    );
    let channel = node.http_url(live);
    assert!(
        until_frame(&channel, Duration::from_secs(20), |f| is_blue(mean(
            f,
            W / 3,
            W / 2,
            H / 3,
            2 * H / 3
        )))
        .is_some(),
        "the channel does not show the program"
    );

    // End: the channel stops, and the guests' keys are refused.
    let d = studio(
        api,
        ht,
        "mutation($b: ID!) { endBroadcast(broadcastId: $b) { status } }",
        json!({ "b": b }),
    );
    assert_eq!(d["endBroadcast"]["status"], "ENDED");
    let media = get(node.http_port, live)
        .ok()
        .and_then(|r| variant_uri(&r.text()))
        .map(|uri| format!("/live/studio-program/{uri}"))
        .expect("a media playlist");
    assert!(
        wait_until(Duration::from_secs(20), || {
            get(node.http_port, &media)
                .map(|r| r.status == 404 || r.text().contains("#EXT-X-ENDLIST"))
                .unwrap_or(true)
        }),
        "the channel kept playing after the end"
    );
    drop(guests);
}
