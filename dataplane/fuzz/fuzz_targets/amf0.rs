//! Arbitrary bytes decoded as a sequence of AMF0 values; what decoded is re-encoded,
//! decoded again and checked to encode identically.
//! The same body runs in weir-rtmp's unit tests (`weir_rtmp::fuzzing::amf0`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    weir_rtmp::fuzzing::amf0(data);
});
