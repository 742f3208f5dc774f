//! Deadlines hyper does not have: a response write that makes no progress, and a request
//! body that does not arrive in time.
//!
//! - [`StallIo`] wraps a connection's socket: a write (or flush) that stays pending for
//!   the write timeout fails with `TimedOut`, which ends the connection and frees what it
//!   held. Any progress re-arms the timer, so a slow but reading client is never cut. It
//!   also covers upgraded connections (graphql-ws, chat): a WebSocket client that stops
//!   reading is cut the same way.
//! - [`TimedBody`] wraps a request body: all of it must arrive within the body timeout
//!   from when the handler starts reading it, or reading fails (the handler answers with
//!   an error and the connection closes). Bodies are small (capped by the routers), so
//!   a client that is honest is far from the deadline.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// A socket whose writes fail once they make no progress for `timeout`.
pub struct StallIo<S> {
    inner: S,
    timeout: Duration,
    /// Armed while a write is pending; reset by progress.
    stall: Option<Pin<Box<Sleep>>>,
    /// The listener, for the metric.
    listener: &'static str,
}

impl<S> StallIo<S> {
    /// `inner` with a write deadline of `timeout` (metric label `listener`).
    pub fn new(inner: S, timeout: Duration, listener: &'static str) -> Self {
        Self {
            inner,
            timeout,
            stall: None,
            listener,
        }
    }

    /// After a pending write or flush: fails once the deadline has passed.
    fn pending<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        let timeout = self.timeout;
        let stall = self
            .stall
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        if stall.as_mut().poll(cx).is_ready() {
            self.stall = None;
            metrics::counter!("weir_connections_timed_out_total", "listener" => self.listener, "deadline" => "write")
                .increment(1);
            tracing::debug!(
                listener = self.listener,
                "response made no progress in time: connection closed"
            );
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client did not read the response in time",
            )));
        }
        Poll::Pending
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for StallIo<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for StallIo<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write(cx, buf) {
            Poll::Pending => self.pending(cx),
            ready => {
                self.stall = None;
                ready
            }
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write_vectored(cx, bufs) {
            Poll::Pending => self.pending(cx),
            ready => {
                self.stall = None;
                ready
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.inner).poll_flush(cx) {
            Poll::Pending => self.pending(cx),
            ready => {
                self.stall = None;
                ready
            }
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.inner).poll_shutdown(cx) {
            Poll::Pending => self.pending(cx),
            ready => ready,
        }
    }
}

/// A request body that must arrive whole within a deadline from its first poll.
pub struct TimedBody<B> {
    inner: B,
    timeout: Duration,
    deadline: Option<Pin<Box<Sleep>>>,
    listener: &'static str,
}

impl<B> TimedBody<B> {
    /// `inner`, to be read within `timeout` (metric label `listener`).
    pub fn new(inner: B, timeout: Duration, listener: &'static str) -> Self {
        Self {
            inner,
            timeout,
            deadline: None,
            listener,
        }
    }
}

/// Why a body read failed.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The body did not arrive within the deadline.
    #[error("the request body did not arrive in time")]
    TimedOut,
    /// The connection failed while reading it.
    #[error(transparent)]
    Hyper(#[from] hyper::Error),
}

impl<B> Body for TimedBody<B>
where
    B: Body<Data = Bytes, Error = hyper::Error> + Unpin,
{
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(BodyError::from)));
        }
        let at = Instant::now() + self.timeout;
        let deadline = self
            .deadline
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
        if deadline.as_mut().poll(cx).is_ready() {
            metrics::counter!("weir_connections_timed_out_total", "listener" => self.listener, "deadline" => "body")
                .increment(1);
            tracing::debug!(
                listener = self.listener,
                "request body not complete in time"
            );
            return Poll::Ready(Some(Err(BodyError::TimedOut)));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
