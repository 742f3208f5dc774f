//! A finished recording's poster and thumbnails, made on a thread of their own after it
//! ends (never on a shard, never on the writer thread):
//!
//! ```text
//! <recording>/poster.jpg       640 px wide, the keyframe nearest a tenth of the way in
//! <recording>/thumb-<n>.jpg    160 px wide, the first keyframe of each 10 s (at most 360)
//! <recording>/thumbs.vtt       WebVTT: each thumbnail's time range → its file
//! ```
//! The VTT is the thumbnail track players (video.js, Shaka, JW) read for seek-bar
//! previews; the origin serves all three under `/vod/<id>/`. Written temp-then-rename,
//! the VTT last, so a reader sees complete files or none.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use weir_media::{Codec, Frame, TIMESCALE, TrackId, TrackKind, VideoConfig};

use super::index::Index;
use crate::clips::fmp4;

/// The poster's width.
pub const POSTER_WIDTH: u32 = 640;
/// The thumbnails' width.
pub const THUMB_WIDTH: u32 = 160;
/// One thumbnail per this many seconds.
pub const THUMB_EVERY_S: u64 = 10;
/// At most this many thumbnails (an hour at 10 s; longer recordings space them out).
pub const MAX_THUMBS: usize = 360;
/// The poster's file.
pub const POSTER: &str = "poster.jpg";
/// The thumbnail track's file.
pub const VTT: &str = "thumbs.vtt";

/// Why a recording got no pictures.
#[derive(Debug, thiserror::Error)]
pub enum ThumbError {
    /// Reading the recording failed.
    #[error("{0}")]
    Read(String),
    /// Its video is not H.264 (or there is none).
    #[error("no H.264 video to picture")]
    NoVideo,
    /// The codec engine failed.
    #[error("{0}")]
    Codec(#[from] weir_codec::CodecError),
    /// The recording is being deleted.
    #[error("cancelled: the recording is being deleted")]
    Cancelled,
}

/// A keyframe found in the recording: presentation time (ticks from the first frame).
struct Key {
    at: u64,
    frame: Frame,
}

/// Makes the poster, thumbnails and VTT of the recording in `dir`; returns how many
/// thumbnails. Gives up (before writing anything more) once `cancel` is set.
pub fn make(dir: &Path, index: &Index, cancel: &AtomicBool) -> Result<usize, ThumbError> {
    let go_on = || {
        if cancel.load(Ordering::Acquire) {
            Err(ThumbError::Cancelled)
        } else {
            Ok(())
        }
    };
    let read = |name: String| {
        std::fs::read(dir.join(&name))
            .map(Bytes::from)
            .map_err(|e| ThumbError::Read(format!("{name}: {e}")))
    };
    let Some(&(init_n, _)) = index.inits.first() else {
        return Err(ThumbError::NoVideo);
    };
    let tracks = fmp4::read_init(&read(format!("init-{init_n}.mp4"))?)
        .map_err(|e| ThumbError::Read(e.to_string()))?;
    let video = tracks.iter().find(|t| t.video).ok_or(ThumbError::NoVideo)?;
    let (record, width, height) = video.avc.clone().ok_or(ThumbError::NoVideo)?;
    let config = VideoConfig {
        codec: Codec::H264,
        width,
        height,
        record,
    };
    let scale = |t: u64| t * u64::from(TIMESCALE) / u64::from(video.timescale.max(1));
    let duration_s = index.segments.iter().map(|s| s.duration_us).sum::<u64>() / 1_000_000;
    let every = THUMB_EVERY_S.max(duration_s.div_ceil(MAX_THUMBS as u64)) * u64::from(TIMESCALE);
    // The first keyframe of each `every`, from the segments of the first init.
    let mut keys: Vec<Key> = Vec::new();
    let mut origin = None;
    for s in index.segments.iter().filter(|s| s.init == init_n) {
        go_on()?;
        let samples = fmp4::read_segment(&read(format!("seg-{}.m4s", s.msn))?)
            .map_err(|e| ThumbError::Read(e.to_string()))?;
        for x in samples.into_iter().filter(|x| x.track == video.id) {
            let pts = scale(x.pts);
            let origin = *origin.get_or_insert(pts);
            let at = pts.saturating_sub(origin);
            if x.keyframe && keys.last().is_none_or(|k| at / every > k.at / every) {
                keys.push(Key {
                    at,
                    frame: Frame {
                        track: TrackId::new(TrackKind::Video, 0),
                        dts: 0,
                        pts: 0,
                        keyframe: true,
                        data: x.data,
                    },
                });
            }
        }
    }
    if keys.is_empty() {
        return Err(ThumbError::NoVideo);
    }
    go_on()?;
    let frames: Vec<Frame> = keys.iter().map(|k| k.frame.clone()).collect();
    let thumbs = weir_codec::keyframe_jpegs(&config, &frames, THUMB_WIDTH)?;
    let tenth = duration_s * u64::from(TIMESCALE) / 10;
    let poster_key = keys
        .iter()
        .min_by_key(|k| k.at.abs_diff(tenth))
        .map(|k| k.frame.clone())
        .into_iter()
        .collect::<Vec<_>>();
    let poster = weir_codec::keyframe_jpegs(&config, &poster_key, POSTER_WIDTH)?;
    let write = |name: &str, data: &[u8]| {
        go_on()?;
        let tmp = dir.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, data)
            .and_then(|()| std::fs::rename(&tmp, dir.join(name)))
            .map_err(|e| ThumbError::Read(format!("{name}: {e}")))
    };
    for (n, jpeg) in thumbs.iter().enumerate() {
        write(&format!("thumb-{n}.jpg"), jpeg)?;
    }
    if let Some(p) = poster.first() {
        write(POSTER, p)?;
    }
    let end = duration_s.max(1) * u64::from(TIMESCALE);
    write(
        VTT,
        vtt(&keys.iter().map(|k| k.at).collect::<Vec<_>>(), end).as_bytes(),
    )?;
    Ok(thumbs.len())
}

