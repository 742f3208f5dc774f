//! `cargo xtask bench …`: builds release binaries and runs the scenarios in bench/.

use std::process::Command;

/// Runs a benchmark scenario.
pub fn run(args: &[String]) -> Result<(), String> {
    let scenario = args.first().map_or("live", String::as_str);
    match scenario {
        "live" => {
            crate::setup::install(
                ["ffmpeg", "nginx", "libnginx-mod-rtmp"].iter(),
            )?;
            crate::run(crate::cargo().args(["build", "--release", "-p", "weir", "-p", "weir-bench"]))?;
            let dir = crate::target_dir().join("release");
            crate::run(
                Command::new(dir.join("weir-bench"))
                    .arg("live")
                    .args(&args[1..])
                    .env("WEIR_BIN", dir.join("weir")),
            )
        }
        other => Err(format!("unknown bench scenario {other:?} (have: live)")),
    }
}
