//! graphql-ws sessions: per-operation rate limits and re-authentication, and the watchdog
//! that closes a connection whose access token expired or whose account or session is no
//! longer valid.
//!
//! - Every operation a connection sends (query, mutation or subscription) takes a token
//!   from the client IP's bucket and, when authenticated, from the user's: the same buckets
//!   as `POST /graphql`, so switching transports buys nothing. Over the limit, the operation
//!   gets a `RATE_LIMITED` error (with `extensions.retryAfter`).
//! - Every operation re-checks the connection's token and account; the caller it sees is
//!   the fresh one (role changes apply at once). A token that no longer passes fails the
//!   operation with `UNAUTHENTICATED` and closes the connection.
//! - The watchdog re-checks every [`crate::ApiConfig::ws_recheck_interval`] and at the
//!   token's expiry, and closes the connection with code 4401 (graphql-ws "Unauthorized")
//!   and the reason as text when the token expired, the account was disabled or deleted,
//!   or the session was revoked.

use std::sync::Arc;
use std::time::Duration;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextPrepareRequest,
};
use async_graphql::{Request, ServerResult};
use tokio::sync::watch;

use crate::error::{ApiError, code};
use crate::http::{Caller, authenticate_any};
use crate::state::ApiState;

/// graphql-ws close code for an unauthorized connection.
pub const CLOSE_UNAUTHORIZED: u16 = 4401;

/// One graphql-ws connection: its client, its token, and whether the server closed it.
pub(crate) struct WsSession {
    ip: String,
    /// The access token (from the upgrade's `Authorization`, or `connection_init`).
    token: watch::Sender<Option<String>>,
    close: watch::Sender<Option<(u16, String)>>,
}

impl WsSession {
    pub(crate) fn new(ip: String, token: Option<String>) -> Self {
        Self {
            ip,
            token: watch::Sender::new(token),
            close: watch::Sender::new(None),
        }
    }

    pub(crate) fn set_token(&self, token: String) {
        self.token.send_replace(Some(token));
    }

    fn token(&self) -> Option<String> {
        self.token.borrow().clone()
    }

    /// Closes the connection (once: the first reason wins).
    pub(crate) fn close(&self, code: u16, reason: &str) {
        self.close.send_if_modified(|c| {
            if c.is_some() {
                return false;
            }
            // Close reasons are limited to 123 bytes.
            let mut r = reason.to_string();
            while r.len() > 120 {
                r.pop();
            }
            *c = Some((code, r));
            true
        });
    }

    pub(crate) fn close_reason(&self) -> Option<(u16, String)> {
        self.close.borrow().clone()
    }

    /// Completes once the session is closed.
    pub(crate) async fn closed(&self) {
        let mut rx = self.close.subscribe();
        let _ = rx.wait_for(Option::is_some).await;
    }
}

/// Re-checks the session's token every `ws_recheck_interval` and right after it expires;
/// closes the session when it no longer passes. Storage errors do not close it (the next
/// check tries again).
pub(crate) async fn watchdog(state: ApiState, session: Arc<WsSession>) {
    let every = state
        .config()
        .ws_recheck_interval
        .max(Duration::from_millis(10));
    let leeway = state.auth().jwt().leeway();
    let mut token_changed = session.token.subscribe();
    loop {
        let expiry = session.token().and_then(|t| {
            let participant = crate::studio::token::verify(
                state.auth(),
                crate::studio::token::Kind::Participant,
                &t,
                0,
            );
            match participant {
                Ok(v) => Some(v.expires_at),
                Err(_) => state
                    .auth()
                    .verify_access_claims(&t)
                    .ok()
                    .map(|c| c.exp.saturating_add(leeway)),
            }
        });
        let wait = match expiry {
            Some(exp) => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or_default();
                let dead_at = exp.saturating_add(1);
                every.min(Duration::from_secs(dead_at.saturating_sub(now)))
            }
            None => every,
        };
        let wait = wait.max(Duration::from_millis(10));
        // A new token (connection_init) means a new expiry: start over.
        if let Ok(changed) = tokio::time::timeout(wait, token_changed.changed()).await {
            if changed.is_err() {
                return;
            }
            continue;
        }
        let Some(token) = session.token() else {
            continue;
        };
        match authenticate_any(&state, &token).await {
            Ok(_) => {}
            Err(e) if e.code == code::UNAUTHENTICATED => {
                session.close(CLOSE_UNAUTHORIZED, &e.message);
                return;
            }
            Err(e) => tracing::warn!(error = %e.message, "graphql-ws re-check failed"),
        }
    }
}

/// The schema extension applying limits and re-authentication to graphql-ws operations
/// (requests without a [`WsSession`], i.e. `POST /graphql`, pass untouched: the HTTP layer
/// did the same checks).
pub(crate) struct WsGuard;

impl ExtensionFactory for WsGuard {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(WsGuardExtension)
    }
}

struct WsGuardExtension;

fn limited(what: &str) -> async_graphql::ServerError {
    ApiError::rate_limited(format!("too many requests {what}, slow down"), 1).into_server_error()
}

#[async_trait::async_trait]
impl Extension for WsGuardExtension {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        let (Some(session), Some(state)) =
            (ctx.data_opt::<Arc<WsSession>>(), ctx.data_opt::<ApiState>())
        else {
            return next.run(ctx, request).await;
        };
        if !state.inner.ip_limiter.check(&session.ip) {
            return Err(limited("from this address"));
        }
        let mut request = request;
        if let Some(token) = session.token() {
            match authenticate_any(state, &token).await {
                Ok(who) => {
                    let key = match &who {
                        Caller::User(p) => p.user_id.clone(),
                        Caller::Participant(g) => g.participant_id.clone(),
                    };
                    if !state.inner.user_limiter.check(&key) {
                        return Err(limited("for this account"));
                    }
                    who.insert_into(&mut request.data);
                }
                Err(e) => {
                    if e.code == code::UNAUTHENTICATED {
                        session.close(CLOSE_UNAUTHORIZED, &e.message);
                    }
                    return Err(e.into_server_error());
                }
            }
        }
        next.run(ctx, request).await
    }
}
