//! VIDEODATA: legacy AVC (codec id 7, and the common HEVC extension id 12) and
//! Enhanced RTMP (v1/v2) `ExVideoTagHeader` bodies.

use bytes::Bytes;

use crate::FlvError;
use crate::read::Cursor;

/// Video codecs an FLV tag may name that we recognise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VideoCodec {
    /// H.264 (legacy codec id 7, FourCC `avc1`).
    Avc,
    /// H.265 (legacy codec id 12, FourCC `hvc1`).
    Hevc,
    /// AV1 (FourCC `av01`).
    Av1,
    /// VP9 (FourCC `vp09`): recognised, not carried by the bus.
    Vp9,
}

/// What a video tag carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VideoPacket {
    /// A decoder configuration record (avcC / hvcC / av1C / vpcC).
    SequenceStart(Bytes),
    /// One access unit: AVCC/HVCC length-prefixed NAL units or AV1 OBUs.
    CodedFrames {
        /// Composition time offset in milliseconds (pts − dts), may be negative.
        cts: i32,
        /// The sample bytes, a zero-copy slice of the tag.
        data: Bytes,
    },
    /// End of sequence.
    SequenceEnd,
    /// Enhanced RTMP metadata (AMF, e.g. `colorInfo`).
    Metadata(Bytes),
    /// Something with no media for the bus (command frames, MPEG-2 TS sequence start,
    /// unknown packet types).
    Ignored,
}

/// One track of a video tag: the whole tag outside Enhanced RTMP multitrack, one of its
/// tracks inside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoTrack {
    /// The Enhanced RTMP track id (0 for tags that are not multitrack).
    pub id: u8,
    /// The codec.
    pub codec: VideoCodec,
    /// The payload.
    pub packet: VideoPacket,
}

/// A parsed video tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoTag {
    /// FLV frame type (1 key frame, 2 inter frame, 3 disposable, 4 generated key, 5 command),
    /// shared by all tracks of the tag.
    pub frame_type: u8,
    /// The tracks in tag order: one, except for multitrack ManyTracks(ManyCodecs) tags.
    pub tracks: Vec<VideoTrack>,
}

impl VideoTag {
    /// True for a random access point (frame type 1).
    pub fn is_keyframe(&self) -> bool {
        self.frame_type == 1
    }
}

const FRAME_COMMAND: u8 = 5;

/// Parses a VIDEODATA body. Header fields and multitrack framing are bounds-checked; NAL
/// lengths inside the coded data are not (the data is passed through). A track with a
/// FourCC we do not recognise makes the whole tag an error.
pub fn parse_video(payload: &Bytes) -> Result<VideoTag, FlvError> {
    let mut c = Cursor::new(payload, "video tag");
    let b0 = c.u8()?;
    if b0 & 0x80 != 0 {
        return parse_enhanced(b0, c);
    }
    let frame_type = b0 >> 4;
    let codec = match b0 & 0x0f {
        7 => VideoCodec::Avc,
        12 => VideoCodec::Hevc,
        other => return Err(FlvError::UnsupportedVideoCodec(other)),
    };
    let packet = if frame_type == FRAME_COMMAND {
        VideoPacket::Ignored
    } else {
        let packet_type = c.u8()?;
        let cts = c.si24()?;
        match packet_type {
            0 => VideoPacket::SequenceStart(c.rest()),
            1 => VideoPacket::CodedFrames {
                cts,
                data: c.rest(),
            },
            2 => VideoPacket::SequenceEnd,
            _ => VideoPacket::Ignored,
        }
    };
    Ok(VideoTag {
        frame_type,
        tracks: vec![VideoTrack {
            id: 0,
            codec,
            packet,
        }],
    })
}

