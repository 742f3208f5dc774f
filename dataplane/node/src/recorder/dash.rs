//! DASH for finished recordings (sans-IO): a static MPD over the recording's own
//! segments, each track a Representation of its own.
//!
//! ```text
//! /vod/<id>/manifest.mpd          static MPD (once the recording is finished)
//! /vod/<id>/dash/v/init-<n>.mp4   the video track of init-<n>.mp4
//! /vod/<id>/dash/v/seg-<msn>.m4s  the video samples of seg-<msn>.m4s, one fragment
//! /vod/<id>/dash/a/…              the same for audio
//! ```
//! The recorder writes muxed CMAF (video and audio in each fragment), which HLS plays but
//! DASH-IF players refuse (dash.js rejects multiplexed Representations). So the origin
//! splits each object per track when asked: the init segment keeps only that track's
//! `trak` and `trex`, a media segment becomes one fragment with only its samples (same
//! decode times, `mfhd` sequence = msn + 1). The files on disk stay as they are; the
//! split objects are immutable like them and cached by CDNs.
//!
//! The MPD is rendered from the index: a Period per run of segments with one init
//! segment and no discontinuity (a publisher that came back with new parameters starts
//! a new Period); audio-only runs (the video stalled: `gap`) are Periods without video.
//! Segment times come from the index (decode time of each segment's first master
//! sample, and its duration), converted to each track's timescale; `$Number$` is the
//! media sequence number. Offered for H.264 video and AAC or Opus audio.

use std::fmt::Write as _;

use bytes::Bytes;
use weir_cmaf::{FragmentTrack, Rope, Sample, fragment};

use super::index::{Index, SegmentEntry};
use crate::clips::fmp4::{self, Fmp4Error};

/// The MPD's file name beside the HLS playlist.
pub const MPD_FILE: &str = "manifest.mpd";

/// Why a recording's DASH object cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DashError {
    /// A recording file is malformed.
    #[error("recording unreadable: {0}")]
    Media(#[from] Fmp4Error),
    /// Codecs this DASH mapping does not offer.
    #[error("DASH is not offered for this recording: {0}")]
    Unsupported(String),
    /// The init segment has no track of that kind.
    #[error("the recording has no {0} track")]
    NoTrack(&'static str),
}

/// A Representation's kind, and its directory under `dash/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `v`.
    Video,
    /// `a`.
    Audio,
}

impl Kind {
    /// Its directory name.
    pub fn dir(self) -> &'static str {
        match self {
            Kind::Video => "v",
            Kind::Audio => "a",
        }
    }

    /// The kind named by a directory.
    pub fn parse(dir: &str) -> Option<Self> {
        match dir {
            "v" => Some(Kind::Video),
            "a" => Some(Kind::Audio),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Video => "video",
            Kind::Audio => "audio",
        }
    }
}

/// What the MPD says of one track of an init segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackInfo {
    /// `track_ID`.
    pub id: u32,
    /// Media timescale.
    pub timescale: u32,
    /// Video or audio.
    pub kind: Kind,
    /// RFC 6381 codecs string.
    pub codecs: String,
    /// Video width and height.
    pub size: Option<(u16, u16)>,
    /// Audio channels and sampling rate.
    pub audio: Option<(u16, u32)>,
}

/// The tracks of an init segment as DASH offers them: H.264 video, AAC or Opus audio.
pub fn tracks(init: &[u8]) -> Result<Vec<TrackInfo>, DashError> {
    let mut out = Vec::new();
    for t in fmp4::read_init(init)? {
        let entry = String::from_utf8_lossy(&t.entry).into_owned();
        let (kind, codecs, size) = match (&t.entry, &t.avc) {
            (b"avc1" | b"avc3", Some((avcc, w, h))) if avcc.len() >= 4 => (
                Kind::Video,
                format!("{entry}.{:02x}{:02x}{:02x}", avcc[1], avcc[2], avcc[3]),
                Some((*w, *h)),
            ),
            (b"mp4a", _) => (Kind::Audio, "mp4a.40.2".to_owned(), None),
            (b"Opus", _) => (Kind::Audio, "opus".to_owned(), None),
            _ => return Err(DashError::Unsupported(format!("{entry} track"))),
        };
        out.push(TrackInfo {
            id: t.id,
            timescale: t.timescale,
            kind,
            codecs,
            size,
            audio: if kind == Kind::Audio { t.audio } else { None },
        });
    }
    Ok(out)
}

/// The track of `kind` among `tracks`.
pub fn track_of(tracks: &[TrackInfo], kind: Kind) -> Result<&TrackInfo, DashError> {
    tracks
        .iter()
        .find(|t| t.kind == kind)
        .ok_or(DashError::NoTrack(kind.name()))
}

