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
