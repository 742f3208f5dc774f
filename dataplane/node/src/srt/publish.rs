//! One SRT publisher's media path: MPEG-TS messages → demuxer → per-track timestamp
//! normalisation (33-bit 90 kHz clocks, wrap and jumps) → track gate → bus.

use std::sync::Arc;

use weir_bus::Publisher;
use weir_media::{Frame, TimestampNormalizer};
use weir_ts::{TsDemuxer, TsEvent, composition_offset};

use crate::gate::{self, GateOutput, TrackGate};
use crate::registry::Stream;
use crate::shutdown::Shutdown;

/// An admitted SRT caller's publish.
pub struct Publishing {
    /// The stream published to.
    pub stream: Arc<Stream>,
    /// The registry's id of this publish.
    pub conn: u64,
    /// Triggered when the node ends this publish (takeover, revoked key).
    pub kick: Shutdown,
    publisher: Publisher,
    demux: TsDemuxer,
    clock: TimestampNormalizer,
    gate: TrackGate,
    gated: Vec<GateOutput>,
}

impl Publishing {
    /// A publish on `stream` through `publisher`.
    pub fn new(stream: Arc<Stream>, publisher: Publisher, conn: u64, kick: Shutdown) -> Self {
        Self {
            stream,
            conn,
            kick,
            publisher,
            demux: TsDemuxer::new(),
            clock: TimestampNormalizer::new(),
            gate: TrackGate::new(),
            gated: Vec::new(),
        }
    }

    /// One SRT message (a run of 188-byte TS packets): demuxes it and publishes what
    /// the gate lets through.
    pub fn on_message(&mut self, data: &[u8]) {
        self.demux.push(data);
        self.drain();
    }

    /// The caller left: the PES in progress is complete now.
    pub fn finish(&mut self) {
        self.demux.finish();
        self.drain();
    }

    fn drain(&mut self) {
        while let Some(ev) = self.demux.poll() {
            match ev {
                TsEvent::Track { id, config } => self.gate.on_track(id, config, &mut self.gated),
                TsEvent::Frame {
                    track,
                    dts,
                    pts,
                    keyframe,
                    data,
                } => {
                    let t = self
                        .clock
                        .normalize_90k(track, dts, composition_offset(dts, pts));
                    if t.discontinuity {
                        tracing::info!(channel = %self.stream.channel, %track, "SRT clock jump absorbed");
                    }
                    let frame = Frame {
                        track,
                        dts: t.dts,
                        pts: t.pts,
                        keyframe,
                        data,
                    };
                    self.gate.on_frame(frame, &mut self.gated);
                }
                TsEvent::Dropped { reason } => {
                    metrics::counter!("weir_ts_dropped_total").increment(1);
                    tracing::debug!(channel = %self.stream.channel, ?reason, "MPEG-TS data dropped");
                }
            }
        }
        gate::publish(&mut self.gated, &mut self.publisher);
    }
}
