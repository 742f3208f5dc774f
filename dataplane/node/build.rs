//! Finds the third-party browser code the node embeds (hls.js for the watch page), which
//! `npm ci` in `web/` installs from the versions pinned in `web/package-lock.json`
//! (`cargo xtask setup`, `cargo xtask serve` and `cargo xtask test` run it). It is never
//! copied into the repository: a build without it fails here, naming the command to run,
//! rather than producing a watch page that cannot play.

use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let web = manifest.join("../../web");
    let hls = web.join("node_modules/hls.js/dist/hls.min.js");
    println!("cargo:rerun-if-changed={}", hls.display());
    println!(
        "cargo:rerun-if-changed={}",
        web.join("package-lock.json").display()
    );
    println!("cargo:rerun-if-env-changed=WEIR_HLS_JS");
    // WEIR_HLS_JS points at another copy of hls.min.js (packagers building offline).
    let overridden = std::env::var_os("WEIR_HLS_JS");
    let hls = overridden.clone().map_or(hls, PathBuf::from);
    if overridden.is_some() && !hls.is_file() {
        eprintln!(
            "\nWEIR_HLS_JS names {}, which is not a file.\n",
            hls.display()
        );
        std::process::exit(1);
    }
    if !hls.is_file() {
        eprintln!(
            "\nweir-node embeds hls.js for the watch page, and {} is missing.\n\
             Run `cargo xtask setup` (it runs `npm ci` in web/, installing the versions pinned in \
             web/package-lock.json), or `npm ci --prefix web` yourself, then build again.\n",
            hls.display()
        );
        std::process::exit(1);
    }
    let hls = hls.canonicalize().unwrap_or(hls);
    println!("cargo:rustc-env=WEIR_EMBED_HLS_JS={}", hls.display());
    // A version tag for its URL, so browsers may cache it for good (FNV-1a of the file).
    let bytes = std::fs::read(&hls).unwrap_or_default();
    let tag = bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    });
    println!("cargo:rustc-env=WEIR_EMBED_HLS_JS_TAG={tag:016x}");
}
