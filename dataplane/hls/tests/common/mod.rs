//! Synthetic broadcasts in virtual time and small playlist readers.
#![allow(dead_code)]

use std::time::Duration;

use bytes::Bytes;
use weir_hls::{HlsConfig, LiveStream, PlaylistAnswer, PlaylistQuery};
use weir_media::{AudioConfig, Codec, Frame, TrackId, TrackKind, VideoConfig};

/// avcC of a 320x240 x264 stream.
pub const AVCC: &[u8] = &[
    0x01, 0x64, 0x00, 0x0d, 0xff, 0xe1, 0x00, 0x19, 0x67, 0x64, 0x00, 0x0d, 0xac, 0xd9, 0x41, 0x41,
    0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0xc0, 0xf1, 0x42, 0x99,
    0x60, 0x01, 0x00, 0x06, 0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0,
];

/// Wall clock of dts 0 (2023-11-14T22:13:20Z).
pub const EPOCH_MS: u64 = 1_700_000_000_000;

pub fn video_config() -> VideoConfig {
    VideoConfig {
        codec: Codec::H264,
        width: 320,
        height: 240,
        record: Bytes::from_static(AVCC),
    }
}

pub fn audio_config() -> AudioConfig {
    AudioConfig {
        codec: Codec::Aac,
        sample_rate: 44_100,
        channels: 2,
        record: Bytes::from_static(&[0x12, 0x10]),
    }
}

/// A configuration whose target duration is the segment target (rounded up to whole
/// seconds): the tightest one allowed.
pub fn config(part_ms: u64, segment_ms: u64, window: usize, keep_parts: usize) -> HlsConfig {
    HlsConfig {
        part_target: Duration::from_millis(part_ms),
        segment_target: Duration::from_millis(segment_ms),
        target_duration: Duration::from_millis(segment_ms),
        window,
        keep_parts_segments: keep_parts,
        ..HlsConfig::default()
    }
}

/// A synthetic source: 30 fps video (key frames where `is_key` says) and 44.1 kHz AAC
/// (~43 frames per second), interleaved by decode time, starting at dts 90 000.
pub struct Source {
    pub video: bool,
    pub audio: bool,
    pub is_key: Box<dyn Fn(u64) -> bool>,
    next_video: u64,
    next_audio: u64,
    pub start: i64,
    /// Added to audio timestamps (ticks), interleaving unchanged: audio stamped ahead
    /// of (or, negative, behind) the video it is sent with.
    pub audio_skew: i64,
}

impl Source {
    pub fn new(video: bool, audio: bool, is_key: impl Fn(u64) -> bool + 'static) -> Self {
        Self {
            video,
            audio,
            is_key: Box::new(is_key),
            next_video: 0,
            next_audio: 0,
            start: 90_000,
            audio_skew: 0,
        }
    }

    /// Key frame every `gop` frames.
    pub fn gop(gop: u64) -> Self {
        Self::new(true, true, move |i| i % gop == 0)
    }

    fn video_dts(&self, i: u64) -> i64 {
        self.start + i as i64 * 3000
    }

    fn audio_dts(&self, i: u64) -> i64 {
        self.start + ((i * 1024 * 90_000 + 22_050) / 44_100) as i64
    }

    /// The next frame in decode order.
    pub fn next_frame(&mut self) -> Frame {
        let v = self.video.then(|| self.video_dts(self.next_video));
        let a = self.audio.then(|| self.audio_dts(self.next_audio));
        let take_video = match (v, a) {
            (Some(v), Some(a)) => v <= a,
            (Some(_), None) => true,
            _ => false,
        };
        if take_video {
            let i = self.next_video;
            self.next_video += 1;
            let dts = self.video_dts(i);
            let key = (self.is_key)(i);
            // Frame bytes: 4-byte index, padding; key frames are larger.
            let mut data = (i as u32).to_be_bytes().to_vec();
            data.resize(if key { 3000 } else { 600 }, 0x11);
            Frame {
                track: TrackId::VIDEO,
                dts,
                pts: dts + 3000,
                keyframe: key,
                data: Bytes::from(data),
            }
        } else {
            let i = self.next_audio;
            self.next_audio += 1;
            let dts = self.audio_dts(i) + self.audio_skew;
            Frame {
                track: TrackId::AUDIO,
                dts,
                pts: dts,
                keyframe: true,
                data: Bytes::from(vec![0x21; 200]),
            }
        }
    }

    /// Moves the video clock to where the audio clock is (after video was switched off
    /// for a while), so the next video frame is the first one at or after it.
    pub fn resync_video(&mut self) {
        let at = self.audio_dts(self.next_audio) - self.start;
        self.next_video = (at as u64).div_ceil(3000);
    }

