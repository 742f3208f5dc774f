//! CPU cost of the ladder: CPU-seconds per second of media for a synthetic 1080p30 source
//! through 1080/720/480/360 (x264 veryfast), from `/proc/self/stat` around the run.
//!
//! `cargo run --release -p weir-codec --example ladder_cpu -- [--seconds 10] [--bframes 0]
//!  [--passthrough] [--no-zerolatency] [--realtime] [--pattern ball|smpte|snow] [--speed 4]`

use std::time::{Duration, Instant};

use weir_codec::synth::{SynthSpec, synth_h264};
use weir_codec::{EncoderTuning, Ladder, LadderConfig, LadderOutput, default_ladder};

/// utime + stime of this process, in seconds (USER_HZ is 100 on Linux).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let seconds: u32 = arg(&args, "--seconds", 10);
    let flag = |f: &str| args.iter().any(|a| a == f);
    let spec = SynthSpec {
        width: 1920,
        height: 1080,
        frames: seconds * 30,
        pattern: arg(&args, "--pattern", "ball".to_owned()),
        horizontal_speed: arg(&args, "--speed", 4),
        ..SynthSpec::default()
    };
    let (source, frames) = synth_h264(&spec)?;
    let config = LadderConfig {
        rungs: default_ladder(),
        passthrough_top: flag("--passthrough"),
        tuning: EncoderTuning {
            bframes: arg(&args, "--bframes", 0),
            zerolatency: !flag("--no-zerolatency"),
        },
        max_input_backlog: Duration::from_secs(3600),
        max_output_queue: 1 << 20,
        overload: None,
        ..LadderConfig::default()
    };
    let cpu0 = cpu_seconds();
    let wall = Instant::now();
    let ladder = Ladder::start(&config, &source)?;
    let realtime = flag("--realtime");
    let mut bytes = vec![0u64; ladder.rungs().len()];
    let mut counts = vec![0u64; ladder.rungs().len()];
    let mut finished = false;
    let mut drain = |ladder: &Ladder, finished: &mut bool| {
        while let Some(o) = ladder.try_recv() {
            match o {
                LadderOutput::Frame { rung, frame } => {
                    bytes[rung] += frame.data.len() as u64;
                    counts[rung] += 1;
                }
                LadderOutput::Finished => *finished = true,
                LadderOutput::Error(e) => eprintln!("error: {e}"),
                _ => {}
            }
        }
    };
    for (i, f) in frames.iter().enumerate() {
        if realtime {
            let due = Duration::from_millis(i as u64 * 1000 / 30);
            if let Some(wait) = due.checked_sub(wall.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        ladder.push(f)?;
        drain(&ladder, &mut finished);
    }
    ladder.finish();
    while !finished {
        std::thread::sleep(Duration::from_millis(5));
        drain(&ladder, &mut finished);
    }
    let cpu = cpu_seconds() - cpu0;
    let wall = wall.elapsed().as_secs_f64();
    let media = f64::from(seconds);
    println!(
        "{:?} bframes={} zerolatency={} passthrough={} realtime={realtime} pattern={}",
        ladder.selection(),
        config.tuning.bframes,
        config.tuning.zerolatency,
        config.passthrough_top,
        spec.pattern
    );
    for (i, r) in ladder.rungs().iter().enumerate() {
        println!(
            "  {:>6} {}x{} frames {} {:.0} kb/s",
            r.name,
            r.width,
            r.height,
            counts[i],
            bytes[i] as f64 * 8.0 / media / 1000.0
        );
    }
    println!(
        "media {media:.1} s, wall {wall:.2} s, cpu {cpu:.2} s => {:.2} cores per live stream",
        cpu / media
    );
    ladder.stop();
    Ok(())
}
