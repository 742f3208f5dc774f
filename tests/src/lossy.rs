//! A UDP relay that loses and delays datagrams: the test's stand-in for `tc netem`
//! (this machine's kernel has no `sch_netem`). Losses come from a seeded generator, so
//! a run is repeatable in what it drops, independently in each direction.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A running relay; stops when dropped.
pub struct LossyRelay {
    /// Where callers send (loopback).
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    /// Datagrams dropped on purpose, caller → server.
    pub dropped_up: Arc<AtomicU64>,
    /// Datagrams dropped on purpose, server → caller.
    pub dropped_down: Arc<AtomicU64>,
}

/// A seeded xorshift: `true` for `pct` % of calls.
struct Dice(u64);

impl Dice {
    fn lose(&mut self, pct: u64) -> bool {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % 1000 < pct * 10
    }
}

impl LossyRelay {
    /// Relays one caller to `server`, losing `loss_pct` % each way and delaying each
    /// datagram by `delay` (one way).
    pub fn start(server: SocketAddr, loss_pct: u64, delay: Duration) -> Self {
        let front = UdpSocket::bind("127.0.0.1:0").expect("relay front");
        let back = UdpSocket::bind("127.0.0.1:0").expect("relay back");
        back.connect(server).expect("relay connect");
        for s in [&front, &back] {
            s.set_read_timeout(Some(Duration::from_millis(50)))
                .expect("timeout");
        }
        let addr = front.local_addr().expect("addr");
        let stop = Arc::new(AtomicBool::new(false));
        let caller: Arc<std::sync::Mutex<Option<SocketAddr>>> = Arc::default();
        let (dropped_up, dropped_down) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let front = Arc::new(front);
        let back = Arc::new(back);

        // caller → server
        {
            let (rx_sock, tx_sock, stop, caller, dropped) = (
                front.clone(),
                back.clone(),
                stop.clone(),
                caller.clone(),
                dropped_up.clone(),
            );
            let send = delayed(stop.clone(), move |b: Vec<u8>, _| {
                let _ = tx_sock.send(&b);
            });
            std::thread::spawn(move || {
                let mut dice = Dice(0x1234_5678_9abc_def1);
                let mut buf = [0u8; 2048];
                while !stop.load(Ordering::Relaxed) {
                    if let Ok((n, from)) = rx_sock.recv_from(&mut buf) {
                        if let Ok(mut c) = caller.lock() {
                            *c = Some(from);
                        }
                        if dice.lose(loss_pct) {
                            dropped.fetch_add(1, Ordering::Relaxed);
                        } else {
                            let _ = send.send((Instant::now() + delay, buf[..n].to_vec(), from));
                        }
                    }
                }
            });
        }
        // server → caller
        {
            let (rx_sock, tx_sock, stop, caller, dropped) =
                (back, front, stop.clone(), caller, dropped_down.clone());
            let send = delayed(stop.clone(), move |b: Vec<u8>, to| {
                let _ = tx_sock.send_to(&b, to);
            });
            std::thread::spawn(move || {
                let mut dice = Dice(0x0fed_cba9_8765_4321);
                let mut buf = [0u8; 2048];
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(n) = rx_sock.recv(&mut buf) {
                        let Some(to) = caller.lock().ok().and_then(|c| *c) else {
                            continue;
                        };
                        if dice.lose(loss_pct) {
                            dropped.fetch_add(1, Ordering::Relaxed);
                        } else {
                            let _ = send.send((Instant::now() + delay, buf[..n].to_vec(), to));
                        }
                    }
                }
            });
        }
        Self {
            addr,
            stop,
            dropped_up,
            dropped_down,
        }
    }
}

/// A thread that sends each queued datagram once its time has come.
fn delayed(
    stop: Arc<AtomicBool>,
    send: impl Fn(Vec<u8>, SocketAddr) + Send + 'static,
) -> mpsc::Sender<(Instant, Vec<u8>, SocketAddr)> {
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>, SocketAddr)>();
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            let Ok((due, b, to)) = rx.recv_timeout(Duration::from_millis(50)) else {
                continue;
            };
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            send(b, to);
        }
    });
    tx
}

impl Drop for LossyRelay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
