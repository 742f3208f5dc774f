//! Test media the benches encode once and keep next to the build output
//! (`WEIR_BENCH_CACHE` overrides where).

use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{Context as _, ensure};

use crate::progress;

/// Where the cached test media lives.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("WEIR_BENCH_CACHE")
        .map(PathBuf::from)
        .or_else(|| {
            let exe = std::env::current_exe().ok()?;
            Some(exe.parent()?.parent()?.join("weir-bench-cache"))
        })
        .unwrap_or_else(|| std::env::temp_dir().join("weir-bench-cache"))
}

/// The cached file `name`, made once by `encode` (an ffmpeg command line without its
/// output, which is appended: a temporary file renamed when complete).
pub fn cached(name: &str, mut encode: Command) -> anyhow::Result<PathBuf> {
    let cache = cache_dir();
    std::fs::create_dir_all(&cache)?;
    let path = cache.join(name);
    if path.exists() {
        return Ok(path);
    }
    progress!(
        "encoding test media with ffmpeg → {} (once)",
        path.display()
    );
    let tmp = cache.join(format!("encoding-{name}"));
    let status = encode
        .arg(&tmp)
        .stdin(Stdio::null())
        .status()
        .context("running ffmpeg (install it: cargo xtask setup --test)")?;
    ensure!(status.success(), "ffmpeg failed: {status}");
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}
