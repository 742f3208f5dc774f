//! A per-connection watchdog that ends a connection's pending read from outside.
//!
//! Connections spend their life in `read`. Racing every read against a stop signal and an
//! idle timer costs a timer and listener poll per read, thousands of times a second per
//! shard; instead a small task per connection sleeps until the connection has been quiet
//! for the idle time-out, or until its stop signal fires, and then shuts the socket's
//! receive side down. The pending read completes with end-of-file (or, when the peer
//! keeps sending, with data already queued), so the connection checks
//! [`Watchdog::reason`] after every read. Writes in progress are not cut off.

use std::cell::Cell;
use std::future::Future;
use std::pin::pin;
use std::rc::Rc;
use std::time::{Duration, Instant};

use compio::net::TcpStream;
use compio::runtime::JoinHandle;
use futures_util::future::{Either, select};

/// Why a watchdog ended the connection's reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The stop signal fired (node shutdown, or the node closing this connection).
    Signalled,
    /// Nothing was read for the idle time-out.
    Idle,
}

#[derive(Debug)]
struct State {
    last_activity: Cell<Instant>,
    reason: Cell<Option<StopReason>>,
}

/// Watches one connection; dropping it stops the watch.
#[derive(Debug)]
pub struct Watchdog {
    state: Rc<State>,
    _task: JoinHandle<()>,
}

impl Watchdog {
    /// Starts watching `socket`: its reads end after `idle` without [`Self::touch`], or
    /// when `stop` completes.
    pub fn spawn(
        socket: &TcpStream,
        idle: Duration,
        stop: impl Future<Output = ()> + 'static,
    ) -> Self {
        let state = Rc::new(State {
            last_activity: Cell::new(Instant::now()),
            reason: Cell::new(None),
        });
        let task = compio::runtime::spawn(watch(socket.clone(), state.clone(), idle, stop));
        Self { state, _task: task }
    }

    /// The connection made progress (input arrived) at `now`.
    pub fn touch(&self, now: Instant) {
        self.state.last_activity.set(now);
    }

    /// Why reads were ended, if the watchdog ended them.
    pub fn reason(&self) -> Option<StopReason> {
        self.state.reason.get()
    }
}

async fn watch(
    socket: TcpStream,
    state: Rc<State>,
    idle: Duration,
    stop: impl Future<Output = ()>,
) {
    let mut stop = pin!(stop);
    let reason = loop {
        let deadline = state.last_activity.get() + idle;
        let sleep = pin!(compio::time::sleep_until(deadline));
        match select(stop.as_mut(), sleep).await {
            Either::Left(_) => break StopReason::Signalled,
            Either::Right(_) => {
                if state.last_activity.get().elapsed() >= idle {
                    break StopReason::Idle;
                }
            }
        }
    };
    state.reason.set(Some(reason));
    // The pending read returns 0; a response being written still completes.
    if let Err(e) = socket2::SockRef::from(&socket).shutdown(std::net::Shutdown::Read) {
        tracing::debug!(error = %e, "shutting down a watched socket");
    }
}
