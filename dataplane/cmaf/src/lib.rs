//! CMAF / fragmented MP4 writer.
//!
//! Turns bus frames into the two kinds of objects every CMAF packager (LL-HLS, DASH,
//! recordings) serves:
//!
//! - [`init_segment`]: `ftyp` + `moov` describing the tracks (avc1/hvc1/av01 with their
//!   configuration records, mp4a with `esds`, Opus with `dOps`) and `mvex`/`trex`, so the
//!   media that follows is fragmented. Track timescales come from [`timescale`]: 90 kHz
//!   for video (the bus clock, so video timestamps are copied as they are) and the sample
//!   rate for audio.
//! - [`fragment`]: one CMAF chunk, `moof` (`mfhd`, then per track `traf` with `tfhd`
//!   default-base-is-moof, `tfdt` version 1 and `trun` version 1 with signed composition
//!   offsets) followed by one `mdat` holding every track's samples.
//!
//! Everything is written with [`BoxWriter`], which backpatches box sizes. The writer is
//! pure: bytes in, [`bytes::Bytes`] out; it never fails, because every input is a
//! well-typed value (malformed codec records are copied as they are, an unusable AAC
//! AudioSpecificConfig is replaced by one derived from the sample rate and channels).

mod fragment;
mod init;
mod rope;
mod sample_entry;
mod writer;

#[cfg(any(test, feature = "test-support"))]
pub mod test_support;

pub use fragment::{
    FragmentTrack, NON_SYNC_SAMPLE_FLAGS, SYNC_SAMPLE_FLAGS, Sample, fragment, styp,
};
pub use init::{COMPATIBLE_BRANDS, InitTrack, init_segment, timescale};
pub use rope::Rope;
pub use sample_entry::video_dimensions;
pub use writer::BoxWriter;
