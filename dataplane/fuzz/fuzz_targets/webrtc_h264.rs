//! Arbitrary depacketized H.264 (Annex B) through the WHIP assembler, and arbitrary
//! AVCC samples and avcC records back to Annex B for WHEP.
#![no_main]

use weir_webrtc::h264::{AvcAssembler, annexb_from_avcc};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut a = AvcAssembler::new();
    let half = data.len() / 2;
    for chunk in [&data[..half], &data[half..]] {
        let (sample, config) = a.push(chunk);
        if let Some(s) = sample {
            let record = config.as_ref().map(|c| &c.record[..]);
            let _ = annexb_from_avcc(&s.data, record);
        }
    }
    let _ = annexb_from_avcc(data, Some(data));
});
