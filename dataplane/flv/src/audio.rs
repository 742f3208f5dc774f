//! AUDIODATA: legacy AAC (SoundFormat 10) and Enhanced RTMP `ExAudioTagHeader`
//! (SoundFormat 9) with FourCC `mp4a` or `Opus`.

use bytes::Bytes;

use crate::FlvError;
use crate::read::Cursor;

/// Audio codecs we carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AudioCodec {
    /// AAC (legacy SoundFormat 10, FourCC `mp4a`).
    Aac,
    /// Opus (FourCC `Opus`).
    Opus,
}

/// What an audio tag carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AudioPacket {
    /// The decoder configuration (AudioSpecificConfig / OpusHead).
    SequenceStart(Bytes),
    /// One raw frame (AAC without ADTS, an Opus packet), a zero-copy slice.
    CodedFrames(Bytes),
    /// End of sequence.
    SequenceEnd,
    /// Nothing for the bus (multichannel config, unknown packet types).
    Ignored,
}

/// A parsed audio tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioTag {
    /// The codec.
    pub codec: AudioCodec,
    /// The legacy header's stereo flag (true for Enhanced RTMP tags, which have none).
    pub stereo: bool,
    /// The payload.
    pub packet: AudioPacket,
}

const FORMAT_EX_HEADER: u8 = 9;
const FORMAT_AAC: u8 = 10;

/// Parses an AUDIODATA body.
pub fn parse_audio(payload: &Bytes) -> Result<AudioTag, FlvError> {
    const MULTITRACK: u8 = 5;
    let mut c = Cursor::new(payload, "audio tag");
    let b0 = c.u8()?;
    match b0 >> 4 {
        FORMAT_AAC => {
            let packet = match c.u8()? {
                0 => AudioPacket::SequenceStart(c.rest()),
                1 => AudioPacket::CodedFrames(c.rest()),
                _ => AudioPacket::Ignored,
            };
            Ok(AudioTag {
                codec: AudioCodec::Aac,
                stereo: b0 & 1 == 1,
                packet,
            })
        }
        FORMAT_EX_HEADER => {
            let (packet_type, fourcc, body) = c.ex_header(b0 & 0x0f, MULTITRACK)?;
            let codec = match &fourcc {
                b"mp4a" => AudioCodec::Aac,
                b"Opus" => AudioCodec::Opus,
                _ => return Err(FlvError::UnsupportedAudioFourCc(fourcc)),
            };
            let packet = match packet_type {
                0 => AudioPacket::SequenceStart(body),
                1 => AudioPacket::CodedFrames(body),
                2 => AudioPacket::SequenceEnd,
                _ => AudioPacket::Ignored,
            };
            Ok(AudioTag {
                codec,
                stereo: true,
                packet,
            })
        }
        other => Err(FlvError::UnsupportedAudioFormat(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(b: &[u8]) -> Result<AudioTag, FlvError> {
        parse_audio(&Bytes::copy_from_slice(b))
    }

    #[test]
    fn legacy_aac() {
        let t = parse(&[0xaf, 0, 0x12, 0x10]).expect("valid");
        assert_eq!(t.codec, AudioCodec::Aac);
        assert!(t.stereo);
        assert_eq!(
            t.packet,
            AudioPacket::SequenceStart(Bytes::from_static(&[0x12, 0x10]))
        );
        let t = parse(&[0xae, 1, 0x21]).expect("valid");
        assert!(!t.stereo);
        assert_eq!(
            t.packet,
            AudioPacket::CodedFrames(Bytes::from_static(&[0x21]))
        );
        assert_eq!(
            parse(&[0xaf, 9]).expect("valid").packet,
            AudioPacket::Ignored
        );
        assert_eq!(parse(&[0xaf]), Err(FlvError::Truncated("audio tag")));
        assert_eq!(parse(&[0x2f, 0]), Err(FlvError::UnsupportedAudioFormat(2)));
        assert_eq!(parse(&[]), Err(FlvError::Truncated("audio tag")));
    }

    #[test]
    fn enhanced_audio() {
        let t = parse(b"\x90Opus\x4f\x70").expect("valid");
        assert_eq!(t.codec, AudioCodec::Opus);
        assert!(matches!(t.packet, AudioPacket::SequenceStart(ref b) if b.len() == 2));
        let t = parse(b"\x91mp4a\x21\x00").expect("valid");
        assert_eq!(
            (t.codec, t.packet),
            (
                AudioCodec::Aac,
                AudioPacket::CodedFrames(Bytes::from_static(&[0x21, 0]))
            )
        );
        assert_eq!(
            parse(b"\x92Opus").expect("valid").packet,
            AudioPacket::SequenceEnd
        );
        assert_eq!(
            parse(b"\x94Opus\x00\x02").expect("valid").packet,
            AudioPacket::Ignored
        );
        assert_eq!(
            parse(b"\x90fLaC"),
            Err(FlvError::UnsupportedAudioFourCc(*b"fLaC"))
        );
        assert!(parse(b"\x90Op").is_err());
        // ModEx then CodedFrames.
        let t = parse(b"\x97\x00\x00\x01Opus\xfc").expect("valid");
        assert_eq!(
            t.packet,
            AudioPacket::CodedFrames(Bytes::from_static(&[0xfc]))
        );
        // Multitrack, ManyTracks, CodedFrames: first track only.
        let t = parse(b"\x95\x11Opus\x00\x00\x00\x01\xfc\x01\x00\x00\x01\xfd").expect("valid");
        assert_eq!(
            t.packet,
            AudioPacket::CodedFrames(Bytes::from_static(&[0xfc]))
        );
    }
}
