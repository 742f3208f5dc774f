//! Making a clip (blocking, off the shards): read the recording's segments around the
//! window, plan the cut, re-encode the head with the codec engine, copy the rest, write
//! `clip.mp4` and its playlist.
//!
//! # One file, two outputs
//! `clip.mp4` is a fragmented MP4: the recording's init segment (its sample entry
//! renamed `avc3`), then one `moof`+`mdat` per ~2 s, each starting at a keyframe. It is
//! played progressively as it is (ffmpeg, browsers, any player that knows fragmented
//! MP4), and `index.m3u8` is a VOD playlist over byte ranges of that same file
//! (`EXT-X-MAP` + `EXT-X-BYTERANGE`), so nothing is stored twice.
//!
//! # Parameter sets (why `avc3`)
//! The re-encoded head has x264's SPS/PPS, the copied rest the source's. `avc3` says the
//! parameter sets are in band: the head's first sample carries x264's, and every copied
//! keyframe carries the source's (from the recording's `avcC`), so a decoder (or an HLS
//! player that starts at any segment) always has the sets of the pictures it decodes.
//! The alternatives cost more: two sample entries in `stsd` need `sample_description_index`
//! switching in `tfhd`, which fragmented-MP4 players support unevenly, and HLS would need
//! two init segments and an `EXT-X-DISCONTINUITY` inside a 10-second clip. The resolution
//! is the source's, the timeline continuous, so no discontinuity is needed.
//!
//! # Timeline
//! The clip starts at 0 with its first frame. The head is encoded without B-frames
//! (`dts = pts`); the copied samples keep their composition offsets less the copied
//! keyframe's (negative offsets, `trun` v1), so decode times increase across the seam.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use weir_cmaf::{FragmentTrack, Sample, fragment};
use weir_media::{Codec, Frame, TIMESCALE, TrackId, VideoConfig};

use super::ClipError;
use super::cut::{self, At};
use super::fmp4::{self, ReadSample};
use crate::recorder::index::Index;

/// The MP4 file of a clip, inside its directory.
pub const MP4_FILE: &str = "clip.mp4";
/// The playlist of a clip, inside its directory.
pub const PLAYLIST_FILE: &str = "index.m3u8";
/// Fragment length aimed at (copied fragments start at the first keyframe after it).
const FRAGMENT_TICKS: i64 = 2 * TIMESCALE as i64;
/// x264 constant quantizer of heads: close to the source at broadcast bitrates.
const HEAD_QUANTIZER: u32 = 18;

/// What to cut.
#[derive(Debug, Clone)]
pub struct ClipJob {
    /// The clip id (its directory name).
    pub id: String,
    /// Start, ms from the recording's first video frame.
    pub start_ms: u64,
    /// End (exclusive), ms; clamped to what is recorded.
    pub end_ms: u64,
    /// Longest clip accepted, ms.
    pub max_ms: u64,
    /// The channel whose playback token the clip needs (a clip of a signed recording),
    /// written beside it as [`SIGNED_FILE`].
    pub signed: Option<String>,
}

/// A made clip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClipMade {
    /// Its duration, ms (first frame to the end of the last).
    pub duration_ms: u64,
    /// Frames re-encoded (0 when the start is on a keyframe).
    pub reencoded_frames: usize,
    /// Size of `clip.mp4`.
    pub bytes: u64,
}

struct Tracks {
    init: Bytes,
    init_n: u64,
    video: fmp4::InitTrack,
    config: VideoConfig,
    audio: Option<fmp4::InitTrack>,
}

fn read(path: &Path) -> Result<Bytes, ClipError> {
    std::fs::read(path)
        .map(Bytes::from)
        .map_err(|e| ClipError::Io(format!("{}: {e}", path.display())))
}

fn tracks(dir: &Path, init_n: u64) -> Result<Tracks, ClipError> {
    let init = read(&dir.join(format!("init-{init_n}.mp4")))?;
    let all = fmp4::read_init(&init)?;
    let video = all
        .iter()
        .find(|t| t.video)
        .cloned()
        .ok_or(ClipError::Unsupported("the recording has no video"))?;
    let Some((record, width, height)) = video.avc.clone() else {
        return Err(ClipError::Unsupported(
            "clips are cut from H.264 video only",
        ));
    };
    if video.timescale != TIMESCALE {
        return Err(ClipError::Unsupported("video timescale is not 90 kHz"));
    }
    let audio = all.iter().find(|t| !t.video).cloned();
    Ok(Tracks {
        init,
        init_n,
        video,
        config: VideoConfig {
            codec: Codec::H264,
            width,
            height,
            record,
        },
        audio,
    })
}

