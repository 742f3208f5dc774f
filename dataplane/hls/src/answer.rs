//! What the HTTP layer gets back from a [`crate::LiveStream`].

use bytes::Bytes;
use weir_cmaf::Rope;

/// The answer to a media playlist request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlaylistAnswer {
    /// The playlist text (`application/vnd.apple.mpegurl`).
    Ready(Bytes),
    /// A blocking reload that cannot be answered yet: wait until
    /// [`crate::LiveStream::push_frame`] returns true (or the stream pauses or ends) and
    /// ask again; give up with 503 after three target durations.
    Wait,
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
    /// one ahead of it): wait as for [`PlaylistAnswer::Wait`] and ask again.
    Wait,
    /// Unknown, malformed, or no longer kept (404).
    Gone,
}
