//! The writer thread: every file write of every recording of the node, off the shards.
//!
//! Shards hand it [`Job`]s over a channel and never wait. Media (segments, init
//! segments) counts against a byte budget ([`WriterHandle::queue_limit`]): when the disk
//! is too slow and the budget is spent, the segment is dropped (counted in
//! `weir_recording_segments_dropped_total`, logged at most once a second) and the
//! recording goes on after a hole (a discontinuity in its playlist), so memory never
//! grows without bound. Control jobs (open, finish) are tiny and always queued.
//!
//! A segment reaches the catalog (and so the playlists) only once its file and its
//! index line are durable. The thread also runs the retention sweep: at start, once a
//! minute and after each finished recording.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use weir_hls::Rope;

use super::catalog::{Catalog, Entry};
use super::disk::{IndexFile, SyncTime, write_atomic};
use super::index::{Header, Index, SegmentEntry, end_line, init_line};
use super::pictures::Pictures;
use super::retention::{self, Retention};
use super::upload::{Notice, UploadHandle};
use crate::hooks::{RecordingReport, StreamEvents};

/// How often the retention sweep runs.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// Work for the writer thread.
#[derive(Debug)]
pub enum Job {
    /// Create a recording's directory and index.
    Open(Header),
    /// Write init segment `n`.
    Init {
        /// Recording.
        id: String,
        /// Its number.
        n: u64,
        /// Its bytes.
        data: Bytes,
    },
    /// Write a media segment (`entry.bytes` is filled in by the writer).
    Segment {
        /// Recording.
        id: String,
        /// What the index says of it.
        entry: SegmentEntry,
        /// Its bytes.
        data: Rope,
    },
    /// Delete a finished recording's files (its owner deleted it); a recording still
    /// being written is left alone (the control plane refuses that first).
    Delete {
        /// Recording.
        id: String,
    },
    /// The broadcast ended: finish the recording.
    Finish {
        /// Recording.
        id: String,
        /// When (UNIX ms).
        ended_ms: u64,
        /// Bytes of media frames the recorder took in (for the overhead ratio).
        media_bytes: u64,
    },
    /// Finish the queued work and exit.
    Stop,
}

/// The shards' side of the writer.
#[derive(Debug, Clone)]
pub struct WriterHandle {
    tx: mpsc::Sender<Job>,
    queued: Arc<AtomicUsize>,
    limit: usize,
}

impl WriterHandle {
    /// Most media bytes waiting for the disk.
    pub fn queue_limit(&self) -> usize {
        self.limit
    }

    /// Queues a control job.
    pub fn send(&self, job: Job) {
        let _ = self.tx.send(job);
    }

    /// Queues a media job of `bytes`, unless the budget is spent: false when dropped.
    pub fn send_media(&self, job: Job, bytes: usize) -> bool {
        let before = self.queued.fetch_add(bytes, Ordering::AcqRel);
        if before > 0 && before.saturating_add(bytes) > self.limit {
            self.queued.fetch_sub(bytes, Ordering::AcqRel);
            return false;
        }
        metrics::gauge!("weir_recording_queued_bytes").set(before.saturating_add(bytes) as f64);
        if self.tx.send(job).is_err() {
            self.queued.fetch_sub(bytes, Ordering::AcqRel);
            return false;
        }
        true
    }
}

/// A recording being written.
struct Open {
    entry: Arc<Entry>,
    index: IndexFile,
    /// What was written so far (the catalog has the same).
    summary: Index,
    sync: SyncTime,
    /// Writes failed: the rest of this recording is skipped.
    failed: bool,
}

/// The writer thread's state.
pub struct Writer {
    root: PathBuf,
    catalog: Arc<Catalog>,
    events: Arc<dyn StreamEvents>,
    retention: Retention,
    queued: Arc<AtomicUsize>,
    open: HashMap<String, Open>,
    /// Recordings whose directory could not be created (reported deleted at their end).
    refused: std::collections::HashSet<String>,
    /// Poster and thumbnail work of finished recordings.
    pictures: Arc<Pictures>,
    /// The object store's uploader, told of every durable file and every deletion.
    upload: Option<UploadHandle>,
}

