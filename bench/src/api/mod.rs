//! `weir-bench api`: GraphQL throughput and latency per core, and publish-authorisation
//! latency in split mode (data plane → control plane → etcd), on loopback.
//!
//! - GraphQL: `weir serve --shards 1` (embedded store); C client threads on keep-alive
//!   connections run one operation for S seconds; we count successful answers, their
//!   latencies, and the CPU seconds the weir process used in that window.
//! - Publish authorisation: etcd + `weir controlplane`; the call a data-plane node makes
//!   for every publish (`POST /v1/node/authorize`), sequentially and with 8 in flight.

pub(crate) mod client;
pub(crate) mod procs;

use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::{Value, json};

use client::Conn;
use procs::{Etcd, Weir};

/// One measured scenario.
struct Row {
    name: String,
    ok: u64,
    errors: u64,
    secs: f64,
    cpu: f64,
    p50_ms: f64,
    p99_ms: f64,
}

impl Row {
    fn line(&self) -> String {
        let rate = self.ok as f64 / self.secs;
        let per_core = if self.cpu > 0.0 {
            self.ok as f64 / self.cpu
        } else {
            f64::NAN
        };
        format!(
            "| {} | {:.0} | {:.0} | {:.2} | {:.2} | {} |",
            self.name, rate, per_core, self.p50_ms, self.p99_ms, self.errors
        )
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    crate::stats::percentile(sorted, p)
}

/// Runs `clients` threads, each doing `op` on its own connection until `secs` pass.
fn load(
    name: &str,
    port: u16,
    pid: u32,
    clients: usize,
    secs: f64,
    op: impl Fn(&mut Conn, usize) -> anyhow::Result<bool> + Sync,
) -> anyhow::Result<Row> {
    crate::progress!("api: {name} with {clients} clients for {secs:.0} s");
    let cpu0 = crate::procstat::cpu_secs(pid)?;
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(secs);
    let results: Vec<(Vec<f64>, u64)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..clients)
            .map(|c| {
                let op = &op;
                s.spawn(move || {
                    let mut lat = Vec::new();
                    let mut errors = 0;
                    let Ok(mut conn) = Conn::connect(port) else {
                        return (lat, 1);
                    };
                    let mut i = 0;
                    while Instant::now() < deadline {
                        let t = Instant::now();
                        match op(&mut conn, c * 1_000_000 + i) {
                            Ok(true) => lat.push(t.elapsed().as_secs_f64() * 1000.0),
                            Ok(false) => errors += 1,
                            Err(_) => {
                                errors += 1;
                                match Conn::connect(port) {
                                    Ok(c) => conn = c,
                                    Err(_) => break,
                                }
                            }
                        }
                        i += 1;
                    }
                    (lat, errors)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let elapsed = start.elapsed().as_secs_f64();
    let cpu = crate::procstat::cpu_secs(pid)? - cpu0;
    let mut all: Vec<f64> = results.iter().flat_map(|r| r.0.iter().copied()).collect();
    all.sort_by(f64::total_cmp);
    Ok(Row {
        name: name.to_owned(),
        ok: all.len() as u64,
        errors: results.iter().map(|r| r.1).sum(),
        secs: elapsed,
        cpu,
        p50_ms: percentile(&all, 50.0),
        p99_ms: percentile(&all, 99.0),
    })
}

fn gql_ok(v: &Value) -> bool {
    v.get("errors").is_none() && v.get("data").is_some_and(|d| !d.is_null())
}

/// Signs up, logs in and creates a channel; returns (token, channel id).
pub(crate) fn account(port: u16, tag: &str) -> anyhow::Result<(String, String)> {
    let mut c = Conn::connect(port)?;
    let (user, pass) = (format!("bench{tag}"), "correct horse battery staple");
    let v = c.graphql(
        None,
        "mutation($u:String!,$e:String!,$p:String!){register(username:$u,email:$e,password:$p){id}}",
        json!({"u": user, "e": format!("{user}@example.org"), "p": pass}),
    )?;
    anyhow::ensure!(gql_ok(&v), "register failed: {v}");
    let v = c.graphql(
        None,
        "mutation($l:String!,$p:String!){login(login:$l,password:$p){accessToken}}",
        json!({"l": user, "p": pass}),
    )?;
    let token = v["data"]["login"]["accessToken"]
        .as_str()
        .with_context(|| format!("login failed: {v}"))?
        .to_owned();
    let v = c.graphql(
        Some(&token),
        "mutation($s:String!){createChannel(slug:$s,title:\"bench\"){id}}",
        json!({"s": format!("bench-{tag}")}),
    )?;
    let id = v["data"]["createChannel"]["id"]
        .as_str()
        .with_context(|| format!("createChannel failed: {v}"))?
        .to_owned();
    Ok((token, id))
}

/// Runs the API benchmark; returns the Markdown result section.
pub fn run(args: &[String]) -> anyhow::Result<String> {
    let quick = args.iter().any(|a| a == "--quick");
    let secs = if quick { 5.0 } else { 15.0 };
    let clients: usize = args
        .iter()
        .position(|a| a == "--clients")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    let mut rows = Vec::new();

    // GraphQL on the all-in-one node, one shard.
    let weir = Weir::serve()?;
    let (token, channel) = account(weir.api_port, "serve")?;
    let t = token.as_str();
    // One channel per client for the mutation, so clients do not conflict on one record.
    let mut own = vec![channel];
    let mut conn = Conn::connect(weir.api_port)?;
    for k in 1..clients {
        let v = conn.graphql(
            Some(t),
            "mutation($s:String!){createChannel(slug:$s,title:\"bench\"){id}}",
            json!({"s": format!("bench-serve-{k}")}),
        )?;
        own.push(
            v["data"]["createChannel"]["id"]
                .as_str()
                .with_context(|| format!("createChannel failed: {v}"))?
                .to_owned(),
        );
    }
    rows.push(load(
        "query `me`",
        weir.api_port,
        weir.pid(),
        clients,
        secs,
        |c, _| {
            Ok(gql_ok(&c.graphql(
                Some(t),
                "{me{id username}}",
                json!({}),
            )?))
        },
    )?);
    rows.push(load(
        "query `channels(first:10)`",
        weir.api_port,
        weir.pid(),
        clients,
        secs,
        |c, _| {
            let q = "{channels(first:10){edges{node{id slug title}}}}";
            Ok(gql_ok(&c.graphql(Some(t), q, json!({}))?))
        },
    )?);
    rows.push(load(
        "mutation `updateChannel`",
        weir.api_port,
        weir.pid(),
        clients,
        secs,
        |c, i| {
            let q = "mutation($id:ID!,$t:String){updateChannel(id:$id,title:$t){id}}";
            let id = &own[(i / 1_000_000) % own.len()];
            Ok(gql_ok(&c.graphql(
                Some(t),
                q,
                json!({"id": id, "t": format!("t{i}")}),
            )?))
        },
    )?);
    drop(weir);

    // Publish authorisation in split mode.
    let etcd = Etcd::start()?;
    let cp = Weir::controlplane(&etcd.endpoint)?;
    let (token, channel) = account(cp.api_port, "split")?;
    let mut c = Conn::connect(cp.api_port)?;
    let v = c.graphql(
        Some(&token),
        "mutation($c:ID!){issueStreamKey(channelId:$c){secret}}",
        json!({"c": channel}),
    )?;
    let key = v["data"]["issueStreamKey"]["secret"]
        .as_str()
        .with_context(|| format!("issueStreamKey failed: {v}"))?;
    let key_id = key.split('.').nth(1).context("key without id")?.to_owned();
    let node_token = cp.node_token.clone();
    let authorize = |c: &mut Conn, _| -> anyhow::Result<bool> {
        let (status, v) = c.post_json(
            "/v1/node/authorize",
            Some(&node_token),
            &json!({"key_id": key_id}),
        )?;
        Ok(status == 200 && v.get("channel_id").is_some())
    };
    rows.push(load(
        "publish authorisation (1 in flight)",
        cp.api_port,
        cp.pid(),
        1,
        secs,
        authorize,
    )?);
    rows.push(load(
        "publish authorisation (8 in flight)",
        cp.api_port,
        cp.pid(),
        8,
        secs,
        authorize,
    )?);
    drop(cp);
    drop(etcd);

    let mut out = String::new();
    out.push_str("| scenario | ok/s | ok per CPU-second | p50 ms | p99 ms | errors |\n");
    out.push_str("|---|---|---|---|---|---|\n");
    for r in &rows {
        out.push_str(&r.line());
        out.push('\n');
    }
    println!("\n{out}");
    Ok(out)
}
