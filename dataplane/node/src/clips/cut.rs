//! Where a clip is cut (sans-IO): which source video samples are re-encoded and which
//! are copied, from a recording's samples and the asked window.
//!
//! - The clip starts at the first sample presented at or after `start`.
//! - The first keyframe (in decode order) presented at or after that is the first copied
//!   sample; the frames before it are the *head*, re-encoded from the keyframe before
//!   (which is decoded, not shown). A start on a keyframe has no head.
//! - The copied run ends at the longest decode-order prefix whose every sample is
//!   presented before `end`: no frame after `end` is shown, and no copied frame loses a
//!   reference (with B-frames the clip may end up to a B-run before `end`).

/// What the planner needs of a video sample, in decode order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct At {
    /// Presentation time (ticks).
    pub pts: i64,
    /// Decode time (ticks).
    pub dts: i64,
    /// A sync sample.
    pub keyframe: bool,
}

/// Why a window cannot be cut from these samples.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CutError {
    /// No video frame is presented inside the window.
    #[error("no video frame in the asked window")]
    Empty,
    /// The start lies before the first keyframe read (nothing to decode it from).
    #[error("no keyframe before the clip start")]
    NoKeyframe,
}

/// A cut.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cut {
    /// Presentation time of the clip's first frame.
    pub start_pts: i64,
    /// The head: decode from `head.0` (a keyframe) up to `head.1` (exclusive), keep the
    /// frames presented at or after `start_pts`. Empty (`head.0 == head.1`) on a keyframe.
    pub head: (usize, usize),
    /// Copied samples `copy.0..copy.1` (`copy.0` is a keyframe when non-empty).
    pub copy: (usize, usize),
}

impl Cut {
    /// Whether anything is re-encoded.
    pub fn reencodes(&self) -> bool {
        self.head.0 < self.head.1
    }
}

/// Plans the cut of `[start, end)` (ticks) from `samples` (decode order).
pub fn plan(samples: &[At], start: i64, end: i64) -> Result<Cut, CutError> {
    let start_pts = samples
        .iter()
        .map(|s| s.pts)
        .filter(|&p| p >= start && p < end)
        .min()
        .ok_or(CutError::Empty)?;
    let key = samples
        .iter()
        .position(|s| s.keyframe && s.pts >= start_pts)
        .filter(|&k| samples[k].pts < end)
        .unwrap_or(samples.len());
    let head = if key < samples.len() && samples[key].pts == start_pts {
        (key, key)
    } else {
        let from = samples[..key]
            .iter()
            .rposition(|s| s.keyframe && s.pts <= start_pts)
            .ok_or(CutError::NoKeyframe)?;
        // Decode up to the copied keyframe, or (no keyframe left in the window) up to the
        // end of what is presented inside it.
        let to = if key < samples.len() {
            key
        } else {
            samples
                .iter()
                .rposition(|s| s.pts < end)
                .map_or(from, |i| i + 1)
        };
        (from, to)
    };
    let mut copy_end = key;
    while copy_end < samples.len() && samples[copy_end].pts < end {
        copy_end += 1;
    }
    Ok(Cut {
        start_pts,
        head,
        copy: (key.min(copy_end), copy_end),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// x264-like: 30 fps (3000 ticks), GOP `gop`, two B-frames, decode order
    /// I P B B P B B …, pts = display index * 3000 + 6000, dts = decode index * 3000.
    fn stream(frames: usize, gop: usize) -> Vec<At> {
        let mut out = Vec::new();
        let mut g = 0;
        while g < frames {
            let n = gop.min(frames - g);
            let mut order = vec![0usize];
            let mut i = 1;
            while i < n {
                let p = (i + 2).min(n - 1);
                order.push(p);
                for b in i..p {
                    order.push(b);
                }
                i = p + 1;
            }
            for d in order {
                out.push(At {
                    pts: ((g + d) as i64) * 3000 + 6000,
                    dts: out.len() as i64 * 3000,
                    keyframe: d == 0,
                });
            }
            g += n;
        }
        out
    }

    #[test]
    fn mid_gop_start_reencodes_up_to_the_next_keyframe() {
        let s = stream(120, 60);
        // Display frame 10 (pts 36000): head decodes GOP 0, copies from frame 60.
        let c = plan(&s, 36_000 - 1000, 90_000 * 3).unwrap();
        assert_eq!(c.start_pts, 36_000);
        assert!(c.reencodes());
        assert_eq!(c.head, (0, 60));
        assert_eq!(c.copy.0, 60);
        assert!(s[60].keyframe);
        // Everything copied is shown before the end, and only that.
        for x in &s[c.copy.0..c.copy.1] {
            assert!(x.pts < 270_000);
        }
    }

    #[test]
    fn a_start_on_a_keyframe_copies_everything() {
        let s = stream(120, 60);
        let c = plan(&s, 60 * 3000 + 6000, 1 << 40).unwrap();
        assert!(!c.reencodes());
        assert_eq!(c.copy, (60, 120));
    }

    #[test]
    fn the_end_never_shows_a_later_frame_nor_breaks_a_reference() {
        let s = stream(120, 60);
        for end_frame in 61..120 {
            let end = end_frame as i64 * 3000 + 6000;
            let c = plan(&s, 6000, end).unwrap();
            let shown: Vec<i64> = s[c.copy.0..c.copy.1].iter().map(|x| x.pts).collect();
            assert!(shown.iter().all(|&p| p < end));
            // At most the two B-frames before the end are lost.
            assert!(
                shown.len() + 2 >= end_frame,
                "end {end_frame}: {}",
                shown.len()
            );
        }
    }

    #[test]
    fn a_window_without_a_keyframe_is_all_head() {
        let s = stream(120, 60);
        let c = plan(&s, 10 * 3000 + 6000, 20 * 3000 + 6000).unwrap();
        assert_eq!(c.head.0, 0);
        assert_eq!(c.copy.0, c.copy.1);
        assert!(
            s[c.head.0..c.head.1]
                .iter()
                .any(|x| x.pts == 19 * 3000 + 6000)
        );
    }

    #[test]
    fn refusals() {
        let s = stream(60, 60);
        assert_eq!(plan(&s, 1 << 30, 1 << 31), Err(CutError::Empty));
        assert_eq!(plan(&s[1..], 20_000, 90_000), Err(CutError::NoKeyframe));
        assert_eq!(plan(&[], 0, 10), Err(CutError::Empty));
    }
}
