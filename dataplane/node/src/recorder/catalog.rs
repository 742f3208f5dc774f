//! The recordings this node has on disk, as the origin serves them.
//!
//! One [`Entry`] per recording directory: its index as far as it is durable (the writer
//! adds a segment only after its file and index line are fsynced), whether it is
//! finished, and its rendered playlist, cached until the next change. Shared by every
//! shard (a short mutex per entry; requests never touch the disk for a playlist).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use parking_lot::Mutex;

use super::index::{Index, SegmentEntry};
use super::retention::Candidate;

/// A recording on disk.
#[derive(Debug)]
pub struct Entry {
    /// Its directory.
    pub dir: PathBuf,
    /// The channel whose playback token its files need (a signed broadcast's recording).
    pub signed: Option<String>,
    /// Its media files are only in the object store (uploaded, then deleted locally).
    remote: AtomicBool,
    state: Mutex<State>,
    /// Its DASH MPD once finished, rendered on first request (see `dash`).
    mpd: Mutex<Option<Bytes>>,
}

#[derive(Debug)]
struct State {
    index: Index,
    finished: bool,
    playlist: Option<Bytes>,
}

impl Entry {
    /// A recording at `dir` as far as `index` goes.
    pub fn new(dir: PathBuf, index: Index, finished: bool) -> Self {
        Self {
            dir,
            signed: index.header.signed.clone(),
            mpd: Mutex::new(None),
            remote: AtomicBool::new(false),
            state: Mutex::new(State {
                index,
                finished,
                playlist: None,
            }),
        }
    }

    /// Its playlist now (EVENT while recording, VOD once finished), and whether it is
    /// final.
    pub fn playlist(&self) -> (Bytes, bool) {
        let mut st = self.state.lock();
        let finished = st.finished;
        if let Some(p) = &st.playlist {
            return (p.clone(), finished);
        }
        let p = Bytes::from(super::playlist::render(&st.index, finished));
        st.playlist = Some(p.clone());
        (p, finished)
    }

    /// Its index as far as it is durable, and whether it is finished.
    pub fn snapshot(&self) -> (Index, bool) {
        let st = self.state.lock();
        (st.index.clone(), st.finished)
    }

    /// The file and size of segment `msn`, if it is on disk.
    pub fn segment(&self, msn: u64) -> Option<(PathBuf, u64)> {
        let st = self.state.lock();
        let s = st.index.segment(msn)?;
        Some((self.dir.join(format!("seg-{msn}.m4s")), s.bytes))
    }

    /// What the index says of segment `msn`.
    pub fn segment_entry(&self, msn: u64) -> Option<SegmentEntry> {
        self.state.lock().index.segment(msn).copied()
    }

    /// The DASH MPD rendered before, if any.
    pub fn cached_mpd(&self) -> Option<Bytes> {
        self.mpd.lock().clone()
    }

    /// Keeps the DASH MPD of the finished recording.
    pub fn cache_mpd(&self, mpd: Bytes) {
        *self.mpd.lock() = Some(mpd);
    }

    /// The file and size of init segment `n`, if it is on disk.
    pub fn init(&self, n: u64) -> Option<(PathBuf, u64)> {
        let st = self.state.lock();
        let &(_, bytes) = st.index.inits.iter().find(|(i, _)| *i == n)?;
        Some((self.dir.join(format!("init-{n}.mp4")), bytes))
    }

    /// Whether its media files are only in the object store.
    pub fn is_remote(&self) -> bool {
        self.remote.load(Ordering::Acquire)
    }

    /// Its media files are in the object store: read them there from now on (set
    /// before the local copies are deleted).
    pub fn set_remote(&self) {
        self.remote.store(true, Ordering::Release);
    }

    /// An init segment is durable.
    pub fn add_init(&self, n: u64, bytes: u64) {
        let mut st = self.state.lock();
        st.index.inits.push((n, bytes));
    }

    /// A segment is durable: it is listed from now on.
    pub fn add_segment(&self, e: SegmentEntry) {
        let mut st = self.state.lock();
        st.index.segments.push(e);
        st.playlist = None;
    }

    /// The recording is finished: its playlist becomes a VOD.
    pub fn finish(&self, ended_ms: u64) {
        let mut st = self.state.lock();
        st.index.ended_ms = Some(ended_ms);
        st.finished = true;
        st.playlist = None;
    }

    fn candidate(&self) -> Candidate {
        let st = self.state.lock();
        Candidate {
            id: st.index.header.id.clone(),
            started_ms: st.index.header.started_ms,
            ended_ms: st.finished.then(|| st.index.ended_ms.unwrap_or(0)),
            bytes: st.index.bytes(),
        }
    }
}

/// Every recording of the node, by id.
#[derive(Debug, Default)]
pub struct Catalog {
    entries: Mutex<HashMap<String, Arc<Entry>>>,
}

impl Catalog {
    /// Adds (or replaces) a recording.
    pub fn insert(&self, id: &str, entry: Arc<Entry>) {
        self.entries.lock().insert(id.to_owned(), entry);
    }

    /// A recording by id.
    pub fn get(&self, id: &str) -> Option<Arc<Entry>> {
        self.entries.lock().get(id).cloned()
    }

    /// Forgets a recording (its files are being deleted).
    pub fn remove(&self, id: &str) -> Option<Arc<Entry>> {
        self.entries.lock().remove(id)
    }

    /// What the retention sweep weighs.
    pub fn candidates(&self) -> Vec<Candidate> {
        let entries: Vec<Arc<Entry>> = self.entries.lock().values().cloned().collect();
        entries.iter().map(|e| e.candidate()).collect()
    }

    /// Bytes of every recording on disk.
    pub fn total_bytes(&self) -> u64 {
        self.candidates().iter().map(|c| c.bytes).sum()
    }

    /// The ids of every recording.
    pub fn ids(&self) -> Vec<String> {
        self.entries.lock().keys().cloned().collect()
    }

    /// Number of recordings.
    pub fn len(&self) -> usize {
        self.entries.lock().len()
    }
}
