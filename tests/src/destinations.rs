//! Relay destinations over GraphQL, and reading what a destination received.

use std::process::{Command, Stdio};

use serde_json::json;

use crate::graphql::{Account, gql_ok};

/// `createDestination` on `channel_id` (platform `rtmp`): the new destination's id.
pub fn add_destination(
    api: u16,
    owner: &Account,
    channel_id: &str,
    name: &str,
    url: &str,
    key: &str,
) -> String {
    let d = gql_ok(
        api,
        Some(&owner.access_token),
        "mutation($c: ID!, $i: DestinationInput!) { createDestination(channelId: $c, input: $i) { id } }",
        json!({ "c": channel_id, "i": { "name": name, "platform": "rtmp", "url": url, "streamKey": key } }),
    );
    d["createDestination"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no destination id: {d}"))
        .to_owned()
}

/// destination id → (state, reason, bitrate).
pub fn relay_states(
    api: u16,
    owner: &Account,
    channel_id: &str,
) -> Vec<(String, String, String, i64)> {
    let d = gql_ok(
        api,
        Some(&owner.access_token),
        "query($c: ID!) { destinations(channelId: $c) { id status { state reason bitrate } } }",
        json!({ "c": channel_id }),
    );
    d["destinations"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|x| {
                    let s = &x["status"];
                    (
                        x["id"].as_str().unwrap_or_default().to_owned(),
                        s["state"].as_str().unwrap_or("NONE").to_owned(),
                        s["reason"].as_str().unwrap_or_default().to_owned(),
                        s["bitrate"].as_i64().unwrap_or(0),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The state (`LIVE`, `RETRYING`…) of destination `id` in `states` (empty if absent).
pub fn state_of(states: &[(String, String, String, i64)], id: &str) -> String {
    states
        .iter()
        .find(|s| s.0 == id)
        .map(|s| s.1.clone())
        .unwrap_or_default()
}

/// ffmpeg reading `url` for `seconds`: the frames it decoded, and its errors.
pub fn decode_frames(url: &str, seconds: u32) -> std::process::Child {
    Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-nostdin",
            "-loglevel",
            "error",
            "-stats_period",
            "1",
        ])
        .args([
            "-rw_timeout",
            "15000000",
            "-i",
            url,
            "-t",
            &seconds.to_string(),
        ])
        .args(["-map", "0:v:0", "-f", "null", "-progress", "pipe:1", "-"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ffmpeg reader")
}

/// The last `frame=` count ffmpeg's `-progress` printed, and its stderr.
pub fn frames_read(child: std::process::Child) -> (u64, String) {
    let out = child.wait_with_output().expect("ffmpeg reader");
    let progress = String::from_utf8_lossy(&out.stdout);
    let frames = progress
        .lines()
        .rev()
        .filter_map(|l| l.strip_prefix("frame="))
        .find_map(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    (frames, String::from_utf8_lossy(&out.stderr).into_owned())
}

/// `updateDestination` with `input` (e.g. `{"streamKey": "k2"}`, `{"enabled": false}`).
pub fn update_destination(api: u16, owner: &Account, id: &str, input: serde_json::Value) {
    gql_ok(
        api,
        Some(&owner.access_token),
        "mutation($d: ID!, $i: DestinationUpdate!) { updateDestination(id: $d, input: $i) { id } }",
        json!({ "d": id, "i": input }),
    );
}

/// `deleteDestination`.
pub fn delete_destination(api: u16, owner: &Account, id: &str) {
    let d = gql_ok(
        api,
        Some(&owner.access_token),
        "mutation($d: ID!) { deleteDestination(id: $d) }",
        json!({ "d": id }),
    );
    assert_eq!(d["deleteDestination"], true, "{d}");
}
