//! The RTMP handshake (C0/C1/C2 ⇄ S0/S1/S2), simple form.
//!
//! C0/S0 is the version byte (3). C1/S1 are 1536 bytes: a 4-byte time, 4 bytes that are
//! zero in the simple handshake (a version in the Flash "complex" one) and random filler.
//! C2/S2 echo the peer's C1/S1. Clients that send a complex (digest) C1 get the same
//! echo; they only verify the server's digest when S1 carries a version, which ours
//! does not, so ffmpeg, OBS (librtmp) and Flash-derived encoders all accept it.

use bytes::{BufMut, BytesMut};

use crate::RtmpError;

/// Size of C1/C2/S1/S2.
pub const HANDSHAKE_SIZE: usize = 1536;
/// The plain RTMP protocol version.
pub const RTMP_VERSION: u8 = 3;

/// Fills `buf` with pseudo-random bytes (xorshift64*). The filler is not a secret:
/// it only has to differ between connections, so it is seeded from the peer's bytes.
pub(crate) fn fill_random(mut seed: u64, buf: &mut [u8]) {
    if seed == 0 {
        seed = 0x9E37_79B9_7F4A_7C15;
    }
    for chunk in buf.chunks_mut(8) {
        seed ^= seed >> 12;
        seed ^= seed << 25;
        seed ^= seed >> 27;
        let v = seed.wrapping_mul(0x2545_F491_4F6C_DD1D).to_be_bytes();
        chunk.copy_from_slice(&v[..chunk.len()]);
    }
}

