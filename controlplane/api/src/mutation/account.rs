//! Accounts: register, login, refresh, logout; admin user management.

use async_graphql::{Context, ID, Object};
use weir_auth::{Permission, TokenPair};
use weir_store::User as StoreUser;

use crate::ctx::{require_global, state};
use crate::error::{ApiError, ApiResult, gql};
use crate::types::{AuthPayload, Role, User};

#[derive(Default)]
pub(crate) struct AccountMutations;

/// The per-IP limit of `login` and `register` (each costs an argon2 hash).
fn login_limit(ctx: &Context<'_>) -> ApiResult<()> {
    let ip = ctx
        .data_opt::<crate::http::ClientIp>()
        .map_or("local", |c| c.0.as_str());
    if state(ctx).inner.login_limiter.check(ip) {
        Ok(())
    } else {
        Err(ApiError::rate_limited(
            "too many login or registration attempts from this address: try again later",
            5,
        )
        .into())
    }
}

fn payload(user: StoreUser, t: TokenPair) -> AuthPayload {
    AuthPayload {
        access_token: t.access_token,
        access_expires_at: t.access_expires_at as i64,
        refresh_token: t.refresh_token,
        refresh_expires_at: t.refresh_expires_at,
        user: user.into(),
    }
}

#[Object]
impl AccountMutations {
    /// Creates an account (when registration is open). Passwords: 10–256 characters.
    async fn register(
        &self,
        ctx: &Context<'_>,
        username: String,
        email: String,
        password: String,
    ) -> ApiResult<User> {
        let st = state(ctx);
        if !st.config().open_registration {
            return Err(ApiError::forbidden().into());
        }
        login_limit(ctx)?;
        let u = st
            .auth()
            .register(&username, &email, &password, st.config().default_role)
            .await
            .map_err(gql)?;
        Ok(u.into())
    }

    /// Logs in with username or e-mail.
    async fn login(
        &self,
        ctx: &Context<'_>,
        login: String,
        password: String,
    ) -> ApiResult<AuthPayload> {
        login_limit(ctx)?;
        let (u, t) = state(ctx)
            .auth()
            .login(&login, &password)
            .await
            .map_err(gql)?;
        Ok(payload(u, t))
    }

    /// Exchanges a refresh token for new tokens. Each refresh token works once; reusing
    /// one revokes the whole session (`TOKEN_REUSED`).
    async fn refresh(&self, ctx: &Context<'_>, refresh_token: String) -> ApiResult<AuthPayload> {
        let (u, t) = state(ctx)
            .auth()
            .refresh(&refresh_token)
            .await
            .map_err(gql)?;
        Ok(payload(u, t))
    }

    /// Ends the session of a refresh token.
    async fn logout(&self, ctx: &Context<'_>, refresh_token: String) -> ApiResult<bool> {
        state(ctx)
            .auth()
            .logout(&refresh_token)
            .await
            .map_err(gql)?;
        Ok(true)
    }

    /// Changes a user's global role (admins only).
    async fn set_user_role(&self, ctx: &Context<'_>, user_id: ID, role: Role) -> ApiResult<User> {
        require_global(ctx, Permission::Operate)?;
        let u = state(ctx)
            .store()
            .set_user_role(&user_id, role.into())
            .await
            .map_err(gql)?;
        Ok(u.into())
    }

    /// Disables or enables a user (admins only).
    async fn set_user_disabled(
        &self,
        ctx: &Context<'_>,
        user_id: ID,
        disabled: bool,
    ) -> ApiResult<User> {
        require_global(ctx, Permission::Operate)?;
        let u = state(ctx)
            .store()
            .set_user_disabled(&user_id, disabled)
            .await
            .map_err(gql)?;
        Ok(u.into())
    }
}
