//! Fuzzes what a publisher or viewer sends to be authorised: stream keys (the RTMP stream
//! name, SRT streamid, WHIP bearer) and playback query strings. Nothing but the signer's
//! own output may verify, and a verified key always names a valid channel.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use weir_streamkey::{KeyError, KeySigner, valid_channel};

fn signer() -> &'static (KeySigner, String, String) {
    static SIGNER: OnceLock<(KeySigner, String, String)> = OnceLock::new();
    SIGNER.get_or_init(|| {
        let s = KeySigner::new(b"fuzz-secret-fuzz-secret-fuzz-secret");
        let (key, _) = s.issue("show").expect("issue");
        let playback = s.sign_playback("show", u64::MAX);
        (s, key, playback)
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (s, key, playback) = signer();
    match s.verifier().verify(text) {
        Ok(k) => {
            assert!(valid_channel(&k.channel));
            assert_eq!(text, key, "only the issued key verifies");
        }
        Err(KeyError::Revoked | KeyError::Expired) => unreachable!("not checked here"),
        Err(_) => {}
    }
    if s.verifier().verify_playback("show", text, 0).is_ok() {
        // Other parameters may come along, but the first exp and sig are the signed ones.
        let first = |q: &str, name: &str| {
            q.split('&')
                .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
                .map(str::to_owned)
        };
        for name in ["exp", "sig"] {
            assert_eq!(first(text, name), first(playback, name), "{name}");
        }
    }
});
