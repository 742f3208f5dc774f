//! The recording index (sans-IO): one text file per recording, append-only, one line
//! per fact, each line written whole and fsynced before the next.
//!
//! ```text
//! weir-recording 1 <recording id> <channel id> <broadcast id> <started ms> <target s> [signed=<channel>]
//! init <n> <bytes>
//! seg <msn> <duration µs> <bytes> <first dts> <timescale> <wallclock ms> <init> <flags>
//! end <ended ms>
//! ```
//! `flags` is a set of letters: `d` discontinuity, `g` gap (audio only), `i` starts with
//! a key frame; `-` for none. A line only counts once its `\n` is there: a node killed
//! while appending leaves at most one partial last line, which [`Index::parse`] ignores
//! (and reports, so the driver can cut it off before appending again). A segment is in
//! the index only after its file was fsynced and renamed into place, so every indexed
//! segment exists whole on disk.
//!
//! `signed=<channel>` marks a recording of a broadcast whose playback needed signed URLs:
//! its files are served only under a playback token for that channel (see
//! `http::signed`). Nodes before it read such a header as unknown and leave the
//! recording alone.

use std::fmt::Write as _;

/// The first word of an index file.
pub const MAGIC: &str = "weir-recording";
/// The index format version this node writes and reads.
pub const VERSION: u32 = 1;
/// The index's file name inside a recording's directory.
pub const INDEX_FILE: &str = "index.txt";

/// What a recording is, from its first line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The recording id (its directory name).
    pub id: String,
    /// The control plane's channel id.
    pub channel_id: String,
    /// The broadcast it records.
    pub broadcast_id: String,
    /// When it started (UNIX ms).
    pub started_ms: u64,
    /// `EXT-X-TARGETDURATION` of its playlists (seconds).
    pub target_secs: u64,
    /// The channel (as in its URLs) whose playback token its files need, for a recording
    /// of a signed broadcast; None: served to anyone who knows its id.
    pub signed: Option<String>,
}

/// One complete media segment on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentEntry {
    /// Media sequence number (file `seg-<msn>.m4s`).
    pub msn: u64,
    /// Duration in microseconds (its `EXTINF`).
    pub duration_us: u64,
    /// File size.
    pub bytes: u64,
    /// Decode time of its first sample, in `timescale` ticks.
    pub start: u64,
    /// Timescale of `start`.
    pub timescale: u32,
    /// Wall-clock time of its first frame (UNIX ms).
    pub wallclock_ms: u64,
    /// Its init segment (`init-<n>.mp4`).
    pub init: u64,
    /// Carries `EXT-X-DISCONTINUITY`.
    pub discontinuity: bool,
    /// Audio only while the video stalled (`EXT-X-GAP`).
    pub gap: bool,
    /// Starts with a key frame.
    pub independent: bool,
}

/// A recording's index, as parsed or as built while recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Index {
    /// The header.
    pub header: Header,
    /// Init segments written: `(n, bytes)`.
    pub inits: Vec<(u64, u64)>,
    /// Complete segments, in order.
    pub segments: Vec<SegmentEntry>,
    /// When it ended (UNIX ms): None while recording, or for a recording whose node died.
    pub ended_ms: Option<u64>,
}

/// Why an index cannot be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IndexError {
    /// The first line is missing, truncated or not a header of a known version.
    #[error("not a recording index (bad or missing header)")]
    BadHeader,
}

/// What [`Index::parse`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// The facts of every complete, well-formed line.
    pub index: Index,
    /// Bytes of the file those lines take: anything after (a partial last line, or
    /// garbage) should be cut off before appending.
    pub valid_len: usize,
}

impl Header {
    /// Its line (with the `\n`).
    pub fn line(&self) -> String {
        let signed = self
            .signed
            .as_deref()
            .map_or_else(String::new, |c| format!(" signed={c}"));
        format!(
            "{MAGIC} {VERSION} {} {} {} {} {}{signed}\n",
            self.id, self.channel_id, self.broadcast_id, self.started_ms, self.target_secs
        )
    }

    fn parse(line: &str) -> Option<Self> {
        let mut w = line.split(' ');
        if w.next()? != MAGIC || w.next()?.parse::<u32>().ok()? != VERSION {
            return None;
        }
        let h = Self {
            id: word(&mut w)?,
            channel_id: word(&mut w)?,
            broadcast_id: word(&mut w)?,
            started_ms: w.next()?.parse().ok()?,
            target_secs: w.next()?.parse().ok()?,
            signed: None,
        };
        let signed = match w.next() {
            None => None,
            Some(word) => {
                let channel = word.strip_prefix("signed=").filter(|c| is_safe_word(c))?;
                Some(channel.to_owned())
            }
        };
        w.next().is_none().then_some(Self { signed, ..h })
    }
}

