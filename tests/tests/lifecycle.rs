//! Publisher reconnects within the grace period, io_uring refused, graceful shutdown.

use std::time::Duration;

use weir_e2e::http::get;
use weir_e2e::{
    MediaPlaylist, Node, NodeOptions, fetch_playlist, ffmpeg_publish, variant_uri, wait_until,
};

fn media_path(node: &Node, channel: &str) -> String {
    let mv = format!("/live/{channel}/index.m3u8");
    assert!(
        wait_until(Duration::from_secs(15), || get(node.http_port, &mv)
            .is_ok_and(|r| r.status == 200)),
        "no playlist for {channel}"
    );
    let text = get(node.http_port, &mv).expect("mv").text();
    format!("/live/{channel}/{}", variant_uri(&text).expect("variant"))
}

fn playlist(node: &Node, path: &str) -> MediaPlaylist {
    fetch_playlist(node.http_port, path)
}

#[test]
fn reconnect_within_grace_continues_the_playlist_with_a_discontinuity() {
    let node = Node::start_with(NodeOptions {
        extra_args: vec!["--reconnect-grace-ms".into(), "6000".into()],
        ..Default::default()
    });
    let (_, key) = node.issue_key("again");
    let status = ffmpeg_publish(&node.rtmp_url(&key), 5)
        .status()
        .expect("ffmpeg");
    assert!(status.success());
    let path = media_path(&node, "again");
    let first = playlist(&node, &path);
    assert!(!first.ended);
    let status = ffmpeg_publish(&node.rtmp_url(&key), 5)
        .status()
        .expect("ffmpeg");
    assert!(status.success());
    let second = playlist(&node, &path);
    assert_eq!(
        second.media_sequence, first.media_sequence,
        "same playlist continues"
    );
    assert!(second.next_msn() > first.next_msn());
    assert!(second.discontinuities >= 1, "{}", second.text);
    assert!(!second.ended);
    assert!(
        wait_until(Duration::from_secs(12), || playlist(&node, &path).ended),
        "playlist did not end after the grace period"
    );
}

#[test]
fn io_uring_refused_falls_back_to_epoll() {
    let node = Node::start_with(NodeOptions {
        deny_io_uring: true,
        ..Default::default()
    });
    assert!(
        node.log().contains("shard running on epoll"),
        "{}",
        node.log()
    );
    assert!(!node.log().contains("shard running on io_uring"));
    let (_, key) = node.issue_key("fallback");
    let mut publisher = ffmpeg_publish(&node.rtmp_url(&key), 6)
        .spawn()
        .expect("ffmpeg");
    let path = media_path(&node, "fallback");
    assert!(wait_until(Duration::from_secs(10), || !playlist(
        &node, &path
    )
    .segments
    .is_empty()));
    assert!(publisher.wait().expect("ffmpeg").success());
}

#[test]
fn sigterm_ends_playlists_and_exits_cleanly() {
    let mut node = Node::start();
    let (_, key) = node.issue_key("bye");
    let mut publisher = ffmpeg_publish(&node.rtmp_url(&key), 30)
        .spawn()
        .expect("ffmpeg");
    let _ = media_path(&node, "bye");
    assert_eq!(
        node.terminate(Duration::from_secs(10)),
        Some(true),
        "{}",
        node.log()
    );
    assert!(node.log().contains("stopped"), "{}", node.log());
    let _ = publisher.kill();
    let _ = publisher.wait();
}
