//! Just enough m3u8 parsing for the clients: segments, LL-HLS parts, the preload
//! hint, the first variant of a multivariant playlist; and the "what is new" logic a
//! live client runs after each reload.

use anyhow::{Context as _, ensure};

/// A partial segment.
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    /// `DURATION` in seconds.
    pub duration: f64,
    /// `URI`, relative to the playlist.
    pub uri: String,
}

/// A segment, closed (with `EXTINF` and URI) or still open (parts only).
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// Media sequence number.
    pub msn: u64,
    /// `EXTINF` duration, once the segment is closed.
    pub duration: Option<f64>,
    /// Segment URI, once closed.
    pub uri: Option<String>,
    /// Parts, when the playlist lists them.
    pub parts: Vec<Part>,
}

/// A media playlist.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MediaPlaylist {
    /// `EXT-X-MEDIA-SEQUENCE`.
    pub media_sequence: u64,
    /// Segments in order, the open one last.
    pub segments: Vec<Segment>,
    /// `EXT-X-PRELOAD-HINT` URI of TYPE=PART.
    pub preload_hint: Option<String>,
    /// `EXT-X-ENDLIST` seen.
    pub ended: bool,
}

/// Value of attribute `name` in an attribute list (quotes removed).
fn attr<'a>(list: &'a str, name: &str) -> Option<&'a str> {
    let mut rest = list;
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        let (value, next) = if let Some(q) = after.strip_prefix('"') {
            let end = q.find('"')?;
            (&q[..end], q[end + 1..].trim_start_matches(','))
        } else {
            match after.split_once(',') {
                Some((v, n)) => (v, n),
                None => (after, ""),
            }
        };
        if key.trim() == name {
            return Some(value);
        }
        rest = next;
    }
    None
}

/// Parses a media playlist.
pub fn parse_media(text: &str) -> anyhow::Result<MediaPlaylist> {
    ensure!(text.starts_with("#EXTM3U"), "not a playlist");
    let mut pl = MediaPlaylist::default();
    let mut msn = None;
    let mut parts = Vec::new();
    let mut extinf = None;
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(v) = line.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
            pl.media_sequence = v.parse().context("bad EXT-X-MEDIA-SEQUENCE")?;
            msn = Some(pl.media_sequence);
        } else if let Some(v) = line.strip_prefix("#EXT-X-SKIP:") {
            let n: u64 = attr(v, "SKIPPED-SEGMENTS")
                .and_then(|s| s.parse().ok())
                .context("bad EXT-X-SKIP")?;
            msn = Some(msn.unwrap_or(pl.media_sequence) + n);
        } else if let Some(v) = line.strip_prefix("#EXT-X-PART:") {
            parts.push(Part {
                duration: attr(v, "DURATION")
                    .and_then(|d| d.parse().ok())
                    .context("EXT-X-PART without DURATION")?,
                uri: attr(v, "URI").context("EXT-X-PART without URI")?.to_owned(),
            });
        } else if let Some(v) = line.strip_prefix("#EXTINF:") {
            let d = v.split(',').next().unwrap_or_default();
            extinf = Some(d.trim().parse::<f64>().context("bad EXTINF")?);
        } else if let Some(v) = line.strip_prefix("#EXT-X-PRELOAD-HINT:") {
            if attr(v, "TYPE") == Some("PART") {
                pl.preload_hint = attr(v, "URI").map(str::to_owned);
            }
        } else if line == "#EXT-X-ENDLIST" {
            pl.ended = true;
        } else if !line.starts_with('#') {
            let n = msn.unwrap_or(pl.media_sequence);
            pl.segments.push(Segment {
                msn: n,
                duration: extinf.take(),
                uri: Some(line.to_owned()),
                parts: std::mem::take(&mut parts),
            });
            msn = Some(n + 1);
        }
    }
    if !parts.is_empty() {
        pl.segments.push(Segment {
            msn: msn.unwrap_or(pl.media_sequence),
            duration: None,
            uri: None,
            parts,
        });
    }
    Ok(pl)
}

/// The first variant URI of a multivariant playlist.
pub fn first_variant(text: &str) -> Option<String> {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
}

/// `(msn, index)` of a weir part name `part-<msn>-<idx>.m4s`.
pub fn part_numbers(uri: &str) -> Option<(u64, u64)> {
    let name = uri.rsplit('/').next()?;
    let (m, i) = name
        .strip_prefix("part-")?
        .strip_suffix(".m4s")?
        .split_once('-')?;
    Some((m.parse().ok()?, i.parse().ok()?))
}

/// The directory part of a path (its query ignored), with its trailing slash.
pub fn dir_of(path: &str) -> &str {
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    path.rfind('/').map_or("/", |i| &path[..=i])
}

/// `url` with `query` added (`?` or `&`).
pub fn with_query(url: &str, query: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{query}")
}

/// One object a client should fetch next.
#[derive(Debug, Clone, PartialEq)]
pub struct Fetch {
    /// `(msn, part index)`; the part index is 0 for whole segments.
    pub key: (u64, u64),
    /// Duration in seconds.
    pub duration: f64,
    /// URI relative to the playlist.
    pub uri: String,
}