fn word<'a>(w: &mut impl Iterator<Item = &'a str>) -> Option<String> {
    w.next().filter(|s| is_safe_word(s)).map(str::to_owned)
}

/// Ids as the index stores them: non-empty, at most 128 of `[A-Za-z0-9._-]`.
pub fn is_safe_word(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// An `init` line.
pub fn init_line(n: u64, bytes: u64) -> String {
    format!("init {n} {bytes}\n")
}

/// An `end` line.
pub fn end_line(ended_ms: u64) -> String {
    format!("end {ended_ms}\n")
}

impl SegmentEntry {
    /// Its `seg` line (with the `\n`).
    pub fn line(&self) -> String {
        let mut flags = String::new();
        for (on, c) in [
            (self.discontinuity, 'd'),
            (self.gap, 'g'),
            (self.independent, 'i'),
        ] {
            if on {
                flags.push(c);
            }
        }
        if flags.is_empty() {
            flags.push('-');
        }
        let mut s = String::with_capacity(64);
        let _ = writeln!(
            s,
            "seg {} {} {} {} {} {} {} {flags}",
            self.msn,
            self.duration_us,
            self.bytes,
            self.start,
            self.timescale,
            self.wallclock_ms,
            self.init
        );
        s
    }

    fn parse(rest: &str) -> Option<Self> {
        let mut w = rest.split(' ');
        let mut num = || w.next()?.parse::<u64>().ok();
        let (msn, duration_us, bytes, start) = (num()?, num()?, num()?, num()?);
        let timescale = u32::try_from(num()?).ok()?;
        let (wallclock_ms, init) = (num()?, num()?);
        let flags = w.next()?;
        if w.next().is_some() || !flags.bytes().all(|b| b"dgi-".contains(&b)) {
            return None;
        }
        Some(Self {
            msn,
            duration_us,
            bytes,
            start,
            timescale,
            wallclock_ms,
            init,
            discontinuity: flags.contains('d'),
            gap: flags.contains('g'),
            independent: flags.contains('i'),
        })
    }
}

impl Index {
    /// A new recording's index (no segments yet).
    pub fn new(header: Header) -> Self {
        Self {
            header,
            inits: Vec::new(),
            segments: Vec::new(),
            ended_ms: None,
        }
    }

    /// Reads an index file's bytes: every complete line up to the first that is
    /// partial or malformed (a node killed mid-append), or up to `end`.
    pub fn parse(text: &[u8]) -> Result<Parsed, IndexError> {
        let mut lines = Lines { text, at: 0 };
        let header = lines
            .next()
            .and_then(Header::parse)
            .ok_or(IndexError::BadHeader)?;
        let mut index = Index::new(header);
        let mut valid_len = lines.at;
        while let Some(line) = lines.next() {
            let ok = match line.split_once(' ') {
                Some(("seg", rest)) => match SegmentEntry::parse(rest) {
                    // Segment numbers only grow (a dropped one leaves a hole).
                    Some(e) if index.segments.last().is_none_or(|l| e.msn > l.msn) => {
                        index.segments.push(e);
                        true
                    }
                    _ => false,
                },
                Some(("init", rest)) => match rest.split_once(' ') {
                    Some((n, b)) => match (n.parse(), b.parse()) {
                        (Ok(n), Ok(b)) => {
                            index.inits.push((n, b));
                            true
                        }
                        _ => false,
                    },
                    None => false,
                },
                Some(("end", ms)) => match ms.parse() {
                    Ok(ms) => {
                        index.ended_ms = Some(ms);
                        valid_len = lines.at;
                        break;
                    }
                    Err(_) => false,
                },
                _ => false,
            };
            if !ok {
                break;
            }
            valid_len = lines.at;
        }
        Ok(Parsed { index, valid_len })
    }

    /// Total duration of its segments, ms.
    pub fn duration_ms(&self) -> u64 {
        self.segments.iter().map(|s| s.duration_us).sum::<u64>() / 1000
    }

    /// Bytes on disk: init and media segments.
    pub fn bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.bytes).sum::<u64>()
            + self.inits.iter().map(|(_, b)| b).sum::<u64>()
    }

    /// The segment `msn`, if indexed.
    pub fn segment(&self, msn: u64) -> Option<&SegmentEntry> {
        self.segments
            .binary_search_by_key(&msn, |s| s.msn)
            .ok()
            .and_then(|i| self.segments.get(i))
    }
}

/// Complete (`\n`-terminated, UTF-8) lines of a byte buffer.
struct Lines<'a> {
    text: &'a [u8],
    /// Bytes consumed so far.
    at: usize,
}

