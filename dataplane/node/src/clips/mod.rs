//! Clips: a highlight `[start, end)` of a recording (finished, or still being made),
//! cut frame-accurately and served as HLS and as a progressive MP4.
//!
//! ```text
//! <data_dir>/clips/<clip id>/
//!     clip.mp4      fragmented MP4: the re-encoded head, then the copied rest
//!     index.m3u8    VOD playlist over byte ranges of clip.mp4
//!     signed        for a clip of a signed recording: the channel whose token it needs
//! /clips/<clip id>/index.m3u8, /clips/<clip id>/clip.mp4   (single ranges: 206)
//! /clips/<clip id>/t.<exp>.<sig>/…                         (the same, with a token)
//! ```
//! - `fmp4`: reads the recorder's init and media segments back into samples.
//! - `cut`: the plan (sans-IO): first frame at/after the start, the keyframe after it,
//!   what is re-encoded and what copied.
//! - `make`: does it (blocking, on a thread of its own, never on a shard) with the codec
//!   engine for the head ([`weir_codec::reencode_head`]); `make` documents the file
//!   layout and why parameter sets travel in band (`avc3`).
//!
//! The clip id, like a recording id, is random, and only the channel's members are told
//! it; a clip of a signed recording also needs a playback token for its channel.

pub mod cut;
pub mod fmp4;
pub mod make;

use std::path::PathBuf;
use std::sync::Arc;

pub use make::{ClipJob, ClipMade, MP4_FILE, PLAYLIST_FILE};

use crate::recorder::Recorder;

/// Longest clip by default (10 minutes).
pub const DEFAULT_MAX_MS: u64 = 10 * 60 * 1000;

