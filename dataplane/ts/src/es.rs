//! One elementary stream of the program: continuity, PES reassembly and the codec
//! handler, and the rules that keep the events it queues consistent.

use bytes::Bytes;
use weir_media::{TrackConfig, TrackId, TrackKind};

use crate::adts::AacTrack;
use crate::error::DropReason;
use crate::h264::H264;
use crate::hevc::H265;
use crate::opus::OpusTrack;
use crate::packet::Packet;
use crate::pes::{PesAssembler, PesOutput, parse_pes};
use crate::psi::EsInfo;
use crate::queue::EventQueue;
use crate::video::VideoTrack;
use crate::{MAX_PES_SIZE, TsEvent};

/// What a codec handler makes of a PES.
#[derive(Debug)]
pub(crate) enum Unit {
    /// The track's configuration is (now) this.
    Config(TrackConfig),
    /// One access unit.
    Frame {
        dts: u64,
        pts: u64,
        keyframe: bool,
        data: Bytes,
    },
    /// Something was dropped.
    Dropped(DropReason),
}

/// The elementary stream types the demuxer reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StreamKind {
    H264,
    H265,
    Aac,
    Opus { channel_config: Option<u8> },
}

impl StreamKind {
    /// The kind of a PMT entry, `None` when unsupported.
    pub fn of(es: &EsInfo) -> Option<Self> {
        match es.stream_type {
            0x1b => Some(Self::H264),
            0x24 => Some(Self::H265),
            0x0f => Some(Self::Aac),
            0x06 if es.opus => Some(Self::Opus {
                channel_config: es.opus_channel_config,
            }),
            _ => None,
        }
    }

    /// Video or audio.
    pub fn track_kind(self) -> TrackKind {
        match self {
            Self::H264 | Self::H265 => TrackKind::Video,
            Self::Aac | Self::Opus { .. } => TrackKind::Audio,
        }
    }
}

#[derive(Debug)]
enum Handler {
    H264(VideoTrack<H264>),
    H265(VideoTrack<H265>),
    Aac(AacTrack),
    Opus(OpusTrack),
}

/// The result of a continuity check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Continuity {
    Ok,
    /// The same counter again: a duplicate packet, ignored.
    Duplicate,
    /// Packets were lost.
    Gap {
        expected: u8,
    },
}

/// Checks a packet's continuity counter against the last one (`None`: none yet).
pub(crate) fn check_continuity(last: &mut Option<u8>, p: &Packet<'_>) -> Continuity {
    if !p.has_payload {
        return Continuity::Ok;
    }
    let previous = last.replace(p.cc);
    match previous {
        _ if p.discontinuity => Continuity::Ok,
        None => Continuity::Ok,
        Some(prev) if prev == p.cc => Continuity::Duplicate,
        Some(prev) if (prev + 1) & 0x0f == p.cc => Continuity::Ok,
        Some(prev) => Continuity::Gap {
            expected: (prev + 1) & 0x0f,
        },
    }
}

/// One elementary stream.
#[derive(Debug)]
pub(crate) struct Es {
    pub pid: u16,
    pub kind: StreamKind,
    pub track: TrackId,
    cc: Option<u8>,
    pes: PesAssembler,
    handler: Handler,
    /// The configuration last produced, kept to announce it again if the queue dropped it.
    config: Option<TrackConfig>,
    needs_announce: bool,
    scrambled_reported: bool,
}

impl Es {
    pub fn new(pid: u16, kind: StreamKind, track: TrackId) -> Self {
        let handler = match kind {
            StreamKind::H264 => Handler::H264(VideoTrack::new()),
            StreamKind::H265 => Handler::H265(VideoTrack::new()),
            StreamKind::Aac => Handler::Aac(AacTrack::default()),
            StreamKind::Opus { channel_config } => Handler::Opus(OpusTrack::new(channel_config)),
        };
        Self {
            pid,
            kind,
            track,
            cc: None,
            pes: PesAssembler::default(),
            handler,
            config: None,
            needs_announce: false,
            scrambled_reported: false,
        }
    }

    /// Bytes of PES held.
    pub fn buffered(&self) -> usize {
        self.pes.len()
    }

