//! A client of the chat gateway (`WS /v1/chat/<channel>`): a background thread reads
//! every frame into a list and records the server's close code; the test sends JSON,
//! raw frames, and waits for what it expects.

use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::Value;
use tungstenite::Message;
use tungstenite::client::IntoClientRequest;
use tungstenite::protocol::frame::Frame;
use tungstenite::protocol::frame::coding::{Data, OpCode};

use crate::wait_until;

/// What the background thread saw.
#[derive(Default)]
struct Seen {
    msgs: Vec<Value>,
    close_code: Option<u16>,
    closed: bool,
}

/// A chat connection.
pub struct ChatClient {
    seen: Arc<Mutex<Seen>>,
    out: mpsc::Sender<Message>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ChatClient {
    /// Connects to `ws://127.0.0.1:<port><path>` (path with its query), with an optional
    /// bearer token in the `Authorization` header. Panics when the upgrade is refused.
    pub fn connect(port: u16, path: &str, bearer: Option<&str>) -> Self {
        Self::try_connect(port, path, bearer)
            .unwrap_or_else(|e| panic!("chat websocket {path} refused: {e}"))
    }

    /// [`ChatClient::connect`] without panicking: the upgrade error (e.g. HTTP 401/404).
    pub fn try_connect(port: u16, path: &str, bearer: Option<&str>) -> Result<Self, String> {
        let stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| e.to_string())?;
        let mut req = format!("ws://127.0.0.1:{port}{path}")
            .into_client_request()
            .map_err(|e| e.to_string())?;
        if let Some(t) = bearer {
            req.headers_mut().insert(
                "authorization",
                format!("Bearer {t}").parse().map_err(|_| "bad token")?,
            );
        }
        let (ws, _) = tungstenite::client::client(req, stream).map_err(|e| e.to_string())?;
        ws.get_ref()
            .set_read_timeout(Some(Duration::from_millis(50)))
            .map_err(|e| e.to_string())?;
        let seen = Arc::new(Mutex::new(Seen::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (out, rx) = mpsc::channel();
        let thread = {
            let (seen, stop) = (seen.clone(), stop.clone());
            std::thread::spawn(move || pump(ws, rx, seen, stop))
        };
        Ok(Self {
            seen,
            out,
            stop,
            thread: Some(thread),
        })
    }

    /// Sends a JSON object.
    pub fn send(&self, v: &Value) {
        self.send_raw(Message::text(v.to_string()));
    }

    /// Sends `{"type":"send","text":…,"nonce":…}`.
    pub fn say(&self, text: &str, nonce: &str) {
        self.send(&serde_json::json!({ "type": "send", "text": text, "nonce": nonce }));
    }

    /// Sends any websocket message.
    pub fn send_raw(&self, m: Message) {
        let _ = self.out.send(m);
    }

    /// Sends a final text frame whose payload is `bytes` as they are (invalid UTF-8 too).
    pub fn send_text_bytes(&self, bytes: Vec<u8>) {
        self.send_raw(Message::Frame(Frame::message(
            bytes,
            OpCode::Data(Data::Text),
            true,
        )));
    }

    /// Every JSON frame received so far.
    pub fn messages(&self) -> Vec<Value> {
        self.seen.lock().expect("lock").msgs.clone()
    }

    /// Frames of one `type`.
    pub fn of_type(&self, t: &str) -> Vec<Value> {
        self.messages()
            .into_iter()
            .filter(|m| m["type"] == t)
            .collect()
    }

    /// Texts of the `message` frames and of the messages in `history` frames, in order.
    pub fn texts(&self) -> Vec<String> {
        let mut out = Vec::new();
        for m in self.messages() {
            match m["type"].as_str() {
                Some("message") => out.push(m["text"].as_str().unwrap_or_default().to_owned()),
                Some("history") => {
                    for h in m["messages"].as_array().into_iter().flatten() {
                        out.push(h["text"].as_str().unwrap_or_default().to_owned());
                    }
                }
                _ => {}
            }
        }
        out
    }

    /// The close code the server sent, once it did.
    pub fn close_code(&self) -> Option<u16> {
        self.seen.lock().expect("lock").close_code
    }

    /// Whether the connection ended.
    pub fn closed(&self) -> bool {
        self.seen.lock().expect("lock").closed
    }

    /// Waits until `pred` holds for the frames received so far.
    pub fn wait_for(&self, timeout: Duration, mut pred: impl FnMut(&[Value]) -> bool) -> bool {
        wait_until(timeout, || pred(&self.messages()))
    }

    /// Waits for a frame of type `t` matching `pred`, and returns it.
    pub fn wait_type(
        &self,
        t: &str,
        timeout: Duration,
        mut pred: impl FnMut(&Value) -> bool,
    ) -> Option<Value> {
        let mut found = None;
        wait_until(timeout, || {
            found = self.of_type(t).into_iter().find(|m| pred(m));
            found.is_some()
        });
        found
    }

    /// A description for assertion messages.
    pub fn describe(&self) -> String {
        let s = self.seen.lock().expect("lock");
        format!(
            "closed={} close_code={:?} frames={}",
            s.closed,
            s.close_code,
            serde_json::to_string_pretty(&s.msgs).unwrap_or_default()
        )
    }
}

impl Drop for ChatClient {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

type Socket = tungstenite::WebSocket<TcpStream>;

fn pump(
    mut ws: Socket,
    rx: mpsc::Receiver<Message>,
    seen: Arc<Mutex<Seen>>,
    stop: Arc<AtomicBool>,
) {
    let end = |seen: &Arc<Mutex<Seen>>| seen.lock().expect("lock").closed = true;
    while !stop.load(Ordering::Relaxed) {
        while let Ok(m) = rx.try_recv() {
            if ws.send(m).is_err() {
                // The server may have closed already: keep reading its close frame.
                break;
            }
        }
        match ws.read() {
            Ok(Message::Text(t)) => {
                let v: Value = serde_json::from_str(t.as_str()).unwrap_or_else(
                    |_| serde_json::json!({ "type": "unparsable", "text": t.as_str() }),
                );
                seen.lock().expect("lock").msgs.push(v);
            }
            Ok(Message::Close(f)) => {
                let mut s = seen.lock().expect("lock");
                s.close_code = f.map(|f| u16::from(f.code));
                s.closed = true;
                drop(s);
                let _ = ws.flush();
                return;
            }
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => {
                end(&seen);
                return;
            }
        }
    }
    let _ = ws.close(None);
    let _ = ws.flush();
}

/// A `redis-server` on a free loopback port, without persistence; killed on drop.
pub struct Redis {
    proc: crate::Process,
    /// `127.0.0.1:<port>`.
    pub addr: String,
    _dir: crate::TempDir,
}

impl Redis {
    /// Starts it and waits (10 s) until it accepts connections.
    pub fn start() -> Self {
        let found = std::process::Command::new("redis-server")
            .arg("--version")
            .stdout(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            found,
            "redis-server is not installed: run `cargo xtask setup --test` (Debian package redis-server)"
        );
        let dir = crate::TempDir::new("redis");
        let port = crate::free_port();
        let mut cmd = std::process::Command::new("redis-server");
        cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&dir.0);
        let proc = crate::Process::spawn("redis-server", cmd, dir.0.join("redis.log"));
        let addr = format!("127.0.0.1:{port}");
        assert!(
            wait_until(Duration::from_secs(10), || TcpStream::connect(&addr)
                .is_ok()),
            "redis-server did not listen on {addr}:\n{}",
            proc.log()
        );
        Self {
            proc,
            addr,
            _dir: dir,
        }
    }

    /// Its log.
    pub fn log(&self) -> String {
        self.proc.log()
    }
}

/// `POST /v1/moderation/<channel>/actions` with `body` under `token`: the status and the
/// JSON answer (null when not JSON).
pub fn moderate(api: u16, token: &str, channel: &str, body: Value) -> (u16, Value) {
    let auth = format!("Bearer {token}");
    let r = crate::http::post_json(
        api,
        &format!("/v1/moderation/{channel}/actions"),
        &[("Authorization", auth.as_str())],
        &body.to_string(),
    )
    .expect("moderation request");
    (
        r.status,
        serde_json::from_slice(&r.body).unwrap_or(Value::Null),
    )
}
