//! Argon2id password hashing, run on a bounded pool of blocking threads ([`HashPool`]).

use std::sync::Arc;

use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};
use tokio::sync::Semaphore;

use crate::error::{AuthError, Result};

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordParams {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Iterations.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl Default for PasswordParams {
    /// OWASP's argon2id baseline: 19 MiB, 2 iterations, 1 lane.
    fn default() -> Self {
        Self {
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
        }
    }
}

impl PasswordParams {
    /// Cheap parameters for tests only.
    pub fn insecure_fast() -> Self {
        Self {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        }
    }

    fn hasher(self) -> Result<Argon2<'static>> {
        let p = Params::new(self.memory_kib, self.iterations, self.parallelism, None)
            .map_err(|_| AuthError::Hash)?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, p))
    }
}

/// Checks the password policy: 10–256 characters.
pub fn check_policy(password: &str) -> Result<()> {
    let n = password.chars().count();
    if (10..=256).contains(&n) {
        Ok(())
    } else {
        Err(AuthError::WeakPassword)
    }
}

/// Hashes a password into a PHC string, on the calling thread (costly: use a
/// [`HashPool`] from async code).
pub fn hash_blocking(params: PasswordParams, password: &str) -> Result<String> {
    let h = params
        .hasher()?
        .hash_password(password.as_bytes())
        .map_err(|_| AuthError::Hash)?;
    Ok(h.to_string())
}

/// Verifies a password against a PHC string (parameters are read from the string), on the
/// calling thread (costly: use a [`HashPool`] from async code).
pub fn verify_blocking(password: &str, phc: &str) -> bool {
    Argon2::default()
        .verify_password(password.as_bytes(), phc)
        .is_ok()
}

/// Limits of the [`HashPool`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolConfig {
    /// Hashes computed at once (each on a blocking thread, with `memory_kib` of memory).
    pub workers: usize,
    /// Hashes waiting for a worker; beyond, requests are refused at once with
    /// [`AuthError::Busy`].
    pub queue: usize,
}

impl Default for PoolConfig {
    /// One worker per core (at most 8: 19 MiB each with default parameters), 32 waiting.
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        Self {
            workers: cores.clamp(1, 8),
            queue: 32,
        }
    }
}

/// Runs argon2 on at most `workers` blocking threads with at most `queue` requests
/// waiting, so a login flood costs bounded threads and memory: past that, callers get
/// [`AuthError::Busy`] at once. A caller that gives up while queued frees its place; one
/// whose hash started holds its worker until the hash is done. Cheap to clone.
#[derive(Clone)]
pub struct HashPool {
    /// Admission: workers + queue permits, taken without waiting.
    admitted: Arc<Semaphore>,
    /// Workers: taken in turn by admitted requests.
    running: Arc<Semaphore>,
    cfg: PoolConfig,
}

impl std::fmt::Debug for HashPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashPool")
            .field("cfg", &self.cfg)
            .field("in_use", &self.in_use())
            .finish()
    }
}

impl HashPool {
    /// A pool with these limits (`workers` at least 1).
    pub fn new(cfg: PoolConfig) -> Self {
        let workers = cfg.workers.max(1);
        Self {
            admitted: Arc::new(Semaphore::new(workers.saturating_add(cfg.queue))),
            running: Arc::new(Semaphore::new(workers)),
            cfg: PoolConfig { workers, ..cfg },
        }
    }

    /// Requests running or waiting.
    pub fn in_use(&self) -> usize {
        (self.cfg.workers + self.cfg.queue).saturating_sub(self.admitted.available_permits())
    }

    async fn run<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T> + Send + 'static,
    {
        let admit = self
            .admitted
            .clone()
            .try_acquire_owned()
            .map_err(|_| AuthError::Busy)?;
        let worker = self
            .running
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| AuthError::Busy)?;
        tokio::task::spawn_blocking(move || {
            let _permits = (admit, worker);
            f()
        })
        .await
        .map_err(|_| AuthError::Hash)?
    }

    /// Hashes a password into a PHC string.
    pub async fn hash(&self, params: PasswordParams, password: &str) -> Result<String> {
        let password = password.to_string();
        self.run(move || hash_blocking(params, &password)).await
    }

    /// Verifies a password against a PHC string.
    pub async fn verify(&self, password: &str, phc: &str) -> Result<bool> {
        let password = password.to_string();
        let phc = phc.to_string();
        self.run(move || Ok(verify_blocking(&password, &phc))).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_and_verify() {
        let pool = HashPool::new(PoolConfig::default());
        let h = pool
            .hash(PasswordParams::insecure_fast(), "correct horse battery")
            .await
            .expect("hash");
        assert!(h.starts_with("$argon2id$"));
        assert!(
            pool.verify("correct horse battery", &h)
                .await
                .expect("verify")
        );
        assert!(
            !pool
                .verify("wrong horse battery", &h)
                .await
                .expect("verify")
        );
        assert!(!pool.verify("x", "not a phc string").await.expect("verify"));
        assert_eq!(pool.in_use(), 0);
    }

    /// With 1 worker and 2 places in the queue, a burst of 10 gets 3 through and 7
    /// refused at once; the pool then serves again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_pool_refuses_at_once() {
        let pool = HashPool::new(PoolConfig {
            workers: 1,
            queue: 2,
        });
        // Slow enough that the burst is admitted before the first hash ends.
        let slow = PasswordParams {
            memory_kib: 8 * 1024,
            iterations: 8,
            parallelism: 1,
        };
        let started = std::time::Instant::now();
        let tasks: Vec<_> = (0..10)
            .map(|_| {
                let pool = pool.clone();
                tokio::spawn(async move {
                    let t = std::time::Instant::now();
                    (pool.hash(slow, "a long password").await, t.elapsed())
                })
            })
            .collect();
        let mut ok = 0;
        let mut busy = 0;
        for t in tasks {
            let (r, took) = t.await.expect("join");
            match r {
                Ok(_) => ok += 1,
                Err(AuthError::Busy) => {
                    busy += 1;
                    assert!(
                        took < std::time::Duration::from_millis(50),
                        "refused at once"
                    );
                }
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!((ok, busy), (3, 7), "after {:?}", started.elapsed());
        assert_eq!(pool.in_use(), 0);
        assert!(pool.verify("x", "not a phc string").await.is_ok());
    }

    #[test]
    fn policy() {
        assert!(check_policy("short").is_err());
        assert!(check_policy("long enough!").is_ok());
    }
}
