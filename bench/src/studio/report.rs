//! The pure parts of the studio bench: the peer's filter graph and encoder settings,
//! reading ffmpeg's `framecrc` lines, frame-rate statistics, and the results table.

use std::fmt::Write as _;

/// LiveKit Egress' documented budget for one room composite (headless Chrome + GStreamer):
/// their figure, not a measurement of ours.
pub const LIVEKIT_CPUS: f64 = 4.0;

/// The peer's video encoder: the compositor's x264 settings (`graph.rs`: veryfast,
/// zerolatency, 3000 kbit/s CBR-like with a 600 ms VBV, 2 s GOP, no B-frames).
pub const PEER_X264: [&str; 20] = [
    "-c:v",
    "libx264",
    "-preset",
    "veryfast",
    "-tune",
    "zerolatency",
    "-b:v",
    "3000k",
    "-maxrate",
    "3000k",
    "-bufsize",
    "1800k",
    "-g",
    "60",
    "-bf",
    "0",
    "-r",
    "30",
    "-pix_fmt",
    "yuv420p",
];

/// The grid the compositor draws for `n` tiles on a `width`×`height` canvas, roughly
/// (weir_studio's `GRID`, without its gaps: the column count with the largest 16:9 tiles,
/// the more columns on a tie): columns, rows
/// and the tile size (even).
pub fn grid(n: usize, width: u32, height: u32) -> (u32, u32, u32, u32) {
    let n = n.max(1) as u32;
    let mut best = (1, n, 0, 0);
    for cols in 1..=n {
        let rows = n.div_ceil(cols);
        let (cw, ch) = (width / cols, height / rows);
        // Fit 16:9 inside the cell.
        let (w, h) = if cw * 9 > ch * 16 {
            (ch * 16 / 9, ch)
        } else {
            (cw, cw * 9 / 16)
        };
        let (w, h) = (w & !1, h & !1);
        // Ties go to more columns (with the compositor's gaps, they are larger).
        if u64::from(w) * u64::from(h) >= u64::from(best.2) * u64::from(best.3) {
            best = (cols, rows, w, h);
        }
    }
    best
}

/// The peer's `-filter_complex` for `n` inputs: each picture scaled into its tile
/// (aspect kept, padded), the tiles stacked in the grid and centred on a black canvas at
/// `fps`; the audio of every input mixed. Outputs `[v]` and `[a]`.
pub fn peer_filter(n: usize, width: u32, height: u32, fps: u32) -> String {
    let (cols, _rows, w, h) = grid(n, width, height);
    let mut g = String::new();
    for i in 0..n {
        let _ = write!(
            g,
            "[{i}:v]fps={fps},scale={w}:{h}:force_original_aspect_ratio=decrease,\
             pad={w}:{h}:(ow-iw)/2:(oh-ih)/2,setsar=1[t{i}];"
        );
    }
    if n == 1 {
        g.push_str("[t0]null[s];");
    } else {
        let layout: Vec<String> = (0..n as u32)
            .map(|i| format!("{}_{}", (i % cols) * w, (i / cols) * h))
            .collect();
        for i in 0..n {
            let _ = write!(g, "[t{i}]");
        }
        let _ = write!(
            g,
            "xstack=inputs={n}:layout={}:fill=black[s];",
            layout.join("|")
        );
    }
    let _ = write!(
        g,
        "[s]pad={width}:{height}:(ow-iw)/2:(oh-ih)/2:black,format=yuv420p[v];"
    );
    for i in 0..n {
        let _ = write!(g, "[{i}:a]");
    }
    let _ = write!(g, "amix=inputs={n}:normalize=0[a]");
    g
}

/// One `framecrc` line: the presentation time (s) of a packet of stream 0, `None` for
/// headers (a `#tb 0: N/D` header sets `timebase`) and other streams.
pub fn parse_framecrc(line: &str, timebase: &mut Option<f64>) -> Option<f64> {
    if let Some(rest) = line.strip_prefix("#tb 0:") {
        let (n, d) = rest.trim().split_once('/')?;
        let (n, d): (f64, f64) = (n.trim().parse().ok()?, d.trim().parse().ok()?);
        if d > 0.0 {
            *timebase = Some(n / d);
        }
        return None;
    }
    if line.starts_with('#') {
        return None;
    }
    let mut f = line.split(',').map(str::trim);
    if f.next()? != "0" {
        return None;
    }
    let _dts = f.next()?;
    let pts: i64 = f.next()?.parse().ok()?;
    Some(pts as f64 * (*timebase)?)
}

