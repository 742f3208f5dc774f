//! A small reader of the recorder's own CMAF (sans-IO): the tracks of an init segment
//! and the samples of a media segment's fragments. Bounded: every length is checked
//! against the bytes there; anything it does not understand is an error, never a panic.

use bytes::Bytes;

/// Why a recording's file cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Fmp4Error {
    /// A box runs past its parent, or a field past its box.
    #[error("truncated or malformed {0} box")]
    Malformed(&'static str),
    /// A box this reader needs is missing.
    #[error("no {0} box")]
    Missing(&'static str),
}

/// A track of an init segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitTrack {
    /// `track_ID`.
    pub id: u32,
    /// The media timescale (`mdhd`).
    pub timescale: u32,
    /// A video track (`vide` handler).
    pub video: bool,
    /// H.264 with an `avcC`: its record; width and height of the sample entry.
    pub avc: Option<(Bytes, u16, u16)>,
    /// The sample entry's type (`avc1`, `avc3`, `hvc1`, `mp4a`, `Opus`, …).
    pub entry: [u8; 4],
    /// An audio sample entry's channel count and sampling rate.
    pub audio: Option<(u16, u32)>,
}

/// One sample of a fragment, with absolute times in its track's timescale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadSample {
    /// Its track.
    pub track: u32,
    /// Decode time.
    pub dts: u64,
    /// Presentation time (decode time + composition offset; never below 0).
    pub pts: u64,
    /// Duration.
    pub duration: u32,
    /// A sync sample.
    pub keyframe: bool,
    /// Its bytes (MP4 sample format).
    pub data: Bytes,
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}
fn be64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// Children boxes of `body`: `(kind, start of the box, its body)`.
pub(crate) fn boxes(
    body: &[u8],
) -> impl Iterator<Item = Result<([u8; 4], usize, &[u8]), Fmp4Error>> {
    let mut at = 0usize;
    std::iter::from_fn(move || {
        if at >= body.len() {
            return None;
        }
        let r = (|| {
            let size = be32(body, at).ok_or(Fmp4Error::Malformed("box"))? as u64;
            let kind: [u8; 4] = body
                .get(at + 4..at + 8)
                .and_then(|k| k.try_into().ok())
                .ok_or(Fmp4Error::Malformed("box"))?;
            let (head, size) = match size {
                1 => (16, be64(body, at + 8).ok_or(Fmp4Error::Malformed("box"))?),
                0 => (8, (body.len() - at) as u64),
                s => (8, s),
            };
            let end = usize::try_from(size)
                .ok()
                .and_then(|s| at.checked_add(s))
                .filter(|&e| e <= body.len() && size >= head as u64)
                .ok_or(Fmp4Error::Malformed("box"))?;
            let start = at;
            let b = body
                .get(at + head..end)
                .ok_or(Fmp4Error::Malformed("box"))?;
            at = end;
            Ok((kind, start, b))
        })();
        if r.is_err() {
            at = body.len();
        }
        Some(r)
    })
}

/// The body of the first child box of `body` of type `kind` (`name` in the error).
pub(crate) fn child<'a>(
    body: &'a [u8],
    kind: &[u8; 4],
    name: &'static str,
) -> Result<&'a [u8], Fmp4Error> {
    for b in boxes(body) {
        let (k, _, b) = b?;
        if &k == kind {
            return Ok(b);
        }
    }
    Err(Fmp4Error::Missing(name))
}

