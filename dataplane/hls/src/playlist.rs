//! Playlist text: the media playlist (full or delta) and the multivariant playlist.

use std::fmt::Write as _;
use std::time::Duration;

use crate::config::HlsConfig;
use crate::datetime::format_iso8601_ms;
use crate::names::ObjectName;
use crate::variant::VariantInfo;
use crate::window::{Segment, Window};

/// `EXT-X-VERSION` of every playlist (`EXT-X-SKIP` and LL-HLS need 9).
pub const VERSION: u32 = 9;

/// Seconds with three decimals, rounded to the nearest millisecond.
pub(crate) fn secs3(d: Duration) -> String {
    let ms = (d.as_nanos() + 500_000) / 1_000_000;
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

/// `CAN-SKIP-UNTIL`: six (fixed) target durations.
pub(crate) fn can_skip_until(w: &Window) -> Duration {
    Duration::from_secs(w.target_duration.saturating_mul(6))
}

/// How many leading segments a delta update may replace with `EXT-X-SKIP`: those that end
/// at least `CAN-SKIP-UNTIL` before the end of the playlist.
pub(crate) fn skippable(w: &Window) -> usize {
    let total: Duration = w.closed.iter().map(|s| s.duration).sum::<Duration>()
        + w.open.as_ref().map_or(Duration::ZERO, |s| s.duration);
    let Some(boundary) = total.checked_sub(can_skip_until(w)) else {
        return 0;
    };
    let mut end = Duration::ZERO;
    w.closed
        .iter()
        .take_while(|s| {
            end += s.duration;
            end <= boundary
        })
        .count()
}

/// The media playlist (a delta update when `skip` and enough segments exist).
pub(crate) fn media_playlist(
    cfg: &HlsConfig,
    w: &Window,
    ended: bool,
    skip: bool,
    reports: &[RenditionReport],
) -> String {
    let mut out = String::with_capacity(256 + 160 * (w.closed.len() + 1) * 6);
    let first = w.closed.front().map(|s| &**s).or(w.open.as_ref());
    let first_msn = first.map_or(w.next_msn, |s| s.msn);
    let discontinuity_sequence =
        w.evicted_discontinuities + first.map_or(0, |s| u64::from(s.discontinuity));
    let _ = write!(
        out,
        "#EXTM3U\n#EXT-X-VERSION:{VERSION}\n#EXT-X-TARGETDURATION:{}\n\
         #EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL={},PART-HOLD-BACK={}\n\
         #EXT-X-PART-INF:PART-TARGET={}\n#EXT-X-MEDIA-SEQUENCE:{first_msn}\n",
        w.target_duration,
        secs3(can_skip_until(w)),
        secs3(cfg.advertised_part_target() * 3),
        secs3(cfg.advertised_part_target()),
    );
    if discontinuity_sequence > 0 {
        let _ = writeln!(
            out,
            "#EXT-X-DISCONTINUITY-SEQUENCE:{discontinuity_sequence}"
        );
    }
    if w.all_independent() {
        out.push_str("#EXT-X-INDEPENDENT-SEGMENTS\n");
    }

    let skipped = if skip { skippable(w) } else { 0 };
    if skipped > 0 {
        let _ = writeln!(out, "#EXT-X-SKIP:SKIPPED-SEGMENTS={skipped}");
    }
    let parts_from = w.closed.len().saturating_sub(cfg.keep_parts_segments);
    let mut previous_init = None;
    for (i, seg) in w.closed.iter().enumerate().skip(skipped) {
        write_segment(&mut out, seg, previous_init, i == 0, i >= parts_from);
        if seg.gap {
            out.push_str("#EXT-X-GAP\n");
        }
        let _ = write!(
            out,
            "#EXTINF:{},\n{}\n",
            secs3(seg.duration),
            ObjectName::Segment(seg.msn).file_name()
        );
        previous_init = Some(seg.init);
    }
    if let Some(seg) = &w.open {
        write_segment(&mut out, seg, previous_init, w.closed.is_empty(), true);
    }
    if ended {
        out.push_str("#EXT-X-ENDLIST\n");
    } else {
        let _ = writeln!(
            out,
            "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{}\"",
            ObjectName::Part(w.next_msn, w.open_parts()).file_name()
        );
    }
    for r in reports {
        let _ = writeln!(
            out,
            "#EXT-X-RENDITION-REPORT:URI=\"{}\",LAST-MSN={},LAST-PART={}",
            r.uri, r.last_msn, r.last_part
        );
    }
    out
}

/// An `EXT-X-RENDITION-REPORT`: where another rendition of the broadcast has got, so a
/// player switching to it can ask for its next part at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenditionReport {
    /// Its media playlist, relative to this one (`../480p/media.m3u8`).
    pub uri: String,
    /// Media sequence number of its last (partial) segment.
    pub last_msn: u64,
    /// Index of the last part of that segment.
    pub last_part: u64,
}

/// The tags of one segment before its `EXTINF`: discontinuity, map, date, parts.
fn write_segment(
    out: &mut String,
    seg: &Segment,
    prev_init: Option<u64>,
    first: bool,
    parts: bool,
) {
    if seg.discontinuity && !first {
        out.push_str("#EXT-X-DISCONTINUITY\n");
    }
    if prev_init != Some(seg.init) {
        let _ = writeln!(
            out,
            "#EXT-X-MAP:URI=\"{}\"",
            ObjectName::Init(seg.init).file_name()
        );
    }
    let _ = writeln!(
        out,
        "#EXT-X-PROGRAM-DATE-TIME:{}",
        format_iso8601_ms(seg.wallclock_ms)
    );
    if !parts {
        return;
    }
    for (i, p) in seg.parts.iter().enumerate() {
        let _ = writeln!(
            out,
            "#EXT-X-PART:DURATION={},URI=\"{}\"{}{}",
            secs3(p.duration),
            ObjectName::Part(seg.msn, i as u64).file_name(),
            if p.independent {
                ",INDEPENDENT=YES"
            } else {
                ""
            },
            if p.gap { ",GAP=YES" } else { "" }
        );
    }
}

/// The multivariant playlist with the one variant this stream has.
pub(crate) fn multivariant(cfg: &HlsConfig, info: &VariantInfo) -> String {
    let mut out = format!("#EXTM3U\n#EXT-X-VERSION:{VERSION}\n");
    if info.independent {
        out.push_str("#EXT-X-INDEPENDENT-SEGMENTS\n");
    }
    let _ = write!(
        out,
        "#EXT-X-STREAM-INF:{}\n{}\n",
        info.stream_inf_attributes(None),
        cfg.media_playlist_uri
    );
    out
}
