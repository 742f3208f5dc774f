//! Recordings and clips of a signed channel are under signed playback too: a broadcast of
//! a channel whose policy signs playback is recorded as signed, and its VOD playlist,
//! segments, poster, thumbnails and clips are served only under a playback token for
//! the channel (DASH objects too). The URLs GraphQL hands the owner carry one and play in
//! ffmpeg; plain, tampered, another channel's and expired tokens get 403. `weir serve
//! --record`, ffmpeg publishing OBS-like x264 (B-frames) + AAC.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use weir_e2e::graphql::{Account, create_channel, gql_ok, issue_stream_key, register_and_login};
use weir_e2e::http::get;
use weir_e2e::{
    KillOnDrop, Node, NodeOptions, is_token_segment, obs_like_publish, output, without_token,
};

const PASSWORD: &str = "correct horse battery staple";
const RECORDINGS: &str = "query($c: ID!) { recordings(channelId: $c) { nodes { id durationMs \
                          endedAt playbackUrl posterUrl thumbnailsUrl dashUrl } } }";

/// Sets `channel`'s policy: signed URLs lasting `ttl` seconds.
fn sign(node: &Node, owner: &Account, channel: &str, ttl: u32) {
    gql_ok(
        node.api_port,
        Some(&owner.access_token),
        "mutation($c:ID!,$s:Int!){setEntitlement(channelId:$c,input:{access:PUBLIC,\
         signedUrls:true,signedUrlTtlSecs:$s}){signedUrls}}",
        json!({"c": channel, "s": ttl}),
    );
}

