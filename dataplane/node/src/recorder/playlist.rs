//! The playlist of a recording (sans-IO), rendered from its [`Index`].
//!
//! While the broadcast goes on it is an `EXT-X-PLAYLIST-TYPE:EVENT` playlist of every
//! segment on disk so far (the DVR: a player may seek back to the start, and reloads
//! see it grow); once the recording is finished it is `VOD` with `EXT-X-ENDLIST`. Both
//! name the segments relatively (`seg-<msn>.m4s`, `init-<n>.mp4`), carry
//! `EXT-X-PROGRAM-DATE-TIME` on the first segment (and after every discontinuity), and
//! an `EXT-X-DISCONTINUITY` where the publisher came back, where the tracks changed or
//! where a segment is missing (dropped because the disk was too slow).

use std::fmt::Write as _;

use super::index::Index;

/// Renders the playlist of `index`: `VOD` when `finished`, `EVENT` otherwise.
pub fn render(index: &Index, finished: bool) -> String {
    let mut p = String::with_capacity(128 + 48 * index.segments.len());
    // EXTINF as written (ms) rounds to at most the target.
    let longest = index
        .segments
        .iter()
        .map(|s| s.duration_us.div_ceil(1000).div_ceil(1000))
        .max()
        .unwrap_or(0);
    let target = index.header.target_secs.max(longest).max(1);
    let first_msn = index.segments.first().map_or(0, |s| s.msn);
    let _ = write!(
        p,
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:{target}\n\
         #EXT-X-PLAYLIST-TYPE:{}\n#EXT-X-MEDIA-SEQUENCE:{first_msn}\n\
         #EXT-X-DISCONTINUITY-SEQUENCE:0\n",
        if finished { "VOD" } else { "EVENT" },
    );
    if index.segments.iter().all(|s| s.independent) {
        p.push_str("#EXT-X-INDEPENDENT-SEGMENTS\n");
    }
    let mut init = None;
    let mut prev_msn = None;
    for s in &index.segments {
        let hole = prev_msn.is_some_and(|m: u64| s.msn != m + 1);
        let new_init = init != Some(s.init);
        let discontinuity = prev_msn.is_some() && (s.discontinuity || hole || new_init);
        if discontinuity {
            p.push_str("#EXT-X-DISCONTINUITY\n");
        }
        if new_init {
            let _ = writeln!(p, "#EXT-X-MAP:URI=\"init-{}.mp4\"", s.init);
            init = Some(s.init);
        }
        if prev_msn.is_none() || discontinuity {
            let _ = writeln!(
                p,
                "#EXT-X-PROGRAM-DATE-TIME:{}",
                weir_hls::format_iso8601_ms(s.wallclock_ms)
            );
        }
        if s.gap {
            p.push_str("#EXT-X-GAP\n");
        }
        let ms = s.duration_us.div_ceil(1000);
        let _ = write!(
            p,
            "#EXTINF:{}.{:03},\nseg-{}.m4s\n",
            ms / 1000,
            ms % 1000,
            s.msn
        );
        prev_msn = Some(s.msn);
    }
    if finished {
        p.push_str("#EXT-X-ENDLIST\n");
    }
    p
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::index::{Header, SegmentEntry};
    use super::*;

    fn index(msns: &[u64]) -> Index {
        let mut i = Index::new(Header {
            id: "r1".into(),
            channel_id: "c".into(),
            broadcast_id: "b".into(),
            started_ms: 0,
            target_secs: 4,
            signed: None,
        });
        i.inits.push((0, 700));
        for &msn in msns {
            i.segments.push(SegmentEntry {
                msn,
                duration_us: 2_002_000,
                bytes: 10,
                start: 0,
                timescale: 90_000,
                wallclock_ms: 1_764_748_800_000 + 2000 * msn,
                init: 0,
                discontinuity: false,
                gap: false,
                independent: true,
            });
        }
        i
    }

    #[test]
    fn vod_has_endlist_and_a_program_date_time() {
        let p = render(&index(&[0, 1, 2]), true);
        assert_eq!(
            p,
            "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:4\n#EXT-X-PLAYLIST-TYPE:VOD\n\
             #EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-DISCONTINUITY-SEQUENCE:0\n\
             #EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-MAP:URI=\"init-0.mp4\"\n\
             #EXT-X-PROGRAM-DATE-TIME:2025-12-03T08:00:00.000Z\n\
             #EXTINF:2.002,\nseg-0.m4s\n#EXTINF:2.002,\nseg-1.m4s\n#EXTINF:2.002,\nseg-2.m4s\n\
             #EXT-X-ENDLIST\n"
        );
    }

    #[test]
    fn event_while_recording_grows_without_endlist() {
        let a = render(&index(&[0]), false);
        let b = render(&index(&[0, 1]), false);
        assert!(a.contains("#EXT-X-PLAYLIST-TYPE:EVENT\n"));
        assert!(!a.contains("ENDLIST") && !b.contains("ENDLIST"));
        assert!(b.starts_with(a.as_str()), "an EVENT playlist only appends");
        // Nothing yet: a valid, empty EVENT playlist.
        let empty = render(&index(&[]), false);
        assert!(empty.contains("#EXT-X-MEDIA-SEQUENCE:0\n") && !empty.contains("EXTINF"));
    }

    #[test]
    fn holes_new_inits_and_resumes_are_discontinuities() {
        let mut i = index(&[3, 4, 6, 7, 8]);
        i.segments[3].init = 1;
        i.segments[4].discontinuity = true;
        i.segments[4].init = 1;
        i.segments[1].gap = true;
        i.segments[1].independent = false;
        let p = render(&i, true);
        assert!(p.contains("#EXT-X-MEDIA-SEQUENCE:3\n"));
        assert_eq!(p.matches("#EXT-X-DISCONTINUITY\n").count(), 3, "{p}");
        assert_eq!(p.matches("#EXT-X-PROGRAM-DATE-TIME").count(), 4, "{p}");
        assert!(p.contains("#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init-1.mp4\"\n"));
        assert!(p.contains("#EXT-X-GAP\n#EXTINF:2.002,\nseg-4.m4s\n"));
        assert!(!p.contains("INDEPENDENT-SEGMENTS"));
    }

    #[test]
    fn a_long_segment_raises_the_target() {
        let mut i = index(&[0, 1]);
        i.segments[1].duration_us = 5_600_000;
        assert!(render(&i, true).contains("#EXT-X-TARGETDURATION:6\n"));
    }
}
