//! The uploader: copies every durable file of every recording to the object store
//! (`store`), as one task on the store thread's runtime.
//!
//! The writer (and the picture work) only *notify* it ([`UploadHandle::notify`], a
//! bounded queue that never blocks: when it is full a flag makes the uploader rescan
//! every recording instead). For a recording it reads the local index once, uploads each
//! init and media segment it lists that the store lacks, in order, then (once finished
//! and its pictures are done) the poster, thumbnails and VTT, and last that same index
//! snapshot: the store's copy only ever names files it has.
//!
//! A failure leaves the recording pending and retries after a backoff (1 s doubling to
//! [`MAX_BACKOFF`]); a store that is down never holds up the writer or a shard, and the
//! uploader catches up once it is back. A fully uploaded finished recording gets an
//! `uploaded` marker in its directory (the next start skips it); without
//! `record_keep_local` its media files are then deleted locally and `/vod/` reads them
//! from the store. At start every recording without the marker is compared with the
//! store's listing and completed.
//!
//! Deleted recordings (owner or retention) leave a tombstone under
//! `<recordings>/.store-deletes/` until the store has deleted their objects too.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::catalog::Catalog;
use super::index::{INDEX_FILE, Index};
use super::pictures::Pictures;
use super::store::{Remote, StoreError};
use super::thumbs::{VTT, is_picture_file};

/// The marker of a fully uploaded recording.
pub const UPLOADED: &str = "uploaded";
/// Tombstones of recordings whose objects are still to delete.
pub const TOMBSTONES: &str = ".store-deletes";
/// Notices queued at most (each a recording id).
const QUEUE: usize = 4096;
/// Longest wait between two tries while the store fails.
pub const MAX_BACKOFF: Duration = Duration::from_secs(8);

/// What changed.
#[derive(Debug)]
pub enum Notice {
    /// Recording `id` has new durable files (or finished, or its pictures are done).
    Changed(String),
    /// Recording `id` was deleted locally: delete its objects.
    Deleted(String),
}

/// The writer's side of the uploader.
#[derive(Debug, Clone)]
pub struct UploadHandle {
    tx: tokio::sync::mpsc::Sender<Notice>,
    overflow: Arc<AtomicBool>,
}

impl UploadHandle {
    /// Queues a notice; never blocks (a full queue makes the uploader rescan).
    pub fn notify(&self, n: Notice) {
        if self.tx.try_send(n).is_err() {
            metrics::counter!("weir_record_store_notices_dropped_total").increment(1);
            self.overflow.store(true, Ordering::Release);
        }
    }
}

/// What the uploader knows of one recording.
#[derive(Debug, Default)]
struct Known {
    /// Files the store has.
    stored: HashSet<String>,
    /// Bytes of the index the store has.
    index_len: usize,
    /// Fully uploaded (the marker is there).
    complete: bool,
}

/// The uploader task's state.
pub struct Uploader {
    remote: Arc<Remote>,
    root: PathBuf,
    catalog: Arc<Catalog>,
    pictures: Arc<Pictures>,
    rx: tokio::sync::mpsc::Receiver<Notice>,
    overflow: Arc<AtomicBool>,
    known: HashMap<String, Known>,
    pending: BTreeSet<String>,
    deletes: BTreeSet<String>,
}

/// Writes a tombstone for recording `id` under `root` (blocking; before its directory
/// goes), so its objects are deleted even if the node stops first.
pub fn tombstone(root: &Path, id: &str) -> std::io::Result<()> {
    let dir = root.join(TOMBSTONES);
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join(id), b"")
}

impl Uploader {
    /// An uploader of the recordings under `root` to `remote`, and its handle.
    pub fn new(
        remote: Arc<Remote>,
        root: PathBuf,
        catalog: Arc<Catalog>,
        pictures: Arc<Pictures>,
    ) -> (Self, UploadHandle) {
        let (tx, rx) = tokio::sync::mpsc::channel(QUEUE);
        let overflow = Arc::new(AtomicBool::new(true));
        let handle = UploadHandle {
            tx,
            overflow: overflow.clone(),
        };
        let up = Self {
            remote,
            root,
            catalog,
            pictures,
            rx,
            overflow,
            known: HashMap::new(),
            pending: BTreeSet::new(),
            deletes: BTreeSet::new(),
        };
        (up, handle)
    }

