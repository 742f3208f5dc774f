//! The demuxer state machine: packets → PAT → PMT → elementary streams → events.

use weir_media::{TrackId, TrackKind};

use crate::error::DropReason;
use crate::es::{Continuity, Es, StreamKind, Unit, check_continuity};
use crate::framer::{Chunk, Framer};
use crate::packet::{self, NULL_PID, PACKET_SIZE, Packet};
use crate::psi::{self, SectionAssembler, TABLE_PAT, TABLE_PMT};
use crate::queue::EventQueue;
use crate::{MAX_PES_BUFFERED, MAX_STREAMS, TsEvent};

const PAT_PID: u16 = 0;

/// A sans-IO MPEG-TS demuxer: bytes in, [`TsEvent`]s out (see the crate docs).
///
/// Call [`poll`](Self::poll) until it returns `None` after every [`push`](Self::push):
/// at most [`MAX_PENDING_EVENTS`](crate::MAX_PENDING_EVENTS) events wait; beyond that,
/// new ones are dropped and reported as one [`DropReason::QueueFull`].
#[derive(Debug, Default)]
pub struct TsDemuxer {
    framer: Framer,
    state: State,
}

/// One PSI PID's reassembly state.
#[derive(Debug, Default)]
struct PsiPid {
    pid: u16,
    cc: Option<u8>,
    sections: SectionAssembler,
    /// The last section applied, to skip repeats.
    last: Vec<u8>,
}

#[derive(Debug, Default)]
struct State {
    pat: PsiPid,
    /// The first program's PMT PID and program number.
    pmt: Option<(PsiPid, u16)>,
    streams: Vec<Es>,
    /// PIDs of the current PMT that are not read (reported once).
    ignored: Vec<u16>,
    queue: EventQueue,
    units: Vec<Unit>,
}

impl TsDemuxer {
    /// A demuxer waiting for a PAT.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes, split anywhere (SRT payloads are usually 7 × 188 bytes but need not
    /// be aligned); garbage between packets is skipped up to the next sync byte.
    pub fn push(&mut self, data: &[u8]) {
        let state = &mut self.state;
        self.framer.push(data, |c| state.chunk(c));
    }

    /// Signals the end of input: the PES in progress on every stream is completed (or
    /// dropped when shorter than its declared length). Input pushed afterwards is read
    /// as a continuation.
    pub fn finish(&mut self) {
        let state = &mut self.state;
        self.framer.finish(|c| state.chunk(c));
        let State {
            streams,
            units,
            queue,
            ..
        } = state;
        for es in streams {
            es.finish(units);
            es.deliver(units, queue);
        }
    }

    /// The next event, oldest first.
    pub fn poll(&mut self) -> Option<TsEvent> {
        self.state.queue.pop()
    }

    /// The tracks of the current program, in PMT order.
    pub fn tracks(&self) -> impl Iterator<Item = TrackId> + '_ {
        self.state.streams.iter().map(|s| s.track)
    }
}

impl State {
    fn drop(&mut self, reason: DropReason) {
        self.queue.push(TsEvent::Dropped { reason });
    }

    fn chunk(&mut self, chunk: Chunk<'_>) {
        match chunk {
            Chunk::Skipped(skipped) => self.drop(DropReason::Resync { skipped }),
            Chunk::Packet(p) => self.packet(p),
        }
    }

    fn packet(&mut self, raw: &[u8; PACKET_SIZE]) {
        // An unreadable adaptation field: the packet is lost (continuity shows it).
        let Ok(p) = packet::parse(raw) else { return };
        if p.tei {
            // The header itself may be corrupt: only report.
            self.drop(DropReason::TransportError { pid: p.pid });
            return;
        }
        if p.pid == NULL_PID {
            return;
        }
        if p.pid == PAT_PID {
            for section in psi_sections(&mut self.pat, &p, &mut self.queue) {
                self.pat_section(&section);
            }
            return;
        }
        if let Some((pmt, _)) = self.pmt.as_mut().filter(|(pmt, _)| pmt.pid == p.pid) {
            for section in psi_sections(pmt, &p, &mut self.queue) {
                self.pmt_section(&section);
            }
            return;
        }
        let total: usize = self.streams.iter().map(Es::buffered).sum();
        let State {
            streams,
            units,
            queue,
            ..
        } = self;
        if let Some(es) = streams.iter_mut().find(|s| s.pid == p.pid) {
            let budget = MAX_PES_BUFFERED.saturating_sub(total - es.buffered());
            es.packet(&p, budget, units);
            es.deliver(units, queue);
        }
    }