/// The channel's first recording once finished (and its poster made).
fn finished_recording(node: &Node, owner: &Account, channel: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let d = gql_ok(
            node.api_port,
            Some(&owner.access_token),
            RECORDINGS,
            json!({ "c": channel }),
        );
        let rec = d["recordings"]["nodes"][0].clone();
        let poster = rec["posterUrl"].as_str().map(str::to_owned);
        if let Some(poster) = poster
            && get_url(&poster).0 == 200
        {
            return rec;
        }
        assert!(
            Instant::now() < deadline,
            "no finished recording with a poster: {d}\n{}",
            node.log()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// GET of an absolute `http://127.0.0.1:<port>/…` URL: status and body text.
fn get_url(url: &str) -> (u16, String) {
    let rest = url
        .strip_prefix("http://127.0.0.1:")
        .expect("a loopback URL");
    let (port, path) = rest.split_once('/').expect("a path");
    let r = get(port.parse().expect("port"), &format!("/{path}")).expect("GET");
    (r.status, r.text())
}

/// The token segment of `url`.
fn token_of(url: &str) -> String {
    url.split('/')
        .find(|s| is_token_segment(s))
        .unwrap_or_else(|| panic!("no playback token in {url}"))
        .to_owned()
}

/// `url` with its token replaced by `token`.
fn with_token(url: &str, token: &str) -> String {
    url.replace(&token_of(url), token)
}

/// Frames ffmpeg decodes from `url`, or its error.
fn frames(url: &str) -> Result<u64, String> {
    let (ok, out, err) = output(
        Command::new("ffprobe")
            .args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
            .args([
                "-show_entries",
                "stream=nb_read_frames",
                "-of",
                "csv=p=0",
                url,
            ]),
    );
    if !ok {
        return Err(err);
    }
    // HLS input lists the stream once per program as well: the first count.
    out.split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("{out} {err}"))
}

#[test]
fn recordings_and_clips_of_a_signed_channel_need_its_token() {
    let node = Node::start_with(NodeOptions {
        extra_args: vec![
            "--record".into(),
            "--reconnect-grace-ms".into(),
            "1000".into(),
        ],
        ..NodeOptions::default()
    });
    assert!(
        node.wait_log("GraphQL API listening on", Duration::from_secs(20)),
        "{}",
        node.log()
    );
    let owner = register_and_login(node.api_port, "signer", PASSWORD);
    let channel = create_channel(node.api_port, &owner.access_token, "members-vod");
    let other = create_channel(node.api_port, &owner.access_token, "other-vod");
    sign(&node, &owner, &channel, 600);
    sign(&node, &owner, &other, 600);
    let (_, key) = issue_stream_key(node.api_port, &owner.access_token, &channel);
    let mut ffmpeg = KillOnDrop(
        obs_like_publish(&node.rtmp_url(&key), 6, "640x360")
            .stderr(Stdio::null())
            .spawn()
            .expect("ffmpeg"),
    );
    let _ = ffmpeg.0.wait();
    let rec = finished_recording(&node, &owner, &channel);
    let id = rec["id"].as_str().expect("id").to_owned();

    // Every URL carries the token, and plays under it.
    let playlist = rec["playbackUrl"].as_str().expect("playbackUrl").to_owned();
    let token = token_of(&playlist);
    let (status, vod) = get_url(&playlist);
    assert_eq!(status, 200, "{vod}");
    assert!(vod.ends_with("#EXT-X-ENDLIST\n"), "{vod}");
    let seg = vod
        .lines()
        .find(|l| l.ends_with(".m4s"))
        .expect("a segment")
        .to_owned();
    let segment = playlist.replace("index.m3u8", &seg);
    assert_eq!(get_url(&segment).0, 200, "{segment}");
    let decoded = frames(&playlist).expect("ffprobe plays the signed VOD");
    assert!((165..=185).contains(&decoded), "{decoded} frames of 6 s");
    for field in ["posterUrl", "thumbnailsUrl", "dashUrl"] {
        let url = rec[field].as_str().expect(field);
        assert_eq!(token_of(url), token, "{field}: {url}");
        assert_eq!(get_url(url).0, 200, "{field}: {url}");
    }

    // Without it, with a tampered one, or with another channel's: 403, for every file.
    let other_token = {
        let d = gql_ok(
            node.api_port,
            Some(&owner.access_token),
            "query($c:ID!){playbackUrl(channelId:$c){url}}",
            json!({"c": other}),
        );
        token_of(d["playbackUrl"]["url"].as_str().expect("url"))
    };
    let tampered = {
        let last = if token.ends_with('A') { 'B' } else { 'A' };
        format!("{}{last}", &token[..token.len() - 1])
    };
    for url in [
        &playlist,
        &segment,
        &rec["posterUrl"].as_str().expect("poster").to_owned(),
    ] {
        for bad in [
            without_token(url),
            with_token(url, &tampered),
            with_token(url, &other_token),
        ] {
            let (status, body) = get_url(&bad);
            assert_eq!(status, 403, "{bad}: {body}");
            assert!(body.contains("needs a signed URL"), "{bad}: {body}");
        }
    }
    assert!(
        frames(&without_token(&playlist)).is_err(),
        "played without a token"
    );

    // A clip of it inherits the signature.
    let d = gql_ok(
        node.api_port,
        Some(&owner.access_token),
        "mutation($r: ID!) { createClip(recordingId: $r, startMs: 1000, endMs: 3000) \
         { id status error hlsUrl mp4Url } }",
        json!({ "r": id }),
    );
    let clip = &d["createClip"];
    assert_eq!(clip["status"], "READY", "{d}\n{}", node.log());
    let (hls, mp4) = (
        clip["hlsUrl"].as_str().expect("hlsUrl"),
        clip["mp4Url"].as_str().expect("mp4Url"),
    );
    assert_eq!(get_url(mp4).0, 200, "{mp4}");
    let clip_frames = frames(hls).expect("ffprobe plays the signed clip");
    assert!(
        (55..=65).contains(&clip_frames),
        "{clip_frames} frames of 2 s"
    );
    for bad in [
        without_token(mp4),
        without_token(hls),
        with_token(mp4, &other_token),
    ] {
        assert_eq!(get_url(&bad).0, 403, "{bad}");
    }
    // Listed with the recording, under a token too.
    let d = gql_ok(
        node.api_port,
        Some(&owner.access_token),
        "query($c: ID!) { recordings(channelId: $c) { nodes { clips { mp4Url } } } }",
        json!({ "c": channel }),
    );
    let listed = d["recordings"]["nodes"][0]["clips"][0]["mp4Url"]
        .as_str()
        .expect("listed clip")
        .to_owned();
    assert_eq!(get_url(&listed).0, 200, "{listed}");

    // A short TTL: the token lasts it plus the recording's duration, then every file is
    // refused as expired (an entitlement taken away ends VOD playback too).
    sign(&node, &owner, &channel, 1);
    let d = gql_ok(
        node.api_port,
        Some(&owner.access_token),
        RECORDINGS,
        json!({ "c": channel }),
    );
    let short = d["recordings"]["nodes"][0]["playbackUrl"]
        .as_str()
        .expect("playbackUrl")
        .to_owned();
    let exp: u64 = token_of(&short)
        .split('.')
        .nth(1)
        .and_then(|e| e.parse().ok())
        .expect("expiry");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let duration_s = rec["durationMs"].as_u64().unwrap_or(0) / 1000;
    assert!(
        exp >= now + duration_s && exp <= now + duration_s + 3,
        "expiry {exp} for a {duration_s} s recording at {now}"
    );
    assert_eq!(get_url(&short).0, 200);
    std::thread::sleep(Duration::from_secs(exp.saturating_sub(now) + 1));
    let (status, body) = get_url(&short);
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("expired"), "{body}");
}
