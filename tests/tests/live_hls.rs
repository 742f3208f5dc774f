//! RTMP in (ffmpeg), LL-HLS out (ffprobe, ffmpeg, our own checks of the spec's tags).

use std::time::Duration;

use weir_e2e::http::get;
use weir_e2e::{
    MediaPlaylist, Node, NodeOptions, count_frames, fetch_playlist, ffmpeg_publish, output,
    variant_uri, wait_until,
};

const SECONDS: u32 = 16;

#[test]
fn ffmpeg_publishes_and_players_get_ll_hls() {
    let node = Node::start_with(NodeOptions {
        extra_args: vec!["--reconnect-grace-ms".into(), "1500".into()],
        ..Default::default()
    });
    assert!(node.log().contains("io_uring") || node.log().contains("epoll"));
    let (server, key) = node.issue_key("show");
    assert_eq!(server, format!("rtmp://127.0.0.1:{}/live", node.rtmp_port));
    assert!(!key.contains('/'));

    let mut publisher = ffmpeg_publish(&node.rtmp_url(&key), SECONDS)
        .spawn()
        .expect("ffmpeg");

    // Multivariant playlist appears once tracks are known.
    let mv_path = "/live/show/index.m3u8";
    assert!(
        wait_until(Duration::from_secs(15), || get(node.http_port, mv_path)
            .is_ok_and(|r| r.status == 200)),
        "no multivariant playlist"
    );
    let mv = get(node.http_port, mv_path).expect("get");
    assert_eq!(
        mv.header("content-type").as_deref(),
        Some("application/vnd.apple.mpegurl")
    );
    assert_eq!(
        mv.header("access-control-allow-origin").as_deref(),
        Some("*")
    );
    let mv_text = mv.text();
    assert!(
        mv_text.contains("CODECS=\"avc1.") && mv_text.contains("mp4a.40.2"),
        "{mv_text}"
    );
    assert!(mv_text.contains("RESOLUTION=640x360"), "{mv_text}");
    let variant = variant_uri(&mv_text).expect("variant");
    // The variant URI is the same for every viewer; drop any query before adding LL-HLS
    // parameters.
    let variant = variant.split('?').next().expect("path").to_owned();
    let media_path = format!("/live/show/{variant}");
    let base = media_path.rsplit_once('/').expect("dir").0.to_owned();

    // Wait for at least one full segment, then check the LL-HLS tags.
    let mut pl = MediaPlaylist::default();
    assert!(wait_until(Duration::from_secs(15), || {
        pl = fetch_playlist(node.http_port, &media_path);
        !pl.segments.is_empty()
    }));
    for tag in [
        "#EXT-X-VERSION:",
        // Fixed for the broadcast (default 4 s), not derived from the GOP.
        "#EXT-X-TARGETDURATION:4",
        "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES",
        "PART-HOLD-BACK=",
        "CAN-SKIP-UNTIL=",
        "#EXT-X-PART-INF:PART-TARGET=0.2",
        "#EXT-X-MAP:URI=",
        "#EXT-X-PROGRAM-DATE-TIME:",
        "#EXT-X-PART:",
        "#EXT-X-PRELOAD-HINT:TYPE=PART",
    ] {
        assert!(pl.text.contains(tag), "missing {tag} in\n{}", pl.text);
    }
    assert!(
        pl.parts.iter().all(|p| p.2 <= 0.21 + 1e-6),
        "part longer than PART-TARGET (0.2 s + 5 % headroom):\n{}",
        pl.text
    );
    assert!(pl.parts.iter().any(|p| p.3), "no INDEPENDENT part");
    // RFC 8216bis: parts that are neither independent nor last in their segment last at
    // least 85 % of PART-TARGET (ffmpeg stamps whole milliseconds: 33/34 ms frames).
    for (i, p) in pl.parts.iter().enumerate() {
        let last_in_segment = pl.parts.get(i + 1).is_none_or(|n| n.0 != p.0);
        assert!(
            p.3 || last_in_segment || p.2 >= 0.85 * 0.21,
            "short part {}:\n{}",
            p.1,
            pl.text
        );
    }

    // Blocking reload: ask for the part after the last one listed (the one the
    // preload hint names), as hls.js and AVPlayer do.
    let (msn, idx) = match pl.parts.last() {
        Some(last) if last.0 < pl.next_msn() => (pl.next_msn(), 0),
        Some(last) => (
            last.0,
            pl.parts.iter().filter(|p| p.0 == last.0).count() as u64,
        ),
        None => panic!("no parts"),
    };
    let hinted = pl.preload_hint.clone().expect("hint");
    assert_eq!(hinted, format!("part-{msn}-{idx}.m4s"), "{}", pl.text);
    let q = format!("{media_path}?_HLS_msn={msn}&_HLS_part={idx}");
    let r = get(node.http_port, &q).expect("blocking get");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.elapsed < Duration::from_secs(3),
        "blocked {:?}",
        r.elapsed
    );
    let next = MediaPlaylist::parse(&r.text());
    assert!(
        next.parts.iter().any(|p| p.0 == msn && p.1 == hinted),
        "blocking reload returned before the part existed:\n{}",
        r.text()
    );
    // Far-future requests are refused at once; unknown streams are 404.
    let r = get(
        node.http_port,
        &format!("{media_path}?_HLS_msn={}", msn + 10),
    )
    .expect("get");
    assert_eq!(r.status, 400);
    assert_eq!(
        get(node.http_port, "/live/nope/index.m3u8")
            .expect("get")
            .status,
        404
    );

    // The preload-hinted part is served as soon as it exists.
    let hint = next.preload_hint.clone().expect("preload hint");
    let r = get(node.http_port, &format!("{base}/{hint}")).expect("hinted part");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type").as_deref(), Some("video/mp4"));
    assert!(
        r.header("cache-control")
            .unwrap_or_default()
            .contains("immutable")
    );
    assert!(r.body.windows(4).any(|w| w == b"moof"));

    // Delta update.
    let r = get(node.http_port, &format!("{media_path}?_HLS_skip=YES")).expect("skip");
    assert_eq!(r.status, 200);

    // Players: ffprobe sees both tracks, ffmpeg decodes 10 s of the live stream without errors.
    let url = node.http_url(mv_path);
    let (ok, out, err) = output(std::process::Command::new("ffprobe").args([
        "-v",
        "error",
        "-show_entries",
        "stream=codec_name,width,height",
        "-of",
        "csv=p=0",
        &url,
    ]));
    assert!(ok, "ffprobe: {err}");
    assert!(out.contains("h264,640,360") && out.contains("aac"), "{out}");
    let (ok, _, err) = output(std::process::Command::new("ffmpeg").args([
        "-hide_banner",
        "-nostdin",
        "-v",
        "error",
        "-i",
        &url,
        "-t",
        "10",
        "-f",
        "null",
        "-",
    ]));
    assert!(ok && err.trim().is_empty(), "ffmpeg decode errors: {err}");

    // Parts carry the segment's bytes: concatenated parts == the full segment.
    let pl = fetch_playlist(node.http_port, &media_path);
    let (seg_msn, seg_uri, _) = pl
        .segments
        .iter()
        .rev()
        .find(|s| pl.parts.iter().any(|p| p.0 == s.0))
        .cloned()
        .expect("a full segment with parts listed");
    let mut joined = Vec::new();
    for p in pl.parts.iter().filter(|p| p.0 == seg_msn) {
        joined.extend(
            get(node.http_port, &format!("{base}/{}", p.1))
                .expect("part")
                .body,
        );
    }
    let seg = get(node.http_port, &format!("{base}/{seg_uri}")).expect("segment");
    assert_eq!(seg.status, 200);
    assert!(
        joined == seg.body,
        "parts of segment {seg_msn} differ from the segment"
    );

    // Publisher ends: after the grace period the playlist ends, and holds every frame sent.
    let status = publisher.wait().expect("ffmpeg wait");
    assert!(status.success(), "publisher failed");
    assert!(
        wait_until(Duration::from_secs(10), || fetch_playlist(
            node.http_port,
            &media_path
        )
        .ended),
        "no EXT-X-ENDLIST after the publisher left"
    );
    let media_url = node.http_url(&media_path);
    assert_eq!(
        count_frames(&media_url, "v"),
        u64::from(SECONDS) * 30,
        "video frames"
    );
    let audio = count_frames(&media_url, "a");
    let expected = u64::from(SECONDS) * 48_000 / 1024;
    assert!(
        audio.abs_diff(expected) <= 2,
        "audio frames {audio}, expected ~{expected}"
    );
}