impl Writer {
    /// A writer for recordings under `root`, and its handle (`limit`: media bytes it
    /// may have queued).
    pub fn new(
        root: PathBuf,
        catalog: Arc<Catalog>,
        events: Arc<dyn StreamEvents>,
        retention: Retention,
        limit: usize,
    ) -> (Self, WriterHandle, mpsc::Receiver<Job>) {
        let (tx, rx) = mpsc::channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let handle = WriterHandle {
            tx,
            queued: queued.clone(),
            limit,
        };
        let w = Self {
            root,
            catalog,
            events,
            retention,
            queued,
            open: HashMap::new(),
            refused: std::collections::HashSet::new(),
            pictures: Pictures::new(None),
            upload: None,
        };
        (w, handle, rx)
    }

    /// The same writer, making pictures through `pictures` and telling `upload` (if any)
    /// of what becomes durable and what is deleted.
    pub fn with_store(mut self, pictures: Arc<Pictures>, upload: Option<UploadHandle>) -> Self {
        self.pictures = pictures;
        self.upload = upload;
        self
    }

    fn notify(&self, n: Notice) {
        tell(&self.upload, n);
    }

    /// Removes recording `id`'s files (its catalog entry is gone already): its picture
    /// work is cancelled and waited for first, and with an object store a tombstone
    /// makes sure its objects go too.
    fn remove_files(&self, id: &str, dir: &std::path::Path) -> std::io::Result<()> {
        self.pictures.cancel_and_wait(id);
        if self.upload.is_some() {
            if let Err(e) = super::upload::tombstone(&self.root, id) {
                tracing::warn!(recording = %id, error = %e, "cannot note the store deletion");
            }
            self.notify(Notice::Deleted(id.to_owned()));
        }
        match std::fs::remove_dir_all(dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            r => r,
        }
    }

