//! The poster and thumbnail work of finished recordings (see `thumbs`): one thread per
//! recording, tracked so that deleting a recording first cancels its work and waits for
//! it (a thread still writing pictures would make the directory's removal fail and
//! leave files), and so that the uploader knows when a recording's pictures are done.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Instant;

use parking_lot::Mutex;

use super::index::Index;

/// Called with a recording's id once its picture work is over (made or not).
pub type OnDone = Arc<dyn Fn(&str) + Send + Sync>;

struct Work {
    cancel: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

/// The node's picture work in progress, by recording id.
#[derive(Default)]
pub struct Pictures {
    running: Mutex<HashMap<String, Work>>,
    on_done: Option<OnDone>,
}

impl std::fmt::Debug for Pictures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pictures")
            .field("running", &self.running.lock().len())
            .finish_non_exhaustive()
    }
}

impl Pictures {
    /// Picture work that reports each recording's end of work to `on_done`.
    pub fn new(on_done: Option<OnDone>) -> Arc<Self> {
        Arc::new(Self {
            running: Mutex::new(HashMap::new()),
            on_done,
        })
    }

    /// Makes finished recording `id`'s poster and thumbnails (in `dir`, from `index`) on
    /// a thread of its own.
    pub fn spawn(self: &Arc<Self>, id: &str, dir: PathBuf, index: Index) {
        let cancel = Arc::new(AtomicBool::new(false));
        let mut running = self.running.lock();
        let me = self.clone();
        let (name, flag) = (id.to_owned(), cancel.clone());
        let spawned = std::thread::Builder::new()
            .name("weir-thumbs".into())
            .spawn(move || {
                crate::affinity::unpin_current_thread();
                let started = Instant::now();
                match super::thumbs::make(&dir, &index, &flag) {
                    Ok(n) => tracing::info!(
                        recording = %name, thumbnails = n,
                        took_ms = started.elapsed().as_millis() as u64,
                        "recording poster and thumbnails made"
                    ),
                    Err(super::thumbs::ThumbError::Cancelled) => {
                        tracing::debug!(recording = %name, "picture work cancelled");
                    }
                    Err(e) => {
                        metrics::counter!("weir_recording_errors_total").increment(1);
                        tracing::warn!(recording = %name, error = %e, "no poster or thumbnails for the recording");
                    }
                }
                me.done(&name, &flag);
            });
        match spawned {
            Ok(thread) => {
                running.insert(id.to_owned(), Work { cancel, thread });
            }
            Err(e) => tracing::warn!(error = %e, "cannot start the thumbnail thread"),
        }
    }

    fn done(&self, id: &str, flag: &Arc<AtomicBool>) {
        {
            let mut running = self.running.lock();
            // Only this run's entry (a cancelled one was taken out already).
            if running
                .get(id)
                .is_some_and(|w| Arc::ptr_eq(&w.cancel, flag))
            {
                running.remove(id);
            }
        }
        if let Some(f) = &self.on_done {
            f(id);
        }
    }

    /// Whether recording `id`'s pictures are being made.
    pub fn running(&self, id: &str) -> bool {
        self.running.lock().contains_key(id)
    }

    /// Cancels recording `id`'s picture work, if any, and waits until its thread is gone
    /// (at most one encoding call: it checks between steps).
    pub fn cancel_and_wait(&self, id: &str) {
        let work = self.running.lock().remove(id);
        if let Some(w) = work {
            w.cancel.store(true, Ordering::Release);
            let _ = w.thread.join();
        }
    }
}
