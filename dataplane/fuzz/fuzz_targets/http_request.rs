#![no_main]
//! The HTTP origin's request-head parser on arbitrary bytes, including pipelined heads.

use libfuzzer_sys::fuzz_target;
use weir_node::RequestParser;

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while let Ok(Some((_req, consumed))) = RequestParser.parse(rest) {
        assert!(consumed > 0 && consumed <= rest.len());
        rest = &rest[consumed..];
    }
});
