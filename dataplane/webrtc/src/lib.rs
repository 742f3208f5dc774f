//! WebRTC for weir: WHIP ingest and WHEP playback sessions, sans-IO.
//!
//! Owns: answering offers (ICE-lite, DTLS-SRTP, H.264 + Opus, simulcast receive) with
//! [str0m](https://github.com/algesten/str0m), converting between RTP frames and bus
//! [`weir_media::Frame`]s (H.264 Annex B ⇄ AVCC and avcC records, RTP media time ⇄ the bus
//! timeline per track), and the small amount of STUN needed to route a datagram to its
//! session. Drivers feed datagrams and timeouts in (`handle_datagram(now, …)`,
//! `handle_timeout(now)`) and send what `poll_transmit()` returns; no sockets, clocks or
//! tasks live here, so sessions run in virtual time in tests.
//!
//! - [`WhipSession`]: a publisher; `poll_event()` yields [`IngestEvent`]s (tracks and
//!   frames) for a bus publisher. Each simulcast layer is its own video track.
//! - [`WhepSession`]: a viewer; `send_frame()` takes bus frames; `poll_event()` says when
//!   it is connected and when the viewer wants a key frame.

mod clock;
mod error;
pub mod h264;
mod ingest;
mod layers;
mod playback;
mod session;
pub mod stun;

pub use clock::{MAX_DRIFT, SessionClock, TIMELINE_START, TrackClock};
pub use error::WebrtcError;
pub use ingest::{IngestEvent, KEYFRAME_REQUEST_EVERY, MAX_LAYERS, WhipSession};
pub use layers::{Forward, HEADROOM, LayerSelector, UP_HOLD};
pub use playback::{PlaybackEvent, WhepSession};
pub use session::{Bwe, CONNECT_TIMEOUT, Datagram, MAX_OFFER_BYTES, RtcSettings};
