//! Users, with unique usernames and e-mails.

use crate::error::{Result, StoreError};
use crate::ids::{is_safe_id, new_id, now_ms};
use crate::model::{Role, User};
use crate::store::Store;

const USERS: &str = "users";
const USERNAMES: &str = "usernames";
const EMAILS: &str = "emails";

/// Normalises and checks a username: 3–32 of `[a-z0-9_.-]`.
pub fn normalize_username(name: &str) -> Result<String> {
    let n = name.trim().to_ascii_lowercase();
    if n.len() < 3 || n.len() > 32 || !is_safe_id(&n) {
        return Err(StoreError::Invalid(
            "username must be 3-32 characters of a-z, 0-9, '_', '.', '-'".into(),
        ));
    }
    Ok(n)
}

/// Normalises and checks an e-mail address (shape only).
pub fn normalize_email(email: &str) -> Result<String> {
    let e = email.trim().to_ascii_lowercase();
    let ok = e.len() <= 254
        && e.split_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && d.contains('.') && !d.starts_with('.'))
        && e.bytes().all(|b| b.is_ascii_graphic() && b != b'/');
    if ok {
        Ok(e)
    } else {
        Err(StoreError::Invalid("invalid e-mail address".into()))
    }
}

impl Store {
    /// Creates a user; `Conflict` when the username or e-mail is taken.
    pub async fn create_user(
        &self,
        username: &str,
        email: &str,
        password_hash: &str,
        role: Role,
    ) -> Result<User> {
        let username = normalize_username(username)?;
        let email = normalize_email(email)?;
        let user = User {
            id: new_id(),
            username: username.clone(),
            email: email.clone(),
            password_hash: password_hash.to_string(),
            role,
            disabled: false,
            created_at: now_ms(),
        };
        if !self.insert_new(USERNAMES, &username, &user.id).await? {
            return Err(StoreError::Conflict("username is taken".into()));
        }
        if !self.insert_new(EMAILS, &email, &user.id).await? {
            self.kv().delete(USERNAMES, &username).await?;
            return Err(StoreError::Conflict("e-mail is already registered".into()));
        }
        self.put_json(USERS, &user.id, &user, None).await?;
        Ok(user)
    }

    /// A user by id.
    pub async fn get_user(&self, id: &str) -> Result<Option<User>> {
        if !is_safe_id(id) {
            return Ok(None);
        }
        self.get_json(USERS, id).await
    }

    /// A user by username or e-mail.
    pub async fn find_user_by_login(&self, login: &str) -> Result<Option<User>> {
        let id: Option<String> = if login.contains('@') {
            match normalize_email(login) {
                Ok(e) => self.get_json(EMAILS, &e).await?,
                Err(_) => None,
            }
        } else {
            match normalize_username(login) {
                Ok(u) => self.get_json(USERNAMES, &u).await?,
                Err(_) => None,
            }
        };
        match id {
            Some(id) => self.get_user(&id).await,
            None => Ok(None),
        }
    }

    /// All users (admin views), oldest first.
    pub async fn list_users(&self) -> Result<Vec<User>> {
        self.list_json(USERS).await
    }

    /// Changes a user's global role.
    pub async fn set_user_role(&self, id: &str, role: Role) -> Result<User> {
        self.update_json(USERS, id, "user", |u: &mut User| {
            u.role = role;
            Ok(())
        })
        .await
    }

    /// Enables or disables a user.
    pub async fn set_user_disabled(&self, id: &str, disabled: bool) -> Result<User> {
        self.update_json(USERS, id, "user", |u: &mut User| {
            u.disabled = disabled;
            Ok(())
        })
        .await
    }
}
