//! The demuxer on streams built by the test muxer.

use weir_media::{Codec, TrackConfig, TrackId, TrackKind};

use crate::testmux::{Mux, adts, pat, pes_packet, pmt};
use crate::{
    DropReason, MAX_PENDING_EVENTS, MAX_PES_SIZE, MAX_STREAMS, SectionError, TsDemuxer, TsEvent,
};

const PMT_PID: u16 = 0x1000;
const VIDEO: u16 = 0x100;
const AUDIO: u16 = 0x101;

const SPS: &[u8] = &[
    0x67, 0x64, 0x00, 0x0d, 0xac, 0xd9, 0x41, 0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10,
    0x00, 0x00, 0x03, 0x03, 0xc0, 0xf1, 0x42, 0x99, 0x60,
];
const PPS: &[u8] = &[0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0];

fn annexb(nals: &[&[u8]]) -> Vec<u8> {
    nals.iter()
        .flat_map(|n| [&[0, 0, 0, 1][..], n].concat())
        .collect()
}

/// A video access unit: IDR with parameter sets, or a P slice, with `size` slice bytes.
fn video_au(key: bool, size: usize, fill: u8) -> Vec<u8> {
    let slice: Vec<u8> = [if key { 0x65 } else { 0x41 }]
        .into_iter()
        .chain(std::iter::repeat_n(fill, size))
        .collect();
    if key {
        annexb(&[&[0x09, 0xf0], SPS, PPS, &slice])
    } else {
        annexb(&[&[0x09, 0xf0], &slice])
    }
}

fn start(m: &mut Mux, streams: &[(u8, u16, &[u8])]) {
    m.psi(0, &pat(PMT_PID));
    m.psi(PMT_PID, &pmt(0, streams));
}

fn av_mux() -> Mux {
    let mut m = Mux::default();
    start(&mut m, &[(0x1b, VIDEO, &[]), (0x0f, AUDIO, &[])]);
    m
}

fn video_pes(pts: u64, dts: u64, au: &[u8]) -> Vec<u8> {
    pes_packet(0xe0, Some(pts), Some(dts), au, false)
}

fn video(m: &mut Mux, pts: u64, dts: u64, au: &[u8]) {
    m.unit(VIDEO, &video_pes(pts, dts, au), false);
}

fn audio(m: &mut Mux, pid: u16, pts: u64, frames: usize) {
    let payload: Vec<u8> = (0..frames)
        .flat_map(|i| adts(3, 2, &[i as u8 + 1; 200], false))
        .collect();
    m.unit(
        pid,
        &pes_packet(0xc0, Some(pts), None, &payload, true),
        false,
    );
}

fn drain(d: &mut TsDemuxer) -> Vec<TsEvent> {
    std::iter::from_fn(|| d.poll()).collect()
}

/// All events, feeding `data` in chunks of `chunk` bytes.
fn run(data: &[u8], chunk: usize) -> Vec<TsEvent> {
    let mut d = TsDemuxer::new();
    let mut out = Vec::new();
    for c in data.chunks(chunk) {
        d.push(c);
        out.extend(drain(&mut d));
    }
    d.finish();
    out.extend(drain(&mut d));
    out
}

type FrameSummary = (TrackId, u64, u64, bool, usize);

fn frames(events: &[TsEvent]) -> Vec<FrameSummary> {
    events
        .iter()
        .filter_map(|e| match e {
            TsEvent::Frame {
                track,
                dts,
                pts,
                keyframe,
                data,
            } => Some((*track, *dts, *pts, *keyframe, data.len())),
            _ => None,
        })
        .collect()
}

fn drops(events: &[TsEvent]) -> Vec<&DropReason> {
    events
        .iter()
        .filter_map(|e| match e {
            TsEvent::Dropped { reason } => Some(reason),
            _ => None,
        })
        .collect()
}

