//! WHIP and WHEP sessions against str0m peers playing the browser, in virtual time: a
//! publisher's H.264 and Opus frames come out of the WHIP session as bus tracks and
//! frames, and those frames reach a WHEP viewer, key frame first.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::format::Codec as RtpCodec;
use str0m::media::{Direction, MediaKind, MediaTime, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc, RtcConfig};
use weir_media::{Codec, Frame, TrackConfig, TrackId, TrackKind};
use weir_webrtc::{IngestEvent, PlaybackEvent, RtcSettings, WhepSession, WhipSession};

const SPS: &[u8] = &[
    0x67, 0x42, 0xc0, 0x0b, 0xd9, 0x01, 0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00,
    0x00, 0x03, 0x00, 0x20, 0xf1, 0x42, 0xa4, 0x80,
];
const PPS: &[u8] = &[0x68, 0xcb, 0x83, 0xcb, 0x20];

fn client_addr() -> SocketAddr {
    "10.0.0.1:5000".parse().expect("addr")
}
fn server_addr() -> SocketAddr {
    "10.0.0.2:6000".parse().expect("addr")
}

/// A browser-like peer: full ICE, H.264 + Opus.
struct Browser {
    rtc: Rtc,
    media: Vec<Event>,
}

impl Browser {
    fn offer(now: Instant, dir: Direction) -> (Self, String, SdpPendingOffer, Mid, Mid) {
        let mut rtc = RtcConfig::new()
            .clear_codecs()
            .enable_h264(true)
            .enable_opus(true, false)
            .build(now);
        rtc.add_local_candidate(Candidate::host(client_addr(), "udp").expect("candidate"));
        let mut change = rtc.sdp_api();
        let video = change.add_media(MediaKind::Video, dir, None, None, None);
        let audio = change.add_media(MediaKind::Audio, dir, None, None, None);
        let (offer, pending) = change.apply().expect("offer");
        let b = Browser {
            rtc,
            media: Vec::new(),
        };
        (b, offer.to_sdp_string(), pending, video, audio)
    }

    fn answer(&mut self, pending: SdpPendingOffer, answer: &str) {
        let answer = SdpAnswer::from_sdp_string(answer).expect("answer parses");
        self.rtc
            .sdp_api()
            .accept_answer(pending, answer)
            .expect("answer accepted");
    }

    /// Drains outputs; returns datagrams for the server.
    fn drain(&mut self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        loop {
            match self.rtc.poll_output().expect("browser output") {
                Output::Timeout(_) => return out,
                Output::Transmit(t) => out.push(t.contents.into()),
                Output::Event(e) => {
                    if matches!(e, Event::MediaData(_) | Event::Connected) {
                        self.media.push(e);
                    }
                }
            }
        }
    }

    fn receive(&mut self, now: Instant, bytes: &[u8]) {
        let r = Receive::new(Protocol::Udp, server_addr(), client_addr(), bytes).expect("dgram");
        self.rtc
            .handle_input(Input::Receive(now, r))
            .expect("input");
    }

    fn write(&mut self, mid: Mid, codec: RtpCodec, now: Instant, rtp: MediaTime, data: &[u8]) {
        let w = self.rtc.writer(mid).expect("writer");
        let pt = w
            .payload_params()
            .find(|p| p.spec().codec == codec)
            .expect("pt")
            .pt();
        w.write(pt, now, rtp, data.to_vec()).expect("write");
    }
}

fn settings() -> RtcSettings {
    RtcSettings::new(vec![server_addr()])
}

fn annexb(nals: &[&[u8]]) -> Vec<u8> {
    nals.iter()
        .flat_map(|n| [&[0, 0, 0, 1][..], n].concat())
        .collect()
}

