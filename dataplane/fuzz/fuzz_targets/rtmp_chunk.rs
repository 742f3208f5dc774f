//! Arbitrary bytes into an RTMP server session, raw and after a valid handshake;
//! outputs are drained and every publish request is accepted so media paths run too.
//! The same body runs in weir-rtmp's unit tests (`weir_rtmp::fuzzing::rtmp_chunk`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    weir_rtmp::fuzzing::rtmp_chunk(data);
});
