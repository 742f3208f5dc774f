//! Argon2id password hashing, run on the blocking pool.

use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};

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

/// Hashes a password into a PHC string.
pub async fn hash(params: PasswordParams, password: &str) -> Result<String> {
    let password = password.to_string();
    tokio::task::spawn_blocking(move || {
        let h = params
            .hasher()?
            .hash_password(password.as_bytes())
            .map_err(|_| AuthError::Hash)?;
        Ok(h.to_string())
    })
    .await
    .map_err(|_| AuthError::Hash)?
}

/// Verifies a password against a PHC string (parameters are read from the string).
pub async fn verify(password: &str, phc: &str) -> Result<bool> {
    let password = password.to_string();
    let phc = phc.to_string();
    tokio::task::spawn_blocking(move || {
        Ok(Argon2::default()
            .verify_password(password.as_bytes(), phc.as_str())
            .is_ok())
    })
    .await
    .map_err(|_| AuthError::Hash)?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_and_verify() {
        let h = hash(PasswordParams::insecure_fast(), "correct horse battery")
            .await
            .expect("hash");
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("correct horse battery", &h).await.expect("verify"));
        assert!(!verify("wrong horse battery", &h).await.expect("verify"));
        assert!(!verify("x", "not a phc string").await.expect("verify"));
    }

    #[test]
    fn policy() {
        assert!(check_policy("short").is_err());
        assert!(check_policy("long enough!").is_ok());
    }
}
