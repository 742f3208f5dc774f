//! A bounds-checked cursor over a tag body, and the Enhanced RTMP header pieces that
//! audio and video share (ModEx prefixes, multitrack headers).

use bytes::Bytes;

use crate::FlvError;

/// Reads big-endian fields from a `Bytes`, slicing payloads without copying.
pub(crate) struct Cursor<'a> {
    data: &'a Bytes,
    pos: usize,
    what: &'static str,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(data: &'a Bytes, what: &'static str) -> Self {
        Self { data, pos: 0, what }
    }

    fn truncated(&self) -> FlvError {
        FlvError::Truncated(self.what)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, FlvError> {
        let b = *self.data.get(self.pos).ok_or_else(|| self.truncated())?;
        self.pos += 1;
        Ok(b)
    }

    pub(crate) fn bytes<const N: usize>(&mut self) -> Result<[u8; N], FlvError> {
        let s = self
            .data
            .get(self.pos..self.pos + N)
            .ok_or_else(|| self.truncated())?;
        self.pos += N;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    pub(crate) fn u16(&mut self) -> Result<u16, FlvError> {
        Ok(u16::from_be_bytes(self.bytes::<2>()?))
    }

    pub(crate) fn u24(&mut self) -> Result<u32, FlvError> {
        let [a, b, c] = self.bytes::<3>()?;
        Ok(u32::from_be_bytes([0, a, b, c]))
    }

    /// A signed 24-bit integer (composition time offsets).
    pub(crate) fn si24(&mut self) -> Result<i32, FlvError> {
        let [a, b, c] = self.bytes::<3>()?;
        Ok(i32::from_be_bytes([a, b, c, 0]) >> 8)
    }

    pub(crate) fn skip(&mut self, n: usize) -> Result<(), FlvError> {
        if self.data.len() - self.pos < n {
            return Err(self.truncated());
        }
        self.pos += n;
        Ok(())
    }

    /// The next `n` bytes as a zero-copy slice.
    pub(crate) fn take(&mut self, n: usize) -> Result<Bytes, FlvError> {
        if self.data.len() - self.pos < n {
            return Err(self.truncated());
        }
        let b = self.data.slice(self.pos..self.pos + n);
        self.pos += n;
        Ok(b)
    }

    /// Everything left, as a zero-copy slice.
    pub(crate) fn rest(&mut self) -> Bytes {
        let b = self.data.slice(self.pos..);
        self.pos = self.data.len();
        b
    }

    /// Skips Enhanced RTMP v2 ModEx prefixes (packet type 7): each is a size (UI8 + 1,
    /// or UI16 + 1 when the byte is 255), the data, then a byte whose low nibble is the
    /// next packet type. Returns the final packet type.
    pub(crate) fn skip_mod_ex(&mut self, mut packet_type: u8) -> Result<u8, FlvError> {
        const MOD_EX: u8 = 7;
        while packet_type == MOD_EX {
            let mut size = usize::from(self.u8()?) + 1;
            if size == 256 {
                size = usize::from(self.u16()?) + 1;
            }
            self.skip(size)?;
            packet_type = self.u8()? & 0x0f;
        }
        Ok(packet_type)
    }

    /// Bytes left after the cursor.
    pub(crate) fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    /// Reads the rest of an Enhanced RTMP audio or video header after its first byte
    /// (whose low nibble is `packet_type`): ModEx prefixes, then either a FourCC and the
    /// body (one track, id 0) or, when the packet type is `multitrack`, a multitrack
    /// header and every track's framing. Returns the final packet type (shared by all
    /// tracks) and the tracks in tag order.
    pub(crate) fn ex_header(
        &mut self,
        packet_type: u8,
        multitrack: u8,
        kind: &'static str,
    ) -> Result<(u8, Vec<ExTrack>), FlvError> {
        let packet_type = self.skip_mod_ex(packet_type)?;
        if packet_type == multitrack {
            self.multitrack(kind)
        } else {
            let fourcc = self.bytes::<4>()?;
            let track = ExTrack {
                id: 0,
                fourcc,
                body: self.rest(),
            };
            Ok((packet_type, vec![track]))
        }
    }

    /// Reads a multitrack header (`AvMultitrackType` and the tracks' packet type), the
    /// shared FourCC unless every track has its own (ManyTracksManyCodecs), then the
    /// tracks: \[FourCC\] id, and unless OneTrack a UI24 size before each body. At most
    /// [`MAX_TRACKS_PER_KIND`](crate::MAX_TRACKS_PER_KIND) tracks per tag.
    fn multitrack(&mut self, kind: &'static str) -> Result<(u8, Vec<ExTrack>), FlvError> {
        const ONE_TRACK: u8 = 0;
        const MANY_TRACKS: u8 = 1;
        const MANY_TRACKS_MANY_CODECS: u8 = 2;
        let b = self.u8()?;
        let (multitrack_type, packet_type) = (b >> 4, b & 0x0f);
        let shared_fourcc = match multitrack_type {
            ONE_TRACK | MANY_TRACKS => Some(self.bytes::<4>()?),
            MANY_TRACKS_MANY_CODECS => None,
            other => return Err(FlvError::UnsupportedMultitrackType(other)),
        };
        let mut tracks = Vec::new();
        loop {
            if tracks.len() == crate::MAX_TRACKS_PER_KIND {
                return Err(FlvError::TooManyTracks(kind));
            }
            let fourcc = match shared_fourcc {
                Some(f) => f,
                None => self.bytes::<4>()?,
            };
            let id = self.u8()?;
            let body = if multitrack_type == ONE_TRACK {
                self.rest()
            } else {
                let size = self.u24()? as usize;
                self.take(size)?
            };
            tracks.push(ExTrack { id, fourcc, body });
            if self.remaining() == 0 {
                return Ok((packet_type, tracks));
            }
        }
    }
}

/// One track of an Enhanced RTMP audio or video tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExTrack {
    /// The E-RTMP track id (0 outside multitrack tags).
    pub(crate) id: u8,
    /// The track's codec.
    pub(crate) fourcc: [u8; 4],
    /// The track's body, a zero-copy slice of the tag.
    pub(crate) body: Bytes,
}
