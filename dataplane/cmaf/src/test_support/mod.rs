//! Helpers for tests of this crate and of crates that package with it (feature
//! `test-support`): a tiny MP4 box reader and an ffmpeg fixture of real encoded frames.

mod fixture;
mod mp4;

pub use fixture::{
    AccessUnit, Fixture, annexb_to_avcc, encode_fixture, parse_adts, tool_available,
};
pub use mp4::{Mp4Box, boxes, child, children, path};
