//! Janus (Debian's `janus` 1.1.2) as the peer SFU: a config folder written in a scratch
//! directory (only the HTTP transport and the videoroom plugin loaded, ICE-lite, one
//! room for H.264 + Opus), and a client of its HTTP API for the publisher and the
//! subscribers: one Janus session, one plugin handle per peer connection.

use std::collections::VecDeque;
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use serde_json::{Value, json};

use super::signal::request;
use crate::servers::{free_port, tail};

/// The room the bench publishes into.
const ROOM: u64 = 1234;
/// Where Debian installs Janus's plugins and transports.
const LIB: &str = "/usr/lib/x86_64-linux-gnu/janus";

/// A running Janus.
pub struct Janus {
    child: Child,
    /// HTTP API address.
    pub http: SocketAddr,
    /// The address Janus gathers its ICE candidates on (it leaves out `lo`): the
    /// machine's own address, so the client's peers bind there too.
    pub ice_ip: std::net::IpAddr,
}

impl Janus {
    /// Writes the config folder under `work` and starts Janus (under `taskset -c CPU`
    /// when `cpu` is set) with `event_loops` ICE loop threads (0: one per handle).
    pub fn start(work: &Path, cpu: Option<usize>, event_loops: u32) -> anyhow::Result<Self> {
        let debug: u32 = std::env::var("WEIR_BENCH_JANUS_DEBUG")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(3);
        let dir = work.join("janus");
        for sub in ["plugins", "transports", "none"] {
            std::fs::create_dir_all(dir.join(sub))?;
        }
        for (sub, lib) in [
            ("plugins", "libjanus_videoroom.so"),
            ("transports", "libjanus_http.so"),
        ] {
            let link = dir.join(sub).join(lib);
            let _ = std::fs::remove_file(&link);
            std::os::unix::fs::symlink(Path::new(LIB).join(sub).join(lib), &link)
                .with_context(|| format!("{LIB}/{sub}/{lib}: is Debian's janus installed?"))?;
        }
        let port = free_port()?;
        let d = dir.display();
        std::fs::write(
            dir.join("janus.jcfg"),
            format!(
                "general: {{\n  configs_folder = \"{d}\"\n  plugins_folder = \"{d}/plugins\"\n  \
                 transports_folder = \"{d}/transports\"\n  events_folder = \"{d}/none\"\n  \
                 loggers_folder = \"{d}/none\"\n  debug_level = {debug}\n  session_timeout = 0\n  \
                 event_loops = {event_loops}\n}}\n\
                 media: {{\n  ipv6 = false\n  rtp_port_range = \"40000-60000\"\n}}\n\
                 nat: {{\n  nice_debug = false\n  ice_lite = true\n  ice_enforce_list = \"lo\"\n  \
                 ignore_mdns = true\n}}\n"
            ),
        )?;
        std::fs::write(
            dir.join("janus.transport.http.jcfg"),
            format!(
                "general: {{\n  json = \"plain\"\n  base_path = \"/janus\"\n  http = true\n  \
                 port = {port}\n  interface = \"lo\"\n  https = false\n}}\nadmin: {{\n  admin_http = false\n}}\n"
            ),
        )?;
        std::fs::write(
            dir.join("janus.plugin.videoroom.jcfg"),
            format!(
                "general: {{\n}}\nroom-{ROOM}: {{\n  description = \"weir-bench\"\n  publishers = 1\n  \
                 bitrate = 0\n  fir_freq = 0\n  videocodec = \"h264\"\n  audiocodec = \"opus\"\n}}\n"
            ),
        )?;
        let log = work.join("janus.log");
        let mut cmd = match cpu {
            Some(c) => {
                let mut t = Command::new("taskset");
                t.args(["-c", &c.to_string(), "janus"]);
                t
            }
            None => Command::new("janus"),
        };
        let mut child = cmd
            .arg("-F")
            .arg(&dir)
            .arg("-C")
            .arg(dir.join("janus.jcfg"))
            .args(["-o", "-i", "127.0.0.1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting janus (apt-get install janus)")?;
        for pipe in [
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log)?;
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    let _ = writeln!(file, "{line}");
                }
            });
        }
        let http = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect_timeout(&http, Duration::from_millis(200)).is_err() {
            if let Some(status) = child.try_wait()? {
                bail!("janus exited with {status}; log: {}", tail(&log));
            }
            ensure!(
                Instant::now() < deadline,
                "janus not listening in 20 s; log: {}",
                tail(&log)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let ice_ip = host_ip();
        Ok(Self {
            child,
            http,
            ice_ip,
        })
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Janus {
    fn drop(&mut self) {
        if !crate::procstat::term_and_wait(&mut self.child, Duration::from_secs(5)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A Janus API session: every peer of the bench is a handle on it.
pub struct Session {
    http: SocketAddr,
    id: u64,
    events: VecDeque<Value>,
    transaction: u64,
}

impl Session {
    /// Creates a session.
    pub fn create(http: SocketAddr) -> anyhow::Result<Self> {
        let mut s = Self {
            http,
            id: 0,
            events: VecDeque::new(),
            transaction: 0,
        };
        let r = s.post("/janus", json!({"janus": "create"}))?;
        s.id = data_id(&r)?;
        Ok(s)
    }

    fn post(&mut self, path: &str, mut body: Value) -> anyhow::Result<Value> {
        self.transaction += 1;
        body["transaction"] = json!(format!("t{}", self.transaction));
        let r = request(
            self.http,
            "POST",
            path,
            Some("application/json"),
            &body.to_string(),
            Duration::from_secs(10),
        )?;
        ensure!(r.status == 200, "POST {path} answered {}", r.status);
        let v: Value = serde_json::from_str(&r.body).context("janus reply is not JSON")?;
        if v["janus"] == "error" {
            bail!("janus: {}", v["error"]);
        }
        Ok(v)
    }

    /// Attaches a videoroom handle.
    pub fn attach(&mut self) -> anyhow::Result<u64> {
        let path = format!("/janus/{}", self.id);
        let r = self.post(
            &path,
            json!({"janus": "attach", "plugin": "janus.plugin.videoroom"}),
        )?;
        data_id(&r)
    }

    /// Sends a plugin message on `handle` and waits for the plugin's event on it.
    fn message(&mut self, handle: u64, body: Value, jsep: Option<Value>) -> anyhow::Result<Value> {
        let mut msg = json!({"janus": "message", "body": body});
        if let Some(j) = jsep {
            msg["jsep"] = j;
        }
        let path = format!("/janus/{}/{handle}", self.id);
        let r = self.post(&path, msg)?;
        if r["janus"] == "success" {
            return Ok(r);
        }
        self.event_for(handle)
    }

    /// The next plugin event for `handle` (long polls, queueing others' events).
    fn event_for(&mut self, handle: u64) -> anyhow::Result<Value> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let mine = |e: &Value| e["sender"].as_u64() == Some(handle) && e["janus"] == "event";
            if let Some(i) = self.events.iter().position(mine) {
                let e = self.events.remove(i).context("event vanished")?;
                if let Some(err) = e["plugindata"]["data"].get("error") {
                    bail!("videoroom: {err}");
                }
                return Ok(e);
            }
            ensure!(
                Instant::now() < deadline,
                "no janus event for handle {handle} in 15 s"
            );
            let path = format!("/janus/{}?maxev=20", self.id);
            let r = request(self.http, "GET", &path, None, "", Duration::from_secs(40))?;
            ensure!(r.status == 200, "GET {path} answered {}", r.status);
            match serde_json::from_str::<Value>(&r.body).context("janus event is not JSON")? {
                Value::Array(list) => self.events.extend(list),
                v => self.events.push_back(v),
            }
            // Events nobody waits for (webrtcup, media, slowlink…) are dropped.
            self.events.retain(|e| e["janus"] == "event");
        }
    }

    /// Joins the room as its publisher and publishes `offer`; returns the answer SDP
    /// and the publisher's feed id.
    pub fn publish(&mut self, handle: u64, offer: &str) -> anyhow::Result<(String, u64)> {
        let joined = self.message(
            handle,
            json!({"request": "join", "ptype": "publisher", "room": ROOM, "display": "bench"}),
            None,
        )?;
        let feed = joined["plugindata"]["data"]["id"]
            .as_u64()
            .context("join answered no publisher id")?;
        let e = self.message(
            handle,
            json!({"request": "publish", "audio": true, "video": true}),
            Some(json!({"type": "offer", "sdp": offer})),
        )?;
        self.trickle_done(handle)?;
        Ok((jsep_sdp(&e, "answer")?, feed))
    }

    /// Joins as a subscriber of `feed`: returns Janus's offer.
    pub fn subscribe(&mut self, handle: u64, feed: u64) -> anyhow::Result<String> {
        let e = self.message(
            handle,
            json!({"request": "join", "ptype": "subscriber", "room": ROOM, "streams": [{"feed": feed}]}),
            None,
        )?;
        jsep_sdp(&e, "offer")
    }

    /// Starts a subscription with the client's answer.
    pub fn start(&mut self, handle: u64, answer: &str) -> anyhow::Result<()> {
        self.message(
            handle,
            json!({"request": "start", "room": ROOM}),
            Some(json!({"type": "answer", "sdp": answer})),
        )?;
        self.trickle_done(handle)
    }

    /// Tells Janus the client's SDP held all its candidates (no trickle to wait for).
    fn trickle_done(&mut self, handle: u64) -> anyhow::Result<()> {
        let path = format!("/janus/{}/{handle}", self.id);
        self.post(
            &path,
            json!({"janus": "trickle", "candidate": {"completed": true}}),
        )?;
        Ok(())
    }
}

/// The machine's own (non-loopback) IPv4 address, the one libnice gathers on: the local
/// end of a UDP socket connected towards a documentation address (connecting a UDP
/// socket sends nothing). 127.0.0.1 when there is no route.
fn host_ip() -> std::net::IpAddr {
    std::net::UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| {
            s.connect("198.51.100.1:9")?;
            s.local_addr()
        })
        .map_or(std::net::IpAddr::from([127, 0, 0, 1]), |a| a.ip())
}

fn data_id(v: &Value) -> anyhow::Result<u64> {
    v["data"]["id"]
        .as_u64()
        .with_context(|| format!("janus reply without an id: {v}"))
}

fn jsep_sdp(e: &Value, kind: &str) -> anyhow::Result<String> {
    ensure!(e["jsep"]["type"] == kind, "janus sent no {kind}: {e}");
    e["jsep"]["sdp"]
        .as_str()
        .map(str::to_owned)
        .context("jsep without sdp")
}
