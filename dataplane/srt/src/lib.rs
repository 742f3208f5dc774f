//! SRT ingest for weir: a sans-IO listener between one UDP socket's datagrams and the
//! messages its callers send.
//!
//! Owns: the multiplexed listener ([`SrtListener`]: session table, bounds, access control
//! verdicts, per-connection statistics, rejection codes) and the stream id syntax
//! ([`StreamRequest`]: plain keys and `#!::r=…,m=publish`). The wire protocol itself —
//! HSv5 handshake, ACK/NAK retransmission, TSBPD release, too-late packet drop — is
//! srt-protocol's. What the messages carry (MPEG-TS) is not this crate's business: the
//! node hands them to its demuxer.
//!
//! Encryption (passphrases) is not offered yet: a caller that sends a key exchange is
//! refused with `SRT_REJ_UNSECURE` (1011).

mod listener;
mod stats;
mod streamid;

pub use listener::{RejectCode, SrtConfig, SrtEvent, SrtListener};
pub use stats::{ConnStats, ListenerCounters};
pub use streamid::{MAX_STREAM_ID, Mode, StreamIdError, StreamRequest};