fn seed_from(bytes: &[u8]) -> u64 {
    // FNV-1a over the peer's handshake bytes.
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Writes a C1/S1 block: time, zero, random filler.
fn write_block(out: &mut BytesMut, time: u32, seed: u64) {
    out.put_u32(time);
    out.put_u32(0);
    let mut filler = [0u8; HANDSHAKE_SIZE - 8];
    fill_random(seed, &mut filler);
    out.put_slice(&filler);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ServerState {
    AwaitC0C1,
    AwaitC2,
    Done,
}

/// Server side: reads C0+C1, answers S0+S1+S2, then reads (and ignores) C2.
#[derive(Debug)]
pub struct ServerHandshake {
    state: ServerState,
    buf: Vec<u8>,
}

impl Default for ServerHandshake {
    fn default() -> Self {
        Self::new()
    }
}

impl ServerHandshake {
    /// A handshake waiting for C0.
    pub fn new() -> Self {
        Self {
            state: ServerState::AwaitC0C1,
            buf: Vec::new(),
        }
    }

    /// True once C2 has been read: the rest of the input is chunk stream.
    pub fn is_done(&self) -> bool {
        self.state == ServerState::Done
    }

    /// Bytes held for a handshake block not complete yet (capacity of its buffer).
    pub fn buffered_bytes(&self) -> usize {
        self.buf.capacity()
    }

    /// Consumes handshake bytes from the front of `input`, appending any reply to `out`.
    /// Returns how many bytes were consumed; the rest belongs to the chunk stream.
    pub fn feed(
        &mut self,
        input: &[u8],
        time: u32,
        out: &mut BytesMut,
    ) -> Result<usize, RtmpError> {
        let mut used = 0;
        while used < input.len() && self.state != ServerState::Done {
            let need = match self.state {
                ServerState::AwaitC0C1 => 1 + HANDSHAKE_SIZE,
                _ => HANDSHAKE_SIZE,
            };
            let n = (need - self.buf.len()).min(input.len() - used);
            self.buf.extend_from_slice(&input[used..used + n]);
            used += n;
            if self.state == ServerState::AwaitC0C1 && self.buf.first() != Some(&RTMP_VERSION) {
                return Err(RtmpError::UnsupportedVersion(self.buf[0]));
            }
            if self.buf.len() < need {
                break;
            }
            match self.state {
                ServerState::AwaitC0C1 => {
                    let c1 = &self.buf[1..];
                    out.reserve(1 + 2 * HANDSHAKE_SIZE);
                    out.put_u8(RTMP_VERSION);
                    write_block(out, time, seed_from(c1));
                    out.put_slice(c1);
                    self.state = ServerState::AwaitC2;
                }
                _ => self.state = ServerState::Done,
            }
            self.buf.clear();
        }
        Ok(used)
    }
}

/// Client side: sends C0+C1 at once, reads S0+S1+S2 and answers C2.
#[derive(Debug)]
pub struct ClientHandshake {
    done: bool,
    buf: Vec<u8>,
}

impl ClientHandshake {
    /// Starts a handshake, appending C0+C1 to `out`. `seed` varies the filler.
    pub fn start(seed: u64, out: &mut BytesMut) -> Self {
        out.put_u8(RTMP_VERSION);
        write_block(out, 0, seed);
        Self {
            done: false,
            buf: Vec::new(),
        }
    }

    /// True once S2 has been read and C2 sent.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Consumes handshake bytes from `input` (appending C2 to `out` once S0+S1+S2 are in).
    /// Returns how many bytes were consumed.
    pub fn feed(&mut self, input: &[u8], out: &mut BytesMut) -> Result<usize, RtmpError> {
        const NEED: usize = 1 + 2 * HANDSHAKE_SIZE;
        if self.done {
            return Ok(0);
        }
        let n = (NEED - self.buf.len()).min(input.len());
        self.buf.extend_from_slice(&input[..n]);
        if let Some(&v) = self.buf.first()
            && v != RTMP_VERSION
        {
            return Err(RtmpError::UnsupportedVersion(v));
        }
        if self.buf.len() == NEED {
            out.put_slice(&self.buf[1..1 + HANDSHAKE_SIZE]);
            self.buf = Vec::new();
            self.done = true;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_answers_and_echoes_c1() {
        let mut hs = ServerHandshake::new();
        let mut out = BytesMut::new();
        let mut c0c1 = vec![3u8];
        c0c1.extend((0..HANDSHAKE_SIZE).map(|i| i as u8));
        // Byte by byte: nothing until C1 is complete.
        for (i, b) in c0c1.iter().enumerate() {
            assert_eq!(hs.feed(&[*b], 7, &mut out), Ok(1));
            assert_eq!(out.is_empty(), i + 1 < c0c1.len());
        }
        assert_eq!(out.len(), 1 + 2 * HANDSHAKE_SIZE);
        assert_eq!(out[0], 3);
        assert_eq!(&out[1..5], &7u32.to_be_bytes());
        assert_eq!(&out[5..9], &[0, 0, 0, 0]);
        assert_eq!(&out[1 + HANDSHAKE_SIZE..], &c0c1[1..]);
        // C2 followed by chunk bytes: only C2 is consumed.
        let mut c2 = vec![0u8; HANDSHAKE_SIZE];
        c2.extend_from_slice(&[1, 2, 3]);
        assert_eq!(hs.feed(&c2, 0, &mut out), Ok(HANDSHAKE_SIZE));
        assert!(hs.is_done());
    }

    #[test]
    fn bad_version_is_refused_at_once() {
        let mut hs = ServerHandshake::new();
        let mut out = BytesMut::new();
        assert_eq!(
            hs.feed(b"GET / HTTP/1.1", 0, &mut out),
            Err(RtmpError::UnsupportedVersion(b'G'))
        );
        let mut hs = ServerHandshake::new();
        assert_eq!(
            hs.feed(&[6], 0, &mut out),
            Err(RtmpError::UnsupportedVersion(6))
        );
    }

    #[test]
    fn client_and_server_complete() {
        let mut c_out = BytesMut::new();
        let mut client = ClientHandshake::start(42, &mut c_out);
        let mut server = ServerHandshake::new();
        let mut s_out = BytesMut::new();
        assert_eq!(server.feed(&c_out, 0, &mut s_out), Ok(c_out.len()));
        let mut c2 = BytesMut::new();
        assert_eq!(client.feed(&s_out, &mut c2), Ok(s_out.len()));
        assert!(client.is_done());
        assert_eq!(&c2[..], &s_out[1..1 + HANDSHAKE_SIZE]);
        assert_eq!(server.feed(&c2, 0, &mut s_out), Ok(HANDSHAKE_SIZE));
        assert!(server.is_done());
    }
}
