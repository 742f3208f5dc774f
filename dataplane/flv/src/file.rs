//! FLV files: a 9-byte header, then tags each followed by a 4-byte previous-tag size.

use bytes::Bytes;

use crate::FlvError;

/// FLV tag type of audio.
pub const TAG_AUDIO: u8 = 8;
/// FLV tag type of video.
pub const TAG_VIDEO: u8 = 9;
/// FLV tag type of script data.
pub const TAG_SCRIPT: u8 = 18;

/// One tag of an FLV file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlvTag {
    /// Tag type (8 audio, 9 video, 18 script).
    pub tag_type: u8,
    /// Timestamp in milliseconds (with the extension byte).
    pub timestamp: u32,
    /// The tag body, a zero-copy slice of the file.
    pub body: Bytes,
}

/// Reads the tags of an FLV file held in memory. Stops at the first truncated tag.
pub fn read_tags(file: &Bytes) -> Result<Vec<FlvTag>, FlvError> {
    if file.len() < 9 || &file[..3] != b"FLV" {
        return Err(FlvError::NotFlv);
    }
    let header_len = u32::from_be_bytes([file[5], file[6], file[7], file[8]]) as usize;
    let mut pos = header_len.checked_add(4).ok_or(FlvError::NotFlv)?;
    let mut tags = Vec::new();
    while let Some(h) = file.get(pos..pos + 11) {
        let size = u32::from_be_bytes([0, h[1], h[2], h[3]]) as usize;
        let timestamp = u32::from_be_bytes([h[7], h[4], h[5], h[6]]);
        let start = pos + 11;
        let Some(end) = start.checked_add(size).filter(|&e| e <= file.len()) else {
            break;
        };
        tags.push(FlvTag {
            tag_type: h[0] & 0x1f,
            timestamp,
            body: file.slice(start..end),
        });
        pos = end + 4;
    }
    Ok(tags)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_truncation() {
        assert_eq!(
            read_tags(&Bytes::from_static(b"GIF89a...")),
            Err(FlvError::NotFlv)
        );
        let mut f = b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00".to_vec();
        f.extend_from_slice(&[9, 0, 0, 2, 0, 0, 0x21, 1, 0, 0, 0, 0x17, 0x00, 0, 0, 0, 13]);
        f.extend_from_slice(&[8, 0, 0, 9, 0, 0]);
        let tags = read_tags(&Bytes::from(f)).expect("valid");
        assert_eq!(tags.len(), 1);
        assert_eq!(tags[0].timestamp, 0x0100_0021);
        assert_eq!(&tags[0].body[..], &[0x17, 0]);
    }
}