/// `init` with only track `id`: its `trak` and its `trex`, everything else as it was.
pub fn track_init(init: &[u8], id: u32) -> Result<Vec<u8>, DashError> {
    let mut out = Vec::with_capacity(init.len());
    for b in fmp4::boxes(init) {
        let (kind, start, body) = b?;
        let whole = whole_box(init, start, body);
        if &kind != b"moov" {
            out.extend_from_slice(whole);
            continue;
        }
        let mut moov = Vec::with_capacity(body.len());
        for c in fmp4::boxes(body) {
            let (k, s, b) = c?;
            match &k {
                b"trak" if trak_id(b)? != id => {}
                b"mvex" => {
                    let mut mvex = Vec::new();
                    for e in fmp4::boxes(b) {
                        let (ek, es, eb) = e?;
                        // `trex`: version/flags, then track_ID.
                        let other = &ek == b"trex" && eb.get(4..8) != Some(&id.to_be_bytes()[..]);
                        if !other {
                            mvex.extend_from_slice(whole_box(b, es, eb));
                        }
                    }
                    push_box(&mut moov, b"mvex", &mvex);
                }
                _ => moov.extend_from_slice(whole_box(body, s, b)),
            }
        }
        push_box(&mut out, b"moov", &moov);
    }
    Ok(out)
}

/// The samples of track `id` in media segment `seg`, as one fragment with sequence
/// number `msn + 1`.
pub fn track_segment(seg: &Bytes, id: u32, msn: u64) -> Result<Rope, DashError> {
    let samples: Vec<_> = fmp4::read_segment(seg)?
        .into_iter()
        .filter(|s| s.track == id)
        .collect();
    let Some(first) = samples.first() else {
        return Err(DashError::NoTrack("media in this segment for the"));
    };
    let base = first.dts;
    let out: Vec<Sample> = samples
        .into_iter()
        .map(|s| Sample {
            duration: s.duration,
            composition_offset: i32::try_from(s.pts as i64 - s.dts as i64).unwrap_or(0),
            keyframe: s.keyframe,
            data: s.data,
        })
        .collect();
    let seq = u32::try_from(msn + 1).unwrap_or(u32::MAX);
    Ok(fragment(
        seq,
        &[FragmentTrack {
            track_id: id,
            base_decode_time: base,
            samples: &out,
        }],
    ))
}

/// The static MPD of finished recording `index`; `tracks_of(n)` are the DASH tracks of
/// its init segment `n` (None: unreadable, its segments are left out).
pub fn render_mpd(
    index: &Index,
    mut tracks_of: impl FnMut(u64) -> Option<Vec<TrackInfo>>,
) -> String {
    let total_ms = index.duration_ms();
    let longest_us = index
        .segments
        .iter()
        .map(|s| s.duration_us)
        .max()
        .unwrap_or(0);
    let mut out = String::with_capacity(1024 + 40 * index.segments.len());
    let _ = write!(
        out,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" \
         profiles=\"urn:mpeg:dash:profile:isoff-live:2011,urn:mpeg:dash:profile:cmaf:2019\" \
         type=\"static\" mediaPresentationDuration=\"{}\" minBufferTime=\"PT2.000S\" \
         maxSegmentDuration=\"{}\">\n",
        iso_ms(total_ms),
        iso_ms(longest_us.div_ceil(1000)),
    );
    let mut period_start_ms = 0u64;
    for (n, run) in runs(&index.segments).into_iter().enumerate() {
        let run_ms = run.iter().map(|s| s.duration_us).sum::<u64>() / 1000;
        let Some(tracks) = tracks_of(run[0].init) else {
            period_start_ms += run_ms;
            continue;
        };
        let _ = writeln!(
            out,
            "  <Period id=\"{n}\" start=\"{}\" duration=\"{}\">",
            iso_ms(period_start_ms),
            iso_ms(run_ms)
        );
        let bytes: u64 = run.iter().map(|s| s.bytes).sum();
        let bandwidth = (bytes * 8 * 1000).checked_div(run_ms).unwrap_or(0).max(1);
        let gap = run[0].gap;
        for (set, t) in tracks.iter().enumerate() {
            if gap && t.kind == Kind::Video {
                continue;
            }
            let mime = match t.kind {
                Kind::Video => "video/mp4",
                Kind::Audio => "audio/mp4",
            };
            let _ = write!(
                out,
                "    <AdaptationSet id=\"{set}\" contentType=\"{}\" mimeType=\"{mime}\" \
                 segmentAlignment=\"true\" startWithSAP=\"1\">\n      \
                 <Representation id=\"{}{}\" codecs=\"{}\" bandwidth=\"{}\"",
                t.kind.name(),
                t.kind.dir(),
                run[0].init,
                t.codecs,
                if t.kind == Kind::Video {
                    bandwidth
                } else {
                    128_000
                },
            );
            if let Some((w, h)) = t.size {
                let _ = write!(out, " width=\"{w}\" height=\"{h}\" sar=\"1:1\"");
            }
            if let Some((_, rate)) = t.audio {
                let _ = write!(out, " audioSamplingRate=\"{rate}\"");
            }
            out.push_str(">\n");
            if let Some((ch, _)) = t.audio {
                let _ = writeln!(
                    out,
                    "        <AudioChannelConfiguration schemeIdUri=\"urn:mpeg:dash:23003:3:audio_channel_configuration:2011\" value=\"{ch}\"/>"
                );
            }
            timeline(&mut out, run, t);
            out.push_str("      </Representation>\n    </AdaptationSet>\n");
        }
        out.push_str("  </Period>\n");
        period_start_ms += run_ms;
    }
    out.push_str("</MPD>\n");
    out
}

