//! The body of the `ts_demux` cargo-fuzz target, also run by tests with pseudo-random
//! inputs so CI exercises the same code on stable Rust.

use std::collections::HashSet;

use crate::{TsDemuxer, TsEvent};

/// The first byte picks chunk sizes and whether to force sync bytes every 188 bytes (so
/// the fuzzer reaches the PSI and PES parsers); the rest is fed to a demuxer in chunks,
/// draining events after each, then finished. Checks that frames belong to an announced
/// track, are not empty, and carry 33-bit timestamps.
pub fn ts_demux(data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let mut body = body.to_vec();
    if selector & 1 == 1 {
        for b in body.iter_mut().step_by(188) {
            *b = 0x47;
        }
    }
    let mut d = TsDemuxer::new();
    let mut announced = HashSet::new();
    let mut rest = &body[..];
    let mut i = 0usize;
    while !rest.is_empty() {
        let size = 1 + (usize::from(selector >> 1) * 37 + i * 131) % 1400;
        let (chunk, tail) = rest.split_at(size.min(rest.len()));
        d.push(chunk);
        drain(&mut d, &mut announced);
        rest = tail;
        i += 1;
    }
    d.finish();
    drain(&mut d, &mut announced);
}

fn drain(d: &mut TsDemuxer, announced: &mut HashSet<weir_media::TrackId>) {
    while let Some(e) = d.poll() {
        match e {
            TsEvent::Track { id, .. } => {
                announced.insert(id);
            }
            TsEvent::Frame {
                track,
                dts,
                pts,
                data,
                ..
            } => {
                assert!(announced.contains(&track), "frame of an unannounced track");
                assert!(!data.is_empty(), "empty frame");
                assert!(dts < 1 << 33 && pts < 1 << 33, "timestamp beyond 33 bits");
            }
            TsEvent::Dropped { .. } => {}
        }
    }
}