/// The recording's samples of segments `segs`, split into video and audio (decode order).
fn samples(
    dir: &Path,
    index: &Index,
    segs: std::ops::Range<usize>,
    t: &Tracks,
) -> Result<(Vec<ReadSample>, Vec<ReadSample>), ClipError> {
    let (mut v, mut a) = (Vec::new(), Vec::new());
    for s in &index.segments[segs] {
        if s.init != t.init_n {
            return Err(ClipError::Unsupported(
                "the recording's tracks change inside the clip",
            ));
        }
        let bytes = read(&dir.join(format!("seg-{}.m4s", s.msn)))?;
        for x in fmp4::read_segment(&bytes)? {
            if x.track == t.video.id {
                v.push(x);
            } else if t.audio.as_ref().is_some_and(|a| a.id == x.track) {
                a.push(x);
            }
        }
    }
    Ok((v, a))
}

/// Segment index range to read for `[start, end)` ms: from the last segment that starts
/// with a keyframe at or before the start (minus a segment of margin for B-frame
/// reordering), to the first segment starting after the end.
pub(crate) fn segment_range(index: &Index, start_ms: u64, end_ms: u64) -> std::ops::Range<usize> {
    let first = index.segments.first().map_or(0, |s| s.start);
    let ms = |s: &crate::recorder::index::SegmentEntry| {
        (s.start.saturating_sub(first)).saturating_mul(1000) / u64::from(s.timescale.max(1))
    };
    let mut from = 0;
    for (i, s) in index.segments.iter().enumerate() {
        if ms(s) <= start_ms && s.independent {
            from = i;
        }
    }
    from = from.saturating_sub(1);
    let to = index
        .segments
        .iter()
        .position(|s| ms(s) > end_ms + 1000)
        .unwrap_or(index.segments.len());
    from..to.max(from + 1).min(index.segments.len())
}

/// Length-prefixed SPS and PPS of an avcC, `length_size`-byte lengths.
fn parameter_sets(record: &[u8], length_size: usize) -> Bytes {
    let mut out = Vec::new();
    if let Ok((sps, pps)) = weir_media::parse_avcc(record) {
        for n in sps.iter().chain(pps.iter()) {
            out.extend_from_slice(&(n.len() as u64).to_be_bytes()[8 - length_size..]);
            out.extend_from_slice(n);
        }
    }
    Bytes::from(out)
}

/// The init segment with its `avc1` sample entry renamed `avc3` (parameter sets in band).
fn avc3_init(init: &[u8]) -> Bytes {
    let mut b = init.to_vec();
    if let Some(stsd) = b.windows(4).position(|w| w == b"stsd")
        && let Some(at) = b[stsd..].windows(4).position(|w| w == b"avc1")
    {
        b[stsd + at..stsd + at + 4].copy_from_slice(b"avc3");
    }
    Bytes::from(b)
}

/// An output sample on the clip's timeline.
struct Out {
    dts: i64,
    pts: i64,
    keyframe: bool,
    data: Bytes,
}

