//! Which rungs apply to a given source: never upscale, widths from the source aspect.

use weir_media::{Codec, VideoConfig, parse_avcc, parse_sps};

use crate::config::LadderConfig;

/// One rendition the ladder will produce for a particular source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedRung {
    /// Rendition name: the configured one, `"<h>p"` for a rung made at the source height
    /// by capping, or `"source"` for a passthrough rung added above the configured ones.
    pub name: String,
    /// Output width in pixels (even unless passthrough).
    pub width: u16,
    /// Output height in pixels (even unless passthrough).
    pub height: u16,
    /// Target bitrate in kbit/s; for a passthrough rung, the nominal bitrate of the rung it
    /// replaces, or 0 (unknown) when it was added.
    pub video_bitrate_kbps: u32,
    /// Frame-rate cap.
    pub max_fps: Option<u32>,
    /// The source frames themselves are this rung's output (no decode, no encode).
    pub passthrough: bool,
}

/// The source's display dimensions: the track config's, or its SPS's when the config says 0.
pub fn source_dimensions(source: &VideoConfig) -> Option<(u32, u32)> {
    if source.width > 0 && source.height > 0 {
        return Some((u32::from(source.width), u32::from(source.height)));
    }
    if source.codec != Codec::H264 {
        return None;
    }
    let (sps, _) = parse_avcc(&source.record).ok()?;
    let info = parse_sps(sps.first()?).ok()?;
    (info.width > 0 && info.height > 0).then_some((info.width, info.height))
}

/// The rungs that apply to `source`, tallest first (index 0 is the top rung).
///
/// - Rungs taller than the source are dropped (never upscale). When any were dropped and no
///   configured rung has the source height, one rung is made at the source height (rounded
///   down to even) from the shortest dropped rung, its bitrate scaled by pixel count.
/// - Widths follow the source aspect ratio (square pixels assumed), rounded to the nearest
///   even number; equal heights are planned once.
/// - With `passthrough_top`, the rung at the source height becomes the source itself; when
///   every configured rung is shorter than the source, a passthrough rung `"source"` is
///   added on top.
///
/// Returns no rungs when the source dimensions are unknown.
pub fn plan(config: &LadderConfig, source: &VideoConfig) -> Vec<PlannedRung> {
    let Some((src_w, src_h)) = source_dimensions(source) else {
        return Vec::new();
    };
    let even_h = src_h & !1;
    let mut wanted: Vec<&crate::config::Rung> = config.rungs.iter().collect();
    wanted.sort_by_key(|r| std::cmp::Reverse(r.height));
    wanted.dedup_by_key(|r| r.height);

    let (taller, fitting): (Vec<_>, Vec<_>) = wanted
        .into_iter()
        .partition(|r| u32::from(r.height) > src_h);
    let mut out: Vec<PlannedRung> = fitting
        .iter()
        .map(|r| PlannedRung {
            name: r.name.clone(),
            width: scaled_width(src_w, src_h, u32::from(r.height)),
            height: r.height,
            video_bitrate_kbps: r.video_bitrate_kbps,
            max_fps: r.max_fps,
            passthrough: false,
        })
        .collect();

    let has_source_height = out.first().is_some_and(|r| u32::from(r.height) == even_h);
    if let Some(shortest_taller) = taller.last()
        && !has_source_height
        && even_h >= 2
    {
        let scale = f64::from(even_h) / f64::from(shortest_taller.height);
        let kbps = (f64::from(shortest_taller.video_bitrate_kbps) * scale * scale).round();
        out.insert(
            0,
            PlannedRung {
                name: format!("{even_h}p"),
                width: scaled_width(src_w, src_h, even_h),
                height: clamp_u16(even_h),
                video_bitrate_kbps: (kbps as u32).max(1),
                max_fps: shortest_taller.max_fps,
                passthrough: false,
            },
        );
    }

    if config.passthrough_top {
        let source_rung = |name: String, kbps: u32| PlannedRung {
            name,
            width: clamp_u16(src_w),
            height: clamp_u16(src_h),
            video_bitrate_kbps: kbps,
            max_fps: None,
            passthrough: true,
        };
        match out.first() {
            Some(top) if u32::from(top.height) == even_h => {
                out[0] = source_rung(top.name.clone(), top.video_bitrate_kbps);
            }
            _ => out.insert(0, source_rung("source".to_owned(), 0)),
        }
    }
    out
}

/// `src_w * height / src_h` rounded to the nearest even number (at least 2).
pub(crate) fn scaled_width(src_w: u32, src_h: u32, height: u32) -> u16 {
    let num = u64::from(src_w) * u64::from(height);
    let den = 2 * u64::from(src_h.max(1));
    let half = (num + den / 2) / den;
    clamp_u16(u32::try_from(half * 2).unwrap_or(u32::MAX).max(2))
}

