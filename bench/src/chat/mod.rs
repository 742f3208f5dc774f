//! `weir-bench chat`: the chat gateway under load (issue 11, "How fast").
//!
//! Scenarios: one big room (`room`, default 10,000 connections) and many small rooms
//! (`rooms`, 1,000 × 10), each on one gateway (`weir serve`) and on two gateways sharing
//! rooms through Redis (`room-redis`, `rooms-redis`: `weir controlplane` + `weir chat` on
//! one etcd and one `redis-server`, connections split between them). Per scenario: the
//! connections join (progress printed), stay idle (RSS delta per connection), then the
//! writers send at fixed steps of target deliveries per second; per step the bench
//! reports deliveries/s, the gateways' CPU (from /proc), deliveries per gateway
//! core-second, send → delivery latency (p50/p99/max), its own CPU and the other load
//! on the machine; at the end messages lost (accepted ids a member never got).
//!
//! ```text
//! weir-bench chat [--quick] [--scenarios room,rooms,room-redis,rooms-redis]
//!                 [--connections N] [--rooms R] [--writers W] [--users U]
//!                 [--deliveries 50000,100000,150000] [--step-secs S]
//!                 [--readme | --no-readme]
//! ```

mod load;
mod procs;
mod report;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use serde_json::json;

use crate::api::client::Conn;
use load::{Member, Outcome, Shared};
use procs::Cluster;

/// Settings of a run.
#[derive(Debug, Clone)]
pub struct Config {
    quick: bool,
    scenarios: Vec<String>,
    connections: usize,
    rooms: usize,
    writers: usize,
    users: usize,
    deliveries: Vec<f64>,
    step_secs: f64,
    readme: Option<bool>,
}

impl Config {
    fn parse(args: &[String]) -> anyhow::Result<Self> {
        let quick = args.iter().any(|a| a == "--quick");
        let mut c = Self {
            quick,
            scenarios: ["room", "rooms", "room-redis", "rooms-redis"]
                .map(str::to_owned)
                .into(),
            connections: if quick { 2000 } else { 10_000 },
            rooms: if quick { 200 } else { 1000 },
            writers: 20,
            users: 20,
            deliveries: if quick {
                vec![20_000.0, 50_000.0]
            } else {
                vec![50_000.0, 100_000.0, 150_000.0]
            },
            step_secs: if quick { 5.0 } else { 10.0 },
            readme: None,
        };
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
            match flag.as_str() {
                "--quick" => {}
                "--readme" => c.readme = Some(true),
                "--no-readme" => c.readme = Some(false),
                "--scenarios" => c.scenarios = value()?.split(',').map(str::to_owned).collect(),
                "--connections" => c.connections = value()?.parse()?,
                "--rooms" => c.rooms = value()?.parse()?,
                "--writers" => c.writers = value()?.parse()?,
                "--users" => c.users = value()?.parse()?,
                "--deliveries" => {
                    c.deliveries = value()?
                        .split(',')
                        .map(|v| v.trim().parse::<f64>())
                        .collect::<Result<_, _>>()?
                }
                "--step-secs" => c.step_secs = value()?.parse()?,
                other => bail!("unknown flag {other} (see the top of bench/src/chat/mod.rs)"),
            }
        }
        for s in &c.scenarios {
            ensure!(
                ["room", "rooms", "room-redis", "rooms-redis"].contains(&s.as_str()),
                "unknown scenario {s} (room, rooms, room-redis, rooms-redis)"
            );
        }
        ensure!(
            c.connections >= c.rooms.max(2),
            "fewer connections than rooms"
        );
        ensure!(
            c.writers >= 1 && c.users >= 1,
            "--writers and --users must be ≥ 1"
        );
        ensure!(c.users <= 10_000, "--users: at most 10,000");
        ensure!(c.step_secs >= 2.0, "steps need at least 2 s");
        Ok(c)
    }
}