    fn pat_section(&mut self, section: &[u8]) {
        if section == self.pat.last {
            return;
        }
        let s = match psi::parse_section(section) {
            Ok(s) => s,
            Err(error) => {
                return self.drop(DropReason::Section {
                    pid: PAT_PID,
                    error,
                });
            }
        };
        if s.table_id != TABLE_PAT || !s.current {
            return;
        }
        self.pat.last = section.to_vec();
        let Some((program, pid)) = psi::first_program(s.body) else {
            return;
        };
        if pid == PAT_PID || pid == NULL_PID {
            return;
        }
        if self.pmt.as_ref().map(|(pmt, n)| (pmt.pid, *n)) != Some((pid, program)) {
            // The streams stay until the new PMT arrives.
            let pmt = PsiPid {
                pid,
                ..PsiPid::default()
            };
            self.pmt = Some((pmt, program));
        }
    }

    fn pmt_section(&mut self, section: &[u8]) {
        let Some((pmt, program)) = self.pmt.as_mut() else {
            return;
        };
        let pid = pmt.pid;
        if section == pmt.last {
            return;
        }
        let s = match psi::parse_section(section) {
            Ok(s) => s,
            Err(error) => return self.drop(DropReason::Section { pid, error }),
        };
        if s.table_id != TABLE_PMT || !s.current || s.id != *program {
            return;
        }
        pmt.last = section.to_vec();
        match psi::pmt_streams(s.body) {
            Ok(entries) => self.apply_pmt(pid, &entries),
            Err(error) => self.drop(DropReason::Section { pid, error }),
        }
    }

    /// Rebuilds the stream list in PMT order; streams whose PID, type and track are
    /// unchanged keep their state.
    fn apply_pmt(&mut self, pmt_pid: u16, entries: &[psi::EsInfo]) {
        let mut old = std::mem::take(&mut self.streams);
        let mut ignored = Vec::new();
        let (mut videos, mut audios) = (0u8, 0u8);
        for e in entries {
            let taken = self.streams.iter().any(|s| s.pid == e.pid) || ignored.contains(&e.pid);
            if taken || [PAT_PID, NULL_PID, pmt_pid].contains(&e.pid) {
                continue;
            }
            let reason = match StreamKind::of(e) {
                None => Some(DropReason::Unsupported {
                    pid: e.pid,
                    stream_type: e.stream_type,
                }),
                Some(_) if self.streams.len() >= MAX_STREAMS => {
                    Some(DropReason::TooManyStreams { pid: e.pid })
                }
                Some(_) => None,
            };
            let Some(kind) = StreamKind::of(e).filter(|_| reason.is_none()) else {
                if !self.ignored.contains(&e.pid)
                    && let Some(reason) = reason
                {
                    self.queue.push(TsEvent::Dropped { reason });
                }
                ignored.push(e.pid);
                continue;
            };
            let count = match kind.track_kind() {
                TrackKind::Video => &mut videos,
                TrackKind::Audio => &mut audios,
            };
            let track = TrackId::new(kind.track_kind(), *count);
            *count += 1;
            let es = match old
                .iter()
                .position(|s| s.pid == e.pid && s.kind == kind && s.track == track)
            {
                Some(i) => old.swap_remove(i),
                None => Es::new(e.pid, kind, track),
            };
            self.streams.push(es);
        }
        self.ignored = ignored;
        tracing::debug!(
            pmt_pid,
            streams = ?self.streams.iter().map(|s| (s.pid, s.track)).collect::<Vec<_>>(),
            ignored = ?self.ignored,
            "PMT applied"
        );
    }
}

/// Continuity and reassembly for a PSI PID; the complete sections of this packet.
fn psi_sections(psi: &mut PsiPid, p: &Packet<'_>, queue: &mut EventQueue) -> Vec<Vec<u8>> {
    match check_continuity(&mut psi.cc, p) {
        Continuity::Duplicate => return Vec::new(),
        Continuity::Gap { expected } => {
            psi.sections.reset();
            queue.push(TsEvent::Dropped {
                reason: DropReason::Continuity {
                    pid: psi.pid,
                    expected,
                    got: p.cc,
                },
            });
        }
        Continuity::Ok => {}
    }
    let mut out = Vec::new();
    if p.has_payload {
        psi.sections
            .push(p.pusi, p.payload, |s| out.push(s.to_vec()));
    }
    out
}

#[cfg(test)]
mod tests;
