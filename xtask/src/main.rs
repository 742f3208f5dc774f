//! `cargo xtask`: the project's own commands.
//!
//! ```text
//! cargo xtask setup [--test]     install missing Debian packages (build; --test: test peers
//!                                too), `npm ci` in web/ (hls.js, embedded by the node) and,
//!                                with --test, in tests/web for the browser test
//! cargo xtask serve [ARGS…]      setup, build release, run `weir serve ARGS…`
//! cargo xtask test               setup --test, fmt check, clippy -D warnings, all tests
//! cargo xtask bench live         benchmarks against peers run side by side (see bench/README.md)
//! cargo xtask bench transcode    the transcode ladder's CPU against the ffmpeg CLI's
//! cargo xtask bench srt          SRT ingest latency and loss against srt-live-transmit
//! cargo xtask bench abuse        attacks on a node with default limits: what cut them, memory, a good stream's latency
//! cargo xtask fuzz TARGET [SECS] run one cargo-fuzz target (installs cargo-fuzz)
//! ```
//! Only std: this crate must build in seconds on a fresh machine.

mod bench;
mod setup;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("setup") => setup::run(args.iter().any(|a| a == "--test")),
        Some("serve") => serve(&args[1..]),
        Some("test") => test(),
        Some("bench") => bench::run(&args[1..]),
        Some("fuzz") => fuzz(&args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask <setup [--test] | serve [ARGS…] | test | bench live|api|transcode|srt|outputs|chat|studio|abuse | fuzz TARGET [SECS]>"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root (parent of this crate). `cargo run` tells the running binary where
/// its manifest is; the path baked in at compile time is only a fallback, since a target
/// directory shared by several checkouts may hold a binary built in another one.
pub fn root() -> PathBuf {
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The cargo target directory in use.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

/// Runs a command in the workspace root, failing on a non-zero exit.
pub fn run(cmd: &mut Command) -> Result<(), String> {
    eprintln!("xtask: running {cmd:?}");
    let status = cmd
        .current_dir(root())
        .status()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{cmd:?} failed with {status}"))
    }
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn serve(args: &[String]) -> Result<(), String> {
    setup::run(false)?;
    run(cargo().args(["build", "--release", "-p", "weir"]))?;
    let bin = target_dir().join("release/weir");
    let mut cmd = Command::new(bin);
    // `cargo xtask serve --ladder true` runs `weir serve --ladder true`; ARGS naming another
    // subcommand (`cargo xtask serve key issue demo`) run it instead.
    const SUBCOMMANDS: [&str; 5] = ["serve", "dataplane", "controlplane", "key", "help"];
    if !args.iter().any(|a| SUBCOMMANDS.contains(&a.as_str())) {
        cmd.arg("serve");
    }
    cmd.args(args);
    run(&mut cmd)
}

fn test() -> Result<(), String> {
    setup::run(true)?;
    run(cargo().args(["fmt", "--all", "--", "--check"]))?;
    run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    // Fuzz targets live outside the workspace (cargo-fuzz); make sure they still build.
    run(cargo().args(["check", "--manifest-path", "dataplane/fuzz/Cargo.toml"]))?;
    // The end-to-end tests drive the real binary: build it first. (setup::run(true) above
    // also ran `npm ci` in tests/web for the browser test, when needed.)
    run(cargo().args(["build", "-p", "weir"]))?;
    run(cargo()
        .args(["test", "--workspace", "--no-fail-fast"])
        .env("WEIR_BIN", target_dir().join("debug/weir")))
}

fn fuzz(args: &[String]) -> Result<(), String> {
    let target = args
        .first()
        .ok_or("which target? see dataplane/fuzz/Cargo.toml")?;
    let secs = args.get(1).map_or("60", String::as_str);
    if Command::new("cargo")
        .args(["fuzz", "--version"])
        .output()
        .map(|o| !o.status.success())
        .unwrap_or(true)
    {
        run(cargo().args(["install", "--locked", "cargo-fuzz"]))?;
    }
    run(cargo()
        .args(["fuzz", "run", "--fuzz-dir", "dataplane/fuzz", target, "--"])
        .arg(format!("-max_total_time={secs}"))
        .env("RUSTC_BOOTSTRAP", "1"))
}
