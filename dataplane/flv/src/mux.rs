//! Bus tracks and frames → FLV tag bodies, the way RTMP servers expect them (relays).
//!
//! H.264 and AAC use the legacy headers every server takes (codec id 7, SoundFormat
//! 10); H.265, AV1 and Opus use Enhanced RTMP (`ExVideoTagHeader` FourCC `hvc1` /
//! `av01`, `ExAudioTagHeader` FourCC `Opus`), which YouTube and recent servers accept.
//! Bodies are built in one allocation; the sample bytes are copied once.

use bytes::{BufMut, Bytes, BytesMut};
use weir_media::{AudioConfig, Codec, Frame, TIMESCALE, VideoConfig};

/// Why a track cannot be sent over RTMP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MuxError {
    /// The codec has no FLV mapping (an audio codec on a video track or the reverse).
    #[error("{0:?} cannot be carried in an FLV {1} tag")]
    Unsupported(Codec, &'static str),
}

const FRAME_KEY: u8 = 1;
const FRAME_INTER: u8 = 2;
const EX_HEADER: u8 = 0x80;
const AUDIO_EX_HEADER: u8 = 9 << 4;

/// How a video codec is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum VideoFraming {
    /// Legacy AVC (codec id 7): packet type + SI24 composition time.
    LegacyAvc,
    /// Enhanced RTMP with this FourCC; `cts` tells whether coded frames carry SI24.
    Enhanced { fourcc: [u8; 4], cts: bool },
}

fn video_framing(codec: Codec) -> Result<VideoFraming, MuxError> {
    match codec {
        Codec::H264 => Ok(VideoFraming::LegacyAvc),
        Codec::H265 => Ok(VideoFraming::Enhanced {
            fourcc: *b"hvc1",
            cts: true,
        }),
        Codec::Av1 => Ok(VideoFraming::Enhanced {
            fourcc: *b"av01",
            cts: false,
        }),
        other => Err(MuxError::Unsupported(other, "video")),
    }
}

/// Composition offset of `frame` in milliseconds, within SI24.
fn cts_ms(frame: &Frame) -> i32 {
    let ms = frame.composition_offset() * 1000 / i64::from(TIMESCALE);
    ms.clamp(-(1 << 23), (1 << 23) - 1) as i32
}

fn put_si24(out: &mut BytesMut, v: i32) {
    let b = v.to_be_bytes();
    out.put_slice(&b[1..]);
}

/// Packet types shared by the legacy AVC header and Enhanced RTMP.
const SEQUENCE_START: u8 = 0;
const CODED_FRAMES: u8 = 1;
const SEQUENCE_END: u8 = 2;

fn video_body(
    framing: VideoFraming,
    frame_type: u8,
    packet: u8,
    cts: Option<i32>,
    data: &[u8],
) -> Bytes {
    let mut out = BytesMut::with_capacity(data.len() + 8);
    match framing {
        VideoFraming::LegacyAvc => {
            out.put_u8((frame_type << 4) | 7);
            out.put_u8(packet);
            put_si24(&mut out, cts.unwrap_or(0));
        }
        VideoFraming::Enhanced {
            fourcc,
            cts: has_cts,
        } => {
            out.put_u8(EX_HEADER | (frame_type << 4) | packet);
            out.put_slice(&fourcc);
            if packet == CODED_FRAMES && has_cts {
                put_si24(&mut out, cts.unwrap_or(0));
            }
        }
    }
    out.put_slice(data);
    out.freeze()
}

/// The video sequence header (decoder configuration record) of `config`.
pub fn video_sequence_start(config: &VideoConfig) -> Result<Bytes, MuxError> {
    let framing = video_framing(config.codec)?;
    Ok(video_body(
        framing,
        FRAME_KEY,
        SEQUENCE_START,
        None,
        &config.record,
    ))
}

/// One video access unit of a track with codec `codec`.
pub fn video_frame(codec: Codec, frame: &Frame) -> Result<Bytes, MuxError> {
    let framing = video_framing(codec)?;
    let frame_type = if frame.keyframe {
        FRAME_KEY
    } else {
        FRAME_INTER
    };
    Ok(video_body(
        framing,
        frame_type,
        CODED_FRAMES,
        Some(cts_ms(frame)),
        &frame.data,
    ))
}

/// End of the video sequence (sent before an orderly unpublish).
pub fn video_sequence_end(codec: Codec) -> Result<Bytes, MuxError> {
    Ok(video_body(
        video_framing(codec)?,
        FRAME_KEY,
        SEQUENCE_END,
        None,
        &[],
    ))
}

fn audio_body(codec: Codec, packet: u8, data: &[u8]) -> Result<Bytes, MuxError> {
    let mut out = BytesMut::with_capacity(data.len() + 5);
    match codec {
        Codec::Aac => {
            // SoundFormat 10, 44 kHz, 16-bit, stereo: the fixed header AAC uses.
            out.put_u8(0xAF);
            out.put_u8(packet);
        }
        Codec::Opus => {
            out.put_u8(AUDIO_EX_HEADER | packet);
            out.put_slice(b"Opus");
        }
        other => return Err(MuxError::Unsupported(other, "audio")),
    }
    out.put_slice(data);
    Ok(out.freeze())
}