/// Makes the clip `job` of the recording in `dir` (its durable `index`) into `out_dir`
/// (created; replaced atomically on success). Blocking.
pub fn make(
    dir: &Path,
    index: &Index,
    job: &ClipJob,
    out_dir: &Path,
) -> Result<ClipMade, ClipError> {
    if job.end_ms <= job.start_ms {
        return Err(ClipError::Window("the end must be after the start".into()));
    }
    if job.end_ms - job.start_ms > job.max_ms {
        return Err(ClipError::Window(format!(
            "clips are at most {} s long",
            job.max_ms / 1000
        )));
    }
    let recorded = index.duration_ms();
    if job.start_ms >= recorded {
        return Err(ClipError::Window(format!(
            "the start is past what is recorded ({recorded} ms)"
        )));
    }
    let end_ms = job.end_ms.min(recorded);
    let first = index
        .segments
        .first()
        .ok_or(ClipError::Window("nothing recorded yet".into()))?;
    let t = tracks(dir, first.init)?;
    let length_size = usize::from(t.config.record.get(4).map_or(3, |b| b & 3)) + 1;
    // The recording's time 0: its first video frame.
    let (v0, _) = samples(dir, index, 0..1, &t)?;
    let t0 = v0
        .iter()
        .map(|s| s.pts)
        .min()
        .ok_or(ClipError::Unsupported("the recording has no video frame"))?;
    let range = segment_range(index, job.start_ms, end_ms);
    let t = tracks(dir, index.segments[range.start].init)?;
    let (video, audio) = samples(dir, index, range, &t)?;
    let ticks = |ms: u64| (t0 + ms * u64::from(TIMESCALE) / 1000) as i64;
    let (start, end) = (ticks(job.start_ms), ticks(end_ms));
    let at: Vec<At> = video
        .iter()
        .map(|s| At {
            pts: s.pts as i64,
            dts: s.dts as i64,
            keyframe: s.keyframe,
        })
        .collect();
    let plan = cut::plan(&at, start, end)?;
    let origin = plan.start_pts;
    let mut out: Vec<Out> = Vec::new();
    if plan.reencodes() {
        let frames: Vec<Frame> = video[plan.head.0..plan.head.1]
            .iter()
            .map(|s| Frame {
                track: TrackId::VIDEO,
                dts: s.dts as i64,
                pts: s.pts as i64,
                keyframe: s.keyframe,
                data: s.data.clone(),
            })
            .collect();
        let head = weir_codec::reencode_head(&t.config, &frames, origin, HEAD_QUANTIZER)?;
        for h in head.into_iter().filter(|h| h.pts < end) {
            out.push(Out {
                dts: h.pts - origin,
                pts: h.pts - origin,
                keyframe: h.keyframe,
                data: h.data,
            });
        }
    }
    let reencoded = out.len();
    if plan.copy.0 < plan.copy.1 {
        let k = &at[plan.copy.0];
        let shift = k.pts - k.dts;
        let sets = parameter_sets(&t.config.record, length_size);
        for (s, x) in video[plan.copy.0..plan.copy.1]
            .iter()
            .zip(&at[plan.copy.0..])
        {
            let data = if x.keyframe {
                Bytes::from([sets.as_ref(), s.data.as_ref()].concat())
            } else {
                s.data.clone()
            };
            out.push(Out {
                dts: x.dts + shift - origin,
                pts: x.pts - origin,
                keyframe: x.keyframe,
                data,
            });
        }
    }
    let Some(last) = out.iter().map(|o| o.pts).max() else {
        return Err(cut::CutError::Empty.into());
    };
    let frame = out
        .windows(2)
        .map(|w| w[1].dts - w[0].dts)
        .filter(|&d| d > 0)
        .min()
        .unwrap_or(3000);
    let duration_ticks = (last + frame).max(1);
    // Audio inside [first frame, last frame's end), on the same timeline.
    let audio_out: Vec<(i64, u32, Bytes)> = match &t.audio {
        Some(a) => {
            let ats = i128::from(a.timescale);
            let to_audio = |ticks: i64| (i128::from(ticks) * ats / i128::from(TIMESCALE)) as i64;
            let (a0, a1) = (to_audio(origin), to_audio(origin + duration_ticks));
            audio
                .iter()
                .filter(|s| (s.pts as i64) >= a0 && (s.pts as i64) < a1)
                .map(|s| (s.dts as i64 - a0, s.duration, s.data.clone()))
                .collect()
        }
        None => Vec::new(),
    };
    let marker = job.signed.as_deref().map(str::as_bytes);
    write(&t, out, audio_out, frame, duration_ticks, marker, out_dir).map(|bytes| ClipMade {
        duration_ms: u64::try_from(duration_ticks).unwrap_or(0) * 1000 / u64::from(TIMESCALE),
        reencoded_frames: reencoded,
        bytes,
    })
}

