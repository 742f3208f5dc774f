//! Errors returned to GraphQL clients, each with a machine-readable `extensions.code`.

use async_graphql::ErrorExtensions;
use weir_auth::{AuthError, Denied};
use weir_store::StoreError;

/// Error codes (the `extensions.code` values clients can rely on).
pub mod code {
    /// No or bad credentials.
    pub const UNAUTHENTICATED: &str = "UNAUTHENTICATED";
    /// Authenticated but not allowed.
    pub const FORBIDDEN: &str = "FORBIDDEN";
    /// Absent, or not visible to the caller.
    pub const NOT_FOUND: &str = "NOT_FOUND";
    /// Invalid arguments.
    pub const BAD_USER_INPUT: &str = "BAD_USER_INPUT";
    /// Uniqueness or state conflict.
    pub const CONFLICT: &str = "CONFLICT";
    /// Too many requests (per IP or user, over HTTP or graphql-ws), or too many failed
    /// logins for one account; `extensions.retryAfter` (seconds) may say when to retry.
    pub const RATE_LIMITED: &str = "RATE_LIMITED";
    /// The server is at capacity for this operation (all password workers busy): retry
    /// in a few seconds.
    pub const SERVICE_UNAVAILABLE: &str = "SERVICE_UNAVAILABLE";
    /// Refresh token reuse: the session family was revoked.
    pub const TOKEN_REUSED: &str = "TOKEN_REUSED";
    /// Body over the limit.
    pub const PAYLOAD_TOO_LARGE: &str = "PAYLOAD_TOO_LARGE";
    /// The HTTP request is not a GraphQL request (bad JSON, batch…).
    pub const BAD_REQUEST: &str = "BAD_REQUEST";
    /// The document does not parse.
    pub const GRAPHQL_PARSE_FAILED: &str = "GRAPHQL_PARSE_FAILED";
    /// The document does not validate (unknown fields, depth or complexity limits…).
    pub const GRAPHQL_VALIDATION_FAILED: &str = "GRAPHQL_VALIDATION_FAILED";
    /// Something broke on our side (details are logged, not returned).
    pub const INTERNAL: &str = "INTERNAL_SERVER_ERROR";
}

/// An API error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// One of [`code`].
    pub code: &'static str,
    /// Human-readable message.
    pub message: String,
    /// Seconds after which a retry may succeed (`extensions.retryAfter`).
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// A new error.
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// Rate limited, with when to retry.
    pub fn rate_limited(message: impl Into<String>, retry_after_secs: u64) -> Self {
        Self {
            retry_after: Some(retry_after_secs),
            ..Self::new(code::RATE_LIMITED, message)
        }
    }

    /// The error as a GraphQL server error (for extensions).
    pub fn into_server_error(self) -> async_graphql::ServerError {
        let mut e = async_graphql::ServerError::new(self.message, None);
        let mut ext = async_graphql::ErrorExtensionValues::default();
        ext.set("code", self.code);
        if let Some(s) = self.retry_after {
            ext.set("retryAfter", s);
        }
        e.extensions = Some(ext);
        e
    }

    /// Not authenticated.
    pub fn unauthenticated() -> Self {
        Self::new(code::UNAUTHENTICATED, "authentication required")
    }

    /// Not found (`what` names the object).
    pub fn not_found(what: &str) -> Self {
        Self::new(code::NOT_FOUND, format!("{what} not found"))
    }

    /// Forbidden.
    pub fn forbidden() -> Self {
        Self::new(code::FORBIDDEN, "not allowed")
    }

    /// Bad input.
    pub fn bad_input(message: impl Into<String>) -> Self {
        Self::new(code::BAD_USER_INPUT, message)
    }
}

impl From<ApiError> for async_graphql::Error {
    fn from(e: ApiError) -> Self {
        async_graphql::Error::new(e.message).extend_with(|_, ext| {
            ext.set("code", e.code);
            if let Some(s) = e.retry_after {
                ext.set("retryAfter", s);
            }
        })
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => ApiError::not_found(what),
            StoreError::Conflict(m) => ApiError::new(code::CONFLICT, m),
            StoreError::Invalid(m) => ApiError::bad_input(m),
            other => {
                tracing::error!(error = %other, "storage error");
                ApiError::new(code::INTERNAL, "internal error")
            }
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Store(s) => s.into(),
            AuthError::Hash => {
                tracing::error!("password hashing failed");
                ApiError::new(code::INTERNAL, "internal error")
            }
            AuthError::WeakPassword => ApiError::bad_input(e.to_string()),
            AuthError::RefreshReplayed => ApiError::new(code::TOKEN_REUSED, e.to_string()),
            AuthError::TooManyAttempts { retry_after } => {
                ApiError::rate_limited(e.to_string(), weir_auth::whole_secs(retry_after))
            }
            AuthError::Busy => ApiError {
                retry_after: Some(2),
                ..ApiError::new(code::SERVICE_UNAVAILABLE, e.to_string())
            },
            other => ApiError::new(code::UNAUTHENTICATED, other.to_string()),
        }
    }
}

impl From<Denied> for ApiError {
    fn from(d: Denied) -> Self {
        match d {
            Denied::NotFound => ApiError::not_found("object"),
            Denied::Forbidden => ApiError::forbidden(),
        }
    }
}

/// Result of a resolver.
pub type ApiResult<T> = std::result::Result<T, async_graphql::Error>;

/// Shorthand to convert any error we know into a GraphQL error.
pub(crate) fn gql<E: Into<ApiError>>(e: E) -> async_graphql::Error {
    e.into().into()
}
