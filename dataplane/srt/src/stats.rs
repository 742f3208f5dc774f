//! What the listener counts: per connection (from the protocol's statistics) and for the
//! listener as a whole.

use std::time::Duration;

use srt_protocol::statistics::SocketStatistics;

/// One connection's receive statistics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnStats {
    /// Data packets received (retransmissions included).
    pub packets: u64,
    /// Payload bytes received.
    pub bytes: u64,
    /// Retransmitted packets received.
    pub retransmitted: u64,
    /// Packets lost for good: not recovered before their TSBPD time (too-late drop), or
    /// given up by the sender (message drop request). What the application never got.
    pub dropped: u64,
    /// Packets that arrived after their place in the stream had been released or given
    /// up: mostly second copies of a retransmission. The protocol library counts these
    /// as drops too; they cost nothing but bandwidth, so they are kept apart here.
    pub late: u64,
    /// Smoothed round-trip time.
    pub rtt: Duration,
}

impl ConnStats {
    /// From the library's statistics and the listener's count of data packets the
    /// library refused on arrival (`late`, see [`ConnStats::late`]).
    pub(crate) fn new(s: &SocketStatistics, late: u64) -> Self {
        Self {
            packets: s.rx_data,
            bytes: s.rx_bytes,
            retransmitted: s.rx_retransmit_data,
            dropped: s.rx_dropped_data.saturating_sub(late),
            late,
            rtt: s.rx_average_rtt,
        }
    }
}

/// Listener-wide counters since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListenerCounters {
    /// Datagrams that did not parse as SRT.
    pub malformed: u64,
    /// Non-handshake datagrams from addresses with no session.
    pub unroutable: u64,
    /// Handshakes ignored because [`crate::SrtConfig::max_pending`] were in progress.
    pub pending_full: u64,
    /// Callers refused.
    pub rejected: u64,
    /// Sessions ended because the protocol library panicked on their input.
    pub panics: u64,
    /// Connections closed because the caller went silent.
    pub idle_closed: u64,
}
