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
    /// Packets given up on: not recovered before their TSBPD time (too-late drop).
    pub dropped: u64,
    /// Smoothed round-trip time.
    pub rtt: Duration,
}

impl From<&SocketStatistics> for ConnStats {
    fn from(s: &SocketStatistics) -> Self {
        Self {
            packets: s.rx_data,
            bytes: s.rx_bytes,
            retransmitted: s.rx_retransmit_data,
            dropped: s.rx_dropped_data,
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