fn tracks(events: &[TsEvent]) -> Vec<(TrackId, Codec)> {
    events
        .iter()
        .filter_map(|e| match e {
            TsEvent::Track { id, config } => Some((*id, config.codec())),
            _ => None,
        })
        .collect()
}

#[test]
fn video_and_audio_in_any_split() {
    let mut m = av_mux();
    video(&mut m, 6006, 3003, &video_au(true, 1000, 1));
    audio(&mut m, AUDIO, 3003, 3);
    video(&mut m, 15_015, 6006, &video_au(false, 500, 2));
    video(&mut m, 9009, 9009, &video_au(false, 10, 3));
    let reference = run(&m.out, m.out.len());
    for chunk in [1, 100, 188, 1316, 5000] {
        assert_eq!(run(&m.out, chunk), reference, "chunk {chunk}");
    }
    assert!(drops(&reference).is_empty(), "{:?}", drops(&reference));
    assert_eq!(
        tracks(&reference),
        vec![(TrackId::AUDIO, Codec::Aac), (TrackId::VIDEO, Codec::H264)]
    );
    let (a, v) = (TrackId::AUDIO, TrackId::VIDEO);
    assert_eq!(
        frames(&reference),
        vec![
            (a, 3003, 3003, true, 200),
            (a, 4923, 4923, true, 200),
            (a, 6843, 6843, true, 200),
            // The first video frame ends when the second begins.
            (v, 3003, 6006, true, 4 + 1001),
            (v, 6006, 15_015, false, 4 + 501),
            // The last one at finish.
            (v, 9009, 9009, false, 4 + 11),
        ]
    );
    let config = reference.iter().find_map(|e| match e {
        TsEvent::Track {
            config: TrackConfig::Video(v),
            ..
        } => Some(v),
        _ => None,
    });
    assert_eq!(config.map(|v| (v.width, v.height)), Some((320, 240)));
}

#[test]
fn lost_packets_drop_the_access_unit_only() {
    let mut m = av_mux();
    video(&mut m, 3003, 3003, &video_au(true, 1000, 1));
    // A P frame of three packets whose second is lost.
    let pes = video_pes(6006, 6006, &video_au(false, 500, 2));
    m.packets(VIDEO, &pes[..184], true, false);
    m.lose(VIDEO);
    m.packets(VIDEO, &pes[368..], false, false);
    video(&mut m, 9009, 9009, &video_au(false, 10, 3));
    let events = run(&m.out, 1316);
    let pts: Vec<u64> = frames(&events).iter().map(|f| f.2).collect();
    assert_eq!(pts, vec![3003, 9009]);
    // The IDR took counters 0..=5, the P frame's first packet 6: 7 was lost.
    assert_eq!(
        drops(&events),
        vec![&DropReason::Continuity {
            pid: VIDEO,
            expected: 7,
            got: 8
        }]
    );
}

#[test]
fn discontinuity_inside_a_pes_drops_it() {
    let mut m = av_mux();
    video(&mut m, 3003, 3003, &video_au(true, 1000, 1));
    let pes = video_pes(6006, 6006, &video_au(false, 500, 2));
    m.packets(VIDEO, &pes[..184], true, false);
    m.packets(VIDEO, &pes[184..], false, true);
    video(&mut m, 9009, 9009, &video_au(false, 10, 3));
    let events = run(&m.out, 188);
    let pts: Vec<u64> = frames(&events).iter().map(|f| f.2).collect();
    assert_eq!(pts, vec![3003, 9009]);
    assert_eq!(
        drops(&events),
        vec![&DropReason::Discontinuity { pid: VIDEO }]
    );
}

#[test]
fn frames_before_the_first_idr_are_skipped_and_counted() {
    let mut m = av_mux();
    video(&mut m, 1, 1, &video_au(false, 10, 1));
    video(&mut m, 2, 2, &video_au(false, 10, 1));
    video(&mut m, 3, 3, &video_au(true, 10, 1));
    let events = run(&m.out, 1316);
    assert_eq!(
        drops(&events),
        vec![&DropReason::BeforeKeyframe {
            track: TrackId::VIDEO,
            frames: 2
        }]
    );
    assert_eq!(frames(&events).len(), 1);
}

