//! Commands of every room over one Redis connection, pipelined: the commands queued
//! while a batch's replies are read go out together in one write, and Redis answers
//! them in order. One command at a time under a lock (as before) made 1,000 busy rooms
//! wait for each other's round trips: hundreds of ms before a message was published.

use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, oneshot};

use super::{Conn, RedisTarget, redis_err};
use crate::error::Result;
use crate::resp::{self, Value};

/// Most commands written in one batch.
const BATCH: usize = 256;
/// Most commands waiting for a batch; callers wait beyond it.
const QUEUE: usize = 4096;
/// How long a reply may take before the connection is replaced.
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

struct Call {
    cmd: Vec<u8>,
    reply: oneshot::Sender<Result<Value>>,
}

/// A handle on the pipelined connection; its task runs until every handle is dropped.
#[derive(Clone)]
pub(super) struct Pipeline {
    calls: mpsc::Sender<Call>,
}

impl Pipeline {
    /// Starts the connection task (it connects on the first command, and again after
    /// an error) on the current tokio runtime.
    pub(super) fn start(target: RedisTarget) -> Self {
        let (calls, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(target, rx));
        Self { calls }
    }

    /// Runs one command; a Redis error reply is an `Err`.
    pub(super) async fn cmd(&self, args: &[&[u8]]) -> Result<Value> {
        let (reply, answer) = oneshot::channel();
        let call = Call {
            cmd: resp::encode(args),
            reply,
        };
        self.calls
            .send(call)
            .await
            .map_err(|_| redis_err("Redis connection task stopped"))?;
        answer
            .await
            .map_err(|_| redis_err("Redis connection task stopped"))?
    }
}

async fn run(target: RedisTarget, mut rx: mpsc::Receiver<Call>) {
    let mut conn: Option<Conn> = None;
    let mut calls = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut calls, BATCH).await > 0 {
        metrics::histogram!("weir_chat_redis_pipeline_commands").record(calls.len() as f64);
        if let Err(e) = exchange(&target, &mut conn, &mut calls).await {
            // A broken or desynchronised connection is replaced on the next batch.
            conn = None;
            for call in calls.drain(..) {
                let _ = call.reply.send(Err(redis_err(&e)));
            }
        }
    }
}

/// Writes `calls` in one go and answers each with its reply, in order. On an error
/// before the write, `calls` is left to the caller; after it, every call is answered
/// here (the rest with the error).
async fn exchange(
    target: &RedisTarget,
    conn: &mut Option<Conn>,
    calls: &mut Vec<Call>,
) -> Result<()> {
    if conn.is_none() {
        *conn = Some(Conn::connect(target).await?);
    }
    let Some(c) = conn.as_mut() else {
        return Err(redis_err("no connection"));
    };
    let mut bytes = Vec::with_capacity(calls.iter().map(|c| c.cmd.len()).sum());
    for call in calls.iter() {
        bytes.extend_from_slice(&call.cmd);
    }
    c.stream.write_all(&bytes).await.map_err(redis_err)?;
    let mut pending = calls.drain(..);
    while let Some(call) = pending.next() {
        let failed = match tokio::time::timeout(REPLY_TIMEOUT, c.read()).await {
            Ok(Ok(Value::Error(e))) => {
                let _ = call.reply.send(Err(redis_err(e)));
                continue;
            }
            Ok(Ok(v)) => {
                let _ = call.reply.send(Ok(v));
                continue;
            }
            Ok(Err(e)) => e,
            Err(_) => redis_err("reply timed out"),
        };
        for call in std::iter::once(call).chain(pending) {
            let _ = call.reply.send(Err(redis_err(&failed)));
        }
        return Err(failed);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpListener;

    /// A fake Redis that answers every `PING` once a whole batch of them has arrived:
    /// many callers at once share writes, and each gets its own reply in order.
    #[tokio::test]
    async fn concurrent_commands_share_writes_and_get_their_own_replies() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.expect("accept");
            let (mut buf, mut reads, mut seen) = (Vec::new(), 0, 0usize);
            while seen < 100 {
                let mut chunk = [0u8; 4096];
                let n = s.read(&mut chunk).await.expect("read");
                assert!(n > 0, "closed early");
                reads += 1;
                buf.extend_from_slice(&chunk[..n]);
                let mut out = Vec::new();
                while let Some((v, used)) = resp::parse(&buf).expect("resp") {
                    buf.drain(..used);
                    let Value::Array(Some(args)) = v else {
                        panic!("not a command")
                    };
                    let Some(Value::Bulk(Some(n))) = args.get(1) else {
                        panic!("no argument")
                    };
                    out.extend_from_slice(
                        format!("+{}\r\n", String::from_utf8_lossy(n)).as_bytes(),
                    );
                    seen += 1;
                }
                s.write_all(&out).await.expect("write");
            }
            reads
        });
        let pipe = Pipeline::start(RedisTarget::parse(&addr).expect("target"));
        let tasks: Vec<_> = (0..100)
            .map(|i| {
                let pipe = pipe.clone();
                tokio::spawn(async move {
                    let arg = format!("r{i}");
                    let v = pipe.cmd(&[b"ECHO", arg.as_bytes()]).await.expect("reply");
                    assert!(matches!(&v, Value::Simple(s) if *s == arg), "{i}: {v:?}");
                })
            })
            .collect();
        for t in tasks {
            t.await.expect("joined");
        }
        let reads = server.await.expect("server");
        assert!(reads < 50, "100 commands took {reads} reads: not pipelined");
    }
}
