//! Destinations changed while a channel is live apply at once, each real nginx-rtmp
//! (Debian `libnginx-mod-rtmp`) started by the test:
//!
//! - `weir serve`: a destination added mid-broadcast starts receiving; a new stream key
//!   reconnects it under the new key; a disabled one and a deleted one are told the
//!   stream ended (`deleteStream` in nginx's log) and stop; the destination that was
//!   live all along decodes without a gap, and LL-HLS goes on;
//! - split deployment (etcd, `weir controlplane`, `weir dataplane`): a destination added
//!   on the control plane reaches the node carrying the stream over its control
//!   listener, and its removal stops it there.

use std::process::Stdio;
use std::time::Duration;

use serde_json::json;
use weir_e2e::cluster::{ControlPlane, DataPlane, Secrets};
use weir_e2e::destinations::{
    add_destination, decode_frames, delete_destination, frames_read, relay_states, state_of,
    update_destination,
};
use weir_e2e::etcd::Etcd;
use weir_e2e::graphql::{
    create_channel, issue_stream_key, owner_channel_key, poll, register_and_login,
};
use weir_e2e::http::get;
use weir_e2e::nginx_rtmp::RtmpServer;
use weir_e2e::{KillOnDrop, Node, NodeOptions, obs_like_publish, require, wait_until};

/// How many times nginx logged the end of a published stream.
fn stream_ends(server: &RtmpServer) -> usize {
    server.error_log().matches("deleteStream").count()
}

#[test]
fn destinations_changed_while_live_apply_at_once() {
    require("ffmpeg");
    let a = RtmpServer::start();
    let b = RtmpServer::start();
    let node = Node::start_with(NodeOptions {
        extra_args: vec!["--relay-allow-internal".into(), "true".into()],
        ..NodeOptions::default()
    });
    let api = node.api_port;
    let (owner, channel_id, key) = owner_channel_key(&node, "changing");
    let id_a = add_destination(api, &owner, &channel_id, "A", &a.url(), "key-a");
    let _ffmpeg = KillOnDrop(
        obs_like_publish(&node.rtmp_url(&key), 60, "640x360")
            .stderr(Stdio::null())
            .spawn()
            .expect("ffmpeg"),
    );
    let live = |id: &str| {
        poll(Duration::from_secs(20), || {
            state_of(&relay_states(api, &owner, &channel_id), id) == "LIVE"
        })
    };
    assert!(
        live(&id_a),
        "{:?}\n{}",
        relay_states(api, &owner, &channel_id),
        node.log()
    );

    // A reader on A spans every change to B: A must not hiccup.
    let reader_a = decode_frames(&a.play_url("key-a"), 14);
    std::thread::sleep(Duration::from_secs(1));
    let id_b = add_destination(api, &owner, &channel_id, "B", &b.url(), "key-b");
    assert!(
        live(&id_b),
        "B added while live: {:?}\n{}",
        relay_states(api, &owner, &channel_id),
        node.log()
    );
    let (frames, err) = frames_read(decode_frames(&b.play_url("key-b"), 3));
    assert!(
        frames >= 30,
        "B under its first key: {frames} frames\n{err}"
    );

    // A new key: B reconnects and publishes under it.
    let ends_b = stream_ends(&b);
    update_destination(api, &owner, &id_b, json!({ "streamKey": "key-b2" }));
    let moved = wait_until(Duration::from_secs(20), || {
        b.error_log().contains("name='key-b2'") && stream_ends(&b) > ends_b
    });
    assert!(moved, "B did not move to its new key:\n{}", b.error_log());
    assert!(live(&id_b), "{:?}", relay_states(api, &owner, &channel_id));
    let (frames, err) = frames_read(decode_frames(&b.play_url("key-b2"), 3));
    assert!(frames >= 30, "B under its new key: {frames} frames\n{err}");

    let (frames_a, err_a) = frames_read(reader_a);
    assert!(
        frames_a >= 14 * 30 * 8 / 10,
        "A while B changed: {frames_a} frames\n{err_a}"
    );

    // Disabled: A is told the stream ended, and says STOPPED.
    let ends_a = stream_ends(&a);
    update_destination(api, &owner, &id_a, json!({ "enabled": false }));
    let stopped = poll(Duration::from_secs(10), || {
        state_of(&relay_states(api, &owner, &channel_id), &id_a) == "STOPPED"
            && stream_ends(&a) > ends_a
    });
    assert!(
        stopped,
        "A disabled: {:?}\n{}",
        relay_states(api, &owner, &channel_id),
        a.error_log()
    );

    // Deleted: B is told too; the broadcast goes on for LL-HLS viewers.
    let ends_b = stream_ends(&b);
    delete_destination(api, &owner, &id_b);
    assert!(
        wait_until(Duration::from_secs(10), || stream_ends(&b) > ends_b),
        "B deleted but not told:\n{}",
        b.error_log()
    );
    let mv = get(node.http_port, "/live/changing/index.m3u8").map_or(String::new(), |r| r.text());
    assert!(mv.contains("#EXT-X-STREAM-INF"), "{mv}");
    assert!(
        node.log().contains("destination removed or changed"),
        "{}",
        node.log()
    );
}

#[test]
fn a_destination_added_on_the_control_plane_reaches_the_node_carrying_the_stream() {
    require("ffmpeg");
    let a = RtmpServer::start();
    let etcd = Etcd::start();
    let secrets = Secrets::generate();
    let cp = ControlPlane::start(&[etcd.url()], &secrets, &[]);
    let mut dp = DataPlane::start(
        &cp.url(),
        "relay-node",
        &secrets,
        &["--relay-allow-internal", "true"],
    );
    assert!(
        dp.proc
            .wait_log("registered with the control plane", Duration::from_secs(15)),
        "the node did not register"
    );
    let api = cp.api_port;
    let owner = register_and_login(api, "relayer", "correct horse battery staple");
    let channel_id = create_channel(api, &owner.access_token, "split-relay");
    let (_, secret) = issue_stream_key(api, &owner.access_token, &channel_id);
    let _ffmpeg = KillOnDrop(
        obs_like_publish(&dp.rtmp_url(&secret), 40, "640x360")
            .stderr(Stdio::null())
            .spawn()
            .expect("ffmpeg"),
    );
    let on_air = wait_until(Duration::from_secs(20), || {
        get(dp.http_port, "/live/split-relay/index.m3u8")
            .is_ok_and(|r| r.text().contains("#EXT-X-STREAM-INF"))
    });
    assert!(on_air, "{}", dp.proc.log());
    // Give the control plane the stream's LIVE event before the change.
    std::thread::sleep(Duration::from_secs(1));

    let id = add_destination(api, &owner, &channel_id, "A", &a.url(), "key-a");
    let live = poll(Duration::from_secs(20), || {
        state_of(&relay_states(api, &owner, &channel_id), &id) == "LIVE"
    });
    assert!(
        live,
        "{:?}\ncontrol plane:\n{}\nnode:\n{}",
        relay_states(api, &owner, &channel_id),
        cp.proc.log(),
        dp.proc.log()
    );
    let (frames, err) = frames_read(decode_frames(&a.play_url("key-a"), 3));
    assert!(frames >= 30, "A added while live: {frames} frames\n{err}");

    let ends = stream_ends(&a);
    delete_destination(api, &owner, &id);
    assert!(
        wait_until(Duration::from_secs(10), || stream_ends(&a) > ends),
        "A deleted but not told:\n{}\nnode:\n{}",
        a.error_log(),
        dp.proc.log()
    );
}
