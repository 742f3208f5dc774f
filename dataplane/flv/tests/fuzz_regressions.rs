//! Inputs the fuzzer once crashed on: each must now be handled without a panic.

use weir_flv::FlvDemuxer;

#[test]
fn crashers_found_by_cargo_fuzz_stay_fixed() {
    let dir =
        std::path::Path::new(&std::env::var_os("CARGO_MANIFEST_DIR").expect("run by cargo test"))
            .join("tests/fuzz-regressions");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("regressions dir") {
        let data = std::fs::read(entry.expect("entry").path()).expect("read");
        weir_flv::fuzzing::flv_tag(&mut FlvDemuxer::new(), &data);
        seen += 1;
    }
    assert!(seen > 0, "no regression inputs in {}", dir.display());
}
