//! Going live: the program stream forwarded, frame for frame, to the channel.
//!
//! The channel's broadcast is admitted like any ingest (protocol `studio`), so its
//! packager, recorder and relays start as they would for OBS; the forwarder only copies
//! bus events (tracks and frames; the program's encoder already made them what a
//! channel needs) until it is stopped, the program ends, or the node shuts down.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use weir_bus::{BusEvent, Publisher, SubscribeOptions, Subscriber};

use super::StudioError;
use crate::hooks::PublishGrant;
use crate::registry::{Admission, Registry, Stream};
use crate::shutdown::Shutdown;

/// How often the forwarder looks at its stop signals while the program is quiet.
const CHECK_EVERY: Duration = Duration::from_millis(100);

/// A forwarder, admitted and ready to run.
pub(crate) struct ForwardTask {
    registry: Arc<Registry>,
    source: Subscriber,
    stream: Arc<Stream>,
    publisher: Publisher,
    conn: u64,
    stop: Shutdown,
    node: Shutdown,
}

impl ForwardTask {
    /// Subscribes to `program` and admits the grant's channel.
    pub fn admit(
        registry: &Arc<Registry>,
        program: &str,
        grant: PublishGrant,
        stop: Shutdown,
        node: Shutdown,
    ) -> Result<Self, StudioError> {
        let source = registry
            .get(program)
            .filter(|s| !s.is_ended())
            .ok_or_else(|| StudioError::Publish(format!("program {program} is not running")))?;
        let source = source
            .bus
            .subscribe(SubscribeOptions::default())
            .map_err(|e| StudioError::Publish(e.to_string()))?;
        let conn = crate::rtmp_conn::next_connection_id();
        let admission = registry
            .begin_publish(
                &grant.channel,
                &grant.channel_id,
                conn,
                stop.clone(),
                "studio",
                grant.transcode,
            )
            .map_err(|r| StudioError::Publish(r.reason))?;
        registry.start_recording(&admission, grant.record);
        registry.start_relays(&admission, grant.destinations);
        let Admission {
            stream,
            publisher,
            packaging,
            ..
        } = admission;
        stream
            .signed_playback
            .store(grant.signed_playback, Ordering::Relaxed);
        if let Some(packaging) = packaging {
            let task = crate::hls_task::run(stream.clone(), packaging, registry.clone());
            compio::runtime::spawn(task).detach();
        }
        metrics::counter!("weir_publishes_total", "result" => "accepted").increment(1);
        tracing::info!(channel = %stream.channel, program, "studio program live on its channel");
        Ok(Self {
            registry: registry.clone(),
            source,
            stream,
            publisher,
            conn,
            stop,
            node,
        })
    }

    /// Copies the program to the channel until stopped.
    pub async fn run(mut self) {
        let mut events = Vec::new();
        'outer: loop {
            if self.stop.is_triggered() || self.node.is_triggered() {
                break;
            }
            let _ = compio::time::timeout(CHECK_EVERY, self.source.ready()).await;
            events.clear();
            if self.source.drain_into(&mut events).is_err() {
                break;
            }
            let mut pushed = false;
            for e in events.drain(..) {
                match e {
                    BusEvent::Tracks(t) => self.publisher.set_tracks((*t).clone()),
                    BusEvent::Frame(f) => {
                        self.publisher.push(f);
                        pushed = true;
                    }
                    BusEvent::Ended => break 'outer,
                    BusEvent::Skipped { .. }
                    | BusEvent::PublisherLeft
                    | BusEvent::PublisherJoined { .. } => {}
                }
            }
            if pushed {
                self.publisher.flush();
            }
        }
        tracing::info!(channel = %self.stream.channel, "studio program off its channel");
        drop(self.publisher);
        self.registry
            .end_publish(&self.stream, self.conn, Instant::now());
    }
}