/// The frame rate of a window of program frames, from their presentation times.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Fps {
    /// Frames in the window.
    pub frames: usize,
    /// Last − first presentation time, seconds.
    pub span: f64,
    /// Frames per second of presentation time ((frames − 1) / span).
    pub fps: f64,
    /// Frames missing: holes in the timestamps longer than 1.5 frame intervals.
    pub missing: u64,
}

/// Frame rate and holes of presentation times `pts` (any order) for a nominal `fps`.
pub fn fps_of(pts: &[f64], nominal: f64) -> Fps {
    let mut p: Vec<f64> = pts.to_vec();
    p.sort_by(f64::total_cmp);
    p.dedup();
    if p.len() < 2 {
        return Fps {
            frames: p.len(),
            ..Fps::default()
        };
    }
    let span = p[p.len() - 1] - p[0];
    let interval = 1.0 / nominal;
    let missing = p
        .windows(2)
        .map(|w| w[1] - w[0])
        .filter(|d| *d > 1.5 * interval)
        .map(|d| ((d / interval).round() as u64).saturating_sub(1))
        .sum();
    Fps {
        frames: p.len(),
        span,
        fps: (p.len() - 1) as f64 / span,
        missing,
    }
}

/// What one guest count measured.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Row {
    /// Guests on stage.
    pub guests: usize,
    /// Their picture sizes (`640x360 ×2, …`).
    pub sizes: String,
    /// weir's cores with the guests publishing and nothing on stage (no program).
    pub idle_cores: f64,
    /// weir's RSS then, bytes.
    pub idle_rss: u64,
    /// weir's cores composing the program.
    pub program_cores: f64,
    /// weir's largest RSS while composing, bytes.
    pub program_rss: u64,
    /// The program's frame rate over the window.
    pub fps: Fps,
    /// Program media seconds per wall second over the window (real time: 1.0).
    pub realtime: f64,
    /// The publishers' cores (all of them).
    pub publisher_cores: f64,
    /// The program reader's cores.
    pub reader_cores: f64,
    /// The peer's cores.
    pub peer_cores: f64,
    /// The peer's frames per wall second.
    pub peer_fps: f64,
    /// The encoder weir used (from its log).
    pub encoder: String,
    /// weir's program cores by thread group (see [`super::threads`]).
    pub threads: Vec<(super::threads::Group, f64)>,
}

impl Row {
    /// The compositor's own cost: program − idle.
    pub fn compositor_cores(&self) -> f64 {
        (self.program_cores - self.idle_cores).max(0.0)
    }
}

fn mib(b: u64) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

/// The Markdown results table.
pub fn table(rows: &[Row], secs: f64) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "| guests (sizes) | idle node: cores, RSS | program: weir cores, RSS | **compositor** (program − idle) | program fps over {secs:.0} s (missing) | ffmpeg peer: cores (fps) | **weir / ffmpeg** | weir / LiveKit's 4 CPUs | publishers, reader cores |"
    );
    let _ = writeln!(t, "|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        let c = r.compositor_cores();
        let ratio = if r.peer_cores > 0.0 {
            format!("{:.2}", c / r.peer_cores)
        } else {
            "–".into()
        };
        let _ = writeln!(
            t,
            "| {} ({}) | {:.3}, {:.0} MiB | {:.3}, {:.0} MiB | **{:.3}** | {:.1} ({}){} | {:.3} ({:.1}) | **{ratio}** | {:.3} | {:.3}, {:.3} |",
            r.guests,
            r.sizes,
            r.idle_cores,
            mib(r.idle_rss),
            r.program_cores,
            mib(r.program_rss),
            c,
            r.fps.fps,
            r.fps.missing,
            if (r.realtime - 1.0).abs() > 0.15 {
                format!(", {:.2}× real time", r.realtime)
            } else {
                String::new()
            },
            r.peer_cores,
            r.peer_fps,
            c / LIVEKIT_CPUS,
            r.publisher_cores,
            r.reader_cores,
        );
    }
    t
}

/// The table of weir's program CPU by thread group.
pub fn threads_table(rows: &[Row]) -> String {
    let mut t = String::from(
        "| guests | compose (task pool) | encode (x264) | decode (guests) | audio | other (node) |\n|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let cells: Vec<String> = super::threads::GROUPS
            .iter()
            .map(|g| {
                r.threads
                    .iter()
                    .find(|(k, _)| k == g)
                    .map_or("–".into(), |(_, c)| format!("{c:.3}"))
            })
            .collect();
        let _ = writeln!(t, "| {} | {} |", r.guests, cells.join(" | "));
    }
    t
}