/// The audio sequence header (AudioSpecificConfig / OpusHead) of `config`.
pub fn audio_sequence_start(config: &AudioConfig) -> Result<Bytes, MuxError> {
    audio_body(config.codec, SEQUENCE_START, &config.record)
}

/// One raw audio frame of a track with codec `codec`.
pub fn audio_frame(codec: Codec, frame: &Frame) -> Result<Bytes, MuxError> {
    audio_body(codec, CODED_FRAMES, &frame.data)
}

/// The FLV codec id `onMetaData` names for a video codec (E-RTMP: the FourCC as a
/// number), and the same for audio.
pub fn metadata_codec_id(codec: Codec) -> f64 {
    let fourcc = |f: &[u8; 4]| f64::from(u32::from_be_bytes(*f));
    match codec {
        Codec::H264 => 7.0,
        Codec::Aac => 10.0,
        Codec::H265 => fourcc(b"hvc1"),
        Codec::Av1 => fourcc(b"av01"),
        Codec::Opus => fourcc(b"Opus"),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::audio::{AudioCodec, AudioPacket, parse_audio};
    use crate::video::{VideoCodec, VideoPacket, parse_video};
    use weir_media::TrackId;

    fn frame(keyframe: bool, offset_ticks: i64, data: &'static [u8]) -> Frame {
        Frame {
            track: TrackId::VIDEO,
            dts: 900_000,
            pts: 900_000 + offset_ticks,
            keyframe,
            data: Bytes::from_static(data),
        }
    }

    fn video(codec: Codec) -> VideoConfig {
        VideoConfig {
            codec,
            width: 1280,
            height: 720,
            record: Bytes::from_static(&[1, 2, 3]),
        }
    }

    #[test]
    fn video_round_trips_through_the_demuxer() {
        for (codec, flv, cts) in [
            (Codec::H264, VideoCodec::Avc, 67),
            (Codec::H265, VideoCodec::Hevc, -33),
            (Codec::Av1, VideoCodec::Av1, 0),
        ] {
            let seq = parse_video(&video_sequence_start(&video(codec)).unwrap()).unwrap();
            assert!(seq.is_keyframe());
            assert_eq!(seq.tracks[0].codec, flv);
            assert_eq!(
                seq.tracks[0].packet,
                VideoPacket::SequenceStart(Bytes::from_static(&[1, 2, 3]))
            );
            let f = frame(false, i64::from(cts) * 90, b"\0\0\0\x01\x41");
            let tag = parse_video(&video_frame(codec, &f).unwrap()).unwrap();
            assert!(!tag.is_keyframe(), "{codec:?}");
            assert_eq!(
                tag.tracks[0].packet,
                VideoPacket::CodedFrames {
                    cts,
                    data: Bytes::from_static(b"\0\0\0\x01\x41")
                },
                "{codec:?}"
            );
            let key = parse_video(&video_frame(codec, &frame(true, 0, b"x")).unwrap()).unwrap();
            assert!(key.is_keyframe());
            let end = parse_video(&video_sequence_end(codec).unwrap()).unwrap();
            assert_eq!(end.tracks[0].packet, VideoPacket::SequenceEnd);
        }
    }

    #[test]
    fn audio_round_trips_through_the_demuxer() {
        for (codec, flv) in [
            (Codec::Aac, AudioCodec::Aac),
            (Codec::Opus, AudioCodec::Opus),
        ] {
            let config = AudioConfig {
                codec,
                sample_rate: 48_000,
                channels: 2,
                record: Bytes::from_static(&[0x11, 0x90]),
            };
            let seq = parse_audio(&audio_sequence_start(&config).unwrap()).unwrap();
            assert_eq!(seq.tracks[0].codec, flv);
            assert_eq!(
                seq.tracks[0].packet,
                AudioPacket::SequenceStart(Bytes::from_static(&[0x11, 0x90]))
            );
            let f = Frame {
                track: TrackId::AUDIO,
                ..frame(true, 0, b"aac!")
            };
            let tag = parse_audio(&audio_frame(codec, &f).unwrap()).unwrap();
            assert_eq!(
                tag.tracks[0].packet,
                AudioPacket::CodedFrames(Bytes::from_static(b"aac!"))
            );
        }
    }

    #[test]
    fn codecs_on_the_wrong_kind_are_refused() {
        assert!(video_sequence_start(&video(Codec::Aac)).is_err());
        assert!(audio_frame(Codec::H264, &frame(true, 0, b"")).is_err());
    }

    #[test]
    fn composition_offsets_are_clamped_to_si24() {
        let f = frame(false, i64::from(TIMESCALE) * 100_000, b"");
        assert_eq!(cts_ms(&f), (1 << 23) - 1);
    }
}