    /// Pushes frames until the video (or audio) clock passes `until_ms` after the start;
    /// returns how many pushes reported a new part.
    pub fn run_until(&mut self, s: &mut LiveStream, until_ms: u64) -> usize {
        let mut parts = 0;
        loop {
            let f = self.next_frame();
            let skew = if f.kind() == TrackKind::Audio {
                self.audio_skew
            } else {
                0
            };
            if f.dts - skew - self.start > until_ms as i64 * 90 {
                // Put it back by rewinding the counter.
                match f.kind() {
                    TrackKind::Video => self.next_video -= 1,
                    TrackKind::Audio => self.next_audio -= 1,
                }
                return parts;
            }
            let wall = EPOCH_MS + (f.dts / 90) as u64;
            if s.push_frame(wall, f) {
                parts += 1;
            }
        }
    }
}

/// A stream with the default tracks of `src`.
pub fn stream(cfg: HlsConfig, src: &Source) -> LiveStream {
    let mut s = LiveStream::new(cfg);
    s.set_tracks(src.video.then(video_config), src.audio.then(audio_config));
    s
}

/// The playlist for a plain request, as text.
pub fn playlist(s: &LiveStream) -> String {
    playlist_for(s, PlaylistQuery::default())
}

pub fn playlist_for(s: &LiveStream, q: PlaylistQuery) -> String {
    match s.media_playlist(&q) {
        PlaylistAnswer::Ready(b) => String::from_utf8(b.to_vec()).expect("utf-8"),
        other => panic!("playlist not ready: {other:?}"),
    }
}

/// The value of attribute `name` in a tag line.
pub fn attr<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let body = line.split_once(':')?.1;
    let start = body.find(&format!("{name}="))? + name.len() + 1;
    let rest = &body[start..];
    if let Some(q) = rest.strip_prefix('"') {
        q.split('"').next()
    } else {
        rest.split(',').next()
    }
}

/// (duration s, uri, independent) of every EXT-X-PART line.
pub fn parts(text: &str) -> Vec<(f64, String, bool)> {
    text.lines()
        .filter(|l| l.starts_with("#EXT-X-PART:"))
        .map(|l| {
            (
                attr(l, "DURATION")
                    .and_then(|d| d.parse().ok())
                    .expect("duration"),
                attr(l, "URI").expect("uri").to_owned(),
                l.contains("INDEPENDENT=YES"),
            )
        })
        .collect()
}

/// (duration s, uri) of every full segment.
pub fn segments(text: &str) -> Vec<(f64, String)> {
    let lines: Vec<&str> = text.lines().collect();
    lines
        .iter()
        .enumerate()
        .filter_map(|(i, l)| {
            let d = l.strip_prefix("#EXTINF:")?.trim_end_matches(',');
            Some((d.parse().ok()?, lines.get(i + 1)?.to_string()))
        })
        .collect()
}

/// The integer value of a `#TAG:<n>` line.
pub fn tag_value(text: &str, tag: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(tag)?.strip_prefix(':')?.parse().ok())
}

/// One `traf` of a fragment: track, tfdt, (duration, size, flags) per sample, and the
/// first sample's bytes (located through the trun data offset).
#[derive(Debug, Clone)]
pub struct Traf {
    pub track_id: u32,
    pub tfdt: u64,
    pub samples: Vec<(u32, u32, u32)>,
    pub first_bytes: Vec<u8>,
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The trafs of every moof in `data` (a part or a segment), in order.
pub fn trafs(data: &[u8]) -> Vec<Traf> {
    use weir_cmaf::test_support::{boxes, child, children};
    let mut out = Vec::new();
    for moof in boxes(data).into_iter().filter(|b| &b.kind == b"moof") {
        for traf in children(moof.body, 0)
            .into_iter()
            .filter(|b| &b.kind == b"traf")
        {
            let tfhd = child(traf.body, b"tfhd").expect("tfhd");
            let tfdt = child(traf.body, b"tfdt").expect("tfdt");
            let trun = child(traf.body, b"trun").expect("trun");
            let count = be32(trun.body, 4) as usize;
            let offset = be32(trun.body, 8) as usize;
            let samples: Vec<(u32, u32, u32)> = (0..count)
                .map(|i| {
                    let at = 12 + 16 * i;
                    (
                        be32(trun.body, at),
                        be32(trun.body, at + 4),
                        be32(trun.body, at + 8),
                    )
                })
                .collect();
            let start = moof.offset + offset;
            let first_bytes = data[start..start + samples[0].1 as usize].to_vec();
            out.push(Traf {
                track_id: be32(tfhd.body, 4),
                tfdt: u64::from_be_bytes(tfdt.body[4..12].try_into().expect("8")),
                samples,
                first_bytes,
            });
        }
    }
    out
}

/// An object's bytes, which must be ready.
pub fn object(s: &LiveStream, name: &str) -> Bytes {
    match s.object(name) {
        weir_hls::ObjectAnswer::Ready(b, _) => b.to_bytes(),
        other => panic!("{name}: {other:?}"),
    }
}
