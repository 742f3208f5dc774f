//! Arbitrary text as a WHIP and a WHEP offer: refused with an error or answered, never
//! a panic.
#![no_main]

use std::sync::OnceLock;
use std::time::Instant;

use weir_webrtc::{RtcSettings, WhepSession, WhipSession};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    static SETTINGS: OnceLock<RtcSettings> = OnceLock::new();
    let settings = SETTINGS.get_or_init(|| {
        RtcSettings::new(vec!["127.0.0.1:9".parse().expect("addr")])
    });
    let Ok(offer) = std::str::from_utf8(data) else {
        return;
    };
    let now = Instant::now();
    let _ = WhipSession::accept(now, settings, offer);
    let codec = Some(weir_media::Codec::H264);
    let _ = WhepSession::accept(now, settings, offer, codec, Some(weir_media::Codec::Opus), 3);
});
