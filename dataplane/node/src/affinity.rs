//! Threads that shards start must not inherit the shard's CPU.
//!
//! A shard pins its own thread to one CPU (thread-per-core), and Linux gives every thread
//! a thread creates the creator's affinity. Work a shard hands off — the transcode
//! ladder and the studio compositor (GStreamer starts its streaming threads, x264 its
//! workers, from whoever sets the pipeline playing), file reads, joins — would otherwise
//! all run on that one CPU, beside the event loop they were moved off. Measured on the
//! 2-core bench machine: a 1080p ladder held to 0.93 cores and fell behind live while
//! the other CPU idled.
//!
//! The process's own set is the main thread's (no shard runs on it): a thread that
//! calls [`unpin_current_thread`] may run anywhere the process may.

use std::cell::Cell;

use nix::sched::{sched_getaffinity, sched_setaffinity};
use nix::unistd::Pid;

thread_local! {
    /// This thread already has the process's set (pool threads are reused).
    static UNPINNED: Cell<bool> = const { Cell::new(false) };
}

/// Lets the calling thread run on every CPU the process may use. Two system calls the
/// first time on a thread, nothing after; a failure leaves the thread as it was and is
/// logged.
pub(crate) fn unpin_current_thread() {
    if UNPINNED.get() {
        return;
    }
    let result =
        sched_getaffinity(Pid::this()).and_then(|set| sched_setaffinity(Pid::from_raw(0), &set));
    match result {
        Ok(()) => UNPINNED.set(true),
        Err(e) => tracing::debug!(error = %e, "could not widen a thread's CPU affinity"),
    }
}

/// `compio::runtime::spawn_blocking`, on a pool thread that is not held to the shard's
/// CPU.
pub(crate) fn spawn_blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> compio::runtime::JoinHandle<T> {
    compio::runtime::spawn_blocking(move || {
        unpin_current_thread();
        f()
    })
}

/// `std::thread::spawn` for work a shard hands off (not held to the shard's CPU).
pub(crate) fn spawn_thread(f: impl FnOnce() + Send + 'static) {
    std::thread::spawn(move || {
        unpin_current_thread();
        f();
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sched::CpuSet;

    fn allowed() -> Vec<usize> {
        let set = sched_getaffinity(Pid::from_raw(0)).expect("affinity");
        (0..CpuSet::count())
            .filter(|&c| set.is_set(c).unwrap_or(false))
            .collect()
    }

    #[test]
    fn a_thread_started_by_a_pinned_thread_is_given_the_process_set_back() {
        let process = allowed();
        let (widened, inherited) = std::thread::spawn(|| {
            // Pin like a shard, on the first CPU the process may use.
            let first = allowed()[0];
            let mut one = CpuSet::new();
            one.set(first).expect("cpu");
            sched_setaffinity(Pid::from_raw(0), &one).expect("pin");
            // A thread this one starts inherits the pin ...
            let inherited = std::thread::spawn(allowed).join().expect("join");
            // ... until it unpins itself.
            let widened = std::thread::spawn(|| {
                unpin_current_thread();
                allowed()
            })
            .join()
            .expect("join");
            (widened, inherited)
        })
        .join()
        .expect("join");
        assert_eq!(inherited.len(), 1, "{inherited:?}");
        assert_eq!(widened, process);
    }
}
