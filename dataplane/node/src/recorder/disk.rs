//! The recorder's file operations (blocking: only the writer thread and node start
//! call them, never a shard).
//!
//! - A segment or init segment is written to `<name>.tmp`, fsynced, renamed to its name
//!   and the directory fsynced: a file with its final name is always whole.
//! - The index is appended one line at a time and fsynced after each (see `index`).
//! - [`recover`] reads a recording directory at start: an unfinished recording (its
//!   node died) gets its partial last index line cut off, its temporary files removed
//!   and an `end` line appended, so it becomes a VOD up to its last complete segment.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::index::{INDEX_FILE, Index, IndexError, end_line};

/// Why a recording directory could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RecoverError {
    /// The index could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The index is not one.
    #[error("{path}: {source}")]
    Index {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        source: IndexError,
    },
}

/// Time spent in fsync, for the metrics and the finish log.
#[derive(Debug, Default, Clone, Copy)]
pub struct SyncTime(pub Duration);

impl SyncTime {
    fn sync(&mut self, f: &File) -> io::Result<()> {
        let t = Instant::now();
        let r = f.sync_all();
        let spent = t.elapsed();
        self.0 += spent;
        metrics::histogram!("weir_recording_fsync_seconds").record(spent.as_secs_f64());
        r
    }
}

/// fsyncs a directory (a rename or a new file in it is durable after this).
pub fn sync_dir(dir: &Path, t: &mut SyncTime) -> io::Result<()> {
    t.sync(&File::open(dir)?)
}

/// Writes `pieces` to `dir/name` atomically and durably (temp file, fsync, rename,
/// directory fsync). Returns the bytes written.
pub fn write_atomic(dir: &Path, name: &str, pieces: &[Bytes], t: &mut SyncTime) -> io::Result<u64> {
    let tmp = dir.join(format!("{name}.tmp"));
    let mut f = File::create(&tmp)?;
    let mut n = 0u64;
    for p in pieces {
        f.write_all(p)?;
        n += p.len() as u64;
    }
    t.sync(&f)?;
    drop(f);
    fs::rename(&tmp, dir.join(name))?;
    sync_dir(dir, t)?;
    Ok(n)
}

/// An index opened for appending.
#[derive(Debug)]
pub struct IndexFile {
    file: File,
}

impl IndexFile {
    /// Creates `dir/index.txt` with its header line (the directory is created too).
    pub fn create(dir: &Path, header_line: &str, t: &mut SyncTime) -> io::Result<Self> {
        fs::create_dir_all(dir)?;
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(dir.join(INDEX_FILE))?;
        let mut f = Self { file };
        f.append(header_line, t)?;
        if let Some(parent) = dir.parent() {
            sync_dir(parent, t)?;
        }
        sync_dir(dir, t)?;
        Ok(f)
    }

    /// Appends one line (ending with `\n`) and fsyncs it.
    pub fn append(&mut self, line: &str, t: &mut SyncTime) -> io::Result<()> {
        self.file.write_all(line.as_bytes())?;
        t.sync(&self.file)
    }
}

/// A recording found on disk at start.
#[derive(Debug)]
pub struct Recovered {
    /// Its index (with `ended_ms` set: every recording is finished after recovery).
    pub index: Index,
    /// It was not finished: its node died while recording.
    pub was_open: bool,
}

