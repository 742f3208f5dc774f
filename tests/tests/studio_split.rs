//! The studio in a split deployment: `weir controlplane` on etcd directs the compositor
//! of a `weir dataplane` over the node's studio listener. A guest joins over the control
//! plane's GraphQL and publishes (ffmpeg over RTMP) to the node with its key; on stage in
//! a solo layout, the node's program shows it; `goLive` puts the program on the channel
//! (the node authorises the minted key with the control plane), `endBroadcast` ends it.
//! A studio call without the node token is refused by the node.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use weir_e2e::cluster::{ControlPlane, DataPlane, Secrets};
use weir_e2e::etcd::Etcd;
use weir_e2e::graphql::{create_channel, gql_ok, register_and_login};
use weir_e2e::http::post_json;
use weir_e2e::{KillOnDrop, require, wait_until};

const PASSWORD: &str = "correct horse battery staple";

/// The mean colour of a frame of `url`'s live edge, scaled to 8×8.
fn mean_colour(url: &str) -> Option<[f64; 3]> {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-loglevel", "error"])
        .args(["-live_start_index", "-1", "-i", url, "-vf", "scale=8:8"])
        .args(["-frames:v", "1", "-pix_fmt", "rgb24", "-f", "rawvideo", "-"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() || out.stdout.len() != 8 * 8 * 3 {
        return None;
    }
    let mut sum = [0f64; 3];
    for px in out.stdout.chunks_exact(3) {
        for c in 0..3 {
            sum[c] += f64::from(px[c]);
        }
    }
    Some(sum.map(|s| s / 64.0))
}

fn is_red(c: [f64; 3]) -> bool {
    c[0] > 150.0 && c[1] < 80.0 && c[2] < 80.0
}

#[test]
fn the_control_plane_directs_a_data_plane_nodes_compositor() {
    require("ffmpeg");
    let etcd = Etcd::start();
    let secrets = Secrets::generate();
    let cp = ControlPlane::start(&[etcd.url()], &secrets, &[]);
    let mut dp = DataPlane::start(&cp.url(), "studio-node", &secrets, &[]);
    assert!(
        dp.proc
            .wait_log("registered with the control plane", Duration::from_secs(15)),
        "the node did not register"
    );
    let api = cp.api_port;
    let host = register_and_login(api, "splithost", PASSWORD);
    let ht = host.access_token.as_str();
    let ch = create_channel(api, ht, "split-show");
    let d = gql_ok(
        api,
        Some(ht),
        "mutation($c: ID!) { createStudioBroadcast(channelId: $c, input: { title: \"Split\" }) { id programHlsPath } }",
        json!({ "c": ch }),
    );
    let b = d["createStudioBroadcast"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let program = format!(
        "http://127.0.0.1:{}{}",
        dp.http_port,
        d["createStudioBroadcast"]["programHlsPath"]
            .as_str()
            .expect("path")
    );
    let inv = gql_ok(
        api,
        Some(ht),
        "mutation($b: ID!) { inviteGuest(broadcastId: $b) { token } }",
        json!({ "b": b }),
    )["inviteGuest"]["token"]
        .as_str()
        .expect("token")
        .to_string();
    let g = gql_ok(
        api,
        None,
        "mutation($i: String!) { joinStudio(invitation: $i, displayName: \"Red\") { publishKey participant { id } } }",
        json!({ "i": inv }),
    )["joinStudio"]
        .clone();
    let key = g["publishKey"].as_str().expect("key");
    let _guest = KillOnDrop(
        Command::new("ffmpeg")
            .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-re"])
            .args(["-f", "lavfi", "-i", "color=c=red:size=640x360:rate=30"])
            .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
            .args(["-t", "90", "-pix_fmt", "yuv420p", "-c:v", "libx264"])
            .args([
                "-preset", "veryfast", "-g", "60", "-c:a", "aac", "-f", "flv",
            ])
            .arg(dp.rtmp_url(key))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ffmpeg"),
    );
    gql_ok(
        api,
        Some(ht),
        "mutation($p: ID!) { bringOnStage(participantId: $p) { id } }",
        json!({ "p": g["participant"]["id"] }),
    );
    gql_ok(
        api,
        Some(ht),
        "mutation($b: ID!) { setLayout(broadcastId: $b, layout: SOLO, transitionMs: 0) { id } }",
        json!({ "b": b }),
    );
    let start = Instant::now();
    assert!(
        wait_until(Duration::from_secs(40), || mean_colour(&program)
            .is_some_and(is_red)),
        "the node's program never showed the guest: {:?}\ncontrol plane:\n{}\nnode:\n{}",
        mean_colour(&program),
        cp.proc.log(),
        dp.proc.log()
    );
    eprintln!("program on the node after {:?}", start.elapsed());

    let d = gql_ok(
        api,
        Some(ht),
        "mutation($b: ID!) { goLive(broadcastId: $b) { status } }",
        json!({ "b": b }),
    );
    assert_eq!(d["goLive"]["status"], "LIVE");
    let channel = format!(
        "http://127.0.0.1:{}/live/split-show/index.m3u8",
        dp.http_port
    );
    assert!(
        wait_until(Duration::from_secs(30), || mean_colour(&channel)
            .is_some_and(is_red)),
        "the channel never showed the program; node:\n{}",
        dp.proc.log()
    );
    let d = gql_ok(
        api,
        Some(ht),
        "mutation($b: ID!) { endBroadcast(broadcastId: $b) { status } }",
        json!({ "b": b }),
    );
    assert_eq!(d["endBroadcast"]["status"], "ENDED");
    assert!(
        wait_until(Duration::from_secs(20), || dp
            .proc
            .log()
            .contains("studio program off its channel")),
        "the node did not take the program off the channel"
    );

    // The node's studio listener wants the node token.
    let log = dp.proc.log();
    let port: u16 = log
        .split("studio calls from the control plane on 127.0.0.1:")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .expect("the node logs its studio port");
    let r = post_json(port, "/v1/studio/end", &[], r#"{"broadcast_id":"x"}"#).expect("answer");
    assert_eq!(r.status, 401, "{}", r.text());
    let wrong = [("Authorization", "Bearer not-the-token")];
    let r = post_json(port, "/v1/studio/end", &wrong, r#"{"broadcast_id":"x"}"#).expect("answer");
    assert_eq!(r.status, 401, "{}", r.text());
}