/// The tracks of an init segment (`ftyp` + `moov`).
pub fn read_init(init: &[u8]) -> Result<Vec<InitTrack>, Fmp4Error> {
    let moov = child(init, b"moov", "moov")?;
    let mut tracks = Vec::new();
    for b in boxes(moov) {
        let (k, _, trak) = b?;
        if &k != b"trak" {
            continue;
        }
        let tkhd = child(trak, b"tkhd", "tkhd")?;
        let id_at = if tkhd.first() == Some(&1) { 20 } else { 12 };
        let id = be32(tkhd, id_at).ok_or(Fmp4Error::Malformed("tkhd"))?;
        let mdia = child(trak, b"mdia", "mdia")?;
        let mdhd = child(mdia, b"mdhd", "mdhd")?;
        let ts_at = if mdhd.first() == Some(&1) { 20 } else { 12 };
        let timescale = be32(mdhd, ts_at)
            .filter(|&t| t > 0)
            .ok_or(Fmp4Error::Malformed("mdhd"))?;
        let hdlr = child(mdia, b"hdlr", "hdlr")?;
        let video = hdlr.get(8..12) == Some(b"vide");
        let stsd = child(
            child(child(mdia, b"minf", "minf")?, b"stbl", "stbl")?,
            b"stsd",
            "stsd",
        )?;
        let mut avc = None;
        let mut entry = [0u8; 4];
        let mut audio = None;
        if let Some(entries) = stsd.get(8..) {
            for e in boxes(entries) {
                let (k, _, e) = e?;
                if entry == [0; 4] {
                    entry = k;
                }
                if !video && e.len() >= 28 {
                    // AudioSampleEntry: channelcount at 16, samplerate (16.16) at 24.
                    let channels = u16::from_be_bytes([e[16], e[17]]);
                    let rate = u32::from(u16::from_be_bytes([e[24], e[25]]));
                    audio = Some((channels, rate));
                }
                if (&k == b"avc1" || &k == b"avc3") && e.len() >= 78 {
                    let w = u16::from_be_bytes([e[24], e[25]]);
                    let h = u16::from_be_bytes([e[26], e[27]]);
                    if let Ok(c) = child(&e[78..], b"avcC", "avcC") {
                        avc = Some((Bytes::copy_from_slice(c), w, h));
                    }
                }
            }
        }
        tracks.push(InitTrack {
            id,
            timescale,
            video,
            avc,
            entry,
            audio,
        });
    }
    Ok(tracks)
}

/// The samples of every `moof` + `mdat` of a media segment, in file order.
pub fn read_segment(seg: &Bytes) -> Result<Vec<ReadSample>, Fmp4Error> {
    let mut out = Vec::new();
    for b in boxes(seg) {
        let (k, moof_start, moof) = b?;
        if &k != b"moof" {
            continue;
        }
        for t in boxes(moof) {
            let (k, _, traf) = t?;
            if &k != b"traf" {
                continue;
            }
            read_traf(seg, moof_start, traf, &mut out)?;
        }
    }
    Ok(out)
}

