//! A small FLV file reader: the test media the publishers replay.
//!
//! Layout: a 9-byte header (`FLV`, version, flags, header size), a 4-byte
//! `PreviousTagSize0`, then tags of an 11-byte header (type, 24-bit size, 24-bit
//! timestamp + 8-bit extension, 24-bit stream id), the body and a 4-byte previous size.

use anyhow::{Context as _, bail, ensure};
use bytes::Bytes;

/// What a tag carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagKind {
    /// An audio tag (8).
    Audio,
    /// A video tag (9).
    Video,
    /// A script data tag (18), e.g. `onMetaData`.
    Script,
}

/// One FLV tag.
#[derive(Debug, Clone)]
pub struct Tag {
    /// Kind of the tag.
    pub kind: TagKind,
    /// Decode timestamp in milliseconds.
    pub ts: u32,
    /// The tag body as RTMP carries it.
    pub body: Bytes,
}

impl Tag {
    /// True for codec configuration (AVC/HEVC sequence header, AAC AudioSpecificConfig)
    /// and script data: what is sent once before the frames.
    pub fn is_config(&self) -> bool {
        match self.kind {
            TagKind::Script => true,
            TagKind::Video => {
                let b = &self.body;
                if b.first().is_some_and(|x| x & 0x80 != 0) {
                    // Enhanced RTMP: packet type 0 is the sequence start.
                    return b.first().is_some_and(|x| x & 0x0f == 0);
                }
                b.len() >= 2 && b[0] & 0x0f == 7 && b[1] == 0
            }
            TagKind::Audio => self.body.len() >= 2 && self.body[0] >> 4 == 10 && self.body[1] == 0,
        }
    }

    /// True for a video keyframe.
    #[cfg(test)]
    pub fn is_keyframe(&self) -> bool {
        self.kind == TagKind::Video && self.body.first().is_some_and(|b| (b >> 4) & 0x07 == 1)
    }
}

/// A parsed FLV file, split into configuration and frames.
#[derive(Debug, Clone)]
pub struct Media {
    /// Configuration tags, sent once at the start.
    pub config: Vec<Tag>,
    /// Audio and video frames in file order; timestamps start at 0.
    pub frames: Vec<Tag>,
    /// Length of one pass in ms (what a loop adds to timestamps).
    pub loop_ms: u32,
}

impl Media {
    /// Parses an FLV file.
    pub fn parse(data: Bytes) -> anyhow::Result<Self> {
        let tags = parse_tags(&data)?;
        let (config, mut frames): (Vec<Tag>, Vec<Tag>) = tags.into_iter().partition(Tag::is_config);
        ensure!(!frames.is_empty(), "the FLV file has no frames");
        let first = frames.iter().map(|t| t.ts).min().unwrap_or(0);
        for f in &mut frames {
            f.ts -= first;
        }
        let video: Vec<u32> = frames
            .iter()
            .filter(|t| t.kind == TagKind::Video)
            .map(|t| t.ts)
            .collect();
        ensure!(video.len() >= 2, "the FLV file has no video");
        let (lo, hi) = (video[0], video[video.len() - 1]);
        let interval = (hi - lo) / (video.len() as u32 - 1);
        let end = frames.iter().map(|t| t.ts).max().unwrap_or(0);
        Ok(Self {
            config,
            frames,
            loop_ms: end.max(hi + interval),
        })
    }

    /// Loads and parses an FLV file.
    pub fn load(path: &std::path::Path) -> anyhow::Result<Self> {
        let data = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        Self::parse(Bytes::from(data)).with_context(|| format!("parsing {}", path.display()))
    }

    /// Average bit rate of the frames in bits per second.
    pub fn bitrate(&self) -> u64 {
        let bytes: usize = self.frames.iter().map(|t| t.body.len()).sum();
        bytes as u64 * 8 * 1000 / u64::from(self.loop_ms.max(1))
    }
}

fn be24(b: &[u8]) -> u32 {
    (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2])
}

/// Reads all tags of an FLV file.
pub fn parse_tags(data: &Bytes) -> anyhow::Result<Vec<Tag>> {
    ensure!(data.len() >= 13 && &data[..3] == b"FLV", "not an FLV file");
    let header = u32::from_be_bytes([data[5], data[6], data[7], data[8]]) as usize;
    ensure!(
        (9..=data.len() - 4).contains(&header),
        "bad FLV header size {header}"
    );
    let mut pos = header + 4;
    let mut tags = Vec::new();
    while pos + 11 <= data.len() {
        let h = &data[pos..pos + 11];
        let size = be24(&h[1..4]) as usize;
        let ts = be24(&h[4..7]) | (u32::from(h[7]) << 24);
        let start = pos + 11;
        let Some(end) = start.checked_add(size).filter(|&e| e <= data.len()) else {
            // A truncated last tag (e.g. an interrupted encode) ends the file.
            break;
        };
        let kind = match h[0] & 0x1f {
            8 => Some(TagKind::Audio),
            9 => Some(TagKind::Video),
            18 => Some(TagKind::Script),
            _ => None,
        };
        if h[0] & 0x20 != 0 {
            bail!("encrypted FLV tags are not supported");
        }
        if let Some(kind) = kind.filter(|_| size > 0) {
            tags.push(Tag {
                kind,
                ts,
                body: data.slice(start..end),
            });
        }
        pos = end + 4;
    }
    Ok(tags)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(ty: u8, ts: u32, body: &[u8]) -> Vec<u8> {
        let mut v = vec![ty];
        let n = body.len() as u32;
        v.extend_from_slice(&n.to_be_bytes()[1..]);
        v.extend_from_slice(&ts.to_be_bytes()[1..]);
        v.push((ts >> 24) as u8);
        v.extend_from_slice(&[0, 0, 0]);
        v.extend_from_slice(body);
        v.extend_from_slice(&(11 + n).to_be_bytes());
        v
    }

    #[test]
    fn parses_tags_and_splits_config() {
        let mut f = b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00".to_vec();
        f.extend(tag(9, 0, &[0x17, 0, 0, 0, 0, 1]));
        f.extend(tag(8, 0, &[0xaf, 0, 0x12]));
        f.extend(tag(9, 0, &[0x17, 1, 0, 0, 0, 9]));
        f.extend(tag(8, 23, &[0xaf, 1, 7]));
        f.extend(tag(9, 33, &[0x27, 1, 0, 0, 0, 9]));
        f.extend_from_slice(&[9, 0, 0]); // truncated tail
        let m = Media::parse(Bytes::from(f)).expect("parse");
        assert_eq!(m.config.len(), 2);
        assert_eq!(m.frames.len(), 3);
        assert!(m.frames[0].is_keyframe());
        assert!(!m.frames[2].is_keyframe());
        assert_eq!(m.loop_ms, 66);
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse_tags(&Bytes::from_static(b"nope")).is_err());
        assert!(parse_tags(&Bytes::from_static(b"FLV\x01\x05\xff\xff\xff\xff\0\0\0\0")).is_err());
    }
}
