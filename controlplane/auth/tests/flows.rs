//! Register, login, refresh rotation, replay detection, logout.

use weir_auth::{Auth, AuthConfig, AuthError, PasswordParams, Role};
use weir_store::Store;

fn auth() -> Auth {
    let mut cfg = AuthConfig::new(b"test-secret-test-secret-test-sec".to_vec());
    cfg.password = PasswordParams::insecure_fast();
    Auth::new(Store::memory(), cfg)
}

#[tokio::test]
async fn register_login_refresh_replay_logout() {
    let a = auth();
    let u = a
        .register("alice", "alice@example.com", "a long password", Role::Owner)
        .await
        .expect("register");
    assert!(matches!(
        a.register("bob", "bob@example.com", "short", Role::Owner)
            .await,
        Err(AuthError::WeakPassword)
    ));
    assert!(matches!(
        a.login("alice", "wrong password!").await,
        Err(AuthError::InvalidCredentials)
    ));
    assert!(matches!(
        a.login("nobody", "a long password").await,
        Err(AuthError::InvalidCredentials)
    ));
    let (_, p1) = a
        .login("alice@example.com", "a long password")
        .await
        .expect("login");
    let who = a.verify_access(&p1.access_token).expect("access");
    assert_eq!(
        (who.user_id.as_str(), who.role),
        (u.id.as_str(), Role::Owner)
    );

    // Rotation: the new token works once; the old one is spent.
    let (_, p2) = a.refresh(&p1.refresh_token).await.expect("refresh");
    assert_ne!(p1.refresh_token, p2.refresh_token);
    // Replay of p1 revokes the family, so p2 dies too.
    assert!(matches!(
        a.refresh(&p1.refresh_token).await,
        Err(AuthError::RefreshReplayed)
    ));
    assert!(matches!(
        a.refresh(&p2.refresh_token).await,
        Err(AuthError::InvalidRefreshToken)
    ));
    // Another login is a separate family.
    let (_, p3) = a.login("alice", "a long password").await.expect("login");
    let (_, p4) = a.refresh(&p3.refresh_token).await.expect("refresh");
    a.logout(&p4.refresh_token).await.expect("logout");
    assert!(a.refresh(&p4.refresh_token).await.is_err());
    assert!(matches!(
        a.refresh("wrt_garbage").await,
        Err(AuthError::InvalidRefreshToken)
    ));

    // Disabled accounts cannot log in.
    a.store()
        .set_user_disabled(&u.id, true)
        .await
        .expect("disable");
    assert!(matches!(
        a.login("alice", "a long password").await,
        Err(AuthError::Disabled)
    ));
}

fn auth_with(throttle: weir_auth::ThrottleConfig) -> Auth {
    let mut cfg = AuthConfig::new(b"test-secret-test-secret-test-sec".to_vec());
    cfg.password = PasswordParams::insecure_fast();
    cfg.login_throttle = throttle;
    Auth::new(Store::memory(), cfg)
}

/// Failed logins are counted per account (username and e-mail alike), the right password
/// is refused too while the account waits, and a success clears the count.
#[tokio::test]
async fn failed_logins_are_throttled_per_account() {
    let a = auth_with(weir_auth::ThrottleConfig {
        free_failures: 3,
        base_delay: std::time::Duration::from_millis(400),
        ..Default::default()
    });
    a.register("carol", "carol@example.com", "a long password", Role::Owner)
        .await
        .expect("register");
    a.register("dave", "dave@example.com", "a long password", Role::Owner)
        .await
        .expect("register");
    for login in ["carol", "CAROL@example.com", "carol"] {
        assert!(matches!(
            a.login(login, "wrong password!").await,
            Err(AuthError::InvalidCredentials)
        ));
    }
    let e = a.login("carol@example.com", "a long password").await;
    let Err(e @ AuthError::TooManyAttempts { retry_after }) = e else {
        panic!("expected a throttled login, got {e:?}");
    };
    assert!(retry_after <= std::time::Duration::from_millis(400));
    assert_eq!(
        e.to_string(),
        "too many failed logins for this account: try again in 1 s"
    );
    // Other accounts are not affected.
    a.login("dave", "a long password")
        .await
        .expect("dave logs in");
    // Unknown logins are throttled alike (no hint that an account exists).
    for _ in 0..3 {
        assert!(a.login("ghost", "whatever pass").await.is_err());
    }
    assert!(matches!(
        a.login("ghost", "whatever pass").await,
        Err(AuthError::TooManyAttempts { .. })
    ));
    // After the wait, the right password gets in and clears the count.
    tokio::time::sleep(std::time::Duration::from_millis(450)).await;
    a.login("carol", "a long password")
        .await
        .expect("login after the wait");
    for _ in 0..3 {
        assert!(matches!(
            a.login("carol", "wrong password!").await,
            Err(AuthError::InvalidCredentials)
        ));
    }
}

/// Logging out (or a refresh replay) revokes the session of the access tokens it issued.
#[tokio::test]
async fn logout_revokes_the_access_tokens_session() {
    let a = auth();
    a.register("erin", "erin@example.com", "a long password", Role::Owner)
        .await
        .expect("register");
    let (_, p) = a.login("erin", "a long password").await.expect("login");
    let c = a.verify_access_claims(&p.access_token).expect("claims");
    let sid = c.sid.expect("access tokens carry their session");
    assert!(!a.is_session_revoked(&sid).await.expect("check"));
    a.logout(&p.refresh_token).await.expect("logout");
    assert!(a.is_session_revoked(&sid).await.expect("check"));
}

#[test]
fn debug_output_holds_no_secrets() {
    let mut cfg = AuthConfig::new(b"jwt-signing-key-jwt-signing-key!".to_vec());
    cfg.password = PasswordParams::insecure_fast();
    let pair = weir_auth::TokenPair {
        access_token: "eyJhbGciOiJIUzI1NiJ9.payload.signature".into(),
        access_expires_at: 1,
        refresh_token: "wrt_refresh_secret_value".into(),
        refresh_expires_at: 2,
    };
    let keys = weir_auth::JwtKeys::new(
        b"jwt-signing-key-jwt-signing-key!",
        "weir",
        std::time::Duration::from_secs(60),
    );
    let out = format!(
        "{cfg:?} {pair:?} {keys:?} {:?}",
        Auth::new(Store::memory(), cfg.clone())
    );
    // The secret's bytes as text and as the list of numbers `Vec<u8>` would print.
    let as_numbers = format!("{:?}", b"jwt-signing-key-jwt-signing-key!".to_vec());
    for secret in [
        "jwt-signing-key",
        as_numbers.trim_matches(['[', ']']),
        "eyJhbGci",
        "wrt_refresh_secret",
    ] {
        assert!(!out.contains(secret), "{secret} leaked: {out}");
    }
    assert!(out.contains("<redacted>"), "{out}");
}