/// Writes `clip.mp4`, `index.m3u8` and the `signed` marker (if any) into a temporary
/// directory, then renames it to `out_dir`: a clip is never served without its marker.
#[allow(clippy::too_many_arguments)]
fn write(
    t: &Tracks,
    video: Vec<Out>,
    audio: Vec<(i64, u32, Bytes)>,
    frame: i64,
    duration_ticks: i64,
    signed: Option<&[u8]>,
    out_dir: &Path,
) -> Result<u64, ClipError> {
    let audio_ts = t.audio.as_ref().map_or(48_000, |a| i64::from(a.timescale));
    // Fragment boundaries: the first sample, and every keyframe FRAGMENT_TICKS after the
    // previous boundary.
    let mut bounds = vec![0usize];
    for (i, o) in video.iter().enumerate().skip(1) {
        let prev = &video[bounds[bounds.len() - 1]];
        if o.keyframe && o.dts - prev.dts >= FRAGMENT_TICKS {
            bounds.push(i);
        }
    }
    bounds.push(video.len());
    let init = avc3_init(&t.init);
    let mut file: Vec<u8> = init.to_vec();
    let mut segments: Vec<(u64, u64, f64)> = Vec::new(); // offset, length, seconds
    let mut ai = 0usize;
    for (n, w) in bounds.windows(2).enumerate() {
        let (a, b) = (w[0], w[1]);
        let v: Vec<Sample> = (a..b)
            .map(|i| {
                let o = &video[i];
                let next = video.get(i + 1).map_or(o.dts + frame, |x| x.dts);
                Sample {
                    duration: u32::try_from(next - o.dts).unwrap_or(0),
                    composition_offset: i32::try_from(o.pts - o.dts).unwrap_or(0),
                    keyframe: o.keyframe,
                    data: o.data.clone(),
                }
            })
            .collect();
        let end_ticks = video.get(b).map_or(duration_ticks, |x| x.dts);
        let end_audio = end_ticks * audio_ts / i64::from(TIMESCALE);
        let a_first = ai;
        let mut aud = Vec::new();
        while ai < audio.len() && (audio[ai].0 < end_audio || b == video.len()) {
            aud.push(Sample {
                duration: audio[ai].1,
                composition_offset: 0,
                keyframe: true,
                data: audio[ai].2.clone(),
            });
            ai += 1;
        }
        let mut tracks = vec![FragmentTrack {
            track_id: t.video.id,
            base_decode_time: u64::try_from(video[a].dts).unwrap_or(0),
            samples: &v,
        }];
        if let Some(at) = &t.audio
            && !aud.is_empty()
        {
            tracks.push(FragmentTrack {
                track_id: at.id,
                base_decode_time: u64::try_from(audio[a_first].0).unwrap_or(0),
                samples: &aud,
            });
        }
        let frag = fragment(u32::try_from(n + 1).unwrap_or(u32::MAX), &tracks).to_bytes();
        let seconds = (end_ticks - video[a].dts.max(0)) as f64 / f64::from(TIMESCALE);
        segments.push((file.len() as u64, frag.len() as u64, seconds));
        file.extend_from_slice(&frag);
    }
    let playlist = playlist(init.len() as u64, &segments);
    let tmp = out_dir.with_extension("tmp");
    let _ = std::fs::remove_dir_all(&tmp);
    let io = |e: std::io::Error| ClipError::Io(format!("{}: {e}", tmp.display()));
    std::fs::create_dir_all(&tmp).map_err(io)?;
    let files = [
        Some((MP4_FILE, &file[..])),
        Some((PLAYLIST_FILE, playlist.as_bytes())),
        signed.map(|s| (SIGNED_FILE, s)),
    ];
    for (name, bytes) in files.into_iter().flatten() {
        let mut f = std::fs::File::create(tmp.join(name)).map_err(io)?;
        f.write_all(bytes).map_err(io)?;
        f.sync_all().map_err(io)?;
    }
    let _ = std::fs::remove_dir_all(out_dir);
    std::fs::rename(&tmp, out_dir).map_err(io)?;
    Ok(file.len() as u64)
}

/// The clip's VOD playlist: byte ranges of `clip.mp4`.
fn playlist(init_len: u64, segments: &[(u64, u64, f64)]) -> String {
    use std::fmt::Write as _;
    let target = segments
        .iter()
        .map(|s| s.2.ceil() as u64)
        .max()
        .unwrap_or(1)
        .max(1);
    let mut p = String::new();
    let _ = write!(
        p,
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:{target}\n#EXT-X-PLAYLIST-TYPE:VOD\n\
         #EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-MAP:URI=\"{MP4_FILE}\",BYTERANGE=\"{init_len}@0\"\n"
    );
    for (off, len, secs) in segments {
        let _ = write!(
            p,
            "#EXTINF:{secs:.5},\n#EXT-X-BYTERANGE:{len}@{off}\n{MP4_FILE}\n"
        );
    }
    p.push_str("#EXT-X-ENDLIST\n");
    p
}

/// The marker beside a clip of a signed recording: the channel whose token it needs.
pub const SIGNED_FILE: &str = "signed";

/// Where clip `id`'s files go under the clips root.
pub fn clip_dir(root: &Path, id: &str) -> PathBuf {
    root.join(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn playlist_is_byte_ranges_of_one_file() {
        let p = playlist(700, &[(700, 1000, 1.5), (1700, 500, 2.0)]);
        assert!(p.contains("#EXT-X-MAP:URI=\"clip.mp4\",BYTERANGE=\"700@0\""));
        assert!(p.contains("#EXT-X-BYTERANGE:1000@700\nclip.mp4"));
        assert!(p.contains("#EXT-X-BYTERANGE:500@1700\nclip.mp4"));
        assert!(p.contains("#EXT-X-TARGETDURATION:2\n"));
        assert!(p.ends_with("#EXT-X-ENDLIST\n"));
    }

    #[test]
    fn avc3_renames_the_sample_entry_only() {
        let b = avc3_init(b"ftypavc1moov....stsd....avc1avcC");
        assert_eq!(&b[..], b"ftypavc1moov....stsd....avc3avcC");
    }
}
