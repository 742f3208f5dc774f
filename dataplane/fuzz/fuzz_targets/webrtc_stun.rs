//! Arbitrary datagrams through the WebRTC port's first look: classification and the
//! STUN USERNAME routing read (bounded, never allocating).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = weir_webrtc::stun::classify(data);
    if let Some(ufrag) = weir_webrtc::stun::local_ufrag(data) {
        assert!(ufrag.len() <= data.len());
    }
});
