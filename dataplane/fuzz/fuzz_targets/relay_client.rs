//! Arbitrary bytes as what an RTMP destination answers a relay: the client session that
//! relays run (handshake, control messages, `_result` / `onStatus`), fed in pieces.
//! The first bytes also go through the destination URL parser.
#![no_main]

use std::time::Instant;

use weir_rtmp::{ClientConfig, ClientSession};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let split = data.first().map_or(0, |b| usize::from(*b)).min(data.len());
    if let Ok(url) = std::str::from_utf8(&data[..split]) {
        let _ = weir_node::Endpoint::parse(url, "key");
    }
    let mut session = ClientSession::new(ClientConfig {
        app: "live".into(),
        tc_url: "rtmp://example.org/live".into(),
        stream_name: "key".into(),
        out_chunk_size: 4096,
    });
    for piece in data.chunks(700) {
        if session.handle_input(Instant::now(), piece).is_err() {
            break;
        }
        while session.poll_output().is_some() {}
    }
});
