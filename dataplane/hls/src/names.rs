//! Object file names: `init-<n>.mp4`, `seg-<msn>.m4s`, `part-<msn>-<idx>.m4s`.

use crate::query::canonical_u64;

/// The URI of the media playlist, relative to the multivariant playlist.
pub const MEDIA_PLAYLIST: &str = "media.m3u8";
/// The multivariant playlist's file name.
pub const MULTIVARIANT_PLAYLIST: &str = "index.m3u8";

/// A parsed object name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectName {
    /// `init-<n>.mp4`.
    Init(u64),
    /// `seg-<msn>.m4s`.
    Segment(u64),
    /// `part-<msn>-<idx>.m4s`.
    Part(u64, u64),
}

impl ObjectName {
    /// Parses a file name; numbers must be canonical (no sign, no leading zeros).
    pub fn parse(name: &str) -> Option<Self> {
        if let Some(n) = name
            .strip_prefix("init-")
            .and_then(|r| r.strip_suffix(".mp4"))
        {
            return canonical_u64(n).map(Self::Init);
        }
        if let Some(n) = name
            .strip_prefix("seg-")
            .and_then(|r| r.strip_suffix(".m4s"))
        {
            return canonical_u64(n).map(Self::Segment);
        }
        let rest = name.strip_prefix("part-")?.strip_suffix(".m4s")?;
        let (msn, idx) = rest.split_once('-')?;
        Some(Self::Part(canonical_u64(msn)?, canonical_u64(idx)?))
    }

    /// The file name.
    pub fn file_name(&self) -> String {
        match self {
            Self::Init(n) => format!("init-{n}.mp4"),
            Self::Segment(m) => format!("seg-{m}.m4s"),
            Self::Part(m, i) => format!("part-{m}-{i}.m4s"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects() {
        for n in [
            ObjectName::Init(0),
            ObjectName::Segment(17),
            ObjectName::Part(17, 3),
        ] {
            assert_eq!(ObjectName::parse(&n.file_name()), Some(n));
        }
        for bad in [
            "",
            "init-.mp4",
            "init-1.m4s",
            "seg-01.m4s",
            "seg--1.m4s",
            "seg-+1.m4s",
            "part-1.m4s",
            "part-1-.m4s",
            "part-1-2-3.m4s",
            "seg-1.m4s/",
            "../seg-1.m4s",
            "seg-99999999999999999999.m4s",
            "media.m3u8",
        ] {
            assert_eq!(ObjectName::parse(bad), None, "{bad}");
        }
    }
}
