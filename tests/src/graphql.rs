//! A GraphQL client for the control plane's API: queries and mutations over
//! `POST /graphql`, subscriptions over a websocket with the graphql-ws
//! (`graphql-transport-ws`) protocol.

use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tungstenite::Message;
use tungstenite::client::IntoClientRequest;

use crate::wait_until;

/// Runs one operation and returns the whole response (`data` and/or `errors`).
/// Panics when the API cannot be reached or does not answer JSON.
pub fn gql(port: u16, token: Option<&str>, query: &str, variables: Value) -> Value {
    try_gql(port, token, query, variables)
        .unwrap_or_else(|e| panic!("GraphQL request to 127.0.0.1:{port} failed: {e}"))
}

/// [`gql`] without panicking: `Err` when there is no JSON answer.
pub fn try_gql(
    port: u16,
    token: Option<&str>,
    query: &str,
    variables: Value,
) -> Result<Value, String> {
    let body = json!({ "query": query, "variables": variables }).to_string();
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth
        .as_deref()
        .map(|a| vec![("Authorization", a)])
        .unwrap_or_default();
    let r = crate::http::post_json(port, "/graphql", &headers, &body).map_err(|e| e.to_string())?;
    serde_json::from_slice(&r.body)
        .map_err(|e| format!("status {}, not JSON ({e}): {}", r.status, r.text()))
}

/// Runs one operation and returns `data`; panics (showing the errors) when there are any.
pub fn gql_ok(port: u16, token: Option<&str>, query: &str, variables: Value) -> Value {
    let r = gql(port, token, query, variables);
    assert!(
        r.get("errors")
            .is_none_or(|e| e.as_array().is_some_and(Vec::is_empty)),
        "GraphQL errors for\n{query}\n→ {r:#}"
    );
    r["data"].clone()
}

/// The `extensions.code` of the first error, if any.
pub fn error_code(resp: &Value) -> Option<String> {
    resp["errors"][0]["extensions"]["code"]
        .as_str()
        .map(str::to_owned)
}

/// A logged-in account.
#[derive(Debug, Clone)]
pub struct Account {
    pub id: String,
    pub username: String,
    pub access_token: String,
    pub refresh_token: String,
}

/// Logs in.
pub fn login(port: u16, login: &str, password: &str) -> Account {
    let d = gql_ok(
        port,
        None,
        "mutation($l: String!, $p: String!) { login(login: $l, password: $p) { \
         accessToken refreshToken user { id username } } }",
        json!({ "l": login, "p": password }),
    );
    let l = &d["login"];
    Account {
        id: l["user"]["id"].as_str().expect("user id").to_owned(),
        username: l["user"]["username"].as_str().expect("username").to_owned(),
        access_token: l["accessToken"].as_str().expect("accessToken").to_owned(),
        refresh_token: l["refreshToken"].as_str().expect("refreshToken").to_owned(),
    }
}

/// Registers an account (a channel owner) and logs it in.
pub fn register_and_login(port: u16, username: &str, password: &str) -> Account {
    let d = gql_ok(
        port,
        None,
        "mutation($u: String!, $e: String!, $p: String!) { \
         register(username: $u, email: $e, password: $p) { id username role } }",
        json!({ "u": username, "e": format!("{username}@example.com"), "p": password }),
    );
    assert_eq!(
        d["register"]["role"], "OWNER",
        "new accounts are owners: {d}"
    );
    login(port, username, password)
}

/// Creates a channel and returns its id.
pub fn create_channel(port: u16, token: &str, slug: &str) -> String {
    let d = gql_ok(
        port,
        Some(token),
        "mutation($s: String!) { createChannel(slug: $s, title: $s) { id slug } }",
        json!({ "s": slug }),
    );
    assert_eq!(d["createChannel"]["slug"], slug);
    d["createChannel"]["id"]
        .as_str()
        .expect("channel id")
        .to_owned()
}

/// Issues a stream key: (key id, secret).
pub fn issue_stream_key(port: u16, token: &str, channel_id: &str) -> (String, String) {
    let d = gql_ok(
        port,
        Some(token),
        "mutation($c: ID!) { issueStreamKey(channelId: $c) { secret key { keyId channelId revokedAt } } }",
        json!({ "c": channel_id }),
    );
    let k = &d["issueStreamKey"];
    assert_eq!(k["key"]["channelId"], channel_id, "{d}");
    assert!(k["key"]["revokedAt"].is_null(), "{d}");
    (
        k["key"]["keyId"].as_str().expect("keyId").to_owned(),
        k["secret"].as_str().expect("secret").to_owned(),
    )
}

/// An owner (signed up and in), their channel `slug` and a stream key for it, over the
/// GraphQL API of `node`: (owner, channel id, key).
pub fn owner_channel_key(node: &crate::Node, slug: &str) -> (Account, String, String) {
    assert!(
        node.wait_log("GraphQL API listening on", Duration::from_secs(20)),
        "{}",
        node.log()
    );
    let owner = register_and_login(
        node.api_port,
        &format!("{slug}-owner"),
        "correct horse battery staple",
    );
    let channel_id = create_channel(node.api_port, &owner.access_token, slug);
    let (_, key) = issue_stream_key(node.api_port, &owner.access_token, &channel_id);
    (owner, channel_id, key)
}

/// The channel's recordings as `owner` sees them, newest first, with `fields`.
pub fn recordings(port: u16, owner: &Account, channel_id: &str, fields: &str) -> Vec<Value> {
    let d = gql_ok(
        port,
        Some(&owner.access_token),
        &format!("query($c: ID!) {{ recordings(channelId: $c) {{ nodes {{ {fields} }} }} }}"),
        json!({ "c": channel_id }),
    );
    d["recordings"]["nodes"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// `wait_until` at a pace the API's rate limit allows (a few queries a second).
pub fn poll(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(400));
    }
}

