//! `cargo xtask bench …`: builds release binaries and runs the scenarios in bench/.
//!
//! `cargo xtask bench live [--quick] [FLAGS…]` — flags are those of `weir-bench live`
//! (bench/README.md); `--quick` takes about 3 minutes, a full run about 15.
//! `cargo xtask bench api [--quick] [--clients N]` — GraphQL throughput/latency per core
//! and publish-authorisation latency in split mode (etcd).
//! `cargo xtask bench transcode [--quick] [FLAGS…]` — CPU of weir's transcode ladder
//! against the ffmpeg CLI doing the same ladder (1080p30 source, 4 rungs).
//! `cargo xtask bench srt [--quick] [FLAGS…]` — SRT ingest latency and frames lost through
//! a lossy relay, weir against srt-live-transmit.
//! `cargo xtask bench outputs [--quick] [FLAGS…]` — relay fan-out (multistreaming): CPU
//! and added latency for 1 stream → D destinations, weir against nginx-rtmp's `push`.
//! `cargo xtask bench chat [--quick] [FLAGS…]` — the chat gateway: deliveries per core,
//! send → delivery latency, memory per connection, messages lost; one big room and many
//! small rooms, one gateway and two sharing rooms through Redis (about 5 minutes).
//! `cargo xtask bench studio [--quick] [FLAGS…]` — the studio compositor: weir's CPU, RSS
//! and program frame rate composing N guests (2, 4, 9) into a 720p30 grid, against ffmpeg
//! composing the same inputs (about 5 minutes).
//! `cargo xtask bench sfu [--quick] [FLAGS…]` — WebRTC fan-out: 1 WHIP publisher to N
//! receive-only subscribers, forwarded packets per core, added latency, loss and memory
//! per subscriber, weir against Janus's videoroom driven by the same str0m client.

use std::process::Command;

/// Debian packages the scenarios need: the encoder of the test media and the peer.
const PACKAGES: [&str; 4] = ["ffmpeg", "nginx", "libnginx-mod-rtmp", "util-linux"];

/// Runs a benchmark scenario.
pub fn run(args: &[String]) -> Result<(), String> {
    // `cargo xtask bench --quick` means the default scenario.
    let (scenario, rest) = match args.first().map(String::as_str) {
        None => ("live", args),
        Some(a) if a.starts_with("--") => ("live", args),
        Some(a) => (a, &args[1..]),
    };
    match scenario {
        "live" => bench("live", &PACKAGES, rest),
        "api" => bench("api", &["etcd-server"], rest),
        // ffmpeg: source encoder and the peer; GStreamer's plugins: weir's ladder.
        "transcode" => bench(
            "transcode",
            &[
                "ffmpeg",
                "gstreamer1.0-plugins-base",
                "gstreamer1.0-plugins-ugly",
                "gstreamer1.0-libav",
            ],
            rest,
        ),
        // ffmpeg/ffprobe: the test media and frame counts; srt-tools: the libsrt caller
        // and the peer (srt-live-transmit).
        "srt" => bench("srt", &["ffmpeg", "srt-tools"], rest),
        // ffmpeg: the test media; nginx-rtmp: the peer (`push`).
        "outputs" => bench("outputs", &["ffmpeg", "nginx", "libnginx-mod-rtmp"], rest),
        "chat" => bench("chat", &["redis-server", "etcd-server", "util-linux"], rest),
        // ffmpeg: the guests' media and publishers, the program reader and the peer;
        // GStreamer's plugins: weir's compositor (compositor, x264enc, avdec_h264, AAC).
        "studio" => bench(
            "studio",
            &[
                "ffmpeg",
                "gstreamer1.0-plugins-base",
                "gstreamer1.0-plugins-good",
                "gstreamer1.0-plugins-ugly",
                "gstreamer1.0-libav",
            ],
            rest,
        ),
        // ffmpeg: the good stream's media.
        "abuse" => bench("abuse", &["ffmpeg"], rest),
        // ffmpeg: the test media (H.264 baseline, Opus); janus: the peer SFU; util-linux:
        // taskset.
        "sfu" => bench("sfu", &["ffmpeg", "janus", "util-linux"], rest),
        other => Err(format!(
            "unknown bench scenario {other:?} (have: live, api, transcode, srt, outputs, chat, studio, abuse, sfu)"
        )),
    }
}

/// Installs `packages`, builds release `weir` and `weir-bench`, runs `weir-bench <scenario>`.
fn bench(scenario: &str, packages: &[&str], rest: &[String]) -> Result<(), String> {
    crate::setup::install(packages.iter())?;
    crate::run(crate::cargo().args(["build", "--release", "-p", "weir", "-p", "weir-bench"]))?;
    let dir = crate::target_dir().join("release");
    crate::run(
        Command::new(dir.join("weir-bench"))
            .arg(scenario)
            .args(rest)
            .env("WEIR_BIN", dir.join("weir"))
            .env("WEIR_BENCH_DIR", crate::root().join("bench")),
    )
}
