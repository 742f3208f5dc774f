//! The studio's pure core: what a composed program shows, computed without a codec.
//!
//! - [`layout()`]: participants + layout + canvas → tiles (16:9, even pixels, z-order;
//!   see the table in [`layout`](mod@layout)).
//! - [`cover_crop`]: the centred crop that makes a source fill a tile undistorted.
//! - [`Program`]: a sans-IO state machine over a [`Scene`] and the inputs' states that
//!   answers, for any instant, where each picture goes, which tiles show placeholders,
//!   and each participant's mix volume — with animated layout transitions.
//! - [`under`] / [`over`]: the still layers below and above the pictures (background
//!   image or backdrop, placeholder tiles; overlay and logo), painted in BGRA.
//!
//! The compositor (`weir-codec`'s `Compositor`, driven by the node) applies these plans
//! to GStreamer pads; everything here is unit-tested in virtual time.

pub mod geometry;
mod layers;
pub mod layout;
mod paint;
mod program;
mod scene;

pub use geometry::{Crop, Rect, cover_crop};
pub use layers::{Stills, over, under};
pub use layout::{Canvas, Layout, MAX_TILES, Tile, layout};
pub use paint::Bgra;
pub use program::{IDLE_REPLAN, InputState, Placeholder, Plan, Program, VideoPlacement};
pub use scene::{Banner, Image, Participant, Scene};