/// What a live client remembers between reloads: the next object it wants.
#[derive(Debug, Clone, Default)]
pub struct Follower {
    next: Option<(u64, u64)>,
    hint: Option<(u64, u64)>,
}

/// Where a follower starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// With the first object listed (the latency pollers: the stream's first frame).
    First,
    /// With the newest object listed (a viewer joining a live stream).
    Live,
}

impl Follower {
    /// LL-HLS: new parts in `pl` since the last call, in order.
    pub fn new_parts(&mut self, pl: &MediaPlaylist, start: Start) -> Vec<Fetch> {
        self.hint = pl.preload_hint.as_deref().and_then(part_numbers);
        let all = pl.segments.iter().flat_map(|s| {
            s.parts.iter().enumerate().map(move |(i, p)| Fetch {
                key: (s.msn, i as u64),
                duration: p.duration,
                uri: p.uri.clone(),
            })
        });
        self.take_new(all.collect(), start)
    }

    /// Plain HLS: new closed segments in `pl` since the last call, in order.
    pub fn new_segments(&mut self, pl: &MediaPlaylist, start: Start) -> Vec<Fetch> {
        let all = pl.segments.iter().filter_map(|s| {
            Some(Fetch {
                key: (s.msn, 0),
                duration: s.duration?,
                uri: s.uri.clone()?,
            })
        });
        self.take_new(all.collect(), start)
    }

    fn take_new(&mut self, mut all: Vec<Fetch>, start: Start) -> Vec<Fetch> {
        match self.next {
            Some(next) => all.retain(|f| f.key >= next),
            None if start == Start::Live => {
                let keep = all.len().saturating_sub(1);
                all.drain(..keep);
            }
            None => {}
        }
        if let Some(last) = all.last() {
            self.next = Some((last.key.0, last.key.1 + 1));
        }
        all
    }

    /// The blocking-reload query for the next part (`_HLS_msn=…&_HLS_part=…`), from the
    /// preload hint, else from the last part seen.
    pub fn blocking_query(&self) -> Option<String> {
        let (m, p) = self.hint.or(self.next)?;
        Some(format!("_HLS_msn={m}&_HLS_part={p}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LL: &str = "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:2\n\
        #EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=0.600\n\
        #EXT-X-PART-INF:PART-TARGET=0.200\n#EXT-X-MEDIA-SEQUENCE:4\n\
        #EXT-X-MAP:URI=\"init-0.mp4\"\n\
        #EXT-X-PART:DURATION=0.200,URI=\"part-4-0.m4s\",INDEPENDENT=YES\n\
        #EXT-X-PART:DURATION=0.100,URI=\"part-4-1.m4s\"\n#EXTINF:0.300,\nseg-4.m4s\n\
        #EXT-X-PART:DURATION=0.200,URI=\"part-5-0.m4s\",INDEPENDENT=YES\n\
        #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part-5-1.m4s\"\n";

    #[test]
    fn parses_ll_hls() {
        let pl = parse_media(LL).expect("parse");
        assert_eq!(pl.media_sequence, 4);
        assert_eq!(pl.segments.len(), 2);
        assert_eq!(pl.segments[0].duration, Some(0.3));
        assert_eq!(pl.segments[0].parts.len(), 2);
        assert_eq!(pl.segments[1].msn, 5);
        assert_eq!(pl.segments[1].uri, None);
        assert_eq!(pl.preload_hint.as_deref(), Some("part-5-1.m4s"));
        assert_eq!(part_numbers("a/part-5-1.m4s"), Some((5, 1)));
    }

    #[test]
    fn follower_returns_only_new_parts() {
        let pl = parse_media(LL).expect("parse");
        let mut f = Follower::default();
        let first: Vec<_> = f
            .new_parts(&pl, Start::First)
            .into_iter()
            .map(|x| x.key)
            .collect();
        assert_eq!(first, [(4, 0), (4, 1), (5, 0)]);
        assert_eq!(
            f.blocking_query().as_deref(),
            Some("_HLS_msn=5&_HLS_part=1")
        );
        assert!(f.new_parts(&pl, Start::First).is_empty());
        let mut live = Follower::default();
        assert_eq!(live.new_parts(&pl, Start::Live).len(), 1);
        let mut segs = Follower::default();
        assert_eq!(segs.new_segments(&pl, Start::First).len(), 1);
        assert!(segs.new_segments(&pl, Start::First).is_empty());
    }

    #[test]
    fn variants_and_attrs() {
        assert_eq!(
            first_variant("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nabc/media.m3u8\n").as_deref(),
            Some("abc/media.m3u8")
        );
        assert_eq!(attr("A=1,B=\"x,y\",C=3", "C"), Some("3"));
        assert_eq!(attr("A=1,B=\"x,y\",C=3", "B"), Some("x,y"));
        assert_eq!(dir_of("/live/c/b/media.m3u8"), "/live/c/b/");
        assert_eq!(dir_of("/live/c/b/media.m3u8?s=a/b"), "/live/c/b/");
        assert_eq!(with_query("/m.m3u8", "x=1"), "/m.m3u8?x=1");
        assert_eq!(with_query("/m.m3u8?s=2", "x=1"), "/m.m3u8?s=2&x=1");
    }
}
