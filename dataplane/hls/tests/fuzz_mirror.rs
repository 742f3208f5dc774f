//! The `hls_query` fuzz target's checks on a few thousand pseudo-random inputs.

mod common;

use common::*;
use weir_hls::{ObjectAnswer, ObjectName, PlaylistAnswer, PlaylistQuery};

/// xorshift64*: a tiny deterministic generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const PIECES: &[&str] = &[
    "_HLS_msn",
    "_HLS_part",
    "_HLS_skip",
    "=",
    "&",
    "?",
    "YES",
    "v2",
    "no",
    "0",
    "1",
    "2",
    "3",
    "9",
    "01",
    "-",
    "+",
    "18446744073709551615",
    "18446744073709551616",
    "%5F",
    " ",
    "é",
    "\u{0}",
    "init-",
    "seg-",
    "part-",
    ".mp4",
    ".m4s",
    ".m3u8",
    "media",
    "/",
    "..",
];

fn random_text(rng: &mut Rng) -> String {
    if rng.below(3) == 0 {
        // Mostly well-formed names, so some objects exist.
        let kind = ["init-", "seg-", "part-"][rng.below(3)];
        let mut name = format!("{kind}{}", rng.below(6));
        if rng.below(2) == 0 {
            name += &format!("-{}", rng.below(12));
        }
        return name + [".mp4", ".m4s"][rng.below(2)];
    }
    let n = rng.below(12);
    (0..n).map(|_| PIECES[rng.below(PIECES.len())]).collect()
}

#[test]
fn random_queries_and_names_never_panic() {
    let mut src = Source::gop(60);
    let mut s = stream(config(200, 2000, 4, 2), &src);
    src.run_until(&mut s, 5_000);
    let s = s.snapshot();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut parsed, mut served) = (0, 0);
    for _ in 0..5000 {
        let text = random_text(&mut rng);
        if let Ok(q) = PlaylistQuery::parse(&text) {
            parsed += 1;
            assert!(q.part.is_none() || q.msn.is_some(), "{text:?}");
            match s.media_playlist(&q) {
                PlaylistAnswer::BadRequest(why) => assert!(q.msn.is_some() && !why.is_empty()),
                PlaylistAnswer::Wait(p) => assert!(p > s.position(), "{text:?}"),
                _ => {}
            }
        }
        match s.object(&text) {
            ObjectAnswer::Ready(..) => {
                served += 1;
                let name = ObjectName::parse(&text).expect("served names parse");
                assert_eq!(name.file_name(), text);
            }
            ObjectAnswer::Wait(p) => assert!(p > s.position(), "{text:?}"),
            ObjectAnswer::Gone => {}
        }
    }
    assert!(parsed > 100, "{parsed}");
    assert!(served > 0, "{served}");
    // Raw bytes turned into (lossy) UTF-8 too.
    for _ in 0..2000 {
        let bytes: Vec<u8> = (0..rng.below(40)).map(|_| rng.next() as u8).collect();
        let text = String::from_utf8_lossy(&bytes);
        let _ = PlaylistQuery::parse(&text);
        assert_eq!(s.object(&text), ObjectAnswer::Gone);
    }
}
