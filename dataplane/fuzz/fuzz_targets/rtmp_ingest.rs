//! End to end: the bytes a publisher sends after a real `connect` + `publish`, through
//! the RTMP session, FLV demuxer, track gate, media bus and LL-HLS packager, whose
//! playlists and objects are then rendered. The same body runs in weir-node's unit tests
//! (`weir_node::fuzzing::rtmp_ingest`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    weir_node::fuzzing::rtmp_ingest(data);
});