/// One measured step.
#[derive(Debug, Clone)]
pub struct Step {
    target: f64,
    offered: f64,
    accepted: f64,
    deliveries: f64,
    gateway_cores: f64,
    helper_cores: f64,
    client_cores: f64,
    other_cores: f64,
    p50: f64,
    p99: f64,
    max: f64,
}

/// One scenario's results.
#[derive(Debug, Clone)]
pub struct Scenario {
    name: String,
    gateways: usize,
    connections: usize,
    rooms: usize,
    joined: usize,
    connect_secs: f64,
    rss_before: u64,
    rss_idle: u64,
    steps: Vec<Step>,
    sent: u64,
    acked: u64,
    refused: u64,
    codes: String,
    lost: u64,
    repeated: u64,
    dropped: usize,
    drop_codes: String,
}

/// Busy jiffies of the whole machine (/proc/stat), in seconds.
fn machine_busy_secs() -> f64 {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = text.lines().next() else {
        return 0.0;
    };
    let v: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal
    let busy: f64 = v
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4 && *i < 8)
        .map(|(_, x)| x)
        .sum();
    busy / 100.0
}

struct Sample {
    at: Instant,
    deliveries: u64,
    acked: u64,
    sent: u64,
    gw: f64,
    helpers: f64,
    me: f64,
    busy: f64,
}

fn sample(c: &Cluster, sh: &Shared) -> Sample {
    Sample {
        at: Instant::now(),
        deliveries: sh.deliveries.load(Ordering::Relaxed),
        acked: sh.acked.load(Ordering::Relaxed),
        sent: sh.sent.load(Ordering::Relaxed),
        gw: c.gateway_cpu(),
        helpers: c.helper_cpu(),
        me: crate::procstat::cpu_secs(std::process::id()).unwrap_or(0.0),
        busy: machine_busy_secs(),
    }
}

/// Writers' access tokens and the rooms' channel ids.
type Accounts = (Vec<Arc<str>>, Vec<Arc<str>>);

/// Registers `n` writer accounts and an owner with `rooms` channels; returns (tokens,
/// channel ids).
fn accounts(api: u16, n: usize, rooms: usize) -> anyhow::Result<Accounts> {
    let (owner_token, first) = crate::api::account(api, "chatowner")?;
    let mut c = Conn::connect(api)?;
    let mut channels: Vec<Arc<str>> = vec![first.into()];
    for k in 1..rooms {
        let v = c.graphql(
            Some(&owner_token),
            "mutation($s:String!){createChannel(slug:$s,title:\"bench\"){id}}",
            json!({"s": format!("chat-room-{k}")}),
        )?;
        let id = v["data"]["createChannel"]["id"]
            .as_str()
            .with_context(|| format!("createChannel failed: {v}"))?;
        channels.push(id.into());
        if k % 250 == 0 {
            crate::progress!("chat: {k}/{rooms} channels created");
        }
    }
    let mut tokens = Vec::new();
    for u in 0..n {
        // Each account logs in from an address of its own (2 of the 10 login attempts an
        // address may make at once).
        let mut c = Conn::connect_from(api, [127, 0, 1 + (u / 250) as u8, 1 + (u % 250) as u8])?;
        let (user, pass) = (format!("chatw{u}"), "correct horse battery staple");
        let v = c.graphql(
            None,
            "mutation($u:String!,$e:String!,$p:String!){register(username:$u,email:$e,password:$p){id}}",
            json!({"u": user, "e": format!("{user}@example.org"), "p": pass}),
        )?;
        ensure!(v.get("errors").is_none(), "register failed: {v}");
        let v = c.graphql(
            None,
            "mutation($l:String!,$p:String!){login(login:$l,password:$p){accessToken}}",
            json!({"l": user, "p": pass}),
        )?;
        let t = v["data"]["login"]["accessToken"]
            .as_str()
            .with_context(|| format!("login failed: {v}"))?;
        tokens.push(t.into());
    }
    Ok((tokens, channels))
}