/// A graphql-ws connection. A background thread reads every message into a list (and
/// answers pings), so the test can look at what arrived at any time; it stops on drop.
pub struct WsClient {
    msgs: Arc<Mutex<Vec<Value>>>,
    out: mpsc::Sender<String>,
    stop: Arc<AtomicBool>,
    closed: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

type Socket = tungstenite::WebSocket<TcpStream>;

impl WsClient {
    /// Connects to `ws://127.0.0.1:<port>/graphql`, sends `connection_init` with the bearer
    /// token and waits (10 s) for `connection_ack`.
    pub fn connect(port: u16, token: &str) -> Self {
        let stream = TcpStream::connect_timeout(
            &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
            Duration::from_secs(5),
        )
        .unwrap_or_else(|e| panic!("connect to the API on {port}: {e}"));
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        stream
            .set_write_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut req = format!("ws://127.0.0.1:{port}/graphql")
            .into_client_request()
            .expect("request");
        req.headers_mut().insert(
            "sec-websocket-protocol",
            "graphql-transport-ws".parse().expect("header"),
        );
        let (mut ws, resp) = tungstenite::client::client(req, stream)
            .unwrap_or_else(|e| panic!("websocket handshake with the API failed: {e}"));
        assert_eq!(
            resp.headers()
                .get("sec-websocket-protocol")
                .and_then(|v| v.to_str().ok()),
            Some("graphql-transport-ws"),
            "the API did not accept the graphql-ws protocol"
        );
        send(
            &mut ws,
            &json!({ "type": "connection_init",
                     "payload": { "Authorization": format!("Bearer {token}") } }),
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            assert!(Instant::now() < deadline, "no connection_ack within 10 s");
            match ws.read() {
                Ok(Message::Text(t)) => {
                    let v: Value = serde_json::from_str(t.as_str()).expect("json");
                    match v["type"].as_str() {
                        Some("connection_ack") => break,
                        Some("ping") => send(&mut ws, &json!({ "type": "pong" })),
                        _ => panic!("expected connection_ack, got {v}"),
                    }
                }
                Ok(Message::Close(f)) => panic!("connection_init refused: {f:?}"),
                Ok(_) => {}
                Err(e) => panic!("reading connection_ack: {e}"),
            }
        }
        ws.get_ref()
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");

        let msgs = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let closed = Arc::new(AtomicBool::new(false));
        let (out, rx) = mpsc::channel::<String>();
        let thread = {
            let (msgs, stop, closed) = (msgs.clone(), stop.clone(), closed.clone());
            std::thread::spawn(move || pump(ws, rx, msgs, stop, closed))
        };
        Self {
            msgs,
            out,
            stop,
            closed,
            thread: Some(thread),
        }
    }

    /// Starts a subscription with id `id`.
    pub fn subscribe(&self, id: &str, query: &str, variables: Value) {
        let m = json!({ "id": id, "type": "subscribe",
                        "payload": { "query": query, "variables": variables } });
        self.out.send(m.to_string()).expect("websocket thread");
    }

    /// Every message received so far (pings excluded).
    pub fn messages(&self) -> Vec<Value> {
        self.msgs.lock().expect("lock").clone()
    }

    /// The `payload` of every `next` message of subscription `id`.
    pub fn payloads(&self, id: &str) -> Vec<Value> {
        self.messages()
            .into_iter()
            .filter(|m| m["id"] == id && m["type"] == "next")
            .map(|m| m["payload"].clone())
            .collect()
    }

    /// Messages of subscription `id` that end or fail it (`error`, `complete`) or `next`
    /// payloads carrying errors.
    pub fn failures(&self, id: &str) -> Vec<Value> {
        self.messages()
            .into_iter()
            .filter(|m| {
                m["id"] == id
                    && (m["type"] == "error"
                        || m["type"] == "complete"
                        || !m["payload"]["errors"].is_null())
            })
            .collect()
    }

    /// Whether the server closed the connection.
    pub fn closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    /// Waits until `pred` holds for (a copy of) the messages received so far; `pred` may
    /// call the other methods of this client.
    pub fn wait_for(&self, timeout: Duration, mut pred: impl FnMut(&[Value]) -> bool) -> bool {
        wait_until(timeout, || pred(&self.messages()))
    }
}

impl Drop for WsClient {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn send(ws: &mut Socket, v: &Value) {
    ws.send(Message::text(v.to_string()))
        .unwrap_or_else(|e| panic!("websocket send: {e}"));
}

fn pump(
    mut ws: Socket,
    rx: mpsc::Receiver<String>,
    msgs: Arc<Mutex<Vec<Value>>>,
    stop: Arc<AtomicBool>,
    closed: Arc<AtomicBool>,
) {
    while !stop.load(Ordering::Relaxed) {
        while let Ok(m) = rx.try_recv() {
            if ws.send(Message::text(m)).is_err() {
                closed.store(true, Ordering::Relaxed);
                return;
            }
        }
        match ws.read() {
            Ok(Message::Text(t)) => {
                let v: Value = serde_json::from_str(t.as_str())
                    .unwrap_or_else(|_| json!({ "type": "unparsable", "text": t.as_str() }));
                match v["type"].as_str() {
                    Some("ping") => {
                        let _ = ws.send(Message::text(json!({ "type": "pong" }).to_string()));
                    }
                    Some("pong") => {}
                    _ => msgs.lock().expect("lock").push(v),
                }
            }
            Ok(Message::Close(_)) => {
                closed.store(true, Ordering::Relaxed);
                return;
            }
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => {
                closed.store(true, Ordering::Relaxed);
                return;
            }
        }
    }
    let _ = ws.close(None);
    let _ = ws.flush();
}
