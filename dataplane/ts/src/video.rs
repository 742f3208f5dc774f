//! The access-unit logic H.264 and H.265 share: an Annex B access unit (one PES) becomes
//! one bus frame of 4-byte length-prefixed NAL units, and the parameter sets seen in the
//! stream become the track's decoder configuration record.
//!
//! - Parameter sets (SPS/PPS, and VPS for H.265) are kept out of the samples: the record
//!   carries them. Each access unit that carries sets of one type replaces the stored
//!   sets of that type (encoders repeat them together before key frames), and a changed
//!   record is announced again (`Unit::Config`) before the frame that uses it.
//! - Access unit delimiters and filler data are dropped; everything else (SEI, slices,
//!   end of sequence) is kept in order.
//! - Nothing is emitted before the first access unit that has a random access picture
//!   and a usable record; the access units skipped until then are reported once.

use std::marker::PhantomData;

use bytes::Bytes;
use weir_media::{TrackId, VideoConfig, annexb_nals, push_length_prefixed};

use crate::error::{AuError, DropReason};
use crate::es::Unit;
use crate::pes::PesPacket;

/// Parameter sets of one type kept from one access unit.
const MAX_SETS_PER_TYPE: usize = 16;
/// Longest parameter set kept (SPS with VUI and scaling lists are a few hundred bytes).
const MAX_SET_LEN: usize = 4096;

/// What a NAL unit is to the access-unit logic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NalRole {
    /// A parameter set, stored in this slot (0..3) of the record.
    ParameterSet(usize),
    /// Not carried (access unit delimiter, filler data, unreadable header).
    Skip,
    /// A random access picture slice (IDR, IRAP).
    Key,
    /// Anything else: carried as is.
    Other,
}

/// The codec-specific half (see the h264 and hevc modules).
pub(crate) trait VideoCodec {
    /// How many parameter-set slots the record needs, all non-empty.
    const SLOTS: usize;
    /// Classifies a NAL unit (with its header).
    fn role(nal: &[u8]) -> NalRole;
    /// The record and dimensions from complete parameter sets; `None` if unusable.
    fn config(sets: &[Vec<Vec<u8>>; 3]) -> Option<VideoConfig>;
}

/// One video track's state.
#[derive(Debug)]
pub(crate) struct VideoTrack<C> {
    sets: [Vec<Vec<u8>>; 3],
    config: Option<VideoConfig>,
    /// The record last announced.
    announced: Option<Bytes>,
    started: bool,
    skipped: u32,
    codec: PhantomData<C>,
}

impl<C: VideoCodec> VideoTrack<C> {
    pub fn new() -> Self {
        Self {
            sets: Default::default(),
            config: None,
            announced: None,
            started: false,
            skipped: 0,
            codec: PhantomData,
        }
    }

    /// Turns one PES (one access unit) into units.
    pub fn access_unit(&mut self, track: TrackId, pes: PesPacket, out: &mut Vec<Unit>) {
        let Some(pts) = pes.pts else {
            out.push(Unit::Dropped(DropReason::AccessUnit {
                track,
                error: AuError::NoTimestamp,
            }));
            return;
        };
        let dts = pes.dts.unwrap_or(pts);
        let mut sample = Vec::with_capacity(pes.payload.len() + 32);
        let mut keyframe = false;
        let mut fresh: [Option<Vec<Vec<u8>>>; 3] = Default::default();
        for nal in annexb_nals(&pes.payload) {
            match C::role(nal) {
                NalRole::ParameterSet(slot) => {
                    let Some(sets) = fresh.get_mut(slot) else {
                        continue;
                    };
                    let sets = sets.get_or_insert_with(Vec::new);
                    if sets.len() < MAX_SETS_PER_TYPE && nal.len() <= MAX_SET_LEN {
                        sets.push(nal.to_vec());
                    }
                }
                NalRole::Skip => {}
                role => {
                    keyframe |= role == NalRole::Key;
                    push_length_prefixed(&mut sample, nal);
                }
            }
        }
        let mut changed = false;
        for (slot, sets) in fresh.into_iter().enumerate() {
            if let Some(sets) = sets
                && self.sets[slot] != sets
            {
                self.sets[slot] = sets;
                changed = true;
            }
        }
        if changed && self.sets[..C::SLOTS].iter().all(|s| !s.is_empty()) {
            self.config = C::config(&self.sets);
            if self.config.is_none() {
                out.push(Unit::Dropped(DropReason::AccessUnit {
                    track,
                    error: AuError::ParameterSet,
                }));
            }
        }
        if sample.is_empty() {
            return;
        }
        let Some(config) = self.config.as_ref().filter(|_| self.started || keyframe) else {
            // Before the first random access point, or after unusable parameter sets.
            self.started = false;
            self.skipped = self.skipped.saturating_add(1);
            return;
        };
        if !self.started {
            self.started = true;
            if self.skipped > 0 {
                out.push(Unit::Dropped(DropReason::BeforeKeyframe {
                    track,
                    frames: std::mem::take(&mut self.skipped),
                }));
            }
        }
        if self.announced.as_ref() != Some(&config.record) {
            self.announced = Some(config.record.clone());
            out.push(Unit::Config(weir_media::TrackConfig::Video(config.clone())));
        }
        out.push(Unit::Frame {
            dts,
            pts,
            keyframe,
            data: Bytes::from(sample),
        });
    }
}
