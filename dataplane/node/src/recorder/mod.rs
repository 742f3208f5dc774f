//! Recording → VOD: every broadcast (when `[node] record` is on) is packaged into CMAF a
//! second time and written to disk as it is made; when the broadcast ends its playlist
//! becomes a VOD, served by the origin at `/vod/<recording id>/index.m3u8`.
//!
//! ```text
//! <data_dir>/recordings/<recording id>/
//!     index.txt        append-only index (see `index`): header, init, seg…, end
//!     init-0.mp4       CMAF init segment(s) (a new one when the tracks change)
//!     seg-0.m4s …      CMAF media segments, numbered
//! ```
//! - `task`: one bus subscriber per broadcast on its shard, owning a
//!   [`weir_hls::LiveStream`]; hands complete segments to the writer (never blocks).
//! - `writer`: one thread per node doing every file write (atomic renames, fsync),
//!   with a bounded byte budget (drops with a metric when the disk is too slow), and the
//!   retention sweep (`retention`).
//! - `disk`: the file operations and the recovery at start: a recording whose node died
//!   is finished from its index, up to its last complete segment.
//! - `catalog` + `playlist`: what the origin serves (EVENT playlist while recording,
//!   VOD once finished), from memory; segment files are read off the shard.
//! - `thumbs`: once finished, a poster and thumbnails with their WebVTT track
//!   (`poster.jpg`, `thumb-<n>.jpg`, `thumbs.vtt`), made on a thread of their own.

mod catalog;
pub mod dash;
mod disk;
pub(crate) mod index;
mod playlist;
mod retention;
mod task;
pub(crate) mod thumbs;
mod writer;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use weir_bus::SubscribeOptions;
use weir_hls::HlsConfig;

pub use catalog::{Catalog, Entry};
pub use retention::Retention;

use crate::hooks::StreamEvents;
use crate::registry::Stream;
use writer::{Job, Writer, WriterHandle};

/// Media bytes the writer may have queued before segments are dropped.
const QUEUE_LIMIT: usize = 64 << 20;

/// How a node records.
#[derive(Debug, Clone)]
pub struct RecordConfig {
    /// Where recordings go (`<data_dir>/recordings`).
    pub root: PathBuf,
    /// Segment target of the recordings' CMAF (parts are whole segments).
    pub segment_target: Duration,
    /// Their `EXT-X-TARGETDURATION`.
    pub target_duration: Duration,
    /// What the retention sweep keeps.
    pub retention: Retention,
}

/// Why recording could not start.
#[derive(Debug, thiserror::Error)]
pub enum RecorderError {
    /// The recordings directory cannot be created.
    #[error("cannot create the recordings directory {path}: {source}")]
    Dir {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The writer thread could not be spawned.
    #[error("cannot spawn the recording writer: {0}")]
    Thread(std::io::Error),
}

/// The node's recorder: its writer thread, the catalog of recordings on disk, and what
/// each broadcast's recorder task needs.
pub struct Recorder {
    root: PathBuf,
    hls: HlsConfig,
    writer: WriterHandle,
    catalog: Arc<Catalog>,
    events: Arc<dyn StreamEvents>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("root", &self.root)
            .field("recordings", &self.catalog.len())
            .finish_non_exhaustive()
    }
}

/// Ids as recordings and clips use them: non-empty, at most 128 of `[A-Za-z0-9._-]`.
pub fn is_safe_id(s: &str) -> bool {
    index::is_safe_word(s) && s != "." && s != ".."
}

/// The origin path of a recording's playlist.
pub fn playback_path(id: &str) -> String {
    format!("/vod/{id}/index.m3u8")
}

/// A new recording id: 12 hex digits of UNIX ms (ids sort by start time) then 128
/// random bits. Like a live broadcast's directory, the id is the capability to play: it
/// cannot be guessed, and only the channel's members see it (`recordings(channelId)`).
fn new_id() -> Option<String> {
    let mut r = [0u8; 16];
    weir_streamkey::random_bytes(&mut r).ok()?;
    Some(format!(
        "{:012x}{:032x}",
        crate::registry::wallclock_ms(),
        u128::from_be_bytes(r)
    ))
}

