//! "Test destination": the binary provides a prober that connects to a destination and
//! goes through the RTMP handshake and `publish` with its key, then leaves without
//! sending media (the data plane's relay code, with its address policy).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// What a probe answers: how long the destination took to accept the publish, or why
/// it did not (safe to show: never the key).
pub type ProbeFuture = Pin<Box<dyn Future<Output = Result<Duration, String>> + Send>>;

/// Checks a destination without going live.
pub trait DestinationProber: Send + Sync + 'static {
    /// Connects to `url`, publishes `stream_key`, and unpublishes at once.
    fn probe(&self, url: &str, stream_key: &str) -> ProbeFuture;
}