fn read_traf(
    seg: &Bytes,
    moof_start: usize,
    traf: &[u8],
    out: &mut Vec<ReadSample>,
) -> Result<(), Fmp4Error> {
    let bad = Fmp4Error::Malformed;
    let tfhd = child(traf, b"tfhd", "tfhd")?;
    let flags = be32(tfhd, 0).ok_or(bad("tfhd"))? & 0xff_ffff;
    let track = be32(tfhd, 4).ok_or(bad("tfhd"))?;
    let mut at = 8;
    let mut base = moof_start as u64;
    if flags & 0x1 != 0 {
        base = be64(tfhd, at).ok_or(bad("tfhd"))?;
        at += 8;
    }
    if flags & 0x2 != 0 {
        at += 4;
    }
    let mut def_dur = 0;
    let mut def_size = 0;
    let mut def_flags = 0;
    if flags & 0x8 != 0 {
        def_dur = be32(tfhd, at).ok_or(bad("tfhd"))?;
        at += 4;
    }
    if flags & 0x10 != 0 {
        def_size = be32(tfhd, at).ok_or(bad("tfhd"))?;
        at += 4;
    }
    if flags & 0x20 != 0 {
        def_flags = be32(tfhd, at).ok_or(bad("tfhd"))?;
    }
    let tfdt = child(traf, b"tfdt", "tfdt")?;
    let mut dts = if tfdt.first() == Some(&1) {
        be64(tfdt, 4)
    } else {
        be32(tfdt, 4).map(u64::from)
    }
    .ok_or(bad("tfdt"))?;
    for r in boxes(traf) {
        let (k, _, trun) = r?;
        if &k != b"trun" {
            continue;
        }
        let vf = be32(trun, 0).ok_or(bad("trun"))?;
        let (version, tf) = (vf >> 24, vf & 0xff_ffff);
        let count = be32(trun, 4).ok_or(bad("trun"))?;
        let mut at = 8;
        let mut data = base;
        if tf & 0x1 != 0 {
            let off = be32(trun, at).ok_or(bad("trun"))? as i32;
            data = base.checked_add_signed(i64::from(off)).ok_or(bad("trun"))?;
            at += 4;
        }
        let mut first_flags = None;
        if tf & 0x4 != 0 {
            first_flags = Some(be32(trun, at).ok_or(bad("trun"))?);
            at += 4;
        }
        let per = [0x100, 0x200, 0x400, 0x800]
            .iter()
            .filter(|&&f| tf & f != 0)
            .count();
        if (count as usize).saturating_mul(per * 4) > trun.len() {
            return Err(bad("trun"));
        }
        for i in 0..count {
            let mut field = |bit: u32, def: u32| -> Result<u32, Fmp4Error> {
                if tf & bit != 0 {
                    let v = be32(trun, at).ok_or(bad("trun"))?;
                    at += 4;
                    Ok(v)
                } else {
                    Ok(def)
                }
            };
            let duration = field(0x100, def_dur)?;
            let size = field(0x200, def_size)?;
            let mut sflags = field(0x400, def_flags)?;
            if i == 0
                && let Some(f) = first_flags
            {
                sflags = f;
            }
            let cto = field(0x800, 0)?;
            let cto = if version == 0 {
                i64::from(cto)
            } else {
                i64::from(cto as i32)
            };
            let start = usize::try_from(data).map_err(|_| bad("trun"))?;
            let end = start.checked_add(size as usize).ok_or(bad("trun"))?;
            if end > seg.len() {
                return Err(bad("mdat"));
            }
            out.push(ReadSample {
                track,
                dts,
                pts: dts.saturating_add_signed(cto),
                duration,
                keyframe: sflags & 0x0001_0000 == 0,
                data: seg.slice(start..end),
            });
            data = end as u64;
            dts += u64::from(duration);
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use weir_cmaf::{FragmentTrack, Sample, fragment};

    #[test]
    fn reads_what_the_cmaf_writer_writes() {
        let s = |d: u32, c: i32, k: bool, b: &'static [u8]| Sample {
            duration: d,
            composition_offset: c,
            keyframe: k,
            data: Bytes::from_static(b),
        };
        let v = [s(3000, 6000, true, b"abc"), s(3000, -3000, false, b"de")];
        let a = [s(1024, 0, true, b"xyz1")];
        let rope = fragment(
            7,
            &[
                FragmentTrack {
                    track_id: 1,
                    base_decode_time: 90_000,
                    samples: &v,
                },
                FragmentTrack {
                    track_id: 2,
                    base_decode_time: 48_000,
                    samples: &a,
                },
            ],
        );
        let bytes = rope.to_bytes();
        let got = read_segment(&bytes).unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(
            (got[0].dts, got[0].pts, got[0].keyframe),
            (90_000, 96_000, true)
        );
        assert_eq!(&got[0].data[..], b"abc");
        assert_eq!(
            (got[1].dts, got[1].pts, got[1].keyframe),
            (93_000, 90_000, false)
        );
        assert_eq!(&got[1].data[..], b"de");
        assert_eq!(
            (got[2].track, got[2].dts, &got[2].data[..]),
            (2, 48_000, &b"xyz1"[..])
        );
        // Every truncation is an error or fewer samples, never a panic.
        for cut in 0..bytes.len() {
            let _ = read_segment(&bytes.slice(..cut));
        }
    }
}
