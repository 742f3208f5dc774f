//! RTMP/FLV media messages → media-bus track configs and frames.

use bytes::Bytes;
use weir_media::{
    AacConfig, AudioConfig, Codec, Frame, TimestampNormalizer, TrackConfig, TrackId, TrackKind,
    VideoConfig, parse_avcc, parse_sps,
};

use crate::FlvError;
use crate::audio::{AudioCodec, AudioPacket, parse_audio};
use crate::dims::{av1_dimensions, hevc_dimensions};
use crate::script::{StreamMetadata, parse_metadata};
use crate::video::{VideoCodec, VideoPacket, parse_video};

/// The most tracks of one kind (video, audio) a broadcast, or one multitrack tag, may have.
pub const MAX_TRACKS_PER_KIND: usize = 16;

/// What one media message produced for the bus.
#[derive(Debug, Clone, PartialEq)]
pub enum DemuxEvent {
    /// A new or changed configuration of a track; precedes the frames that need it.
    Track(TrackId, TrackConfig),
    /// One access unit.
    Frame(Frame),
    /// The encoder's `onMetaData`.
    Metadata(StreamMetadata),
}

/// Counters of what the demuxer dropped without an error.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DemuxStats {
    /// Frames that arrived before their track's configuration (or of another codec).
    pub frames_before_config: u64,
    /// Empty coded frames.
    pub empty_frames: u64,
}

/// Turns one broadcast's FLV tag bodies into bus events. Owns the broadcast's
/// [`TimestampNormalizer`], so timestamps are normalised here, once.
///
/// Every Enhanced RTMP track id becomes its own bus track,
/// `TrackId { kind, index: track_id }`; tags that are not multitrack are track 0. Up to
/// [`MAX_TRACKS_PER_KIND`] tracks of each kind are configured.
#[derive(Debug, Default)]
pub struct FlvDemuxer {
    normalizer: TimestampNormalizer,
    /// The configured tracks, in the order they were first configured.
    tracks: Vec<(TrackId, TrackConfig)>,
    metadata: Option<StreamMetadata>,
    stats: DemuxStats,
}

/// What one track of a tag asks for, decided before any state changes so that a tag
/// whose later track is an error leaves nothing half-applied.
enum Action {
    Configure(TrackId, TrackConfig),
    Frame {
        track: TrackId,
        codec: Codec,
        cts: i32,
        keyframe: bool,
        data: Bytes,
    },
}

fn bus_codec(c: VideoCodec) -> Result<Codec, FlvError> {
    match c {
        VideoCodec::Avc => Ok(Codec::H264),
        VideoCodec::Hevc => Ok(Codec::H265),
        VideoCodec::Av1 => Ok(Codec::Av1),
        VideoCodec::Vp9 => Err(FlvError::UnsupportedVideoFourCc(*b"vp09")),
    }
}

fn clamp16(v: u32) -> u16 {
    u16::try_from(v).unwrap_or(u16::MAX)
}

fn kind_name(kind: TrackKind) -> &'static str {
    match kind {
        TrackKind::Video => "video",
        TrackKind::Audio => "audio",
    }
}

impl FlvDemuxer {
    /// A demuxer with no tracks yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// What was dropped so far.
    pub fn stats(&self) -> DemuxStats {
        self.stats
    }

    /// The current configuration of a track.
    pub fn track(&self, id: TrackId) -> Option<&TrackConfig> {
        self.tracks.iter().find(|(t, _)| *t == id).map(|(_, c)| c)
    }

    /// Every configured track, in the order they were first configured.
    pub fn tracks(&self) -> impl Iterator<Item = (TrackId, &TrackConfig)> {
        self.tracks.iter().map(|(id, c)| (*id, c))
    }

