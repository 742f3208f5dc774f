//! The bodies of the cargo-fuzz targets (`dataplane/fuzz`), also run by unit tests
//! with pseudo-random inputs so CI exercises the same code on stable Rust.

use std::time::Instant;

use crate::amf0;
use crate::handshake::{HANDSHAKE_SIZE, RTMP_VERSION};
use crate::{ServerConfig, ServerEvent, ServerOutput, ServerSession};

/// xorshift64: `len` pseudo-random bytes, advancing `seed` (must be non-zero).
pub fn pseudo_random_bytes(seed: &mut u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|_| {
            *seed ^= *seed << 13;
            *seed ^= *seed >> 7;
            *seed ^= *seed << 17;
            (*seed >> 24) as u8
        })
        .collect()
}

/// A valid client handshake: C0, C1 and C2 (zero filled).
pub fn handshake_prefix() -> Vec<u8> {
    let mut v = vec![0u8; 1 + 2 * HANDSHAKE_SIZE];
    v[0] = RTMP_VERSION;
    v
}

/// Feeds `data` to a server session, once raw and once after a valid handshake,
/// draining outputs and accepting every publish request. Never panics on any input.
pub fn rtmp_chunk(data: &[u8]) {
    let config = ServerConfig {
        max_message_size: 1 << 16,
        max_pending_bytes: 1 << 18,
        ..ServerConfig::default()
    };
    let now = Instant::now();
    let mut prefixed = handshake_prefix();
    prefixed.extend_from_slice(data);
    for input in [data, &prefixed[..]] {
        let mut s = ServerSession::new(config.clone());
        // Split the input in two calls to exercise buffering across reads.
        let (a, b) = input.split_at(input.len() / 2);
        for part in [a, b] {
            if s.handle_input(now, part).is_err() {
                break;
            }
            drain(&mut s);
        }
    }
}

fn drain(s: &mut ServerSession) {
    let mut accept = Vec::new();
    while let Some(o) = s.poll_output() {
        if let ServerOutput::Event(ServerEvent::PublishRequested { stream_id, .. }) = o {
            accept.push(stream_id);
        }
    }
    for id in accept {
        s.accept_publish(id);
    }
    while s.poll_output().is_some() {}
}

/// Decodes `data` as a sequence of AMF0 values, re-encodes what decoded and checks
/// that the encoding is stable (decode ∘ encode is the identity on encodings).
pub fn amf0(data: &[u8]) {
    let mut buf = data;
    let mut values = Vec::new();
    while !buf.is_empty() {
        match amf0::decode(&mut buf) {
            Ok(v) => values.push(v),
            Err(_) => break,
        }
    }
    let encoded = amf0::encode_all(&values);
    let again = match amf0::decode_all(&encoded) {
        Ok(v) => v,
        Err(e) => panic!("re-encoded AMF0 failed to decode: {e}"),
    };
    assert_eq!(
        amf0::encode_all(&again),
        encoded,
        "AMF0 re-encoding is not stable"
    );
}
