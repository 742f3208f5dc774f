//! Test harness: an API over an in-memory store, users of every role, a GraphQL client
//! over the router (no sockets).

#![allow(dead_code)]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use parking_lot::Mutex;
use serde_json::{Value, json};
use tower::ServiceExt;
use weir_api::{ApiConfig, ApiState, StreamKeyIssuer, router};
use weir_auth::{Auth, AuthConfig, PasswordParams};
use weir_store::{Role, Store};

pub const SECRET: &[u8] = b"api-test-secret-api-test-secret!";

/// Issues `key-<n>` / `secret-<n>` and records revocations.
#[derive(Default)]
pub struct TestIssuer {
    pub n: Mutex<u32>,
    pub revoked: Mutex<Vec<String>>,
}

impl StreamKeyIssuer for TestIssuer {
    fn issue(&self, channel: &str) -> (String, String) {
        let mut n = self.n.lock();
        *n += 1;
        (format!("key-{n}"), format!("sk_{channel}_{n}_secret"))
    }
    fn revoke(&self, key_id: &str) {
        self.revoked.lock().push(key_id.to_string());
    }

    fn sign_playback(&self, channel: &str, expires_at: u64) -> String {
        format!("exp={expires_at}&sig=test-{channel}")
    }
}

pub struct Harness {
    pub state: ApiState,
    pub app: Router,
    pub issuer: Arc<TestIssuer>,
}

pub fn harness_with(config: ApiConfig) -> Harness {
    let mut acfg = AuthConfig::new(SECRET.to_vec());
    acfg.password = PasswordParams::insecure_fast();
    harness_with_auth(config, acfg)
}

pub fn harness_with_auth(mut config: ApiConfig, acfg: AuthConfig) -> Harness {
    let store = Store::memory();
    let auth = Auth::new(store.clone(), acfg);
    let issuer = Arc::new(TestIssuer::default());
    if config.per_ip.burst == ApiConfig::default().per_ip.burst {
        config.per_ip.burst = 100_000;
        config.per_user.burst = 100_000;
    }
    if config.per_ip_login == ApiConfig::default().per_ip_login {
        config.per_ip_login.burst = 100_000;
    }
    let state = ApiState::new(store, auth, issuer.clone(), config);
    Harness {
        app: router(state.clone()),
        state,
        issuer,
    }
}

pub fn harness() -> Harness {
    harness_with(ApiConfig::default())
}

pub struct Resp {
    pub status: StatusCode,
    pub body: Value,
}

impl Resp {
    /// The first error's code, if any.
    pub fn code(&self) -> Option<&str> {
        self.body["errors"][0]["extensions"]["code"].as_str()
    }
    pub fn data(&self) -> &Value {
        &self.body["data"]
    }
    #[track_caller]
    pub fn ok(&self) -> &Value {
        assert!(
            self.body.get("errors").is_none() && self.status == StatusCode::OK,
            "unexpected errors: {} {}",
            self.status,
            self.body
        );
        &self.body["data"]
    }
}

impl Harness {
    pub async fn raw(&self, token: Option<&str>, body: Body) -> Resp {
        self.raw_from(None, token, body).await
    }

    /// Like [`Harness::gql`], from client address `ip`.
    pub async fn gql_from(&self, ip: &str, token: Option<&str>, query: &str, vars: Value) -> Resp {
        let body = json!({ "query": query, "variables": vars }).to_string();
        self.raw_from(Some(ip), token, Body::from(body)).await
    }

    pub async fn raw_from(&self, ip: Option<&str>, token: Option<&str>, body: Body) -> Resp {
        let mut req = Request::post("/graphql").header("content-type", "application/json");
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let mut req = req.body(body).expect("request");
        if let Some(ip) = ip {
            let addr = std::net::SocketAddr::new(ip.parse().expect("ip"), 40000);
            req.extensions_mut()
                .insert(axum::extract::ConnectInfo(addr));
        }
        let resp = self.app.clone().oneshot(req).await.expect("infallible");
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .expect("body");
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Resp { status, body }
    }

    pub async fn gql(&self, token: Option<&str>, query: &str, vars: Value) -> Resp {
        let body = json!({ "query": query, "variables": vars }).to_string();
        self.raw(token, Body::from(body)).await
    }

    /// Registers (with `role`) and logs in; returns (user id, access token, refresh token).
    pub async fn user(&self, name: &str, role: Role) -> (String, String, String) {
        let u = self
            .state
            .auth()
            .register(
                name,
                &format!("{name}@example.com"),
                "a good password",
                role,
            )
            .await
            .expect("register");
        let r = self
            .gql(
                None,
                "mutation($l: String!) { login(login: $l, password: \"a good password\") { accessToken refreshToken } }",
                json!({ "l": name }),
            )
            .await;
        let d = r.ok()["login"].clone();
        (
            u.id,
            d["accessToken"].as_str().expect("token").to_string(),
            d["refreshToken"].as_str().expect("token").to_string(),
        )
    }

    /// Creates a channel as `token`; returns its id.
    pub async fn channel(&self, token: &str, slug: &str) -> String {
        let r = self
            .gql(
                Some(token),
                "mutation($s: String!) { createChannel(slug: $s, title: \"T\") { id } }",
                json!({ "s": slug }),
            )
            .await;
        r.ok()["createChannel"]["id"]
            .as_str()
            .expect("id")
            .to_string()
    }
}
