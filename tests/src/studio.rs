//! Reading a studio program back: one frame of an LL-HLS stream's live edge through ffmpeg,
//! scaled down to `W`×`H` RGB, mean colours of its rectangles, and polling until a frame
//! passes a check (studio_program.rs, studio_page.rs).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The frame the tests read back, scaled down: enough to tell tiles apart.
pub const W: usize = 64;
/// See [`W`].
pub const H: usize = 36;

/// The stdout bytes of a command that succeeded.
pub fn raw(cmd: &mut Command) -> Option<Vec<u8>> {
    let out = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status.success().then_some(out.stdout)
}

/// One frame of the live edge of `url`, as `W`×`H` RGB.
pub fn frame(url: &str) -> Option<Vec<u8>> {
    let scale = format!("scale={W}:{H}");
    let out = raw(Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-loglevel", "error"])
        .args(["-live_start_index", "-1", "-i", url, "-vf", &scale])
        .args(["-frames:v", "1", "-pix_fmt", "rgb24", "-f", "rawvideo", "-"]))?;
    (out.len() == W * H * 3).then_some(out)
}

/// The mean colour of the rectangle `[x0, x1) × [y0, y1)` (in `W`×`H` pixels).
pub fn mean(rgb: &[u8], x0: usize, x1: usize, y0: usize, y1: usize) -> [f64; 3] {
    let mut sum = [0f64; 3];
    for y in y0..y1 {
        for x in x0..x1 {
            for (c, s) in sum.iter_mut().enumerate() {
                *s += f64::from(rgb[(y * W + x) * 3 + c]);
            }
        }
    }
    let n = ((x1 - x0) * (y1 - y0)) as f64;
    sum.map(|s| s / n)
}

/// Clearly red (a flat red source after x264 and scaling).
pub fn is_red(c: [f64; 3]) -> bool {
    c[0] > 150.0 && c[1] < 80.0 && c[2] < 80.0
}

/// Clearly blue.
pub fn is_blue(c: [f64; 3]) -> bool {
    c[2] > 150.0 && c[0] < 80.0 && c[1] < 80.0
}

/// Whether any 4×4 block of the frame is clearly of colour `is`.
pub fn anywhere(rgb: &[u8], is: fn([f64; 3]) -> bool) -> bool {
    (0..H / 4).any(|by| (0..W / 4).any(|bx| is(mean(rgb, bx * 4, bx * 4 + 4, by * 4, by * 4 + 4))))
}

/// Polls until the program's frame satisfies `check`, or `within` passes; how long it took.
pub fn until_frame(url: &str, within: Duration, check: impl Fn(&[u8]) -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < within {
        if let Some(f) = frame(url)
            && check(&f)
        {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    None
}