    /// One RTMP/FLV video message. Returns the bus events it produced, for every track
    /// of a multitrack tag in tag order.
    pub fn push_video(
        &mut self,
        timestamp_ms: u32,
        payload: &Bytes,
    ) -> Result<Vec<DemuxEvent>, FlvError> {
        let tag = parse_video(payload)?;
        let keyframe = tag.is_keyframe();
        let mut actions = Vec::with_capacity(tag.tracks.len());
        for t in tag.tracks {
            let track = TrackId::new(TrackKind::Video, t.id);
            let codec = bus_codec(t.codec)?;
            match t.packet {
                VideoPacket::SequenceStart(record) if !record.is_empty() => {
                    let config = TrackConfig::Video(self.video_config(codec, record)?);
                    actions.push(Action::Configure(track, config));
                }
                VideoPacket::CodedFrames { cts, data } => actions.push(Action::Frame {
                    track,
                    codec,
                    cts,
                    keyframe,
                    data,
                }),
                _ => {}
            }
        }
        self.apply(TrackKind::Video, timestamp_ms, actions)
    }

    /// One RTMP/FLV audio message. Returns the bus events it produced, for every track
    /// of a multitrack tag in tag order.
    pub fn push_audio(
        &mut self,
        timestamp_ms: u32,
        payload: &Bytes,
    ) -> Result<Vec<DemuxEvent>, FlvError> {
        let tag = parse_audio(payload)?;
        let mut actions = Vec::with_capacity(tag.tracks.len());
        for t in tag.tracks {
            let track = TrackId::new(TrackKind::Audio, t.id);
            let codec = match t.codec {
                AudioCodec::Aac => Codec::Aac,
                AudioCodec::Opus => Codec::Opus,
            };
            match t.packet {
                AudioPacket::SequenceStart(record) => {
                    let config = match t.codec {
                        AudioCodec::Aac => aac_config(record, tag.stereo)?,
                        AudioCodec::Opus => opus_config(record),
                    };
                    actions.push(Action::Configure(track, TrackConfig::Audio(config)));
                }
                AudioPacket::CodedFrames(data) => actions.push(Action::Frame {
                    track,
                    codec,
                    cts: 0,
                    keyframe: true,
                    data,
                }),
                AudioPacket::SequenceEnd | AudioPacket::Ignored => {}
            }
        }
        self.apply(TrackKind::Audio, timestamp_ms, actions)
    }

    /// One data message (FLV SCRIPTDATA body, with or without `@setDataFrame`).
    pub fn push_data(&mut self, payload: &[u8]) -> Result<Vec<DemuxEvent>, FlvError> {
        match parse_metadata(payload)? {
            Some(m) => {
                self.metadata = Some(m.clone());
                Ok(vec![DemuxEvent::Metadata(m)])
            }
            None => Ok(Vec::new()),
        }
    }

    /// Applies one tag's actions (all of `kind`), after checking the track bound.
    fn apply(
        &mut self,
        kind: TrackKind,
        ts: u32,
        actions: Vec<Action>,
    ) -> Result<Vec<DemuxEvent>, FlvError> {
        let mut known: Vec<TrackId> = self
            .tracks
            .iter()
            .map(|(id, _)| *id)
            .filter(|id| id.kind == kind)
            .collect();
        for a in &actions {
            if let Action::Configure(id, _) = a
                && !known.contains(id)
            {
                if known.len() == MAX_TRACKS_PER_KIND {
                    return Err(FlvError::TooManyTracks(kind_name(kind)));
                }
                known.push(*id);
            }
        }
        let mut events = Vec::with_capacity(actions.len());
        for a in actions {
            match a {
                Action::Configure(id, config) => self.set_track(id, config, &mut events),
                Action::Frame {
                    track,
                    codec,
                    cts,
                    keyframe,
                    data,
                } => {
                    if self.track(track).map(TrackConfig::codec) != Some(codec) {
                        self.stats.frames_before_config += 1;
                        continue;
                    }
                    self.frame(track, ts, cts, keyframe, data, &mut events);
                }
            }
        }
        Ok(events)
    }

