//! Arbitrary datagrams from a few callers into the SRT listener, with time moving on:
//! packet parsing, handshakes, access control and connections must never panic or grow
//! without bound. Also the stream id parser.
#![no_main]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use weir_srt::{SrtConfig, SrtEvent, SrtListener, StreamRequest};

static QUIET_PANICS: std::sync::Once = std::sync::Once::new();

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // srt-protocol's packet parser panics on some truncated control packets; the listener
    // catches that (the datagram is dropped and counted in `panics`), which is what is
    // under test here. libfuzzer-sys' panic hook would abort on the caught panic, so a
    // silent hook replaces it: a panic that escapes the listener still aborts the run
    // (libfuzzer-sys aborts after its own catch_unwind) and leaves a crash artifact.
    QUIET_PANICS.call_once(|| std::panic::set_hook(Box::new(|_| {})));
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = StreamRequest::parse(s);
    }
    let config = SrtConfig {
        max_pending: 4,
        max_connections: 2,
        ..SrtConfig::default()
    };
    let mut l = SrtListener::new(config);
    let mut now = Instant::now();
    // Each record: [caller (2 bits) | step ms (6 bits)] [len] [len bytes].
    let mut rest = data;
    while rest.len() >= 2 {
        let (head, len) = (rest[0], usize::from(rest[1]));
        rest = &rest[2..];
        let body = &rest[..len.min(rest.len())];
        rest = &rest[body.len()..];
        now += Duration::from_millis(u64::from(head & 0x3f));
        let from = SocketAddr::from(([10, 0, 0, 1], 5000 + u16::from(head >> 6)));
        l.handle_datagram(now, from, body);
        if l.poll_timeout().is_some_and(|t| t <= now) {
            l.handle_timeout(now);
        }
        while let Some(ev) = l.poll_event() {
            if let SrtEvent::Request { peer, .. } = ev {
                if head & 1 == 0 {
                    l.accept(now, peer);
                } else {
                    l.reject(now, peer, weir_srt::RejectCode::Forbidden);
                }
            }
        }
        while l.poll_transmit().is_some() {}
        assert!(l.pending() <= 4 && l.connections() <= 2);
    }
});
