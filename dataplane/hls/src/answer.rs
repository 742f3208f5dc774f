//! What the HTTP layer gets back from a [`crate::Snapshot`], and the stream positions
//! that waiting requests are parked under.

use bytes::Bytes;
use weir_cmaf::Rope;

/// How far a stream has got: the segment in progress and the parts it has so far.
///
/// `msn` is the media sequence number of the segment in progress (or of the next one,
/// between segments); `part` is how many parts that segment has. Positions only grow,
/// and compare lexicographically (`msn`, then `part`), so:
///
/// - part `i` of segment `m` has been reached iff `position >= (m, i + 1)`, which
///   includes every position with `msn > m` (segment `m` may then have ended with fewer
///   parts: asking again answers [`ObjectAnswer::Gone`]);
/// - segment `m` is complete iff `position >= (m + 1, 0)`.
///
/// A waiting request is parked under the position its [`PlaylistAnswer::Wait`] or
/// [`ObjectAnswer::Wait`] names and woken once [`crate::Snapshot::position`] reaches
/// it (or the stream ends: every answer is final then).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Position {
    /// Media sequence number of the segment in progress.
    pub msn: u64,
    /// Parts the segment in progress has so far.
    pub part: u64,
}

impl Position {
    /// The position `(msn, part)`.
    pub const fn new(msn: u64, part: u64) -> Self {
        Self { msn, part }
    }

    /// The position at which part `idx` of segment `msn` has been made: `(msn, idx + 1)`.
    pub const fn after_part(msn: u64, idx: u64) -> Self {
        Self::new(msn, idx.saturating_add(1))
    }

    /// The position at which segment `msn` is complete: `(msn + 1, 0)`.
    pub const fn after_segment(msn: u64) -> Self {
        Self::new(msn.saturating_add(1), 0)
    }
}

/// The answer to a media playlist request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlaylistAnswer {
    /// The playlist text (`application/vnd.apple.mpegurl`).
    Ready(Bytes),
    /// A blocking reload that cannot be answered yet: park the request until the stream
    /// reaches this position (`_HLS_msn=M&_HLS_part=P`: `(M, P + 1)`; `_HLS_msn=M`
    /// alone: `(M + 1, 0)`), or ends, and ask again; give up with 503 after three target
    /// durations.
    Wait(Position),
    /// The request asks too far ahead of the live edge (400).
    BadRequest(&'static str),
    /// No playlist exists yet (404).
    NotReady,
}

/// What kind of object an [`ObjectAnswer::Ready`] holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    /// An initialisation segment (`video/mp4`); immutable, cacheable for long.
    Init,
    /// A partial segment (`video/mp4`, a CMAF chunk); immutable once it exists.
    Part,
    /// A full media segment (`video/mp4`); immutable once it exists.
    Segment,
}

/// The answer to a request for an init segment, part or segment by file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectAnswer {
    /// The object's bytes (shared pieces: write them with vectored I/O).
    Ready(Rope, ObjectKind),
    /// The object is the next one (the preload-hinted part, or a part or segment at most
    /// one ahead of it): park the request until the stream reaches this position
    /// (`part-M-I`: `(M, I + 1)`, so part 0 of the next segment waits for `(M + 1, 1)`;
    /// `seg-M`: `(M + 1, 0)`), or ends, and ask again.
    Wait(Position),
    /// Unknown, malformed, or no longer kept (404).
    Gone,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_order_lexicographically() {
        let p = Position::new(5, 2);
        assert!(p >= Position::after_part(5, 1));
        assert!(p < Position::after_part(5, 2));
        assert!(
            p >= Position::after_part(4, 40),
            "a later segment passes any part"
        );
        assert!(p >= Position::after_segment(4));
        assert!(p < Position::after_segment(5));
        assert_eq!(
            Position::after_part(u64::MAX, u64::MAX),
            Position::new(u64::MAX, u64::MAX)
        );
    }
}