/// Reads the recording in `dir` and finishes it if its node died while recording.
pub fn recover(dir: &Path) -> Result<Recovered, RecoverError> {
    let path = dir.join(INDEX_FILE);
    let io_err = |source| RecoverError::Io {
        path: path.clone(),
        source,
    };
    let text = fs::read(&path).map_err(io_err)?;
    let parsed = Index::parse(&text).map_err(|source| RecoverError::Index {
        path: path.clone(),
        source,
    })?;
    let mut index = parsed.index;
    // Fully uploaded to the object store (finished by then): its media may be there only.
    if index.ended_ms.is_some() && dir.join(super::upload::UPLOADED).exists() {
        return Ok(Recovered {
            index,
            was_open: false,
        });
    }
    // Every indexed segment was renamed into place before its line was written; a file
    // that is missing or short anyway (a disk that lies about fsync) ends the index there.
    let whole = index
        .segments
        .iter()
        .take_while(|s| {
            fs::metadata(dir.join(format!("seg-{}.m4s", s.msn))).is_ok_and(|m| m.len() == s.bytes)
        })
        .count();
    let lost = index.segments.len() - whole;
    if index.ended_ms.is_some() && lost == 0 {
        return Ok(Recovered {
            index,
            was_open: false,
        });
    }
    index.segments.truncate(whole);
    if lost > 0 {
        tracing::warn!(dir = %dir.display(), lost, "recording: indexed segments missing on disk are left out");
    }
    let was_open = index.ended_ms.is_none();
    if was_open {
        let ended = index.segments.last().map_or(index.header.started_ms, |s| {
            s.wallclock_ms + s.duration_us / 1000
        });
        // Cut a partial last line, then finish the index.
        let file = OpenOptions::new().write(true).open(&path).map_err(io_err)?;
        file.set_len(parsed.valid_len as u64).map_err(io_err)?;
        drop(file);
        let mut t = SyncTime::default();
        let mut f = IndexFile {
            file: OpenOptions::new()
                .append(true)
                .open(&path)
                .map_err(io_err)?,
        };
        f.append(&end_line(ended), &mut t).map_err(io_err)?;
        index.ended_ms = Some(ended);
    }
    // A segment that was being written when the node died.
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().ends_with(".tmp") {
                let _ = fs::remove_file(e.path());
            }
        }
    }
    Ok(Recovered { index, was_open })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::index::{Header, SegmentEntry, init_line};
    use super::*;

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("weir-rec-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn a_killed_recording_is_finished_up_to_its_last_whole_segment() {
        let root = tmpdir("recover");
        let dir = root.join("r1");
        let mut t = SyncTime::default();
        let header = Header {
            id: "r1".into(),
            channel_id: "c".into(),
            broadcast_id: "b".into(),
            started_ms: 1000,
            target_secs: 4,
            signed: None,
        };
        let mut idx = IndexFile::create(&dir, &header.line(), &mut t).unwrap();
        write_atomic(&dir, "init-0.mp4", &[Bytes::from_static(b"init")], &mut t).unwrap();
        idx.append(&init_line(0, 4), &mut t).unwrap();
        for msn in 0..2 {
            let n = write_atomic(
                &dir,
                &format!("seg-{msn}.m4s"),
                &[Bytes::from_static(b"abc"), Bytes::from_static(b"de")],
                &mut t,
            )
            .unwrap();
            let e = SegmentEntry {
                msn,
                duration_us: 2_000_000,
                bytes: n,
                start: 0,
                timescale: 90_000,
                wallclock_ms: 5000 + 2000 * msn,
                init: 0,
                discontinuity: false,
                gap: false,
                independent: true,
            };
            idx.append(&e.line(), &mut t).unwrap();
        }
        // Killed while writing segment 2 and its line.
        fs::write(dir.join("seg-2.m4s.tmp"), b"partial").unwrap();
        idx.append("seg 2 2000000 5 0 90", &mut t).unwrap();
        drop(idx);

        let r = recover(&dir).unwrap();
        assert!(r.was_open);
        assert_eq!(r.index.segments.len(), 2);
        assert_eq!(r.index.ended_ms, Some(9000));
        assert!(!dir.join("seg-2.m4s.tmp").exists());
        // The file on disk is finished now: a second start changes nothing.
        let again = recover(&dir).unwrap();
        assert!(!again.was_open);
        assert_eq!(again.index, r.index);
        assert!(t.0 > Duration::ZERO);
        let _ = fs::remove_dir_all(&root);
    }
}