fn parse_enhanced(b0: u8, mut c: Cursor<'_>) -> Result<VideoTag, FlvError> {
    const MULTITRACK: u8 = 6;
    let frame_type = (b0 >> 4) & 0x07;
    let (packet_type, ex_tracks) = c.ex_header(b0 & 0x0f, MULTITRACK, "video")?;
    let tracks = ex_tracks
        .into_iter()
        .map(|t| {
            let codec = match &t.fourcc {
                b"avc1" => VideoCodec::Avc,
                b"hvc1" => VideoCodec::Hevc,
                b"av01" => VideoCodec::Av1,
                b"vp09" => VideoCodec::Vp9,
                _ => return Err(FlvError::UnsupportedVideoFourCc(t.fourcc)),
            };
            let packet = enhanced_packet(packet_type, frame_type, codec, &t.body)?;
            Ok(VideoTrack {
                id: t.id,
                codec,
                packet,
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(VideoTag { frame_type, tracks })
}

/// One track's body of an Enhanced RTMP video tag.
fn enhanced_packet(
    packet_type: u8,
    frame_type: u8,
    codec: VideoCodec,
    body: &Bytes,
) -> Result<VideoPacket, FlvError> {
    let mut c = Cursor::new(body, "enhanced video tag");
    Ok(match packet_type {
        4 => VideoPacket::Metadata(c.rest()),
        _ if frame_type == FRAME_COMMAND => VideoPacket::Ignored,
        0 => VideoPacket::SequenceStart(c.rest()),
        1 => {
            // Only AVC and HEVC coded frames carry a composition time offset.
            let cts = match codec {
                VideoCodec::Avc | VideoCodec::Hevc => c.si24()?,
                _ => 0,
            };
            VideoPacket::CodedFrames {
                cts,
                data: c.rest(),
            }
        }
        2 => VideoPacket::SequenceEnd,
        3 => VideoPacket::CodedFrames {
            cts: 0,
            data: c.rest(),
        },
        _ => VideoPacket::Ignored,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(b: &[u8]) -> Result<VideoTag, FlvError> {
        parse_video(&Bytes::copy_from_slice(b))
    }

    /// The frame type and the only track of a tag.
    fn one(b: &[u8]) -> Result<(u8, VideoTrack), FlvError> {
        let t = parse(b)?;
        match <[VideoTrack; 1]>::try_from(t.tracks) {
            Ok([track]) => Ok((t.frame_type, track)),
            Err(tracks) => panic!("expected one track, got {tracks:?}"),
        }
    }

    fn coded(cts: i32, data: &'static [u8]) -> VideoPacket {
        VideoPacket::CodedFrames {
            cts,
            data: Bytes::from_static(data),
        }
    }

    #[test]
    fn legacy_avc() {
        let t = parse(&[0x17, 0, 0, 0, 0, 1, 0x64]).expect("valid");
        assert!(t.is_keyframe());
        assert_eq!(
            t.tracks,
            vec![VideoTrack {
                id: 0,
                codec: VideoCodec::Avc,
                packet: VideoPacket::SequenceStart(Bytes::from_static(&[1, 0x64])),
            }]
        );
        let t = parse(&[0x27, 1, 0xff, 0xff, 0xdf, 0, 0, 0, 1, 0x41]).expect("valid");
        assert!(!t.is_keyframe());
        assert_eq!(t.tracks[0].packet, coded(-33, &[0, 0, 0, 1, 0x41]));
        let (_, t) = one(&[0x17, 1, 0x00, 0x00, 0x42]).expect("valid");
        assert!(matches!(t.packet, VideoPacket::CodedFrames { cts: 66, .. }));
        assert_eq!(
            one(&[0x17, 2, 0, 0, 0]).expect("valid").1.packet,
            VideoPacket::SequenceEnd
        );
        assert_eq!(
            one(&[0x57, 0]).expect("valid").1.packet,
            VideoPacket::Ignored
        );
        assert_eq!(
            one(&[0x1c, 0, 0, 0, 0]).expect("valid").1.codec,
            VideoCodec::Hevc
        );
    }

    #[test]
    fn legacy_errors() {
        assert_eq!(parse(&[]), Err(FlvError::Truncated("video tag")));
        assert_eq!(parse(&[0x17, 1, 0]), Err(FlvError::Truncated("video tag")));
        assert_eq!(parse(&[0x12, 0]), Err(FlvError::UnsupportedVideoCodec(2)));
    }

    #[test]
    fn enhanced_packet_types() {
        // Key frame, SequenceStart, hvc1.
        let (frame_type, t) = one(b"\x90hvc1\x01\x02").expect("valid");
        assert_eq!((t.id, t.codec, frame_type), (0, VideoCodec::Hevc, 1));
        assert_eq!(
            t.packet,
            VideoPacket::SequenceStart(Bytes::from_static(&[1, 2]))
        );
        // CodedFrames with a negative cts.
        let (_, t) = one(b"\xa1hvc1\xff\xff\xf0\x00\x00\x00\x02\x26\x01").expect("valid");
        assert!(
            matches!(t.packet, VideoPacket::CodedFrames { cts: -16, ref data } if data.len() == 6)
        );
        // CodedFramesX: no cts field.
        let (_, t) = one(b"\x93avc1\x00\x00\x00\x01\x65").expect("valid");
        assert!(
            matches!(t.packet, VideoPacket::CodedFrames { cts: 0, ref data } if data.len() == 5)
        );
        // AV1 CodedFrames: no cts field either.
        let (_, t) = one(b"\x91av01\x12\x00").expect("valid");
        assert_eq!(t.packet, coded(0, &[0x12, 0]));
        assert_eq!(
            one(b"\x92av01").expect("valid").1.packet,
            VideoPacket::SequenceEnd
        );
        assert!(matches!(
            one(b"\x94av01\x02").expect("valid").1.packet,
            VideoPacket::Metadata(_)
        ));
        assert_eq!(
            one(b"\x95av01\x80").expect("valid").1.packet,
            VideoPacket::Ignored
        );
        assert_eq!(
            one(b"\xd1avc1\x00").expect("valid").1.packet,
            VideoPacket::Ignored
        );
        assert_eq!(one(b"\x90vp09").expect("valid").1.codec, VideoCodec::Vp9);
        assert_eq!(
            parse(b"\x90xyz1"),
            Err(FlvError::UnsupportedVideoFourCc(*b"xyz1"))
        );
        assert_eq!(
            parse(b"\x91hvc1\x00"),
            Err(FlvError::Truncated("enhanced video tag"))
        );
        assert_eq!(parse(b"\x90hv"), Err(FlvError::Truncated("video tag")));
    }

    #[test]
    fn mod_ex() {
        // ModEx (size 3 = UI8 2 + 1, data, then next type CodedFramesX), then av01.
        let (_, t) = one(b"\x97\x02\x00\x01\x00\x03av01\x0a").expect("valid");
        assert_eq!(t.packet, coded(0, &[0x0a]));
        // ModEx with a 16-bit size (255 → UI16 + 1 = 2).
        let (_, t) = one(b"\x97\xff\x00\x01\xaa\xbb\x03av01\x0b").expect("valid");
        assert!(matches!(t.packet, VideoPacket::CodedFrames { .. }));
        assert!(parse(b"\x97\x05\x00").is_err());
    }

    #[test]
    fn multitrack() {
        // OneTrack, SequenceStart, avc1, track 2.
        let (_, t) = one(b"\x96\x00avc1\x02\x01\x64").expect("valid");
        assert_eq!(t.id, 2);
        assert_eq!(
            t.packet,
            VideoPacket::SequenceStart(Bytes::from_static(&[1, 0x64]))
        );
        // ManyTracks CodedFramesX: every track, in order.
        let t = parse(b"\xa6\x13hvc1\x00\x00\x00\x02\xaa\xbb\x01\x00\x00\x01\xcc").expect("valid");
        assert_eq!(t.frame_type, 2);
        let got: Vec<_> = t
            .tracks
            .iter()
            .map(|t| (t.id, t.codec, &t.packet))
            .collect();
        assert_eq!(
            got,
            vec![
                (0, VideoCodec::Hevc, &coded(0, &[0xaa, 0xbb])),
                (1, VideoCodec::Hevc, &coded(0, &[0xcc])),
            ]
        );
        // ManyTracks CodedFrames avc1: each track body has its own cts.
        let t =
            parse(b"\x96\x11avc1\x00\x00\x00\x04\x00\x00\x21\xaa\x01\x00\x00\x04\xff\xff\xdf\xbb")
                .expect("valid");
        assert_eq!(t.tracks[0].packet, coded(33, &[0xaa]));
        assert_eq!(t.tracks[1].packet, coded(-33, &[0xbb]));
        // ManyTracksManyCodecs: a FourCC per track.
        let t = parse(b"\x96\x23av01\x00\x00\x00\x01\xaahvc1\x04\x00\x00\x01\xbb").expect("valid");
        let got: Vec<_> = t
            .tracks
            .iter()
            .map(|t| (t.id, t.codec, &t.packet))
            .collect();
        assert_eq!(
            got,
            vec![
                (0, VideoCodec::Av1, &coded(0, &[0xaa])),
                (4, VideoCodec::Hevc, &coded(0, &[0xbb])),
            ]
        );
        // Truncated: a track size overrunning the tag, a cut second track, a cut cts.
        assert_eq!(
            parse(b"\xa6\x23av01\x00\x00\x00\x09\xaa"),
            Err(FlvError::Truncated("video tag"))
        );
        assert_eq!(
            parse(b"\xa6\x13hvc1\x00\x00\x00\x01\xaa\x01\x00"),
            Err(FlvError::Truncated("video tag"))
        );
        assert_eq!(
            parse(b"\x96\x11avc1\x00\x00\x00\x02\x00\x00"),
            Err(FlvError::Truncated("enhanced video tag"))
        );
        assert_eq!(
            parse(b"\x96\xf1avc1\x00"),
            Err(FlvError::UnsupportedMultitrackType(15))
        );
        // More than 16 tracks in one tag.
        let mut many = b"\x96\x13av01".to_vec();
        for id in 0..17u8 {
            many.extend_from_slice(&[id, 0, 0, 0]);
        }
        assert_eq!(parse(&many), Err(FlvError::TooManyTracks("video")));
    }
}
