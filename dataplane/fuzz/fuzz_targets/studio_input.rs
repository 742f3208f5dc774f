//! What studio users send the control plane: an uploaded image (PNG/JPEG magic bytes and
//! header dimensions), and invitation or participant tokens (parsed, MAC-checked).
#![no_main]

use std::sync::OnceLock;

use weir_api::studio::token::{Kind, verify};

fn auth() -> &'static weir_auth::Auth {
    static AUTH: OnceLock<weir_auth::Auth> = OnceLock::new();
    AUTH.get_or_init(|| {
        weir_auth::Auth::new(
            weir_store::Store::memory(),
            weir_auth::AuthConfig::new(b"fuzz-secret-fuzz-secret-fuzz-sec".to_vec()),
        )
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = weir_store::studio::image::sniff_image(data);
    let _ = weir_store::studio::image::check_image(data, "image/jpeg");
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = verify(auth(), Kind::Invitation, text, 1);
        let _ = verify(auth(), Kind::Participant, text, 1);
    }
});
