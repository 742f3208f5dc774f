//! A per-connection watchdog that enforces a connection's deadline from outside.
//!
//! Connections spend their life in `read` (and, for viewers, in `write`). Racing every
//! read or write against a stop signal and a timer costs a timer and listener poll per
//! call, thousands of times a second per shard; instead a small task per connection
//! sleeps until the connection's current deadline, or until its stop signal fires, and
//! then shuts the socket down:
//!
//! - a *read* deadline ([`Phase::Idle`], [`Phase::Request`]) shuts the receive side
//!   down: the pending read completes with end-of-file (or, when the peer keeps sending,
//!   with data already queued), so the connection checks [`Watchdog::reason`] after every
//!   read. A response can still be written afterwards (a 408), under a write deadline.
//! - a *write* deadline ([`Phase::Write`]) resets the connection (`SO_LINGER` 0, both
//!   sides shut down): the pending write fails, and closing the socket frees the bytes
//!   queued for a peer that stopped reading.
//!
//! The connection moves its deadline with [`Watchdog::set`] (a cell write; the task is
//! woken only when the new deadline is earlier than the one it sleeps until), so
//! extending a deadline on every read or write costs nothing.

use std::cell::Cell;
use std::future::Future;
use std::pin::pin;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use compio::BufResult;
use compio::buf::{IntoInner, IoBuf};
use compio::io::AsyncWrite;
use compio::net::TcpStream;
use compio::runtime::JoinHandle;
use futures_util::future::{Either, select};

/// What the current deadline bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for the peer to start something (keep-alive, a publisher's next message).
    Idle,
    /// A request in progress: an HTTP request head and body, or an RTMP handshake,
    /// `connect` and `publish`. Bytes that complete nothing do not extend it.
    Request,
    /// A write in progress that must make progress.
    Write,
}

/// Why a watchdog ended the connection's reads (or writes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The stop signal fired (node shutdown, or the node closing this connection).
    Signalled,
    /// A deadline of this phase passed.
    Expired(Phase),
}

impl Phase {
    /// The `deadline` label of `weir_connections_timed_out_total`.
    pub fn label(self) -> &'static str {
        match self {
            Phase::Idle => "idle",
            Phase::Request => "request",
            Phase::Write => "write",
        }
    }
}

impl State {
    /// Moves the deadline; wakes the task when it is now earlier than its timer.
    fn set(&self, deadline: Option<(Instant, Phase)>) {
        self.deadline.set(deadline);
        let earlier = match (deadline, self.armed.get()) {
            (Some((at, _)), Some(armed)) => at < armed,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if earlier {
            self.rearm.set(true);
            if let Some(w) = self.waker.take() {
                w.wake();
            }
        }
    }
}

struct State {
    /// The deadline in force and what it bounds; `None`: none (stop signal only).
    deadline: Cell<Option<(Instant, Phase)>>,
    /// The instant the task sleeps until (`None`: no timer).
    armed: Cell<Option<Instant>>,
    /// Set when the deadline moved before `armed`: the task re-arms.
    rearm: Cell<bool>,
    waker: Cell<Option<Waker>>,
    reason: Cell<Option<StopReason>>,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("deadline", &self.deadline.get())
            .field("reason", &self.reason.get())
            .finish_non_exhaustive()
    }
}

/// Watches one connection; dropping it stops the watch.
#[derive(Debug)]
pub struct Watchdog {
    state: Rc<State>,
    _task: JoinHandle<()>,
}

impl Watchdog {
    /// Starts watching `socket` with a first deadline (`phase` ending at `at`); the
    /// socket is also shut down when `stop` completes.
    pub fn spawn(
        socket: &TcpStream,
        phase: Phase,
        at: Instant,
        stop: impl Future<Output = ()> + 'static,
    ) -> Self {
        let state = Rc::new(State {
            deadline: Cell::new(Some((at, phase))),
            armed: Cell::new(None),
            rearm: Cell::new(false),
            waker: Cell::new(None),
            reason: Cell::new(None),
        });
        let task = compio::runtime::spawn(watch(socket.clone(), state.clone(), stop));
        Self { state, _task: task }
    }

    /// The connection's deadline is now `at` for `phase` (`None`: no deadline until the
    /// next call, e.g. while the node itself is preparing an answer).
    pub fn set(&self, deadline: Option<(Phase, Instant)>) {
        self.state.set(deadline.map(|(p, at)| (at, p)));
    }

    /// The deadline in force.
    pub fn deadline(&self) -> Option<(Phase, Instant)> {
        self.state.deadline.get().map(|(at, p)| (p, at))
    }

    /// The phase of the deadline in force.
    pub fn phase(&self) -> Option<Phase> {
        self.deadline().map(|(p, _)| p)
    }

    /// Why reads were ended, if the watchdog ended them (the first reason).
    pub fn reason(&self) -> Option<StopReason> {
        self.state.reason.get()
    }

    /// Runs `write` under a write deadline of `timeout` from now, then puts the deadline
    /// that was in force back. `write` reports progress through the [`Progress`] it is
    /// given (each call moves the deadline to `timeout` from then).
    pub async fn writing<T, F: Future<Output = T>>(
        &self,
        timeout: Duration,
        write: impl FnOnce(Progress) -> F,
    ) -> T {
        let saved = self.deadline();
        self.set(Some((Phase::Write, Instant::now() + timeout)));
        let out = write(Progress {
            state: self.state.clone(),
            timeout,
        })
        .await;
        if self.reason().is_none() {
            self.set(saved);
        }
        out
    }
}

