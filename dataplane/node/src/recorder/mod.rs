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
//! - `thumbs` + `pictures`: once finished, a poster and thumbnails with their WebVTT
//!   track (`poster.jpg`, `thumb-<n>.jpg`, `thumbs.vtt`), made on a thread of their own
//!   (also for a recording finished by recovery); a deletion cancels and waits for it.
//! - `store` + `upload`: the object-store seam. Local only by default; with
//!   `record_store` every durable file is also copied to S3 (the local disk stays the
//!   journal), and without `record_keep_local` a fully uploaded recording is served from
//!   the store.

mod catalog;
pub mod dash;
mod disk;
pub(crate) mod index;
mod pictures;
mod playlist;
mod retention;
pub mod store;
mod task;
pub(crate) mod thumbs;
mod upload;
mod writer;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use parking_lot::Mutex;
use weir_bus::SubscribeOptions;
use weir_hls::HlsConfig;

pub use catalog::{Catalog, Entry};
pub use retention::Retention;
pub use store::{RecordStore, Remote, StoreConfig, StoreError};

use crate::hooks::StreamEvents;
use crate::registry::Stream;
use pictures::Pictures;
use upload::{Notice, UploadHandle, Uploader};
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
    /// Where recordings go besides the local disk (`record_store*`).
    pub store: StoreConfig,
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
    /// The object store cannot be used.
    #[error("record_store: {0}")]
    Store(#[from] StoreError),
}

/// The node's recorder: its writer thread, the catalog of recordings on disk, and what
/// each broadcast's recorder task needs.
pub struct Recorder {
    root: PathBuf,
    hls: HlsConfig,
    writer: WriterHandle,
    catalog: Arc<Catalog>,
    events: Arc<dyn StreamEvents>,
    store: RecordStore,
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
        let store = RecordStore::open(&config.store)?;
        // The pictures tell the uploader when they are done; it exists once they do.
        let uploads: Arc<OnceLock<UploadHandle>> = Arc::new(OnceLock::new());
        let on_done = store.remote().map(|_| {
            let uploads = uploads.clone();
            Arc::new(move |id: &str| {
                if let Some(u) = uploads.get() {
                    u.notify(Notice::Changed(id.to_owned()));
                }
            }) as pictures::OnDone
        });
        let pictures = Pictures::new(on_done);
        let upload = store.remote().map(|remote| {
            let (uploader, handle) = Uploader::new(
                remote.clone(),
                root.clone(),
                catalog.clone(),
                pictures.clone(),
            );
            let _ = uploads.set(handle.clone());
            (uploader, handle)
        });
        recover_all(&root, &catalog, &*events, &pictures, store.remote());
        let upload = upload.map(|(uploader, handle)| {
            if let Some(remote) = store.remote() {
                remote.runtime().spawn(uploader.run());
            }
            handle
        });
        let (writer, handle, rx) = Writer::new(
            root.clone(),
            catalog.clone(),
            events.clone(),
            config.retention,
            QUEUE_LIMIT,
        );
        let writer = writer.with_store(pictures, upload);
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
        match store.remote() {
            None => tracing::info!(dir = %root.display(), recordings = catalog.len(),
                "recordings go to the local disk ([node] record_store is empty), served at /vod/"),
            Some(r) => tracing::info!(dir = %root.display(), store = %r.describe(),
                keep_local = r.keep_local(), recordings = catalog.len(),
                "recordings go to the local disk, then to the object store ([node] record_store), served at /vod/"),
        }
        Ok(Arc::new(Self {
            root,
            hls,
            writer: handle,
            catalog,
            events,
            store,
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

    /// The object store recordings are copied to, if any.
    pub fn store(&self) -> Option<&Arc<Remote>> {
        self.store.remote()
    }

    /// Lets the writer finish what is queued and waits for it, then stops the store
    /// thread (shutdown; the uploader catches up at the next start).
    pub fn close(&self) {
        self.writer.send(Job::Stop);
        if let Some(t) = self.thread.lock().take() {
            let _ = t.join();
        }
        if let Some(r) = self.store.remote() {
            r.close();
        }
    }
}

/// Loads every recording under `root` into `catalog`, finishing those whose node died
/// (and making their pictures). With an object store, a fully uploaded recording whose
/// media is not kept (or no longer there) locally is served from the store.
fn recover_all(
    root: &std::path::Path,
    catalog: &Catalog,
    events: &dyn StreamEvents,
    pictures: &Arc<Pictures>,
    remote: Option<&Arc<Remote>>,
) {
    let Ok(dirs) = std::fs::read_dir(root) else {
        return;
    };
    for d in dirs.flatten() {
        let dir = d.path();
        let name = d.file_name().to_string_lossy().into_owned();
        if !dir.is_dir() || !index::is_safe_word(&name) || name.starts_with('.') {
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
                let stored_only = remote.is_some_and(|s| {
                    dir.join(upload::UPLOADED).exists()
                        && (!s.keep_local() || !first_segment_is_local(&dir, &r.index))
                });
                let picture = r.was_open.then(|| (dir.clone(), r.index.clone()));
                let entry = Arc::new(Entry::new(dir, r.index, true));
                entry.finish(ended);
                if stored_only {
                    entry.set_remote();
                }
                catalog.insert(&name, entry);
                if let Some((dir, index)) = picture {
                    // As after a normal end (the end line is appended by now).
                    pictures.spawn(&name, dir, index);
                }
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

fn first_segment_is_local(dir: &std::path::Path, index: &index::Index) -> bool {
    index
        .segments
        .first()
        .is_some_and(|s| dir.join(format!("seg-{}.m4s", s.msn)).exists())
}