    /// Runs until [`Job::Stop`] or until every handle is gone.
    pub fn run(mut self, rx: mpsc::Receiver<Job>) {
        let mut next_sweep = Instant::now();
        loop {
            if Instant::now() >= next_sweep {
                self.sweep();
                next_sweep = Instant::now() + SWEEP_EVERY;
            }
            let wait = next_sweep.saturating_duration_since(Instant::now());
            match rx.recv_timeout(wait) {
                Ok(Job::Stop) | Err(RecvTimeoutError::Disconnected) => return,
                Ok(job) => self.handle(job),
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
    }

    fn handle(&mut self, job: Job) {
        match job {
            Job::Open(header) => self.open(header),
            Job::Init { id, n, data } => {
                self.release(data.len());
                self.init(&id, n, data);
            }
            Job::Segment { id, entry, data } => {
                self.release(data.len());
                self.segment(&id, entry, &data);
            }
            Job::Finish {
                id,
                ended_ms,
                media_bytes,
            } => self.finish(&id, ended_ms, media_bytes),
            Job::Delete { id } => self.delete(&id),
            Job::Stop => {}
        }
    }

    fn delete(&mut self, id: &str) {
        if self.open.contains_key(id) {
            tracing::warn!(recording = %id, "not deleted: it is still being recorded");
            return;
        }
        let Some(entry) = self.catalog.remove(id) else {
            return;
        };
        match self.remove_files(id, &entry.dir) {
            Ok(()) => {
                metrics::counter!("weir_recording_deleted_total").increment(1);
                tracing::info!(recording = %id, "recording deleted by its owner");
                self.events.recording_deleted(id);
            }
            Err(e) => {
                metrics::counter!("weir_recording_errors_total").increment(1);
                tracing::warn!(recording = %id, error = %e, "cannot delete the recording");
            }
        }
        metrics::gauge!("weir_recording_disk_bytes").set(self.catalog.total_bytes() as f64);
    }

    fn release(&self, bytes: usize) {
        let before = self
            .queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |q| {
                Some(q.saturating_sub(bytes))
            })
            .unwrap_or(0);
        metrics::gauge!("weir_recording_queued_bytes").set(before.saturating_sub(bytes) as f64);
    }

    fn open(&mut self, header: Header) {
        let dir = self.root.join(&header.id);
        let mut sync = SyncTime::default();
        match IndexFile::create(&dir, &header.line(), &mut sync) {
            Ok(index) => {
                let summary = Index::new(header.clone());
                let entry = Arc::new(Entry::new(dir, summary.clone(), false));
                self.catalog.insert(&header.id, entry.clone());
                tracing::info!(recording = %header.id, channel_id = %header.channel_id, "recording started");
                self.open.insert(
                    header.id.clone(),
                    Open {
                        entry,
                        index,
                        summary,
                        sync,
                        failed: false,
                    },
                );
            }
            Err(e) => {
                metrics::counter!("weir_recording_errors_total").increment(1);
                tracing::warn!(recording = %header.id, dir = %dir.display(), error = %e, "cannot create the recording: not recorded");
                self.refused.insert(header.id);
            }
        }
    }

    fn init(&mut self, id: &str, n: u64, data: Bytes) {
        let Some(o) = self.open.get_mut(id).filter(|o| !o.failed) else {
            return;
        };
        let r = write_atomic(&o.entry.dir, &format!("init-{n}.mp4"), &[data], &mut o.sync)
            .and_then(|bytes| {
                o.index.append(&init_line(n, bytes), &mut o.sync)?;
                Ok(bytes)
            });
        match r {
            Ok(bytes) => {
                o.summary.inits.push((n, bytes));
                o.entry.add_init(n, bytes);
                metrics::counter!("weir_recording_bytes_total").increment(bytes);
                tell(&self.upload, Notice::Changed(id.to_owned()));
            }
            Err(e) => fail(o, id, &e),
        }
    }

    fn segment(&mut self, id: &str, mut entry: SegmentEntry, data: &Rope) {
        let Some(o) = self.open.get_mut(id).filter(|o| !o.failed) else {
            return;
        };
        let name = format!("seg-{}.m4s", entry.msn);
        let r = write_atomic(&o.entry.dir, &name, data.pieces(), &mut o.sync).and_then(|bytes| {
            entry.bytes = bytes;
            o.index.append(&entry.line(), &mut o.sync)
        });
        match r {
            Ok(()) => {
                o.summary.segments.push(entry);
                o.entry.add_segment(entry);
                metrics::counter!("weir_recording_segments_total").increment(1);
                metrics::counter!("weir_recording_bytes_total").increment(entry.bytes);
                tell(&self.upload, Notice::Changed(id.to_owned()));
            }
            Err(e) => fail(o, id, &e),
        }
    }

    fn finish(&mut self, id: &str, ended_ms: u64, media_bytes: u64) {
        let Some(mut o) = self.open.remove(id) else {
            if self.refused.remove(id) {
                // Announced when it began: take it back.
                self.events.recording_deleted(id);
            }
            return;
        };
        if o.summary.segments.is_empty() {
            // Nothing to play (no media came, or none reached the disk).
            self.catalog.remove(id);
            if let Err(e) = self.remove_files(id, &o.entry.dir) {
                tracing::warn!(recording = %id, error = %e, "cannot remove an empty recording");
            }
            tracing::info!(recording = %id, "recording without media removed");
            self.events.recording_deleted(id);
            return;
        }
        // Its pictures are under way before the index says it ended: the uploader waits
        // for them before it calls the recording complete (and maybe drops local media).
        self.pictures
            .spawn(id, o.entry.dir.clone(), o.summary.clone());
        if let Err(e) = o.index.append(&end_line(ended_ms), &mut o.sync) {
            // The index stays unfinished: the next start finishes it.
            metrics::counter!("weir_recording_errors_total").increment(1);
            tracing::warn!(recording = %id, error = %e, "cannot finish the recording's index");
        }
        o.summary.ended_ms = Some(ended_ms);
        o.entry.finish(ended_ms);
        let report = report(&o.entry.dir, &o.summary, false);
        let overhead = if media_bytes > 0 {
            report.bytes as f64 / media_bytes as f64
        } else {
            0.0
        };
        tracing::info!(
            recording = %id,
            duration_ms = report.duration_ms,
            bytes = report.bytes,
            segments = report.segments,
            media_bytes,
            bytes_per_media_byte = format!("{overhead:.4}"),
            fsync_ms = o.sync.0.as_millis() as u64,
            "recording finished"
        );
        metrics::counter!("weir_recording_finished_total").increment(1);
        self.events.recording_finished(&report);
        self.notify(Notice::Changed(id.to_owned()));
        // What is kept changed: the limits apply now, not at the next minute.
        self.sweep();
    }

    /// Deletes what the retention limits no longer keep.
    fn sweep(&mut self) {
        if self.retention.is_off() {
            metrics::gauge!("weir_recording_disk_bytes").set(self.catalog.total_bytes() as f64);
            return;
        }
        let doomed = retention::select(
            &self.catalog.candidates(),
            self.retention,
            crate::registry::wallclock_ms(),
        );
        for id in doomed {
            let Some(entry) = self.catalog.remove(&id) else {
                continue;
            };
            match self.remove_files(&id, &entry.dir) {
                Ok(()) => {
                    metrics::counter!("weir_recording_deleted_total").increment(1);
                    tracing::info!(recording = %id, "retention: recording deleted");
                    self.events.recording_deleted(&id);
                }
                Err(e) => {
                    metrics::counter!("weir_recording_errors_total").increment(1);
                    tracing::warn!(recording = %id, error = %e, "retention: cannot delete the recording");
                }
            }
        }
        metrics::gauge!("weir_recording_disk_bytes").set(self.catalog.total_bytes() as f64);
    }
}

fn tell(upload: &Option<UploadHandle>, n: Notice) {
    if let Some(u) = upload {
        u.notify(n);
    }
}

fn fail(o: &mut Open, id: &str, e: &std::io::Error) {
    o.failed = true;
    metrics::counter!("weir_recording_errors_total").increment(1);
    tracing::warn!(recording = %id, error = %e, "recording write failed: the recording stops here");
}

/// The finish report of a recording.
pub fn report(dir: &std::path::Path, index: &Index, recovered: bool) -> RecordingReport {
    let id = index.header.id.clone();
    RecordingReport {
        playback_path: super::playback_path(&id),
        recording_id: id,
        channel_id: index.header.channel_id.clone(),
        broadcast_id: index.header.broadcast_id.clone(),
        path: dir.display().to_string(),
        started_ms: index.header.started_ms,
        duration_ms: index.duration_ms(),
        bytes: index.bytes(),
        segments: index.segments.len() as u64,
        recovered,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use parking_lot::Mutex;

    use super::*;
    use crate::hooks::{BroadcastInfo, RenditionInfo};

    #[derive(Default)]
    struct Events(Mutex<Vec<String>>);

    impl StreamEvents for Events {
        fn stream_started(&self, _: &BroadcastInfo, _: &'static str) {}
        fn stream_live(&self, _: &BroadcastInfo, _: Vec<RenditionInfo>) {}
        fn stream_ended(&self, _: &BroadcastInfo) {}
        fn viewers(&self, _: &BroadcastInfo, _: u64) {}
        fn recording_finished(&self, r: &RecordingReport) {
            self.0.lock().push(format!(
                "finished {} {} {} {}",
                r.recording_id, r.segments, r.bytes, r.duration_ms
            ));
        }
        fn recording_deleted(&self, id: &str) {
            self.0.lock().push(format!("deleted {id}"));
        }
    }

    fn header(id: &str) -> Header {
        Header {
            id: id.into(),
            channel_id: "c".into(),
            broadcast_id: "b".into(),
            started_ms: 1,
            target_secs: 4,
            signed: None,
        }
    }

    fn entry(msn: u64) -> SegmentEntry {
        SegmentEntry {
            msn,
            duration_us: 2_000_000,
            bytes: 0,
            start: 0,
            timescale: 90_000,
            wallclock_ms: 1000 + msn,
            init: 0,
            discontinuity: false,
            gap: false,
            independent: true,
        }
    }

    fn root(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("weir-writer-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn writes_durably_lists_when_durable_and_reports_the_end() {
        let root = root("write");
        std::fs::create_dir_all(&root).unwrap();
        let catalog = Arc::new(Catalog::default());
        let events = Arc::new(Events::default());
        let (mut w, handle, _rx) = Writer::new(
            root.clone(),
            catalog.clone(),
            events.clone(),
            Retention::default(),
            1 << 20,
        );
        w.handle(Job::Open(header("r1")));
        let init = Bytes::from_static(b"ftypmoov");
        w.handle(Job::Init {
            id: "r1".into(),
            n: 0,
            data: init,
        });
        for msn in 0..2 {
            w.handle(Job::Segment {
                id: "r1".into(),
                entry: entry(msn),
                data: Rope::from_pieces([Bytes::from_static(b"moof"), Bytes::from_static(b"mdat")]),
            });
        }
        let e = catalog.get("r1").unwrap();
        let (live, finished) = e.playlist();
        assert!(!finished);
        assert!(std::str::from_utf8(&live).unwrap().contains("seg-1.m4s"));
        assert_eq!(e.segment(1).map(|(_, n)| n), Some(8));
        w.handle(Job::Finish {
            id: "r1".into(),
            ended_ms: 5000,
            media_bytes: 16,
        });
        let (vod, finished) = e.playlist();
        assert!(finished && vod.ends_with(b"#EXT-X-ENDLIST\n"));
        assert_eq!(*events.0.lock(), ["finished r1 2 24 4000"]);
        let text = std::fs::read_to_string(root.join("r1/index.txt")).unwrap();
        assert!(text.ends_with("end 5000\n"), "{text}");
        assert_eq!(
            std::fs::read(root.join("r1/seg-0.m4s")).unwrap(),
            b"moofmdat"
        );
        // Media over the budget is dropped, never queued.
        assert!(handle.send_media(Job::Stop, 1 << 20));
        assert!(!handle.send_media(Job::Stop, 1));
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn an_empty_or_refused_recording_is_taken_back() {
        let root = root("empty");
        std::fs::create_dir_all(&root).unwrap();
        let catalog = Arc::new(Catalog::default());
        let events = Arc::new(Events::default());
        let (mut w, _h, _rx) = Writer::new(
            root.clone(),
            catalog.clone(),
            events.clone(),
            Retention::default(),
            1 << 20,
        );
        w.handle(Job::Open(header("r2")));
        w.handle(Job::Finish {
            id: "r2".into(),
            ended_ms: 2,
            media_bytes: 0,
        });
        assert!(catalog.get("r2").is_none() && !root.join("r2").exists());
        // A directory that cannot be made (a file is in the way).
        std::fs::write(root.join("r3"), b"x").unwrap();
        w.handle(Job::Open(header("r3")));
        w.handle(Job::Finish {
            id: "r3".into(),
            ended_ms: 2,
            media_bytes: 0,
        });
        assert_eq!(*events.0.lock(), ["deleted r2", "deleted r3"]);
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn the_sweep_deletes_finished_recordings_over_the_limit() {
        let root = root("sweep");
        std::fs::create_dir_all(&root).unwrap();
        let catalog = Arc::new(Catalog::default());
        let events = Arc::new(Events::default());
        let limits = Retention {
            days: 0,
            max_bytes: 10,
        };
        let (mut w, _h, _rx) = Writer::new(
            root.clone(),
            catalog.clone(),
            events.clone(),
            limits,
            1 << 20,
        );
        for id in ["a", "b"] {
            w.handle(Job::Open(header(id)));
            w.handle(Job::Segment {
                id: id.into(),
                entry: entry(0),
                data: Rope::from(Bytes::from_static(b"0123456789")),
            });
        }
        // b is still being made: a goes at its end, b stays (being made, then alone).
        w.handle(Job::Finish {
            id: "a".into(),
            ended_ms: 3,
            media_bytes: 10,
        });
        assert!(catalog.get("a").is_none() && !root.join("a").exists());
        assert!(catalog.get("b").is_some());
        assert_eq!(*events.0.lock(), ["finished a 1 10 2000", "deleted a"]);
        let _ = std::fs::remove_dir_all(&root);
    }
}