impl Recorder {
    /// Opens the recordings under `config.root` (blocking: at node start): finishes the
    /// recordings whose node died (reporting them), loads every recording into the
    /// catalog and starts the writer thread.
    pub fn open(
        config: RecordConfig,
        events: Arc<dyn StreamEvents>,
    ) -> Result<Arc<Self>, RecorderError> {
        let root = config.root.clone();
        std::fs::create_dir_all(&root).map_err(|source| RecorderError::Dir {
            path: root.clone(),
            source,
        })?;
        let catalog = Arc::new(Catalog::default());
        recover_all(&root, &catalog, &*events);
        let (writer, handle, rx) = Writer::new(
            root.clone(),
            catalog.clone(),
            events.clone(),
            config.retention,
            QUEUE_LIMIT,
        );
        let thread = std::thread::Builder::new()
            .name("weir-recorder".into())
            .spawn(move || writer.run(rx))
            .map_err(RecorderError::Thread)?;
        let segment_target = config.segment_target.max(Duration::from_millis(500));
        let hls = HlsConfig {
            part_target: segment_target,
            segment_target,
            target_duration: config.target_duration,
            // Segments are handed over after every batch: a short window is plenty.
            window: 3,
            keep_parts_segments: 0,
            ..HlsConfig::default()
        };
        tracing::info!(dir = %root.display(), recordings = catalog.len(), "recordings served at /vod/");
        Ok(Arc::new(Self {
            root,
            hls,
            writer: handle,
            catalog,
            events,
            thread: Mutex::new(Some(thread)),
        }))
    }

    /// Starts recording `stream` (on the calling shard).
    pub fn start(self: &Arc<Self>, stream: &Arc<Stream>) {
        let options = SubscribeOptions::default();
        match stream.bus.subscribe(options) {
            Ok(sub) => {
                compio::runtime::spawn(task::run(self.clone(), stream.clone(), sub)).detach();
            }
            Err(e) => {
                metrics::counter!("weir_recording_errors_total").increment(1);
                tracing::warn!(channel = %stream.channel, error = %e, "cannot subscribe the recorder: not recorded");
            }
        }
    }

    /// Deletes finished recording `id` (files and catalog entry) on the writer thread,
    /// after what is queued; reported as `recording_deleted`.
    pub fn delete(&self, id: &str) {
        self.writer.send(Job::Delete { id: id.to_owned() });
    }

    /// The recordings on disk.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Lets the writer finish what is queued and waits for it (shutdown).
    pub fn close(&self) {
        self.writer.send(Job::Stop);
        if let Some(t) = self.thread.lock().take() {
            let _ = t.join();
        }
    }
}

/// Loads every recording under `root` into `catalog`, finishing those whose node died.
fn recover_all(root: &std::path::Path, catalog: &Catalog, events: &dyn StreamEvents) {
    let Ok(dirs) = std::fs::read_dir(root) else {
        return;
    };
    for d in dirs.flatten() {
        let dir = d.path();
        let name = d.file_name().to_string_lossy().into_owned();
        if !dir.is_dir() || !index::is_safe_word(&name) {
            continue;
        }
        match disk::recover(&dir) {
            Ok(r) if r.index.header.id == name && r.index.segments.is_empty() => {
                // Killed before its first segment: nothing to play.
                if let Err(e) = std::fs::remove_dir_all(&dir) {
                    tracing::warn!(dir = %dir.display(), error = %e, "cannot remove an empty recording");
                }
                events.recording_deleted(&name);
            }
            Ok(r) if r.index.header.id == name => {
                if r.was_open {
                    let report = writer::report(&dir, &r.index, true);
                    tracing::info!(
                        recording = %name,
                        segments = report.segments,
                        duration_ms = report.duration_ms,
                        "recording of a node that died finished from its index"
                    );
                    metrics::counter!("weir_recording_recovered_total").increment(1);
                    events.recording_finished(&report);
                }
                let ended = r.index.ended_ms.unwrap_or(0);
                let entry = Arc::new(Entry::new(dir, r.index, true));
                entry.finish(ended);
                catalog.insert(&name, entry);
            }
            Ok(_) => {
                tracing::warn!(dir = %dir.display(), "recording index names another recording: skipped");
            }
            Err(e) => {
                tracing::warn!(error = %e, "unreadable recording skipped");
            }
        }
    }
}