    /// Runs until every handle is gone (or the runtime stops).
    pub async fn run(mut self) {
        let mut backoff = Duration::from_secs(1);
        let mut last_warn: Option<Instant> = None;
        loop {
            if self.pending.is_empty()
                && self.deletes.is_empty()
                && !self.overflow.load(Ordering::Acquire)
            {
                match self.rx.recv().await {
                    Some(n) => self.take(n),
                    None => return,
                }
            }
            while let Ok(n) = self.rx.try_recv() {
                self.take(n);
            }
            if self.overflow.swap(false, Ordering::AcqRel) {
                self.rescan();
            }
            metrics::gauge!("weir_record_store_pending")
                .set((self.pending.len() + self.deletes.len()) as f64);
            match self.work().await {
                Ok(()) => backoff = Duration::from_secs(1),
                Err((id, e)) => {
                    metrics::counter!("weir_record_store_errors_total", "op" => "write")
                        .increment(1);
                    if last_warn.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
                        last_warn = Some(Instant::now());
                        tracing::warn!(recording = %id, error = %e, retry_in_ms = backoff.as_millis() as u64,
                            "record store unavailable: recordings wait on the local disk");
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    fn take(&mut self, n: Notice) {
        match n {
            Notice::Changed(id) => {
                self.pending.insert(id);
            }
            Notice::Deleted(id) => {
                self.pending.remove(&id);
                self.known.remove(&id);
                self.deletes.insert(id);
            }
        }
    }

    /// Every recording in the catalog, and every tombstone, is looked at again.
    fn rescan(&mut self) {
        for id in self.catalog.ids() {
            if !self.known.get(&id).is_some_and(|k| k.complete) {
                self.pending.insert(id);
            }
        }
        if let Ok(dir) = std::fs::read_dir(self.root.join(TOMBSTONES)) {
            for t in dir.flatten() {
                let id = t.file_name().to_string_lossy().into_owned();
                if super::is_safe_id(&id) {
                    self.deletes.insert(id);
                }
            }
        }
    }

    /// Deletes, then uploads, until done or the first failure.
    async fn work(&mut self) -> Result<(), (String, StoreError)> {
        while let Some(id) = self.deletes.first().cloned() {
            let n = self
                .remote
                .delete_all(&id)
                .await
                .map_err(|e| (id.clone(), e))?;
            let _ = std::fs::remove_file(self.root.join(TOMBSTONES).join(&id));
            metrics::counter!("weir_record_store_deletes_total").increment(1);
            tracing::info!(recording = %id, objects = n, "recording deleted from the store");
            self.deletes.remove(&id);
        }
        while let Some(id) = self.pending.first().cloned() {
            match self.sync(&id).await {
                Ok(()) => {}
                // Deleted meanwhile: its delete comes next.
                Err(_) if self.catalog.get(&id).is_none() => {}
                Err(e) => return Err((id, e)),
            }
            self.pending.remove(&id);
        }
        Ok(())
    }

    /// Brings the store's copy of recording `id` up to its local directory.
    async fn sync(&mut self, id: &str) -> Result<(), StoreError> {
        let Some(entry) = self.catalog.get(id) else {
            return Ok(());
        };
        let dir = entry.dir.clone();
        let local_io = |e: std::io::Error| {
            StoreError::Store(object_store::Error::Generic {
                store: "local",
                source: Box::new(e),
            })
        };
        if !self.known.contains_key(id) {
            let mut k = Known::default();
            if dir.join(UPLOADED).exists() {
                k.complete = true;
            } else {
                k.stored = self.remote.list(id).await?.into_iter().collect();
            }
            self.known.insert(id.to_owned(), k);
        }
        if self.known.get(id).is_some_and(|k| k.complete) {
            self.settle(id, &dir);
            return Ok(());
        }
        let text = match std::fs::read(dir.join(INDEX_FILE)) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(local_io(e)),
        };
        let Ok(parsed) = Index::parse(&text) else {
            tracing::warn!(recording = %id, "unreadable index: not uploaded");
            return Ok(());
        };
        let valid = parsed.valid_len.min(text.len());
        let index_bytes = Bytes::from(text).slice(..valid);
        let finished = parsed.index.ended_ms.is_some();
        let pictures_done = finished && !self.pictures.running(id);
        let mut files = media_files(&parsed.index);
        if pictures_done {
            files.extend(picture_files(&dir));
        }
        for name in files {
            if self.known.get(id).is_some_and(|k| k.stored.contains(&name)) {
                continue;
            }
            let data = match std::fs::read(dir.join(&name)) {
                Ok(d) => Bytes::from(d),
                // Pictures of a recording whose node died before they were made.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && is_picture_file(&name) => {
                    continue;
                }
                Err(e) => return Err(local_io(e)),
            };
            let len = data.len() as u64;
            self.remote.put(id, &name, data).await?;
            metrics::counter!("weir_record_store_uploads_total").increment(1);
            metrics::counter!("weir_record_store_upload_bytes_total").increment(len);
            if let Some(k) = self.known.get_mut(id) {
                k.stored.insert(name);
            }
        }
        let index_len = index_bytes.len();
        if self.known.get(id).is_none_or(|k| k.index_len != index_len) {
            self.remote.put(id, INDEX_FILE, index_bytes).await?;
            metrics::counter!("weir_record_store_uploads_total").increment(1);
            if let Some(k) = self.known.get_mut(id) {
                k.index_len = index_len;
            }
        }
        if pictures_done {
            std::fs::write(dir.join(UPLOADED), b"complete\n").map_err(local_io)?;
            if let Some(k) = self.known.get_mut(id) {
                k.complete = true;
            }
            tracing::info!(recording = %id, "recording uploaded to the store");
            self.settle(id, &dir);
        }
        Ok(())
    }

    /// A fully uploaded recording without `record_keep_local`: served from the store,
    /// its media files deleted locally (the index and the marker stay).
    fn settle(&self, id: &str, dir: &Path) {
        if self.remote.keep_local() {
            return;
        }
        if let Some(entry) = self.catalog.get(id) {
            entry.set_remote();
        }
        if let Err(e) = remove_media(dir) {
            tracing::warn!(recording = %id, error = %e, "cannot remove uploaded media files");
        }
    }
}

/// The init and media segments `index` lists, in order.
fn media_files(index: &Index) -> Vec<String> {
    let inits = index.inits.iter().map(|(n, _)| format!("init-{n}.mp4"));
    let segs = index.segments.iter().map(|s| format!("seg-{}.m4s", s.msn));
    inits.chain(segs).collect()
}

/// The pictures in `dir`, the VTT last (it names the thumbnails).
fn picture_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| is_picture_file(n) && n != VTT)
        .collect();
    names.sort();
    names.push(VTT.to_owned());
    names
}

/// Deletes the media files and pictures of a recording's directory.
pub fn remove_media(dir: &Path) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let media = (name.starts_with("seg-") && name.ends_with(".m4s"))
            || (name.starts_with("init-") && name.ends_with(".mp4"))
            || is_picture_file(&name);
        if media {
            match std::fs::remove_file(e.path()) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn pictures_go_up_with_the_vtt_last_and_media_is_removed() {
        let dir = std::env::temp_dir().join(format!("weir-upload-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for f in [
            "thumbs.vtt",
            "thumb-1.jpg",
            "poster.jpg",
            "thumb-0.jpg",
            "seg-0.m4s",
            "init-0.mp4",
            "index.txt",
            UPLOADED,
        ] {
            std::fs::write(dir.join(f), b"x").unwrap();
        }
        assert_eq!(
            picture_files(&dir),
            ["poster.jpg", "thumb-0.jpg", "thumb-1.jpg", "thumbs.vtt"]
        );
        remove_media(&dir).unwrap();
        let mut left: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["index.txt", UPLOADED]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