fn clamp_u16(v: u32) -> u16 {
    u16::try_from(v).unwrap_or(0xfffe)
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::config::{Rung, default_ladder};

    fn source(width: u16, height: u16) -> VideoConfig {
        VideoConfig {
            codec: Codec::H264,
            width,
            height,
            record: Bytes::new(),
        }
    }

    fn dims(p: &[PlannedRung]) -> Vec<(u16, u16, bool)> {
        p.iter()
            .map(|r| (r.width, r.height, r.passthrough))
            .collect()
    }

    #[test]
    fn full_ladder_for_1080p() {
        let p = plan(&LadderConfig::default(), &source(1920, 1080));
        assert_eq!(
            dims(&p),
            [
                (1920, 1080, false),
                (1280, 720, false),
                (854, 480, false),
                (640, 360, false)
            ]
        );
        assert_eq!(p[0].name, "1080p");
        assert_eq!(p[0].video_bitrate_kbps, 6000);
    }

    #[test]
    fn capped_at_the_source_never_upscaled() {
        let p = plan(&LadderConfig::default(), &source(1280, 720));
        assert_eq!(
            dims(&p),
            [(1280, 720, false), (854, 480, false), (640, 360, false)]
        );
        // 900p source: the 1080p rung becomes a 900p rung with a pixel-scaled bitrate.
        let p = plan(&LadderConfig::default(), &source(1600, 900));
        assert_eq!(p[0].name, "900p");
        assert_eq!((p[0].width, p[0].height), (1600, 900));
        assert_eq!(p[0].video_bitrate_kbps, 4167);
        assert_eq!(p.len(), 4);
        // Tiny source: only a rung at its height.
        let p = plan(&LadderConfig::default(), &source(320, 240));
        assert_eq!(dims(&p), [(320, 240, false)]);
    }

    #[test]
    fn widths_are_even_and_follow_the_aspect() {
        let p = plan(&LadderConfig::default(), &source(1440, 1080)); // 4:3
        assert_eq!(
            dims(&p)[1..],
            [(960, 720, false), (640, 480, false), (480, 360, false)]
        );
        let p = plan(&LadderConfig::default(), &source(1080, 1920)); // portrait
        assert_eq!(p[0].width, 608); // 1080 * 1080 / 1920 = 607.5
        assert!(p.iter().all(|r| r.width % 2 == 0 && r.height % 2 == 0));
        // Odd source height: the encoded rung at the source height is rounded down to even.
        let p = plan(&LadderConfig::default(), &source(1281, 721));
        assert_eq!((p[0].width, p[0].height), (1280, 720));
    }

    #[test]
    fn passthrough_replaces_or_adds_the_top() {
        let cfg = LadderConfig {
            passthrough_top: true,
            ..LadderConfig::default()
        };
        let p = plan(&cfg, &source(1920, 1080));
        assert_eq!(dims(&p)[0], (1920, 1080, true));
        assert_eq!(p[0].name, "1080p");
        assert_eq!(p.iter().filter(|r| r.passthrough).count(), 1);
        // Source taller than every rung: the source is added above them.
        let p = plan(&cfg, &source(2560, 1440));
        assert_eq!(p[0].name, "source");
        assert_eq!(dims(&p)[..2], [(2560, 1440, true), (1920, 1080, false)]);
        // Odd source: passthrough keeps the exact dimensions.
        let p = plan(&cfg, &source(1281, 721));
        assert_eq!(dims(&p)[0], (1281, 721, true));
    }

    #[test]
    fn duplicate_heights_and_order() {
        let cfg = LadderConfig {
            rungs: vec![
                Rung::new("low", 360, 700),
                Rung::new("hi", 720, 3000),
                Rung::new("hi2", 720, 2500),
            ],
            ..LadderConfig::default()
        };
        let p = plan(&cfg, &source(1920, 1080));
        let names: Vec<&str> = p.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["hi", "low"]);
        assert_eq!(default_ladder().len(), 4);
    }

    #[test]
    fn unknown_dimensions_come_from_the_sps_or_plan_nothing() {
        assert!(plan(&LadderConfig::default(), &source(0, 0)).is_empty());
        // avcC of a 320x240 x264 stream (same bytes as weir-media's tests).
        let record = Bytes::from_static(&[
            0x01, 0x64, 0x00, 0x0d, 0xff, 0xe1, 0x00, 0x19, 0x67, 0x64, 0x00, 0x0d, 0xac, 0xd9,
            0x41, 0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x03,
            0xc0, 0xf1, 0x42, 0x99, 0x60, 0x01, 0x00, 0x06, 0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0,
        ]);
        let src = VideoConfig {
            record,
            ..source(0, 0)
        };
        assert_eq!(source_dimensions(&src), Some((320, 240)));
    }
}