/// Handed to a write under a deadline: [`Progress::made`] after every partial write,
/// [`Progress::waiting`] while the writer itself waits for something to send.
#[derive(Debug, Clone)]
pub struct Progress {
    state: Rc<State>,
    timeout: Duration,
}

impl Progress {
    /// Bytes went out (or are about to): the write deadline starts again.
    pub fn made(&self) {
        if self.state.reason.get().is_none() {
            self.state
                .set(Some((Instant::now() + self.timeout, Phase::Write)));
        }
    }

    /// The writer waits for data of its own (the next part of a segment being made): no
    /// write deadline until the next [`Progress::made`].
    pub fn waiting(&self) {
        if self.state.reason.get().is_none() {
            self.state.set(None);
        }
    }
}

/// Writes all of `buf`, reporting each partial write as progress.
pub async fn send<T: IoBuf>(
    stream: &mut TcpStream,
    mut buf: T,
    p: &Progress,
) -> std::io::Result<()> {
    let len = buf.buf_len();
    let mut at = 0;
    while at < len {
        let BufResult(r, back) = stream.write(buf.slice(at..)).await;
        buf = back.into_inner();
        match r? {
            0 => return Err(std::io::ErrorKind::WriteZero.into()),
            n => at += n,
        }
        p.made();
    }
    Ok(())
}

async fn watch(socket: TcpStream, state: Rc<State>, stop: impl Future<Output = ()>) {
    let mut stop = pin!(stop);
    loop {
        let deadline = state.deadline.get();
        state.armed.set(deadline.map(|(at, _)| at));
        state.rearm.set(false);
        let timer = pin!(async {
            match deadline {
                Some((at, _)) => compio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        });
        let rearm = std::future::poll_fn(|cx| {
            if state.rearm.get() {
                Poll::Ready(())
            } else {
                state.waker.set(Some(cx.waker().clone()));
                Poll::Pending
            }
        });
        let rearm = pin!(rearm);
        let wake = pin!(select(timer, rearm));
        match select(stop.as_mut(), wake).await {
            Either::Left(_) => {
                state.reason.set(Some(StopReason::Signalled));
                // The pending read returns 0; a response being written still completes.
                shutdown(&socket, std::net::Shutdown::Read);
                return;
            }
            Either::Right((Either::Left(_), _)) => {
                let Some((at, phase)) = state.deadline.get() else {
                    continue;
                };
                if Instant::now() < at {
                    continue; // moved later meanwhile
                }
                if state.reason.get().is_none() {
                    state.reason.set(Some(StopReason::Expired(phase)));
                }
                if phase == Phase::Write {
                    // Reset: the pending write fails and the queued bytes are freed.
                    let sock = socket2::SockRef::from(&socket);
                    let _ = sock.set_linger(Some(Duration::ZERO));
                    shutdown(&socket, std::net::Shutdown::Both);
                    return;
                }
                shutdown(&socket, std::net::Shutdown::Read);
                // A last answer (408) may still be written, under a write deadline.
                state.deadline.set(None);
            }
            Either::Right((Either::Right(_), _)) => {}
        }
    }
}

fn shutdown(socket: &TcpStream, how: std::net::Shutdown) {
    if let Err(e) = socket2::SockRef::from(socket).shutdown(how) {
        tracing::debug!(error = %e, "shutting down a watched socket");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use compio::io::AsyncRead;

    /// A connected loopback pair: (our side, the peer's std socket).
    async fn pair() -> (TcpStream, std::net::TcpStream) {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.local_addr().expect("addr");
        let peer = std::net::TcpStream::connect(addr).expect("connect");
        let (ours, _) = l.accept().expect("accept");
        (TcpStream::from_std(ours).expect("compio socket"), peer)
    }

    #[test]
    fn a_deadline_moved_earlier_ends_the_pending_read() {
        let rt = compio::runtime::Runtime::new().expect("runtime");
        rt.block_on(async {
            let (mut s, _peer) = pair().await;
            let far = Instant::now() + Duration::from_secs(60);
            let wd = Watchdog::spawn(&s, Phase::Idle, far, std::future::pending());
            let t0 = Instant::now();
            let wd2 = Rc::new(wd);
            let setter = wd2.clone();
            compio::runtime::spawn(async move {
                compio::time::sleep(Duration::from_millis(50)).await;
                setter.set(Some((
                    Phase::Request,
                    Instant::now() + Duration::from_millis(100),
                )));
            })
            .detach();
            let compio::BufResult(r, _) = s.read(Vec::with_capacity(16)).await;
            assert_eq!(r.expect("eof"), 0);
            assert_eq!(wd2.reason(), Some(StopReason::Expired(Phase::Request)));
            assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
        });
    }

    #[test]
    fn a_stalled_write_is_reset_at_its_deadline() {
        let rt = compio::runtime::Runtime::new().expect("runtime");
        rt.block_on(async {
            let (mut s, _peer) = pair().await; // the peer never reads
            let far = Instant::now() + Duration::from_secs(60);
            let wd = Watchdog::spawn(&s, Phase::Idle, far, std::future::pending());
            let t0 = Instant::now();
            let big = vec![0u8; 64 << 20];
            let r = wd
                .writing(Duration::from_millis(300), |p| async move {
                    send(&mut s, big, &p).await
                })
                .await;
            assert!(
                r.is_err(),
                "a write to a peer that never reads cannot finish"
            );
            assert_eq!(wd.reason(), Some(StopReason::Expired(Phase::Write)));
            assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
        });
    }
}
