//! Arbitrary text as a chat client's WebSocket message: the JSON protocol, then the
//! moderation text functions every accepted message goes through (confusable folding,
//! link finding, emote-only check).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = serde_json::from_str::<weir_chat::protocol::ClientMsg>(text);
    let _ = weir_chat::fold::fold_words(text);
    let _ = weir_chat::fold::fold_plain(text);
    let _ = weir_chat::filter::find_links(text);
    let _ = weir_chat::filter::is_emote_only(text);
});