#[test]
fn oversized_pes_is_dropped_with_an_event() {
    let mut m = av_mux();
    video(&mut m, 1, 1, &video_au(true, MAX_PES_SIZE + 10, 1));
    video(&mut m, 2, 2, &video_au(true, 10, 1));
    let events = run(&m.out, 1 << 16);
    assert!(matches!(
        drops(&events)[..],
        [DropReason::PesTooLarge {
            pid: VIDEO,
            limit: MAX_PES_SIZE
        }]
    ));
    assert_eq!(
        frames(&events).iter().map(|f| f.2).collect::<Vec<_>>(),
        vec![2]
    );
}

#[test]
fn psi_errors_unsupported_streams_and_updates() {
    let mut m = Mux::default();
    m.psi(0, &pat(PMT_PID));
    // A PMT with a bad CRC, then a good one with an MPEG-2 video stream (unsupported),
    // twice: reported once.
    let mut bad = pmt(0, &[(0x1b, VIDEO, &[])]);
    let n = bad.len();
    bad[n - 1] ^= 0xff;
    m.psi(PMT_PID, &bad);
    let streams: &[(u8, u16, &[u8])] = &[(0x02, 0x200, &[]), (0x1b, VIDEO, &[])];
    m.psi(PMT_PID, &pmt(0, streams));
    m.psi(PMT_PID, &pmt(0, streams));
    video(&mut m, 1, 1, &video_au(true, 10, 1));
    // Version 1 adds Opus (registration descriptor) as a second audio-less program
    // member; the video keeps its state.
    let opus: &[u8] = &[0x05, 4, b'O', b'p', b'u', b's', 0x7f, 2, 0x80, 1];
    let v1: &[(u8, u16, &[u8])] = &[(0x02, 0x200, &[]), (0x1b, VIDEO, &[]), (0x06, AUDIO, opus)];
    m.psi(PMT_PID, &pmt(1, v1));
    video(&mut m, 2, 2, &video_au(false, 10, 1));
    let mut opus_au = vec![0x7f, 0xe0, 3, 31 << 3, 1, 2];
    opus_au.extend([0x7f, 0xe0, 2, 31 << 3, 1]);
    m.unit(
        AUDIO,
        &pes_packet(0xbd, Some(5), None, &opus_au, true),
        false,
    );
    let events = run(&m.out, 1316);
    assert_eq!(
        drops(&events),
        vec![
            &DropReason::Section {
                pid: PMT_PID,
                error: SectionError::Crc
            },
            &DropReason::Unsupported {
                pid: 0x200,
                stream_type: 0x02
            }
        ]
    );
    assert_eq!(
        tracks(&events),
        vec![(TrackId::VIDEO, Codec::H264), (TrackId::AUDIO, Codec::Opus)]
    );
    let f = frames(&events);
    assert_eq!(
        f,
        vec![
            (TrackId::VIDEO, 1, 1, true, 4 + 11),
            (TrackId::AUDIO, 5, 5, true, 3),
            (TrackId::AUDIO, 1805, 1805, true, 2),
            (TrackId::VIDEO, 2, 2, false, 4 + 11),
        ]
    );
    let mono = events.iter().any(
        |e| matches!(e, TsEvent::Track { config: TrackConfig::Audio(a), .. } if a.channels == 1),
    );
    assert!(mono);
}

