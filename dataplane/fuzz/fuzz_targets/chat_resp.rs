//! Arbitrary bytes as Redis replies (the chat gateway's own RESP client reads them from
//! the Redis connection): parsed reply by reply until the input runs out or is refused.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while let Ok(Some((_, used))) = weir_chat::resp::parse(rest) {
        if used == 0 || used > rest.len() {
            break;
        }
        rest = &rest[used..];
    }
});
