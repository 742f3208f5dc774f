//! Clips: the binary provides a clip maker that cuts a highlight of a recording on the
//! node that holds the recording (the node's `clips` module: frame-accurate start,
//! head re-encoded, the rest copied) and removes a clip's files, and a recording's own
//! files when its owner deletes it (it is the control plane's hand on recordings' media).
//!
//! The control plane owns the clip records (`createClip` stores one as pending, asks
//! the maker, then marks it ready or failed); the maker only does the media work.

use std::future::Future;
use std::pin::Pin;

/// What the maker made: the clip's real duration (it starts on the first frame at or
/// after the asked start and ends with the last frame before the asked end).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MadeClip {
    /// First frame to the end of the last, ms.
    pub duration_ms: u64,
}

/// What a make call answers: `Err` with a reason safe to show.
pub type ClipFuture<T> = Pin<Box<dyn Future<Output = Result<T, String>> + Send>>;

/// Cuts and removes clips of recordings.
pub trait ClipMaker: Send + Sync + 'static {
    /// Cuts `[start_ms, end_ms)` of recording `recording_id` into clip `clip_id`.
    fn make(
        &self,
        recording_id: &str,
        clip_id: &str,
        start_ms: u64,
        end_ms: u64,
    ) -> ClipFuture<MadeClip>;

    /// Removes clip `clip_id` (of recording `recording_id`)'s files (no error when they
    /// are already gone).
    fn delete(&self, recording_id: &str, clip_id: &str) -> ClipFuture<()>;

    /// Removes finished recording `recording_id`'s files on its node.
    fn delete_recording(&self, recording_id: &str) -> ClipFuture<()>;

    /// The longest clip the maker cuts, ms.
    fn max_ms(&self) -> u64;
}
