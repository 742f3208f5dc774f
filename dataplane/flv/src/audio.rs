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

/// One track of an audio tag: the whole tag outside Enhanced RTMP multitrack, one of its
/// tracks inside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioTrack {
    /// The Enhanced RTMP track id (0 for tags that are not multitrack).
    pub id: u8,
    /// The codec.
    pub codec: AudioCodec,
    /// The payload.
    pub packet: AudioPacket,
}

/// A parsed audio tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioTag {
    /// The legacy header's stereo flag (true for Enhanced RTMP tags, which have none).
    pub stereo: bool,
    /// The tracks in tag order: one, except for multitrack ManyTracks(ManyCodecs) tags.
    pub tracks: Vec<AudioTrack>,
}

const FORMAT_EX_HEADER: u8 = 9;
const FORMAT_AAC: u8 = 10;

/// Parses an AUDIODATA body. Multitrack framing is bounds-checked; a track with a FourCC
/// we do not carry makes the whole tag an error.
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
                stereo: b0 & 1 == 1,
                tracks: vec![AudioTrack {
                    id: 0,
                    codec: AudioCodec::Aac,
                    packet,
                }],
            })
        }
        FORMAT_EX_HEADER => {
            let (packet_type, ex_tracks) = c.ex_header(b0 & 0x0f, MULTITRACK, "audio")?;
            let tracks = ex_tracks
                .into_iter()
                .map(|t| {
                    let codec = match &t.fourcc {
                        b"mp4a" => AudioCodec::Aac,
                        b"Opus" => AudioCodec::Opus,
                        _ => return Err(FlvError::UnsupportedAudioFourCc(t.fourcc)),
                    };
                    let packet = match packet_type {
                        0 => AudioPacket::SequenceStart(t.body),
                        1 => AudioPacket::CodedFrames(t.body),
                        2 => AudioPacket::SequenceEnd,
                        _ => AudioPacket::Ignored,
                    };
                    Ok(AudioTrack {
                        id: t.id,
                        codec,
                        packet,
                    })
                })
                .collect::<Result<_, _>>()?;
            Ok(AudioTag {
                stereo: true,
                tracks,
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

    /// The only track of a tag.
    fn one(b: &[u8]) -> Result<AudioTrack, FlvError> {
        let t = parse(b)?;
        match <[AudioTrack; 1]>::try_from(t.tracks) {
            Ok([track]) => Ok(track),
            Err(tracks) => panic!("expected one track, got {tracks:?}"),
        }
    }

    fn frames(b: &'static [u8]) -> AudioPacket {
        AudioPacket::CodedFrames(Bytes::from_static(b))
    }

    #[test]
    fn legacy_aac() {
        let t = parse(&[0xaf, 0, 0x12, 0x10]).expect("valid");
        assert!(t.stereo);
        assert_eq!(
            t.tracks,
            vec![AudioTrack {
                id: 0,
                codec: AudioCodec::Aac,
                packet: AudioPacket::SequenceStart(Bytes::from_static(&[0x12, 0x10])),
            }]
        );
        let t = parse(&[0xae, 1, 0x21]).expect("valid");
        assert!(!t.stereo);
        assert_eq!(t.tracks[0].packet, frames(&[0x21]));
        assert_eq!(one(&[0xaf, 9]).expect("valid").packet, AudioPacket::Ignored);
        assert_eq!(parse(&[0xaf]), Err(FlvError::Truncated("audio tag")));
        assert_eq!(parse(&[0x2f, 0]), Err(FlvError::UnsupportedAudioFormat(2)));
        assert_eq!(parse(&[]), Err(FlvError::Truncated("audio tag")));
    }

    #[test]
    fn enhanced_audio() {
        let t = one(b"\x90Opus\x4f\x70").expect("valid");
        assert_eq!((t.id, t.codec), (0, AudioCodec::Opus));
        assert!(matches!(t.packet, AudioPacket::SequenceStart(ref b) if b.len() == 2));
        let t = one(b"\x91mp4a\x21\x00").expect("valid");
        assert_eq!((t.codec, t.packet), (AudioCodec::Aac, frames(&[0x21, 0])));
        assert_eq!(
            one(b"\x92Opus").expect("valid").packet,
            AudioPacket::SequenceEnd
        );
        assert_eq!(
            one(b"\x94Opus\x00\x02").expect("valid").packet,
            AudioPacket::Ignored
        );
        assert_eq!(
            parse(b"\x90fLaC"),
            Err(FlvError::UnsupportedAudioFourCc(*b"fLaC"))
        );
        assert!(parse(b"\x90Op").is_err());
        // ModEx then CodedFrames.
        let t = one(b"\x97\x00\x00\x01Opus\xfc").expect("valid");
        assert_eq!(t.packet, frames(&[0xfc]));
    }

    #[test]
    fn multitrack_audio() {
        // OneTrack, SequenceStart, track 3.
        let t = one(b"\x95\x00Opus\x03\x4f\x70").expect("valid");
        assert_eq!(t.id, 3);
        assert!(matches!(t.packet, AudioPacket::SequenceStart(ref b) if b.len() == 2));
        // ManyTracks, CodedFrames: every track, in order.
        let t = parse(b"\x95\x11Opus\x00\x00\x00\x01\xfc\x01\x00\x00\x02\xfd\xfe").expect("valid");
        let got: Vec<_> = t
            .tracks
            .iter()
            .map(|t| (t.id, t.codec, &t.packet))
            .collect();
        assert_eq!(
            got,
            vec![
                (0, AudioCodec::Opus, &frames(&[0xfc])),
                (1, AudioCodec::Opus, &frames(&[0xfd, 0xfe])),
            ]
        );
        // ManyTracksManyCodecs: a FourCC per track.
        let t = parse(b"\x95\x21Opus\x00\x00\x00\x01\xfcmp4a\x05\x00\x00\x01\x21").expect("valid");
        let got: Vec<_> = t
            .tracks
            .iter()
            .map(|t| (t.id, t.codec, &t.packet))
            .collect();
        assert_eq!(
            got,
            vec![
                (0, AudioCodec::Opus, &frames(&[0xfc])),
                (5, AudioCodec::Aac, &frames(&[0x21])),
            ]
        );
        // A second track of an unsupported codec makes the tag an error.
        assert_eq!(
            parse(b"\x95\x21Opus\x00\x00\x00\x01\xfcfLaC\x01\x00\x00\x00"),
            Err(FlvError::UnsupportedAudioFourCc(*b"fLaC"))
        );
        // Truncated: a size overrunning the tag, a cut size, a cut track header.
        for bad in [
            &b"\x95\x11Opus\x00\x00\x00\x01\xfc\x01\x00\x00\x05\xfd"[..],
            b"\x95\x11Opus\x00\x00\x00\x01\xfc\x01\x00",
            b"\x95\x21Opus\x00\x00\x00\x01\xfcmp",
            b"\x95\x11Opus",
            b"\x95",
        ] {
            assert_eq!(parse(bad), Err(FlvError::Truncated("audio tag")), "{bad:?}");
        }
        assert_eq!(
            parse(b"\x95\x31Opus\x00\xfc"),
            Err(FlvError::UnsupportedMultitrackType(3))
        );
        // More than 16 tracks in one tag.
        let mut many = b"\x95\x11Opus".to_vec();
        for id in 0..17u8 {
            many.extend_from_slice(&[id, 0, 0, 1, 0xfc]);
        }
        assert_eq!(parse(&many), Err(FlvError::TooManyTracks("audio")));
        many.truncate(many.len() - 5);
        assert_eq!(parse(&many).expect("16 tracks").tracks.len(), 16);
    }
}