/// Why a clip could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClipError {
    /// The node does not record, or has no such recording.
    #[error("no such recording on this node")]
    NoRecording,
    /// The asked window is unusable (empty, too long, past the recording).
    #[error("{0}")]
    Window(String),
    /// The recording's media cannot be clipped.
    #[error("unsupported recording: {0}")]
    Unsupported(&'static str),
    /// A recording file is malformed.
    #[error("recording unreadable: {0}")]
    Media(#[from] fmp4::Fmp4Error),
    /// The cut has no frame to show.
    #[error("{0}")]
    Cut(#[from] cut::CutError),
    /// The codec engine failed on the head.
    #[error("re-encoding the clip's head failed: {0}")]
    Codec(#[from] weir_codec::CodecError),
    /// Reading or writing files failed.
    #[error("clip files: {0}")]
    Io(String),
    /// The recording is only in the object store, and its segments could not be
    /// fetched from there.
    #[error("the recording's segments could not be fetched from the record store: {0}")]
    Store(String),
    /// Bad clip id.
    #[error("invalid clip id")]
    BadId,
}

/// The node's clips: where they are written and what they may be.
#[derive(Debug)]
pub struct Clips {
    root: PathBuf,
    recorder: Arc<Recorder>,
    max_ms: u64,
}

impl Clips {
    /// Clips of `recorder`'s recordings, written under `root`.
    pub fn new(root: PathBuf, recorder: Arc<Recorder>, max_ms: u64) -> Arc<Self> {
        Arc::new(Self {
            root,
            recorder,
            max_ms,
        })
    }

    /// The longest clip cut, ms.
    pub fn max_ms(&self) -> u64 {
        self.max_ms
    }

    /// Where clips are written.
    pub fn root(&self) -> &std::path::Path {
        &self.root
    }

    /// Cuts clip `clip_id` of `recording_id` (blocking: call on a thread of its own).
    /// The recording may still be in progress: the window is clamped to what is durable.
    pub fn make_blocking(
        &self,
        recording_id: &str,
        clip_id: &str,
        start_ms: u64,
        end_ms: u64,
    ) -> Result<ClipMade, ClipError> {
        if !crate::recorder::is_safe_id(clip_id) {
            return Err(ClipError::BadId);
        }
        let entry = self
            .recorder
            .catalog()
            .get(recording_id)
            .ok_or(ClipError::NoRecording)?;
        let (index, _finished) = entry.snapshot();
        std::fs::create_dir_all(&self.root)
            .map_err(|e| ClipError::Io(format!("{}: {e}", self.root.display())))?;
        let job = ClipJob {
            id: clip_id.to_owned(),
            start_ms,
            end_ms,
            max_ms: self.max_ms,
            signed: entry.signed.clone(),
        };
        let started = std::time::Instant::now();
        // A recording only in the object store: the segments the cut needs are fetched
        // to a temporary directory first (removed when done).
        let fetched = if entry.is_remote() {
            Some(self.fetch(recording_id, clip_id, &index, start_ms, end_ms)?)
        } else {
            None
        };
        let dir = fetched
            .as_ref()
            .map_or(entry.dir.as_path(), |f| f.0.as_path());
        let r = make::make(dir, &index, &job, &make::clip_dir(&self.root, clip_id));
        match &r {
            Ok(m) => {
                metrics::counter!("weir_clips_total", "result" => "ok").increment(1);
                tracing::info!(
                    clip = clip_id,
                    recording = recording_id,
                    duration_ms = m.duration_ms,
                    reencoded_frames = m.reencoded_frames,
                    bytes = m.bytes,
                    took_ms = started.elapsed().as_millis() as u64,
                    "clip made"
                );
            }
            Err(e) => {
                metrics::counter!("weir_clips_total", "result" => "failed").increment(1);
                tracing::warn!(clip = clip_id, recording = recording_id, error = %e, "clip failed");
            }
        }
        r
    }

    /// Fetches from the object store what clipping `index` from `start_ms` to `end_ms`
    /// reads: its init segments, its first segment (time 0) and the cut's segments.
    fn fetch(
        &self,
        recording_id: &str,
        clip_id: &str,
        index: &crate::recorder::index::Index,
        start_ms: u64,
        end_ms: u64,
    ) -> Result<Fetched, ClipError> {
        let store = self
            .recorder
            .store()
            .ok_or_else(|| ClipError::Store("no record store configured".into()))?;
        let mut names: Vec<String> = index
            .inits
            .iter()
            .map(|(n, _)| format!("init-{n}.mp4"))
            .collect();
        let mut segs: Vec<usize> = Vec::new();
        if !index.segments.is_empty() {
            segs.push(0);
        }
        let recorded = index.duration_ms();
        if start_ms < recorded && end_ms > start_ms && !index.segments.is_empty() {
            segs.extend(make::segment_range(index, start_ms, end_ms.min(recorded)));
        }
        segs.dedup();
        names.extend(
            segs.iter()
                .filter_map(|&i| index.segments.get(i))
                .map(|s| format!("seg-{}.m4s", s.msn)),
        );
        let dir = Fetched(self.root.join(format!(".fetch-{clip_id}")));
        std::fs::create_dir_all(&dir.0)
            .map_err(|e| ClipError::Io(format!("{}: {e}", dir.0.display())))?;
        for name in names {
            let data = store
                .get_blocking(recording_id, &name)
                .map_err(|e| ClipError::Store(format!("{name}: {e}")))?;
            std::fs::write(dir.0.join(&name), &data)
                .map_err(|e| ClipError::Io(format!("{name}: {e}")))?;
        }
        Ok(dir)
    }

    /// Deletes finished recording `id`'s files (queued to the recorder's writer).
    pub fn delete_recording(&self, id: &str) -> Result<(), ClipError> {
        if !crate::recorder::is_safe_id(id) {
            return Err(ClipError::BadId);
        }
        self.recorder.delete(id);
        Ok(())
    }

    /// Deletes clip `id`'s files (blocking).
    pub fn delete_blocking(&self, id: &str) -> Result<(), ClipError> {
        if !crate::recorder::is_safe_id(id) {
            return Err(ClipError::BadId);
        }
        match std::fs::remove_dir_all(make::clip_dir(&self.root, id)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(ClipError::Io(e.to_string())),
        }
    }

    /// The file of clip `id` named `file` (`clip.mp4` or `index.m3u8`) and its size.
    pub fn file(&self, id: &str, file: &str) -> Option<(PathBuf, u64)> {
        if !crate::recorder::is_safe_id(id) || (file != MP4_FILE && file != PLAYLIST_FILE) {
            return None;
        }
        let path = make::clip_dir(&self.root, id).join(file);
        let len = std::fs::metadata(&path).ok()?.len();
        Some((path, len))
    }

    /// The channel whose playback token clip `id` needs, if it is a clip of a signed
    /// recording (read from its marker: written with the clip, never changed).
    pub fn signed(&self, id: &str) -> Option<String> {
        if !crate::recorder::is_safe_id(id) {
            return None;
        }
        let path = make::clip_dir(&self.root, id).join(make::SIGNED_FILE);
        match std::fs::read_to_string(path) {
            Ok(text) => Some(text.trim().to_owned()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            // Unreadable: closed (no token is valid for "-").
            Err(_) => Some("-".to_owned()),
        }
    }
}

/// A recording's segments fetched from the object store for one clip: removed on drop.
struct Fetched(PathBuf);

impl Drop for Fetched {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The origin paths of clip `id`: its playlist and its MP4.
pub fn playback_paths(id: &str) -> (String, String) {
    (
        format!("/clips/{id}/{PLAYLIST_FILE}"),
        format!("/clips/{id}/{MP4_FILE}"),
    )
}