    fn set_track(&mut self, id: TrackId, config: TrackConfig, events: &mut Vec<DemuxEvent>) {
        match self.tracks.iter_mut().find(|(t, _)| *t == id) {
            Some((_, c)) if *c == config => return,
            Some((_, c)) => *c = config.clone(),
            None => self.tracks.push((id, config.clone())),
        }
        events.push(DemuxEvent::Track(id, config));
    }

    fn frame(
        &mut self,
        track: TrackId,
        ts: u32,
        cts: i32,
        keyframe: bool,
        data: Bytes,
        events: &mut Vec<DemuxEvent>,
    ) {
        if data.is_empty() {
            self.stats.empty_frames += 1;
            return;
        }
        let t = self.normalizer.normalize_ms(track, ts, cts);
        events.push(DemuxEvent::Frame(Frame {
            track,
            dts: t.dts,
            pts: t.pts,
            keyframe,
            data,
        }));
    }

    fn video_config(&self, codec: Codec, record: Bytes) -> Result<VideoConfig, FlvError> {
        let dims = match codec {
            Codec::H264 => {
                let (sps, _) = parse_avcc(&record).map_err(|e| FlvError::InvalidConfig {
                    codec: "H.264",
                    reason: e.to_string(),
                })?;
                sps.first()
                    .and_then(|s| parse_sps(s).ok())
                    .map(|i| (i.width, i.height))
            }
            Codec::H265 => hevc_dimensions(&record),
            _ => av1_dimensions(&record),
        };
        let fallback = self
            .metadata
            .as_ref()
            .map(|m| (m.width.unwrap_or(0), m.height.unwrap_or(0)));
        let (w, h) = dims.or(fallback).unwrap_or((0, 0));
        Ok(VideoConfig {
            codec,
            width: clamp16(w),
            height: clamp16(h),
            record,
        })
    }
}

fn aac_config(record: Bytes, stereo: bool) -> Result<AudioConfig, FlvError> {
    let c = AacConfig::parse(&record).map_err(|e| FlvError::InvalidConfig {
        codec: "AAC",
        reason: e.to_string(),
    })?;
    // Explicit SBR/PS signalling: the output rate is the extension rate.
    let sample_rate = if matches!(c.object_type, 5 | 29) {
        sbr_output_rate(&record).unwrap_or(c.sample_rate)
    } else {
        c.sample_rate
    };
    let channels = match c.channels {
        0 => {
            if stereo {
                2
            } else {
                1
            }
        }
        7 => 8,
        n => n,
    };
    Ok(AudioConfig {
        codec: Codec::Aac,
        sample_rate,
        channels,
        record,
    })
}

/// The extension sampling frequency of an AudioSpecificConfig with object type 5/29.
fn sbr_output_rate(record: &[u8]) -> Option<u32> {
    const RATES: [u32; 13] = [
        96_000, 88_200, 64_000, 48_000, 44_100, 32_000, 24_000, 22_050, 16_000, 12_000, 11_025,
        8_000, 7_350,
    ];
    let mut r = weir_media::BitReader::new(record);
    r.skip(5).ok()?; // audioObjectType
    if r.bits(4).ok()? == 15 {
        r.skip(24).ok()?;
    }
    r.skip(4).ok()?; // channelConfiguration
    let ext = r.bits(4).ok()?;
    if ext == 15 {
        return r.bits(24).ok();
    }
    RATES.get(ext as usize).copied()
}

/// Opus always decodes at 48 kHz; the channel count is in the OpusHead when present.
fn opus_config(record: Bytes) -> AudioConfig {
    let channels = if record.len() >= 19 && record.starts_with(b"OpusHead") {
        record[9].max(1)
    } else {
        2
    };
    AudioConfig {
        codec: Codec::Opus,
        sample_rate: 48_000,
        channels,
        record,
    }
}