#[test]
fn whip_frames_reach_the_bus_and_a_whep_viewer() {
    let t0 = Instant::now();
    let mut now = t0;

    // --- WHIP: the browser publishes.
    let (mut pubr, offer, pending, vmid, amid) = Browser::offer(now, Direction::SendOnly);
    let (mut whip, answer) = WhipSession::accept(now, &settings(), &offer).expect("accepted");
    assert!(answer.contains("a=ice-lite"), "ICE-lite answer: {answer}");
    pubr.answer(pending, &answer);

    let mut bus: Vec<IngestEvent> = Vec::new();
    let mut frame_no = 0u64;
    for step in 0..3000u64 {
        now = t0 + Duration::from_millis(step);
        for d in pubr.drain() {
            whip.handle_datagram(now, client_addr(), server_addr(), &d);
        }
        if whip.timeout() <= now {
            whip.handle_timeout(now);
        }
        while let Some(d) = whip.poll_transmit() {
            assert_eq!(d.destination, client_addr());
            pubr.receive(now, &d.contents);
        }
        pubr.rtc.handle_input(Input::Timeout(now)).expect("timeout");
        while let Some(e) = whip.poll_event() {
            bus.push(e);
        }
        let connected = pubr.media.iter().any(|e| matches!(e, Event::Connected));
        if connected && step.is_multiple_of(33) {
            let rtp = MediaTime::from_90khz(1_000_000 + frame_no * 3000);
            let au = if frame_no.is_multiple_of(30) {
                annexb(&[SPS, PPS, &[0x65, 0x88, 0x80, frame_no as u8 | 1]])
            } else {
                annexb(&[&[0x41, 0x9a, 0x02, frame_no as u8 | 1]])
            };
            pubr.write(vmid, RtpCodec::H264, now, rtp, &au);
            frame_no += 1;
        }
        if connected && step.is_multiple_of(20) {
            let rtp = MediaTime::new(777 + step * 48, str0m::media::Frequency::FORTY_EIGHT_KHZ);
            pubr.write(amid, RtpCodec::Opus, now, rtp, &[0xfc, 1, 2, 3]);
        }
    }
    assert!(whip.failure().is_none(), "{:?}", whip.failure());
    assert!(matches!(bus.first(), Some(IngestEvent::Connected)));
    let video_config = bus.iter().find_map(|e| match e {
        IngestEvent::Track(id, TrackConfig::Video(v)) if *id == TrackId::VIDEO => Some(v.clone()),
        _ => None,
    });
    let video_config = video_config.expect("a video track");
    assert_eq!((video_config.width, video_config.height), (320, 240));
    assert!(bus.iter().any(|e| matches!(
        e,
        IngestEvent::Track(id, TrackConfig::Audio(a)) if *id == TrackId::AUDIO && a.codec == Codec::Opus
    )));
    let frames: Vec<&Frame> = bus
        .iter()
        .filter_map(|e| match e {
            IngestEvent::Frame(f) => Some(f),
            _ => None,
        })
        .collect();
    let video: Vec<&&Frame> = frames
        .iter()
        .filter(|f| f.track == TrackId::VIDEO)
        .collect();
    assert!(video.len() > 60, "video frames: {}", video.len());
    assert!(video[0].keyframe, "the first video frame is a key frame");
    for w in video.windows(2) {
        assert_eq!(w[1].dts - w[0].dts, 3000, "video follows its RTP clock");
        assert_eq!(&w[0].data[..4], &[0, 0, 0, 4], "AVCC length prefix");
    }
    let audio = frames.iter().filter(|f| f.track == TrackId::AUDIO).count();
    assert!(audio > 100, "audio frames: {audio}");
    // Audio and video share one timeline: their first timestamps are close.
    let first_audio = frames
        .iter()
        .find(|f| f.track == TrackId::AUDIO)
        .expect("audio");
    assert!((first_audio.dts - video[0].dts).abs() < 90_000);

    // --- WHEP: a viewer receives what was published.
    let (mut view, offer, pending, _, _) = Browser::offer(now, Direction::RecvOnly);
    let (mut whep, answer) = WhepSession::accept(
        now,
        &settings(),
        &offer,
        Some(Codec::H264),
        Some(Codec::Opus),
        1,
    )
    .expect("whep accepted");
    view.answer(pending, &answer);
    let audio_config = TrackConfig::Audio(weir_media::AudioConfig {
        codec: Codec::Opus,
        sample_rate: 48_000,
        channels: 2,
        record: bytes::Bytes::new(),
    });
    let video_config = TrackConfig::Video(video_config);
    // Start mid-GOP: the session must wait for the next key frame.
    let mut queue = frames
        .iter()
        .skip(5)
        .copied()
        .collect::<std::collections::VecDeque<_>>();
    let t1 = now;
    let mut connected = false;
    for step in 0..3000u64 {
        now = t1 + Duration::from_millis(step);
        for d in view.drain() {
            whep.handle_datagram(now, client_addr(), server_addr(), &d);
        }
        if whep.timeout() <= now {
            whep.handle_timeout(now);
        }
        while let Some(e) = whep.poll_event() {
            connected |= e == PlaybackEvent::Connected;
        }
        if connected
            && step.is_multiple_of(10)
            && let Some(f) = queue.pop_front()
        {
            {
                let config = if f.kind() == TrackKind::Video {
                    &video_config
                } else {
                    &audio_config
                };
                whep.send_frame(now, f, config);
            }
        }
        while let Some(d) = whep.poll_transmit() {
            view.receive(now, &d.contents);
        }
        view.rtc.handle_input(Input::Timeout(now)).expect("timeout");
    }
    assert!(whep.failure().is_none(), "{:?}", whep.failure());
    let got: Vec<&str0m::media::MediaData> = view
        .media
        .iter()
        .filter_map(|e| match e {
            Event::MediaData(m) => Some(m),
            _ => None,
        })
        .collect();
    let got_video: Vec<_> = got
        .iter()
        .filter(|m| m.params.spec().codec == RtpCodec::H264)
        .collect();
    assert!(
        got_video.len() > 20,
        "viewer got {} video frames",
        got_video.len()
    );
    assert!(
        got_video[0].is_keyframe(),
        "the viewer starts at a key frame"
    );
    // SPS and PPS travel in front of the key frame.
    let nals = weir_webrtc::h264::annexb_nals(&got_video[0].data);
    assert_eq!(nals[0], SPS);
    assert!(got.iter().any(|m| m.params.spec().codec == RtpCodec::Opus));
}