/// The WebVTT thumbnail track: cue `n` runs from thumbnail `n`'s time to the next one's
/// (the last to `end`), all in ticks.
fn vtt(starts: &[u64], end: u64) -> String {
    let mut s = String::from("WEBVTT\n");
    for (n, &from) in starts.iter().enumerate() {
        let to = starts.get(n + 1).copied().unwrap_or(end).max(from + 1);
        let _ = write!(s, "\n{} --> {}\nthumb-{n}.jpg\n", stamp(from), stamp(to));
    }
    s
}

/// `HH:MM:SS.mmm` of `ticks`.
fn stamp(ticks: u64) -> String {
    let ms = ticks * 1000 / u64::from(TIMESCALE);
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

/// Whether `name` is one of the pictures' files (for the origin).
pub fn is_picture_file(name: &str) -> bool {
    name == POSTER
        || name == VTT
        || name
            .strip_prefix("thumb-")
            .and_then(|r| r.strip_suffix(".jpg"))
            .is_some_and(|n| !n.is_empty() && n.len() <= 4 && n.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vtt_covers_the_recording_cue_by_cue() {
        let t = u64::from(TIMESCALE);
        let v = vtt(&[0, 10 * t, 20 * t], 25 * t + t / 2);
        assert_eq!(
            v,
            "WEBVTT\n\n00:00:00.000 --> 00:00:10.000\nthumb-0.jpg\n\
             \n00:00:10.000 --> 00:00:20.000\nthumb-1.jpg\n\
             \n00:00:20.000 --> 00:00:25.500\nthumb-2.jpg\n"
        );
        assert_eq!(stamp(3_723_456 * t / 1000), "01:02:03.456");
    }

    #[test]
    fn only_the_pictures_are_served() {
        for ok in ["poster.jpg", "thumbs.vtt", "thumb-0.jpg", "thumb-359.jpg"] {
            assert!(is_picture_file(ok), "{ok}");
        }
        for bad in [
            "thumb-.jpg",
            "thumb-a.jpg",
            "thumb-12345.jpg",
            "../poster.jpg",
            "index.txt",
        ] {
            assert!(!is_picture_file(bad), "{bad}");
        }
    }
}
