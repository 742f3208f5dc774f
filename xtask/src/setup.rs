//! Installs the Debian packages the project needs, only those missing.

use std::process::Command;

/// Needed to build and run the node.
const BUILD: &[&str] = &[
    "build-essential",
    "pkg-config",
    "protobuf-compiler",
    "libprotobuf-dev",
];
/// Test peers: real encoders, players and servers the tests start themselves.
const TEST: &[&str] = &["ffmpeg", "etcd-server"];

fn installed(pkg: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", pkg])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        .unwrap_or(false)
}

/// Installs what is missing (needs root or sudo).
pub fn run(with_test_peers: bool) -> Result<(), String> {
    install(BUILD.iter().chain(if with_test_peers { TEST } else { &[] }))
}

/// Installs the given packages if any is missing.
pub fn install<'a>(pkgs: impl Iterator<Item = &'a &'a str>) -> Result<(), String> {
    let missing: Vec<&str> = pkgs.copied().filter(|p| !installed(p)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("xtask: installing Debian packages: {}", missing.join(" "));
    let sudo = !is_root();
    let apt = |args: &[&str]| {
        let mut c = if sudo {
            let mut c = Command::new("sudo");
            c.arg("apt-get");
            c
        } else {
            Command::new("apt-get")
        };
        c.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        c
    };
    crate::run(&mut apt(&["update", "-qq"]))?;
    let mut args = vec!["install", "-y", "-qq", "--no-install-recommends"];
    args.extend(missing.iter().copied());
    crate::run(&mut apt(&args))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}