/// Runs one scenario.
fn scenario(name: &str, cfg: &Config) -> anyhow::Result<Scenario> {
    let shared = name.ends_with("-redis");
    let many = name.starts_with("rooms");
    let rooms = if many { cfg.rooms } else { 1 };
    let per_room = cfg.connections / rooms;
    let connections = per_room * rooms;
    let writers = if many {
        rooms
    } else {
        cfg.writers.min(per_room)
    };
    crate::progress!(
        "chat {name}: {} gateway(s), {rooms} room(s) × {per_room}, {writers} writers",
        if shared { 2 } else { 1 }
    );
    let cluster = if shared {
        Cluster::shared()?
    } else {
        Cluster::single()?
    };
    let (tokens, channels) = accounts(cluster.api_port, cfg.users, rooms)?;
    let ports: Vec<u16> = cluster.gateways.iter().map(|g| g.port).collect();
    // Members: room-major; in small rooms member 0 writes, in the big room the first W.
    let mut members = Vec::with_capacity(connections);
    let mut w = 0;
    for (room, channel) in channels.iter().enumerate() {
        for k in 0..per_room {
            let writes = if many { k == 0 } else { k < writers };
            let idx = room * per_room + k;
            members.push(Member {
                port: ports[idx % ports.len()],
                channel: channel.clone(),
                room,
                token: writes.then(|| tokens[w % tokens.len()].clone()),
                writer: writes.then_some(w),
            });
            w += usize::from(writes);
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let sh = Shared::new(rooms, cfg.deliveries.len());
    let rss_before = cluster.gateway_rss();
    let started = Instant::now();
    let gate = Arc::new(tokio::sync::Semaphore::new(64));
    let handles: Vec<_> = members
        .into_iter()
        .map(|m| rt.spawn(load::member(m, sh.clone(), gate.clone())))
        .collect();
    // Join: wait for every connection (or a failure), printing progress.
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let (ready, failed) = (
            sh.ready.load(Ordering::Relaxed),
            sh.failed.load(Ordering::Relaxed),
        );
        if ready + failed >= connections || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(1000));
        crate::progress!("chat {name}: {ready}/{connections} joined, {failed} failed");
    }
    let connect_secs = started.elapsed().as_secs_f64();
    let joined = sh.ready.load(Ordering::Relaxed);
    if joined < connections {
        let err = sh.first_error.lock().ok().and_then(|e| e.clone());
        crate::progress!(
            "chat {name}: only {joined}/{connections} joined (first error: {err:?}); {}",
            cluster.logs()
        );
    }
    std::thread::sleep(Duration::from_secs(3));
    let rss_idle = cluster.gateway_rss();
    crate::progress!(
        "chat {name}: {joined} joined in {connect_secs:.1} s; gateway RSS {:.1} → {:.1} MiB ({:.2} KiB per connection)",
        rss_before as f64 / 1048576.0,
        rss_idle as f64 / 1048576.0,
        rss_idle.saturating_sub(rss_before) as f64 / 1024.0 / joined.max(1) as f64
    );

    let mut steps = Vec::new();
    for (i, &target) in cfg.deliveries.iter().enumerate() {
        let msgs = target / per_room as f64;
        let _ = sh.rate.send(msgs / writers as f64);
        std::thread::sleep(Duration::from_secs(2));
        sh.phase.store(i + 1, Ordering::Relaxed);
        let a = sample(&cluster, &sh);
        std::thread::sleep(Duration::from_secs_f64(cfg.step_secs));
        sh.phase.store(0, Ordering::Relaxed);
        let b = sample(&cluster, &sh);
        let dt = b.at.duration_since(a.at).as_secs_f64();
        let gw = (b.gw - a.gw) / dt;
        let h = &sh.hists[i + 1];
        let s = Step {
            target,
            offered: (b.sent - a.sent) as f64 / dt,
            accepted: (b.acked - a.acked) as f64 / dt,
            deliveries: (b.deliveries - a.deliveries) as f64 / dt,
            gateway_cores: gw,
            helper_cores: (b.helpers - a.helpers) / dt,
            client_cores: (b.me - a.me) / dt,
            other_cores: ((b.busy - a.busy)
                - (b.gw - a.gw)
                - (b.helpers - a.helpers)
                - (b.me - a.me))
                / dt,
            p50: h.percentile_ms(50.0),
            p99: h.percentile_ms(99.0),
            max: h.percentile_ms(100.0),
        };
        crate::progress!(
            "chat {name}: target {target:.0}/s → {:.0} msg/s in, {:.0} deliveries/s, gateway {:.2} cores ({:.0}/core-s), p50 {:.1} p99 {:.1} max {:.1} ms, client {:.2} cores, others {:.2}",
            s.accepted,
            s.deliveries,
            s.gateway_cores,
            s.deliveries / s.gateway_cores.max(1e-9),
            s.p50,
            s.p99,
            s.max,
            s.client_cores,
            s.other_cores
        );
        let behind = s.deliveries < 0.8 * target;
        steps.push(s);
        if behind {
            crate::progress!("chat {name}: delivered < 80 % of the target: no higher step");
            break;
        }
    }
    // Stop writing; wait for every ack or error, then for the last deliveries.
    let _ = sh.rate.send(0.0);
    let deadline = Instant::now() + Duration::from_secs(20);
    while sh.sent.load(Ordering::Relaxed)
        > sh.acked.load(Ordering::Relaxed) + sh.refused.load(Ordering::Relaxed)
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(2));
    let _ = sh.stop.send(true);
    let outcomes: Vec<Outcome> = rt.block_on(async {
        let mut v = Vec::with_capacity(handles.len());
        for h in handles {
            v.push(h.await.unwrap_or_default());
        }
        v
    });
    rt.shutdown_timeout(Duration::from_secs(2));
    let room_max: Vec<u64> = sh
        .room_max
        .iter()
        .map(|a| a.load(Ordering::Relaxed))
        .collect();
    let mut lost = 0;
    let mut repeated = 0;
    let mut dropped = 0;
    let mut drop_codes = std::collections::BTreeMap::<String, usize>::new();
    for o in outcomes.iter().filter(|o| o.joined) {
        lost += o.missing + room_max[o.room].saturating_sub(o.last_id);
        repeated += o.repeated;
        if let Some(code) = o.closed_early {
            dropped += 1;
            *drop_codes
                .entry(code.map_or("none".into(), |c| c.to_string()))
                .or_default() += 1;
        }
    }
    let codes = sh
        .codes
        .lock()
        .map(|c| {
            c.iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    let out = Scenario {
        name: name.to_owned(),
        gateways: cluster.gateways.len(),
        connections,
        rooms,
        joined,
        connect_secs,
        rss_before,
        rss_idle,
        steps,
        sent: sh.sent.load(Ordering::Relaxed),
        acked: sh.acked.load(Ordering::Relaxed),
        refused: sh.refused.load(Ordering::Relaxed),
        codes,
        lost,
        repeated,
        dropped,
        drop_codes: drop_codes
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect::<Vec<_>>()
            .join(", "),
    };
    crate::progress!(
        "chat {name}: sent {}, acked {}, refused {} ({}), lost {lost}, repeated {repeated}, dropped {dropped} ({})",
        out.sent,
        out.acked,
        out.refused,
        out.codes,
        out.drop_codes
    );
    Ok(out)
}

/// Runs the chat benchmark.
pub fn run(args: &[String]) -> anyhow::Result<()> {
    let cfg = Config::parse(args)?;
    // Both ends of 10k connections in this process and in the gateways (inherited).
    let nofile = procs::raise_nofile(65_536)?;
    ensure!(
        nofile as usize > cfg.connections + 1000,
        "open-file limit {nofile} too low for {} connections (run as root)",
        cfg.connections
    );
    let mut results = Vec::new();
    for name in &cfg.scenarios {
        results.push(scenario(name, &cfg)?);
    }
    let text = report::render(&cfg, &results);
    println!("\n{text}");
    if cfg.readme.unwrap_or(!cfg.quick) {
        let readme = crate::bench_dir().join("README.md");
        report::write(&readme, &text)?;
        crate::progress!("chat results written to {}", readme.display());
    }
    Ok(())
}
