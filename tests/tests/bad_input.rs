//! Bad input is refused with a clear log line while a good stream keeps playing.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use weir_e2e::http::get;
use weir_e2e::{Node, fetch_playlist, ffmpeg_publish, output, variant_uri, wait_until};

fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    s
}

/// Completes a simple RTMP handshake as a client.
fn handshake(s: &mut TcpStream) {
    let mut c0c1 = vec![3u8];
    c0c1.extend(std::iter::repeat_n(7u8, 1536));
    s.write_all(&c0c1).expect("c0c1");
    let mut s0s1s2 = vec![0u8; 1 + 1536 * 2];
    s.read_exact(&mut s0s1s2).expect("s0s1s2");
    assert_eq!(s0s1s2[0], 3);
    s.write_all(&s0s1s2[1..1537]).expect("c2");
}

fn publish_refused(node: &Node, key: &str) -> String {
    let (ok, _, err) = output(&mut ffmpeg_publish(&node.rtmp_url(key), 2));
    assert!(!ok, "ffmpeg published with a bad key {key}");
    err
}

fn media_msn(node: &Node, path: &str) -> u64 {
    fetch_playlist(node.http_port, path).next_msn()
}

#[test]
fn bad_input_is_refused_and_a_good_stream_keeps_playing() {
    let node = Node::start();
    let (_, key) = node.issue_key("good");
    let mut good = ffmpeg_publish(&node.rtmp_url(&key), 20)
        .spawn()
        .expect("ffmpeg");
    let mv = "/live/good/index.m3u8";
    assert!(wait_until(Duration::from_secs(15), || get(
        node.http_port,
        mv
    )
    .is_ok_and(|r| r.status == 200)));
    let media = format!(
        "/live/good/{}",
        variant_uri(&get(node.http_port, mv).expect("mv").text()).expect("variant")
    );
    let msn_before = media_msn(&node, &media);

    // Garbage bytes instead of a handshake.
    let mut s = connect(node.rtmp_port);
    s.write_all(&[0x47; 4096]).expect("garbage");
    let mut sink = Vec::new();
    let _ = s.read_to_end(&mut sink);
    assert!(
        node.wait_log("unsupported RTMP version", Duration::from_secs(5)),
        "{}",
        node.log()
    );

    // A truncated handshake, then the client vanishes.
    let mut s = connect(node.rtmp_port);
    s.write_all(&[3u8; 700]).expect("partial c1");
    drop(s);

    // A Set Chunk Size of 4 GiB - 1 (top bit set: invalid) right after the handshake.
    let mut s = connect(node.rtmp_port);
    handshake(&mut s);
    s.write_all(&[
        0x02, 0, 0, 0, 0, 0, 4, 0x01, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff,
    ])
    .expect("set chunk size");
    let _ = s.read_to_end(&mut sink);
    assert!(
        wait_until(Duration::from_secs(5), || node
            .log()
            .to_lowercase()
            .contains("chunk size")),
        "{}",
        node.log()
    );

    // Garbage on the HTTP port gets a 400 and the node stays up.
    let mut s = connect(node.http_port);
    s.write_all(b"\x16\x03\x01garbage\r\n\r\n")
        .expect("http garbage");
    let mut reply = String::new();
    let _ = s.read_to_string(&mut reply);
    assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");

    // Wrong, forged and revoked keys.
    let sig = key.rsplit('.').next().expect("sig").to_owned();
    publish_refused(&node, "good.notakey.AAAA");
    let forged = key.replacen("good", "evil", 1);
    publish_refused(&node, &forged);
    let (_, revoked) = node.issue_key("other");
    let (ok, out) = node.key_command(&["revoke", &revoked]);
    assert!(ok, "{out}");
    publish_refused(&node, &revoked);
    assert!(
        node.wait_log("revoked", Duration::from_secs(5)),
        "{}",
        node.log()
    );
    // A second publisher on the live channel.
    publish_refused(&node, &key);
    assert!(node.wait_log("already being published", Duration::from_secs(5)));
    let log = node.log();
    assert!(log.contains("publish refused"), "{log}");
    assert!(
        !log.contains(&sig),
        "a stream key signature leaked into the log"
    );

    // The good stream kept going the whole time.
    assert!(
        wait_until(Duration::from_secs(10), || media_msn(&node, &media)
            >= msn_before + 2),
        "good stream stalled"
    );
    let (ok, _, err) = output(std::process::Command::new("ffprobe").args([
        "-v",
        "error",
        "-show_entries",
        "stream=codec_name",
        "-of",
        "csv=p=0",
        &node.http_url(mv),
    ]));
    assert!(ok, "{err}");
    let _ = good.kill();
    let _ = good.wait();
}
