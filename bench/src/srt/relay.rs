//! The lossy UDP relay between caller and listener (seeded loss each way, fixed delay).

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

/// A seeded xorshift: `true` for `pct` % of calls.
pub(super) struct Dice(pub(super) u64);

impl Dice {
    pub(super) fn lose(&mut self, pct: u64) -> bool {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % 1000 < pct * 10
    }
}

/// A UDP relay for one caller that loses `pct` % of datagrams each way (seeded, the same
/// datagrams for every server) and delays each by `delay`.
pub(super) struct Relay {
    pub(super) addr: SocketAddr,
    pub(super) stop: Arc<AtomicBool>,
    pub(super) lost_up: Arc<AtomicU64>,
    pub(super) lost_down: Arc<AtomicU64>,
    pub(super) relayed: Arc<AtomicU64>,
}

pub(super) type Delayed = mpsc::Sender<(Instant, Vec<u8>, Option<SocketAddr>)>;

impl Relay {
    pub(super) fn start(server: SocketAddr, pct: u64, delay: Duration) -> anyhow::Result<Self> {
        let front = Arc::new(UdpSocket::bind("127.0.0.1:0")?);
        let back = Arc::new(UdpSocket::bind("127.0.0.1:0")?);
        back.connect(server)?;
        for s in [&front, &back] {
            s.set_read_timeout(Some(Duration::from_millis(50)))?;
        }
        let r = Self {
            addr: front.local_addr()?,
            stop: Arc::default(),
            lost_up: Arc::default(),
            lost_down: Arc::default(),
            relayed: Arc::default(),
        };
        let caller: Arc<Mutex<Option<SocketAddr>>> = Arc::default();
        let delayed = |stop: Arc<AtomicBool>, out: Arc<UdpSocket>| -> Delayed {
            let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>, Option<SocketAddr>)>();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let Ok((due, b, to)) = rx.recv_timeout(Duration::from_millis(50)) else {
                        continue;
                    };
                    crate::sleep_until(due);
                    let _ = match to {
                        Some(to) => out.send_to(&b, to),
                        None => out.send(&b),
                    };
                }
            });
            tx
        };
        // caller → server
        {
            let tx = delayed(r.stop.clone(), back.clone());
            let (stop, caller, lost, relayed) = (
                r.stop.clone(),
                caller.clone(),
                r.lost_up.clone(),
                r.relayed.clone(),
            );
            let front = front.clone();
            std::thread::spawn(move || {
                let mut dice = Dice(0x1234_5678_9abc_def1);
                let mut buf = [0u8; 2048];
                while !stop.load(Ordering::Relaxed) {
                    let Ok((n, from)) = front.recv_from(&mut buf) else {
                        continue;
                    };
                    if let Ok(mut c) = caller.lock() {
                        *c = Some(from);
                    }
                    relayed.fetch_add(1, Ordering::Relaxed);
                    if dice.lose(pct) {
                        lost.fetch_add(1, Ordering::Relaxed);
                    } else {
                        let _ = tx.send((Instant::now() + delay, buf[..n].to_vec(), None));
                    }
                }
            });
        }
        // server → caller
        {
            let tx = delayed(r.stop.clone(), front);
            let (stop, lost) = (r.stop.clone(), r.lost_down.clone());
            std::thread::spawn(move || {
                let mut dice = Dice(0x0fed_cba9_8765_4321);
                let mut buf = [0u8; 2048];
                while !stop.load(Ordering::Relaxed) {
                    let Ok(n) = back.recv(&mut buf) else {
                        continue;
                    };
                    let Some(to) = caller.lock().ok().and_then(|c| *c) else {
                        continue;
                    };
                    if dice.lose(pct) {
                        lost.fetch_add(1, Ordering::Relaxed);
                    } else {
                        let _ = tx.send((Instant::now() + delay, buf[..n].to_vec(), Some(to)));
                    }
                }
            });
        }
        Ok(r)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// A free UDP port on loopback (bound, then released).
pub(super) fn free_udp_port() -> anyhow::Result<u16> {
    Ok(UdpSocket::bind("127.0.0.1:0")?.local_addr()?.port())
}
