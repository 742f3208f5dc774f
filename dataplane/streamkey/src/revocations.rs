//! Revoked key ids, kept in a file that the node re-reads when it changes.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

/// A revocation list backed by a text file (one key id per line).
///
/// `weir key revoke` appends to the file; running nodes notice the new modification
/// time on their next check, so a revoked key is refused at its next publish attempt.
#[derive(Debug)]
pub struct Revocations {
    path: PathBuf,
    cache: Mutex<(Option<SystemTime>, HashSet<String>)>,
}

impl Revocations {
    /// A list stored at `path` (created on first revocation).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            cache: Mutex::new((None, HashSet::new())),
        }
    }

    /// The file backing this list.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Revokes a key id (idempotent).
    pub fn revoke(&self, key_id: &str) -> std::io::Result<()> {
        use std::io::Write as _;
        if self.is_revoked(key_id) {
            return Ok(());
        }
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        writeln!(f, "{key_id}")
    }

    /// True when the key id is on the list (re-reads the file if it changed).
    pub fn is_revoked(&self, key_id: &str) -> bool {
        let mtime = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok();
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if mtime != cache.0 || mtime.is_none() {
            let text = std::fs::read_to_string(&self.path).unwrap_or_default();
            cache.1 = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect();
            cache.0 = mtime;
        }
        cache.1.contains(key_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revoked_ids_persist_in_the_file() {
        let dir = std::env::temp_dir().join(format!("weir-revoke-{}", std::process::id()));
        let path = dir.join("revoked");
        let r = Revocations::new(&path);
        assert!(!r.is_revoked("abc"));
        r.revoke("abc").expect("revoke");
        assert!(r.is_revoked("abc"));
        let again = Revocations::new(&path);
        assert!(again.is_revoked("abc"));
        assert!(!again.is_revoked("abd"));
        let _ = std::fs::remove_dir_all(dir);
    }
}