/// The `SegmentTemplate` of `run` for track `t`.
fn timeline(out: &mut String, run: &[SegmentEntry], t: &TrackInfo) {
    let ts = u128::from(t.timescale.max(1));
    let at = |s: &SegmentEntry| {
        u64::try_from(u128::from(s.start) * ts / u128::from(s.timescale.max(1))).unwrap_or(0)
    };
    let dir = t.kind.dir();
    let _ = write!(
        out,
        "        <SegmentTemplate timescale=\"{ts}\" presentationTimeOffset=\"{}\" \
         startNumber=\"{}\" initialization=\"dash/{dir}/init-{}.mp4\" \
         media=\"dash/{dir}/seg-$Number$.m4s\">\n          <SegmentTimeline>\n",
        at(&run[0]),
        run[0].msn,
        run[0].init,
    );
    let mut expected: Option<u64> = None;
    for (i, s) in run.iter().enumerate() {
        let start = at(s);
        // Up to the next segment's start when there is one (exact), else its EXTINF.
        let d = run.get(i + 1).map_or_else(
            || u64::try_from(u128::from(s.duration_us) * ts / 1_000_000).unwrap_or(0),
            |next| at(next).saturating_sub(start),
        );
        if expected == Some(start) {
            let _ = writeln!(out, "            <S d=\"{d}\"/>");
        } else {
            let _ = writeln!(out, "            <S t=\"{start}\" d=\"{d}\"/>");
        }
        expected = Some(start + d);
    }
    out.push_str("          </SegmentTimeline>\n        </SegmentTemplate>\n");
}

/// Runs of segments that share an init segment, have no discontinuity between them and
/// are all gaps or all not, with consecutive numbers ($Number$ addresses them).
fn runs(segments: &[SegmentEntry]) -> Vec<&[SegmentEntry]> {
    let mut out = Vec::new();
    let mut begin = 0;
    for i in 1..=segments.len() {
        let split = segments.get(i).is_none_or(|s| {
            let p = &segments[i - 1];
            s.init != p.init || s.discontinuity || s.gap != p.gap || s.msn != p.msn + 1
        });
        if split {
            out.push(&segments[begin..i]);
            begin = i;
        }
    }
    out.retain(|r| !r.is_empty());
    out
}

fn iso_ms(ms: u64) -> String {
    format!("PT{}.{:03}S", ms / 1000, ms % 1000)
}

/// `trak`'s `track_ID` (from its `tkhd`).
fn trak_id(trak: &[u8]) -> Result<u32, Fmp4Error> {
    let tkhd = fmp4::child(trak, b"tkhd", "tkhd")?;
    let at = if tkhd.first() == Some(&1) { 20 } else { 12 };
    tkhd.get(at..at + 4)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_be_bytes)
        .ok_or(Fmp4Error::Malformed("tkhd"))
}

/// The whole box (header included) whose body `body` is a slice of `parent` and which
/// starts at `start` in it.
fn whole_box<'a>(parent: &'a [u8], start: usize, body: &[u8]) -> &'a [u8] {
    let end = (body.as_ptr() as usize - parent.as_ptr() as usize) + body.len();
    &parent[start..end]
}

fn push_box(out: &mut Vec<u8>, kind: &[u8; 4], body: &[u8]) {
    let size = u32::try_from(body.len() + 8).unwrap_or(u32::MAX);
    out.extend_from_slice(&size.to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(body);
}

#[cfg(test)]
#[path = "dash_tests.rs"]
mod tests;