/// `640x360 ×2, 854x480 ×1` for the first `n` guests.
pub fn sizes(n: usize) -> String {
    let mut counts: Vec<(super::procs::GuestSize, usize)> = Vec::new();
    for i in 0..n {
        let s = super::procs::guest_size(i);
        match counts.iter_mut().find(|(k, _)| *k == s) {
            Some((_, c)) => *c += 1,
            None => counts.push((s, 1)),
        }
    }
    counts
        .iter()
        .map(|(s, c)| format!("{}x{} ×{c}", s.width, s.height))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_matches_the_compositor_shapes() {
        assert_eq!(grid(1, 1280, 720), (1, 1, 1280, 720));
        assert_eq!(grid(2, 1280, 720), (2, 1, 640, 360));
        assert_eq!(grid(4, 1280, 720), (2, 2, 640, 360));
        assert_eq!(grid(9, 1280, 720), (3, 3, 426, 238));
    }

    #[test]
    fn peer_filter_stacks_and_mixes_every_input() {
        let g = peer_filter(4, 1280, 720, 30);
        assert!(g.contains("xstack=inputs=4:layout=0_0|640_0|0_360|640_360:fill=black[s]"));
        assert!(g.contains("[0:a][1:a][2:a][3:a]amix=inputs=4"));
        assert!(g.contains("[3:v]fps=30,scale=640:360"));
        assert!(g.ends_with("[a]"));
        let one = peer_filter(1, 1280, 720, 30);
        assert!(one.contains("[t0]null[s]") && !one.contains("xstack"));
    }

    #[test]
    fn framecrc_lines() {
        let mut tb = None;
        assert_eq!(parse_framecrc("#tb 0: 1/90000", &mut tb), None);
        assert_eq!(tb, Some(1.0 / 90000.0));
        assert_eq!(parse_framecrc("#media_type 0: video", &mut tb), None);
        let pts = parse_framecrc(
            "0,     180000,     180000,     3000,    12345, 0xdeadbeef",
            &mut tb,
        );
        assert_eq!(pts, Some(2.0));
        assert_eq!(parse_framecrc("1, 0, 0, 1, 1, 0x0", &mut tb), None);
        assert_eq!(parse_framecrc("garbage", &mut tb), None);
        let mut none = None;
        assert_eq!(parse_framecrc("0, 1, 1, 1, 1, 0x0", &mut none), None);
    }

    #[test]
    fn fps_counts_holes() {
        let full: Vec<f64> = (0..61).map(|i| f64::from(i) / 30.0).collect();
        let f = fps_of(&full, 30.0);
        assert_eq!(f.frames, 61);
        assert!((f.fps - 30.0).abs() < 1e-9 && (f.span - 2.0).abs() < 1e-9);
        assert_eq!(f.missing, 0);
        // Every third frame dropped.
        let holes: Vec<f64> = full
            .iter()
            .copied()
            .enumerate()
            .filter(|(i, _)| i % 3 != 2)
            .map(|(_, p)| p)
            .collect();
        let f = fps_of(&holes, 30.0);
        assert_eq!(f.missing, 20);
        assert!((f.fps - 20.0).abs() < 0.5);
        assert_eq!(fps_of(&[1.0], 30.0).frames, 1);
    }

    #[test]
    fn table_has_ratios() {
        let r = Row {
            guests: 4,
            sizes: sizes(4),
            idle_cores: 0.05,
            program_cores: 0.45,
            peer_cores: 0.8,
            fps: Fps {
                frames: 600,
                span: 19.97,
                fps: 30.0,
                missing: 0,
            },
            realtime: 1.0,
            peer_fps: 30.0,
            ..Row::default()
        };
        assert_eq!(r.sizes, "640x360 ×2, 854x480 ×1, 1280x720 ×1");
        let t = table(&[r], 20.0);
        assert!(t.contains("| **0.400** |"), "{t}");
        assert!(t.contains("| **0.50** |"), "{t}");
        assert!(t.contains("| 0.100 |"), "{t}");
        assert!(t.contains("30.0 (0)"), "{t}");
        let mut with = Row {
            guests: 2,
            ..Row::default()
        };
        with.threads = vec![(super::super::threads::Group::Compose, 0.25)];
        let th = threads_table(&[with]);
        assert!(th.contains("| 2 | 0.250 | – | – | – | – |"), "{th}");
    }
}