    /// Feeds one packet of this PID; `budget` is what this stream may hold in all
    /// (the demuxer-wide bound minus what the others hold).
    pub fn packet(&mut self, p: &Packet<'_>, budget: usize, units: &mut Vec<Unit>) {
        let pid = self.pid;
        if p.scrambled {
            if !std::mem::replace(&mut self.scrambled_reported, true) {
                units.push(Unit::Dropped(DropReason::Scrambled { pid }));
            }
            self.pes.reset();
            return;
        }
        match check_continuity(&mut self.cc, p) {
            Continuity::Duplicate => return,
            Continuity::Gap { expected } => {
                self.pes.reset();
                units.push(Unit::Dropped(DropReason::Continuity {
                    pid,
                    expected,
                    got: p.cc,
                }));
            }
            Continuity::Ok => {}
        }
        if p.discontinuity && self.pes.reset() {
            units.push(Unit::Dropped(DropReason::Discontinuity { pid }));
        }
        if !p.has_payload {
            return;
        }
        let limit = MAX_PES_SIZE.min(budget);
        let Self {
            pes,
            handler,
            track,
            ..
        } = self;
        pes.push(p.pusi, p.payload, limit, |o| {
            handle(o, pid, *track, limit, handler, units);
        });
    }

    /// End of input: the PES in progress.
    pub fn finish(&mut self, units: &mut Vec<Unit>) {
        if let Some(o) = self.pes.end() {
            handle(
                o,
                self.pid,
                self.track,
                MAX_PES_SIZE,
                &mut self.handler,
                units,
            );
        }
    }

    /// Queues `units` as events: a frame always follows its track's configuration, also
    /// when the queue dropped that configuration's event.
    pub fn deliver(&mut self, units: &mut Vec<Unit>, queue: &mut EventQueue) {
        let track = self.track;
        for unit in units.drain(..) {
            match unit {
                Unit::Config(config) => {
                    self.config = Some(config.clone());
                    self.needs_announce = !queue.push(TsEvent::Track { id: track, config });
                }
                Unit::Frame {
                    dts,
                    pts,
                    keyframe,
                    data,
                } => {
                    if self.needs_announce
                        && let Some(config) = self.config.clone()
                    {
                        self.needs_announce = !queue.push(TsEvent::Track { id: track, config });
                    }
                    if self.needs_announce {
                        queue.lose();
                    } else {
                        queue.push(TsEvent::Frame {
                            track,
                            dts,
                            pts,
                            keyframe,
                            data,
                        });
                    }
                }
                Unit::Dropped(reason) => {
                    queue.push(TsEvent::Dropped { reason });
                }
            }
        }
    }
}

fn handle(
    o: PesOutput,
    pid: u16,
    track: TrackId,
    limit: usize,
    handler: &mut Handler,
    units: &mut Vec<Unit>,
) {
    let pes = match o {
        PesOutput::Complete(bytes) => match parse_pes(bytes) {
            Ok(pes) => pes,
            Err(error) => {
                units.push(Unit::Dropped(DropReason::MalformedPes { pid, error }));
                return;
            }
        },
        PesOutput::Truncated => {
            units.push(Unit::Dropped(DropReason::MalformedPes {
                pid,
                error: crate::error::PesError::Truncated,
            }));
            return;
        }
        PesOutput::TooLarge => {
            units.push(Unit::Dropped(DropReason::PesTooLarge { pid, limit }));
            return;
        }
    };
    match handler {
        Handler::H264(h) => h.access_unit(track, pes, units),
        Handler::H265(h) => h.access_unit(track, pes, units),
        Handler::Aac(h) => h.access_unit(track, pes, units),
        Handler::Opus(h) => h.access_unit(track, pes, units),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(cc: u8, has_payload: bool, discontinuity: bool) -> Packet<'static> {
        Packet {
            tei: false,
            pusi: false,
            pid: 0x100,
            scrambled: false,
            has_payload,
            cc,
            discontinuity,
            payload: &[],
        }
    }

    #[test]
    fn continuity_counter_rules() {
        let mut last = None;
        assert_eq!(
            check_continuity(&mut last, &pkt(14, true, false)),
            Continuity::Ok
        );
        assert_eq!(
            check_continuity(&mut last, &pkt(15, true, false)),
            Continuity::Ok
        );
        assert_eq!(
            check_continuity(&mut last, &pkt(0, true, false)),
            Continuity::Ok
        );
        assert_eq!(
            check_continuity(&mut last, &pkt(0, true, false)),
            Continuity::Duplicate
        );
        // Adaptation-field-only packets do not count.
        assert_eq!(
            check_continuity(&mut last, &pkt(9, false, false)),
            Continuity::Ok
        );
        assert_eq!(
            check_continuity(&mut last, &pkt(3, true, false)),
            Continuity::Gap { expected: 1 }
        );
        assert_eq!(
            check_continuity(&mut last, &pkt(4, true, false)),
            Continuity::Ok
        );
        assert_eq!(
            check_continuity(&mut last, &pkt(11, true, true)),
            Continuity::Ok
        );
        assert_eq!(last, Some(11));
    }
}
