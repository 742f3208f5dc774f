//! MPEG-TS bytes for the demuxer, fed in chunks (the first byte picks the chunk sizes and
//! whether sync bytes are forced every 188 bytes). The same body runs in weir-ts's tests
//! (`weir_ts::fuzzing::ts_demux`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    weir_ts::fuzzing::ts_demux(data);
});
