//! The body of the end-to-end fuzz target `rtmp_ingest` (`dataplane/fuzz`): raw bytes
//! from a publisher, after a real client's handshake, `connect` and `publish`, through
//! the RTMP session, the FLV demuxer, the track gate, the media bus and the LL-HLS
//! packager — the same steps a publishing connection and its packager task take, run
//! synchronously — then every playlist and object the packager made is rendered. Also
//! run by a unit test with pseudo-random inputs, so CI exercises it on stable Rust.

use std::time::Instant;

use weir_bus::{Broadcast, BusConfig, BusEvent, SubscribeOptions};
use weir_flv::{DemuxEvent, FlvDemuxer};
use weir_hls::{HlsConfig, LiveStream, PlaylistQuery};
use weir_rtmp::{
    ClientConfig, ClientEvent, ClientOutput, ClientSession, MediaKind, ServerConfig, ServerEvent,
    ServerOutput, ServerSession,
};

use crate::gate::{GateOutput, TrackGate};
use crate::hls_task::{Selected, apply};

/// The publishing side of one fuzz input.
struct Ingest {
    server: ServerSession,
    demux: FlvDemuxer,
    gate: TrackGate,
    gated: Vec<GateOutput>,
}

impl Ingest {
    /// Drains the session: publish requests are accepted, media goes through the demuxer
    /// and the gate; what the server sends back is returned (for the client).
    fn drain(&mut self) -> Vec<u8> {
        let mut back = Vec::new();
        let mut accept = Vec::new();
        while let Some(out) = self.server.poll_output() {
            match out {
                ServerOutput::Transmit(b) => back.extend_from_slice(&b),
                ServerOutput::Event(ServerEvent::PublishRequested { stream_id, .. }) => {
                    accept.push(stream_id);
                }
                ServerOutput::Event(ServerEvent::Media {
                    kind,
                    timestamp,
                    payload,
                    ..
                }) => {
                    let events = match kind {
                        MediaKind::Video => self.demux.push_video(timestamp, &payload),
                        MediaKind::Audio => self.demux.push_audio(timestamp, &payload),
                        MediaKind::Data => self.demux.push_data(&payload),
                    };
                    for ev in events.unwrap_or_default() {
                        match ev {
                            DemuxEvent::Track(id, t) => self.gate.on_track(id, t, &mut self.gated),
                            DemuxEvent::Frame(f) => self.gate.on_frame(f, &mut self.gated),
                            DemuxEvent::Metadata(_) => {}
                        }
                    }
                }
                ServerOutput::Event(_) => {}
            }
        }
        for id in accept {
            self.server.accept_publish(id);
            while let Some(out) = self.server.poll_output() {
                if let ServerOutput::Transmit(b) = out {
                    back.extend_from_slice(&b);
                }
            }
        }
        back
    }
}

/// Runs a real client against the session until it publishes (the prefix every input
/// gets); false if that failed, which would be a bug of ours, not of the input.
fn publish(ingest: &mut Ingest, now: Instant) -> bool {
    let mut client = ClientSession::new(ClientConfig {
        app: "live".into(),
        tc_url: "rtmp://127.0.0.1/live".into(),
        stream_name: "fuzz".into(),
        out_chunk_size: 4096,
    });
    for _ in 0..64 {
        let mut to_server = Vec::new();
        while let Some(out) = client.poll_output() {
            match out {
                ClientOutput::Transmit(b) => to_server.extend_from_slice(&b),
                ClientOutput::Event(ClientEvent::Publishing { .. }) => return true,
                ClientOutput::Event(_) => {}
            }
        }
        if ingest.server.handle_input(now, &to_server).is_err() {
            return false;
        }
        let back = ingest.drain();
        if client.handle_input(now, &back).is_err() {
            return false;
        }
    }
    false
}

/// Feeds `data` as the bytes a publisher sends after `publish`; never panics on any input.
pub fn rtmp_ingest(data: &[u8]) {
    let now = Instant::now();
    let mut ingest = Ingest {
        server: ServerSession::new(ServerConfig {
            max_message_size: 1 << 16,
            max_pending_bytes: 1 << 18,
            ..ServerConfig::default()
        }),
        demux: FlvDemuxer::new(),
        gate: TrackGate::new(),
        gated: Vec::new(),
    };
    assert!(publish(&mut ingest, now), "a real client could not publish");
    let bus = Broadcast::new(BusConfig::default());
    let Ok(mut publisher) = bus.publish(false) else {
        return;
    };
    let Ok(mut subscriber) = bus.subscribe(SubscribeOptions::default()) else {
        return;
    };
    let mut hls = LiveStream::new(HlsConfig::default());
    let mut selected = Selected::default();
    let mut events = Vec::new();
    // Two reads, to exercise buffering across them.
    let (a, b) = data.split_at(data.len() / 2);
    for part in [a, b] {
        let ok = ingest.server.handle_input(now, part).is_ok();
        ingest.drain();
        crate::gate::publish(&mut ingest.gated, &mut publisher);
        let _ = subscriber.drain_into(&mut events);
        for e in events.drain(..) {
            apply(&mut selected, &mut hls, e);
        }
        if !ok {
            break;
        }
    }
    drop(publisher);
    bus.end();
    let _ = subscriber.drain_into(&mut events);
    for e in events.drain(..) {
        apply(&mut selected, &mut hls, e);
    }
    apply(&mut selected, &mut hls, BusEvent::Ended);
    let snapshot = hls.snapshot();
    let _ = snapshot.multivariant_playlist();
    let _ = snapshot.media_playlist(&PlaylistQuery::default());
    for name in [
        "init-0.mp4",
        "seg-0.m4s",
        "seg-1.m4s",
        "part-0.0.m4s",
        "part-1.2.m4s",
    ] {
        let _ = snapshot.object(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudo_random_publisher_bytes_never_panic() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for len in [0, 1, 12, 100, 1000, 5000] {
            for _ in 0..20 {
                rtmp_ingest(&weir_rtmp::fuzzing::pseudo_random_bytes(&mut seed, len));
            }
        }
    }
}