#[test]
fn bad_offers_are_refused_with_clear_errors() {
    let now = Instant::now();
    let e = WhipSession::accept(now, &settings(), "not sdp")
        .err()
        .expect("refused");
    assert_eq!(e.http_status(), 400);
    // A VP8-only offer: nothing to receive.
    let mut rtc = RtcConfig::new().clear_codecs().enable_vp8(true).build(now);
    rtc.add_local_candidate(Candidate::host(client_addr(), "udp").expect("candidate"));
    let mut change = rtc.sdp_api();
    change.add_media(MediaKind::Video, Direction::SendOnly, None, None, None);
    let (offer, _) = change.apply().expect("offer");
    let e = WhipSession::accept(now, &settings(), &offer.to_sdp_string())
        .err()
        .expect("refused");
    assert_eq!(e.http_status(), 422, "{e}");
    // A stream WebRTC cannot carry without transcoding (AAC only).
    let (_, offer, _, _, _) = Browser::offer(now, Direction::RecvOnly);
    let e = WhepSession::accept(now, &settings(), &offer, None, Some(Codec::Aac), 1)
        .err()
        .expect("refused");
    assert_eq!(e.http_status(), 422);
    // Too large.
    let big = "v=0\r\n".repeat(20_000);
    assert_eq!(
        WhipSession::accept(now, &settings(), &big)
            .err()
            .map(|e| e.http_status()),
        Some(400)
    );
}