#[test]
fn streams_are_bounded_and_numbered_in_pmt_order() {
    let mut m = Mux::default();
    let entries: Vec<(u8, u16, &[u8])> = (0..MAX_STREAMS as u16 + 2)
        .map(|i| (if i % 2 == 0 { 0x1b } else { 0x0f }, 0x100 + i, &[][..]))
        .collect();
    start(&mut m, &entries);
    let mut d = TsDemuxer::new();
    d.push(&m.out);
    let events = drain(&mut d);
    assert_eq!(
        drops(&events),
        vec![
            &DropReason::TooManyStreams { pid: 0x110 },
            &DropReason::TooManyStreams { pid: 0x111 }
        ]
    );
    let ids: Vec<TrackId> = d.tracks().collect();
    assert_eq!(ids.len(), MAX_STREAMS);
    assert_eq!(ids[0], TrackId::VIDEO);
    assert_eq!(ids[1], TrackId::AUDIO);
    assert_eq!(ids[14], TrackId::new(TrackKind::Video, 7));
    assert_eq!(ids[15], TrackId::new(TrackKind::Audio, 7));
}

#[test]
fn a_full_queue_drops_new_events_and_keeps_configs_before_frames() {
    let mut m = av_mux();
    for i in 0..(MAX_PENDING_EVENTS as u64 / 3 + 50) {
        audio(&mut m, AUDIO, i * 5760, 3);
    }
    let mut d = TsDemuxer::new();
    d.push(&m.out);
    // A new config (sample rate change) while the queue is full.
    let mut more = Mux::default();
    more.cc_from(&m);
    let payload = adts(4, 2, &[9; 100], false);
    more.unit(
        AUDIO,
        &pes_packet(0xc0, Some(1), None, &payload, true),
        false,
    );
    d.push(&more.out);
    let first = drain(&mut d);
    assert_eq!(first.len(), MAX_PENDING_EVENTS + 1);
    assert!(matches!(
        first.last(),
        Some(TsEvent::Dropped {
            reason: DropReason::QueueFull { .. }
        })
    ));
    // Room again: the frame that follows comes after its (re-announced) config.
    let mut tail = Mux::default();
    tail.cc_from(&more);
    tail.unit(
        AUDIO,
        &pes_packet(0xc0, Some(2), None, &payload, true),
        false,
    );
    d.push(&tail.out);
    let next = drain(&mut d);
    assert!(
        matches!(&next[..], [TsEvent::Track { config: TrackConfig::Audio(a), .. }, TsEvent::Frame { pts: 2, .. }] if a.sample_rate == 44_100),
        "{next:?}"
    );
}

#[test]
fn garbage_between_packets_resyncs() {
    let mut m = av_mux();
    video(&mut m, 1, 1, &video_au(true, 10, 1));
    let mut data = vec![0x47, 1, 2, 3];
    data.extend(&m.out);
    let mut m2 = Mux::default();
    m2.cc_from(&m);
    video(&mut m2, 2, 2, &video_au(false, 400, 2));
    data.extend([0x12, 0x47, 0x34]);
    data.extend(&m2.out);
    let events = run(&data, 1000);
    assert_eq!(frames(&events).len(), 2);
    assert_eq!(
        drops(&events),
        vec![
            &DropReason::Resync { skipped: 4 },
            &DropReason::Resync { skipped: 3 }
        ]
    );
}

#[test]
fn no_panic_on_noise_or_mutations() {
    let mut m = av_mux();
    for i in 0..20u64 {
        video(
            &mut m,
            i * 3003,
            i * 3003,
            &video_au(i % 5 == 0, 300 + i as usize * 7, i as u8),
        );
        audio(&mut m, AUDIO, i * 3003, 2);
    }
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut rand = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for round in 0..200 {
        let mut data = m.out.clone();
        for _ in 0..(round % 20 + 1) {
            let at = rand() as usize % data.len();
            data[at] = rand() as u8;
        }
        let cut = rand() as usize % data.len();
        data.truncate(cut.max(1));
        let mut input = vec![rand() as u8];
        input.extend(&data);
        crate::fuzzing::ts_demux(&input);
    }
    for len in [0, 1, 187, 188, 1000, 20_000] {
        let noise: Vec<u8> = (0..len).map(|_| rand() as u8).collect();
        crate::fuzzing::ts_demux(&noise);
        let mut forced = vec![1];
        forced.extend(&noise);
        crate::fuzzing::ts_demux(&forced);
    }
}
