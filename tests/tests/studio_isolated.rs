//! Isolated tracks: a studio broadcast with `recordIsolatedTracks` records each guest's
//! own camera and microphone as it publishes (ffmpeg over RTMP with the participant's
//! key), and the recording is listed under the broadcast's channel naming the
//! participant; ffprobe reads its VOD playlist back with the duration published.

use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use weir_e2e::graphql::{create_channel, gql_ok, register_and_login};
use weir_e2e::{Node, NodeOptions, ffmpeg_publish, output, require, wait_until};

const RECORDINGS: &str = "query($c: ID!) { recordings(channelId: $c) { edges { node { id playbackUrl durationMs endedAt studioParticipantId } } } }";

#[test]
fn each_guest_is_recorded_on_its_own_and_listed_with_the_channel() {
    require("ffprobe");
    let node = Node::start_with(NodeOptions {
        extra_args: vec!["--reconnect-grace-ms".into(), "1000".into()],
        ..NodeOptions::default()
    });
    assert!(
        node.wait_log("GraphQL API listening on", Duration::from_secs(20)),
        "no API"
    );
    let api = node.api_port;
    let host = register_and_login(api, "isohost", "correct horse battery staple");
    let ht = host.access_token.as_str();
    let ch = create_channel(api, ht, "iso-show");
    let d = gql_ok(
        api,
        Some(ht),
        "mutation($c: ID!) { createStudioBroadcast(channelId: $c, input: { title: \"Iso\", recordIsolatedTracks: true }) { id } }",
        json!({ "c": ch }),
    );
    let b = d["createStudioBroadcast"]["id"]
        .as_str()
        .expect("id")
        .to_string();
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
        "mutation($i: String!) { joinStudio(invitation: $i, displayName: \"Iso\") { publishKey participant { id } } }",
        json!({ "i": inv }),
    )["joinStudio"]
        .clone();
    let pid = g["participant"]["id"].as_str().expect("id").to_string();
    let (ok, _, err) = output(&mut ffmpeg_publish(
        &node.rtmp_url(g["publishKey"].as_str().expect("key")),
        8,
    ));
    assert!(ok, "ffmpeg: {err}");

    let mut track = Value::Null;
    assert!(
        wait_until(Duration::from_secs(30), || {
            let r = gql_ok(api, Some(ht), RECORDINGS, json!({ "c": ch }));
            track = r["recordings"]["edges"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|e| e["node"].clone())
                .find(|n| n["studioParticipantId"] == pid.as_str() && !n["endedAt"].is_null())
                .unwrap_or(Value::Null);
            !track.is_null()
        }),
        "no isolated track listed: {}\n{}",
        gql_ok(api, Some(ht), RECORDINGS, json!({ "c": ch })),
        node.log()
    );
    let ms = track["durationMs"].as_i64().expect("duration");
    assert!((7000..=9000).contains(&ms), "recorded {ms} ms of 8 s");
    let url = track["playbackUrl"].as_str().expect("playback URL");
    let url = if url.starts_with("http") {
        url.to_owned()
    } else {
        node.http_url(url)
    };
    let (ok, out, err) = output(
        Command::new("ffprobe")
            .args(["-v", "error", "-show_entries", "format=duration"])
            .args(["-of", "default=nw=1:nk=1", &url]),
    );
    assert!(ok, "ffprobe {url}: {err}");
    let secs: f64 = out.trim().parse().expect("duration");
    assert!((7.0..=9.0).contains(&secs), "the VOD lasts {secs} s");
}
