//! The per-connection HTTP/1.1 driver: read, parse, answer, keep alive.

use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use compio::BufResult;
use compio::io::{AsyncRead, AsyncWriteExt};
use compio::net::TcpStream;
use futures_util::future::{Either, select};

use super::request::{Method, RequestParser};
use super::response::Response;
use crate::hooks::PublishAuth;
use crate::registry::Registry;
use crate::shutdown::Shutdown;

/// Idle keep-alive connections are closed after this long.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Bytes read per call.
const READ_BUF: usize = 2048;
/// Bodies up to this size are written with their head in one call.
const COALESCE_LIMIT: usize = 16 * 1024;

/// Serves requests on one connection until it closes, idles out, or the node stops.
pub async fn serve(
    mut stream: TcpStream,
    registry: Arc<Registry>,
    auth: Arc<dyn PublishAuth>,
    shutdown: Shutdown,
) {
    // Request heads are small: a 2 KiB read buffer keeps idle viewers cheap (the
    // buffer is owned by the in-flight read), and `pending` only grows for pipelining.
    let mut pending: Vec<u8> = Vec::new();
    let mut buf: Vec<u8> = Vec::with_capacity(READ_BUF);
    loop {
        loop {
            match RequestParser.parse(&pending) {
                Ok(Some((req, consumed))) => {
                    pending.drain(..consumed);
                    let resp = super::origin::respond(&req, &registry, &*auth).await;
                    metrics::counter!("weir_http_requests_total", "status" => resp.status.to_string())
                        .increment(1);
                    let keep = req.keep_alive && !shutdown.is_triggered();
                    if write(&mut stream, &resp, req.method != Method::Head, keep)
                        .await
                        .is_err()
                        || !keep
                    {
                        return;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::debug!(error = %e, "bad HTTP request");
                    let resp = Response::error(e.status(), &e.to_string());
                    let _ = write(&mut stream, &resp, true, false).await;
                    return;
                }
            }
        }
        buf.clear();
        let read = pin!(compio::time::timeout(IDLE_TIMEOUT, stream.read(buf)));
        let stop = pin!(shutdown.wait());
        let BufResult(res, back) = match select(read, stop).await {
            Either::Left((Ok(r), _)) => r,
            Either::Left((Err(_), _)) | Either::Right(_) => return,
        };
        buf = back;
        match res {
            Ok(0) | Err(_) => return,
            Ok(n) => pending.extend_from_slice(&buf[..n]),
        }
    }
}

async fn write(
    stream: &mut TcpStream,
    resp: &Response,
    with_body: bool,
    keep_alive: bool,
) -> std::io::Result<()> {
    let mut head = resp.head(keep_alive);
    if !with_body || resp.body.is_empty() {
        let BufResult(r, _) = stream.write_all(head).await;
        return r;
    }
    if resp.body.len() <= COALESCE_LIMIT {
        head.extend_from_slice(&resp.body);
        let BufResult(r, _) = stream.write_all(head).await;
        return r;
    }
    let BufResult(r, _) = stream.write_all(head).await;
    r?;
    let BufResult(r, _) = stream.write_all(resp.body.clone()).await;
    r
}
