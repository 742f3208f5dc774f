//! Movie fragments: `moof` (one `traf` per track) followed by a single `mdat`.

use bytes::Bytes;

use crate::rope::Rope;
use crate::writer::BoxWriter;

/// One media sample of a fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// Duration in the track's timescale.
    pub duration: u32,
    /// Presentation minus decode time, in the track's timescale (may be negative).
    pub composition_offset: i32,
    /// True for a sync sample (IDR / key frame; every audio sample).
    pub keyframe: bool,
    /// The sample bytes in MP4 format.
    pub data: Bytes,
}

/// One track's run of samples in a fragment.
#[derive(Debug, Clone, Copy)]
pub struct FragmentTrack<'a> {
    /// The `track_ID` from the initialisation segment.
    pub track_id: u32,
    /// Decode time of the first sample, in the track's timescale (`tfdt`).
    pub base_decode_time: u64,
    /// The samples, in decode order. A track with no samples is left out of the fragment.
    pub samples: &'a [Sample],
}

/// `sample_flags` of a sync sample: depends on no other sample.
pub const SYNC_SAMPLE_FLAGS: u32 = 0x0200_0000;
/// `sample_flags` of a non-sync sample: depends on others, `sample_is_non_sync_sample`.
pub const NON_SYNC_SAMPLE_FLAGS: u32 = 0x0101_0000;

/// `tfhd` flag: offsets are relative to the start of the `moof`.
const DEFAULT_BASE_IS_MOOF: u32 = 0x02_0000;
/// `trun` flags: data-offset, sample duration, size, flags and composition offset present.
const TRUN_FLAGS: u32 = 0x0001 | 0x0100 | 0x0200 | 0x0400 | 0x0800;

/// Writes one CMAF fragment (chunk): `moof` + `mdat` holding every track's samples.
///
/// `seq` is the `mfhd` sequence number; it must increase from fragment to fragment.
/// Sample data is laid out in `mdat` track after track, in the order given, and each
/// `trun` data offset points at its track's first sample (relative to the `moof`).
///
/// The result is a [`Rope`]: the `moof` and `mdat` header in one piece, then the samples'
/// own bytes, shared rather than copied.
pub fn fragment(seq: u32, tracks: &[FragmentTrack<'_>]) -> Rope {
    let payload: usize = tracks
        .iter()
        .flat_map(|t| t.samples.iter())
        .map(|s| s.data.len())
        .sum();
    let samples: usize = tracks.iter().map(|t| t.samples.len()).sum();
    let mut w = BoxWriter::with_capacity(136 + 16 * samples);

    w.begin(*b"moof");
    w.begin_full(*b"mfhd", 0, 0);
    w.u32(seq);
    w.end();
    let mut offset_fields = Vec::with_capacity(tracks.len());
    for t in tracks.iter().filter(|t| !t.samples.is_empty()) {
        w.begin(*b"traf");
        w.begin_full(*b"tfhd", 0, DEFAULT_BASE_IS_MOOF);
        w.u32(t.track_id);
        w.end();
        w.begin_full(*b"tfdt", 1, 0);
        w.u64(t.base_decode_time);
        w.end();
        w.begin_full(*b"trun", 1, TRUN_FLAGS);
        w.u32(u32::try_from(t.samples.len()).unwrap_or(u32::MAX));
        offset_fields.push(w.position());
        w.u32(0); // data_offset, patched below
        for s in t.samples {
            w.u32(s.duration);
            w.u32(u32::try_from(s.data.len()).unwrap_or(u32::MAX));
            w.u32(if s.keyframe {
                SYNC_SAMPLE_FLAGS
            } else {
                NON_SYNC_SAMPLE_FLAGS
            });
            w.i32(s.composition_offset);
        }
        w.end();
        w.end();
    }
    w.end();

    let moof_len = w.position();
    let large = u32::try_from(payload + 8).is_err();
    let mut data_offset = moof_len + if large { 16 } else { 8 };
    for (t, field) in tracks
        .iter()
        .filter(|t| !t.samples.is_empty())
        .zip(offset_fields)
    {
        w.patch_u32(field, u32::try_from(data_offset).unwrap_or(u32::MAX));
        data_offset += t.samples.iter().map(|s| s.data.len()).sum::<usize>();
    }

    // The mdat header; its payload is the samples themselves (64-bit size if needed).
    if large {
        w.u32(1);
        w.bytes(b"mdat");
        w.u64(payload as u64 + 16);
    } else {
        w.u32(payload as u32 + 8);
        w.bytes(b"mdat");
    }
    let head = w.finish();
    let samples = tracks
        .iter()
        .flat_map(|t| t.samples.iter().map(|s| s.data.clone()));
    Rope::from_pieces(std::iter::once(head).chain(samples))
}

/// A segment type box (`styp`) that may precede the first fragment of a media segment.
pub fn styp() -> Bytes {
    let mut w = BoxWriter::with_capacity(24);
    w.begin(*b"styp");
    w.bytes(b"msdh");
    w.u32(0);
    for b in [b"msdh", b"msix", b"cmfs"] {
        w.bytes(b);
    }
    w.end();
    w.finish()
}