impl<'a> Lines<'a> {
    fn next(&mut self) -> Option<&'a str> {
        let rest = self.text.get(self.at..)?;
        let nl = rest.iter().position(|&b| b == b'\n')?;
        let line = std::str::from_utf8(rest.get(..nl)?).ok()?;
        self.at += nl + 1;
        Some(line)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            id: "r0001".into(),
            channel_id: "ch-1".into(),
            broadcast_id: "b42".into(),
            started_ms: 1_700_000_000_000,
            target_secs: 4,
            signed: None,
        }
    }

    fn seg(msn: u64) -> SegmentEntry {
        SegmentEntry {
            msn,
            duration_us: 2_000_000,
            bytes: 1000 + msn,
            start: 180_000 * msn,
            timescale: 90_000,
            wallclock_ms: 1_700_000_000_000 + 2000 * msn,
            init: 0,
            discontinuity: msn == 2,
            gap: false,
            independent: true,
        }
    }

    fn file(segs: u64) -> String {
        let mut s = header().line() + &init_line(0, 700);
        for m in 0..segs {
            s += &seg(m).line();
        }
        s
    }

    #[test]
    fn round_trips() {
        let text = file(3) + &end_line(1_700_000_006_000);
        let p = Index::parse(text.as_bytes()).unwrap();
        assert_eq!(p.valid_len, text.len());
        assert_eq!(p.index.header, header());
        assert_eq!(p.index.inits, [(0, 700)]);
        assert_eq!(p.index.segments, [seg(0), seg(1), seg(2)]);
        assert_eq!(p.index.ended_ms, Some(1_700_000_006_000));
        assert_eq!(p.index.duration_ms(), 6000);
        assert_eq!(p.index.bytes(), 700 + 1000 + 1001 + 1002);
        assert_eq!(p.index.segment(1), Some(&seg(1)));
        assert_eq!(p.index.segment(7), None);
    }

    #[test]
    fn a_signed_recording_names_its_channel_in_the_header() {
        let h = Header {
            signed: Some("members".into()),
            ..header()
        };
        assert!(h.line().ends_with(" 4 signed=members\n"), "{}", h.line());
        let text = h.line() + &init_line(0, 700);
        assert_eq!(Index::parse(text.as_bytes()).unwrap().index.header, h);
    }

    #[test]
    fn a_truncated_last_line_is_ignored_and_cut_off() {
        let whole = file(2);
        for cut in 1..seg(2).line().len() {
            let text = whole.clone() + &seg(2).line()[..cut];
            let p = Index::parse(text.as_bytes()).unwrap();
            assert_eq!(p.index.segments.len(), 2, "cut at {cut}");
            assert_eq!(p.valid_len, whole.len());
            assert_eq!(p.index.ended_ms, None, "not finished: recovered at start");
        }
    }

    #[test]
    fn garbage_stops_the_index_and_a_bad_header_refuses_it() {
        let text = file(1) + "seg 1 2 3\n" + &seg(2).line();
        let p = Index::parse(text.as_bytes()).unwrap();
        assert_eq!(p.index.segments.len(), 1);
        assert_eq!(p.valid_len, file(1).len());
        // Out of order (a replayed line) stops it too.
        let text = file(2) + &seg(1).line();
        assert_eq!(
            Index::parse(text.as_bytes()).unwrap().index.segments.len(),
            2
        );
        for bad in [
            "",
            "weir-recording 1 r1 c b 5 4",
            "weir-recording 2 r1 c b 5 4\n",
            "weir-recording 1 ../x c b 5 4\n",
            "weir-recording 1 r1 c b 5\n",
            "weir-recording 1 r1 c b 5 4 open=x\n",
            "weir-recording 1 r1 c b 5 4 signed=../x\n",
            "weir-recording 1 r1 c b 5 4 signed=x y\n",
            "other\n",
        ] {
            assert_eq!(
                Index::parse(bad.as_bytes()),
                Err(IndexError::BadHeader),
                "{bad:?}"
            );
        }
        // Invalid UTF-8 in a line ends the index there.
        let mut bytes = file(1).into_bytes();
        bytes.extend_from_slice(b"seg \xff\n");
        assert_eq!(Index::parse(&bytes).unwrap().index.segments.len(), 1);
    }

    #[test]
    fn flags_round_trip() {
        let mut e = seg(5);
        e.discontinuity = false;
        e.independent = false;
        assert!(e.line().ends_with(" -\n"));
        let text = file(0) + &e.line();
        assert_eq!(Index::parse(text.as_bytes()).unwrap().index.segments, [e]);
    }
}
