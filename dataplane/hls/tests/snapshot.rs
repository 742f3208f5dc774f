//! Playlist text snapshots for a small scenario: 30 fps video + AAC, key frame every
//! second, 1 s segments, 200 ms parts, a window of 3 with parts kept for 1 segment.

mod common;

use common::*;
use weir_hls::PlaylistQuery;

const HEADER: &str = "#EXTM3U
#EXT-X-VERSION:9
#EXT-X-TARGETDURATION:1
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=6.000,PART-HOLD-BACK=0.630
#EXT-X-PART-INF:PART-TARGET=0.210
";

#[test]
fn live_playlist_snapshot() {
    let mut src = Source::gop(30);
    let mut s = stream(config(200, 1000, 3, 1), &src);
    src.run_until(&mut s, 2400);
    let expected = HEADER.to_owned()
        + r#"#EXT-X-MEDIA-SEQUENCE:0
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MAP:URI="init-0.mp4"
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:21.000Z
#EXTINF:1.000,
seg-0.m4s
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:22.000Z
#EXT-X-PART:DURATION=0.200,URI="part-1-0.m4s",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.200,URI="part-1-1.m4s"
#EXT-X-PART:DURATION=0.200,URI="part-1-2.m4s"
#EXT-X-PART:DURATION=0.200,URI="part-1-3.m4s"
#EXT-X-PART:DURATION=0.200,URI="part-1-4.m4s"
#EXTINF:1.000,
seg-1.m4s
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:23.000Z
#EXT-X-PART:DURATION=0.200,URI="part-2-0.m4s",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.200,URI="part-2-1.m4s"
#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part-2-2.m4s"
"#;
    assert_eq!(playlist(&s), expected);

    let multivariant =
        String::from_utf8(s.multivariant_playlist().expect("tracks").to_vec()).expect("utf-8");
    assert_eq!(
        multivariant,
        "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-INDEPENDENT-SEGMENTS\n\
         #EXT-X-STREAM-INF:BANDWIDTH=275680,AVERAGE-BANDWIDTH=253120,\
         CODECS=\"avc1.64000d,mp4a.40.2\",RESOLUTION=320x240,FRAME-RATE=30.000\nmedia.m3u8\n"
    );
}

#[test]
fn sliding_window_then_end_snapshot() {
    let mut src = Source::gop(30);
    let mut s = stream(config(200, 1000, 3, 1), &src);
    src.run_until(&mut s, 4400);
    s.end();
    let expected = HEADER.to_owned()
        + r#"#EXT-X-MEDIA-SEQUENCE:2
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MAP:URI="init-0.mp4"
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:23.000Z
#EXTINF:1.000,
seg-2.m4s
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:24.000Z
#EXTINF:1.000,
seg-3.m4s
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:25.000Z
#EXT-X-PART:DURATION=0.200,URI="part-4-0.m4s",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.200,URI="part-4-1.m4s"
#EXT-X-PART:DURATION=0.033,URI="part-4-2.m4s"
#EXTINF:0.433,
seg-4.m4s
#EXT-X-ENDLIST
"#;
    assert_eq!(playlist(&s), expected);
}

#[test]
fn delta_update_snapshot() {
    // 1 s segments: CAN-SKIP-UNTIL is 6 s; 10 segments (msn 2-11) and 0.4 s of parts
    // are listed, so the 4 segments that end before 10.4 - 6 s are skipped.
    let mut src = Source::gop(30);
    let mut s = stream(config(200, 1000, 10, 1), &src);
    src.run_until(&mut s, 12_400);
    let q = PlaylistQuery {
        skip: true,
        ..PlaylistQuery::default()
    };
    let text = playlist_for(&s, q);
    let head: Vec<&str> = text.lines().take(13).collect();
    assert_eq!(
        head[5..].join("\n"),
        r#"#EXT-X-MEDIA-SEQUENCE:2
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-SKIP:SKIPPED-SEGMENTS=4
#EXT-X-MAP:URI="init-0.mp4"
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:27.000Z
#EXTINF:1.000,
seg-6.m4s
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:28.000Z"#
    );
    let full = playlist(&s);
    assert_eq!(segments(&full).len(), 10);
    assert_eq!(segments(&text).len(), 6);
    assert!(!full.contains("EXT-X-SKIP"));
    // Both end the same way.
    assert!(full.ends_with(&text[text.find("seg-6.m4s").expect("seg-6")..]));
}
