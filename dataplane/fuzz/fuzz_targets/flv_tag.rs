//! The first byte chooses audio, video or data; the rest is an FLV tag body for the
//! demuxer. The same body runs in weir-flv's tests (`weir_flv::fuzzing::flv_tag`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut demuxer = weir_flv::FlvDemuxer::new();
    weir_flv::fuzzing::flv_tag(&mut demuxer, data);
});
