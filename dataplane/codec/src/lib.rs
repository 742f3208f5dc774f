//! The codec engine: the transcode ladder (decode once, scale and encode every rung with
//! identical keyframe positions), off the shards.
//!
//! # Shape
//! Sans-bus: the crate knows `weir-media` types ([`weir_media::Frame`],
//! [`weir_media::VideoConfig`], [`weir_media::TrackConfig`]), not the bus or the node.
//! [`plan`] says which rungs apply to a source; [`Ladder::start`] builds and plays the
//! pipeline; [`Ladder::push`] queues a source frame and never blocks (bounded input queue,
//! explicit drop policy); [`Ladder::try_recv`] returns [`LadderOutput`]s; the wake-up hook
//! [`Ladder::set_notify`] is a plain callback, so a caller on any runtime (a compio shard,
//! tokio) can bridge it to its own notification primitive. Audio is not handled here: the
//! caller passes the source's audio through beside the ladder's video tracks.
//!
//! ```text
//! appsrc (avc, au, codec_data) ! h264parse ! avdec_h264 | nvh264dec ! tee
//!   tee. ! queue ! videoconvertscale ! video/x-raw,I420,WxH ! x264enc | nvh264enc
//!        ! video/x-h264,stream-format=avc,alignment=au ! appsink     (one per rung)
//! ```
//! Threads: the appsrc streaming thread decodes; each rung's queue starts a thread that
//! scales and encodes (x264 adds its own); a control thread reads the pipeline bus and runs
//! the overload policy. Nothing runs on the caller's thread but queueing.
//!
//! # Why GStreamer (1.22, via gstreamer-rs) and not the FFmpeg libraries
//! The same engine must later run the studio compositor, where guests join and leave while
//! the show is live: GStreamer's `compositor`/`audiomixer` take pads requested and released
//! while PLAYING and change pad geometry live, whereas a libavfilter graph is fixed once
//! configured (a guest joining means rebuilding it). CRATES.md measured both at similar
//! cost (ladder 1080p → 4 rungs 1.19–1.33 cores); ffmpeg-next calls itself
//! maintenance-only. GStreamer also gives NVENC/NVDEC through `nvcodec`, loaded at run
//! time, with no CUDA toolkit at build time.
//!
//! # Keyframes and timestamps
//! - Every rung is keyframed exactly at the source's keyframes: x264 runs with
//!   `key-int-max` infinite and `scenecut=0`, and a probe sends a downstream
//!   force-key-unit event right before each frame at a source keyframe's PTS. When
//!   `gop_follows_source` is off (or a source GOP exceeds `max_gop`), the ladder picks the
//!   extra positions itself, from source PTS, so they are still the same on every rung.
//! - Bus ticks (90 kHz) are carried as GStreamer nanoseconds from a per-ladder origin and
//!   mapped back exactly ([`TimeOrigin`]): output PTS equal the source frames' PTS.
//! - Rungs are encoded without B-frames by default (`EncoderTuning::bframes = 0`): a live
//!   ladder gains little from them at these bitrates, they add reorder delay and CPU, and
//!   without them every rung gets the same decode timeline as the source
//!   ([`SourceTimeline`]): output DTS increase strictly and never pass the PTS. With
//!   B-frames the encoder's DTS are used instead.
//!
//! # Encoder selection
//! `EncoderChoice::Auto` takes `nvh264enc` when the element exists and a one-frame probe
//! pipeline reaches EOS, else `x264enc`; NVDEC is taken when present and working. The
//! choice is a pure function ([`Selector`]) over which elements exist and which failed,
//! unit-tested without a GPU. The machines here have no NVENC (H100/H200 have NVDEC only):
//! the NVENC path is chosen at run time, and only its selection and fallback are tested.
//!
//! # Overload
//! When output trails input by more than `high_lag` (1 s) for `sustain`, the most expensive
//! encoded rungs are turned off from the top (the lowest rung always stays), reported as
//! [`LadderOutput::Overloaded`]; after keeping up for `recover_after` one comes back, at its
//! next keyframe ([`LadderOutput::Recovered`]); flapping doubles the wait. The policy is a
//! sans-IO state machine ([`OverloadPolicy`]) tested in virtual time.
//!
//! # Per-title bitrates
//! With [`LadderConfig::per_title`], one more branch encodes a small picture at constant
//! quality; its cost is the content's complexity, and the control thread scales every
//! encoded rung's bitrate from the table by it, live (x264 and NVENC take a new bitrate
//! while playing), reported as [`LadderOutput::Bitrates`]. See [`pertitle`].

mod compose;
mod config;
mod control;
mod error;
pub mod head;
mod ladder;
mod overload;
pub mod pertitle;
mod pipeline;
mod plan;
mod probe;
mod rung;
mod select;
pub mod snapshot;
pub mod synth;
mod timeline;

pub use compose::{
    ComposeConfig, ComposeOutput, Compositor, MAX_IMAGE_BYTES, MAX_IMAGE_SIDE, decode_image,
};
pub use config::{EncoderChoice, EncoderTuning, LadderConfig, Rung, default_ladder};
pub use error::{CodecError, PushError};
pub use head::{HeadFrame, reencode_head};
pub use ladder::{Ladder, LadderOutput, LadderStats};
pub use overload::{OverloadAction, OverloadConfig, OverloadPolicy};
pub use pertitle::{PerTitle, PerTitleConfig};
pub use plan::{PlannedRung, plan, source_dimensions};
pub use select::{DecoderKind, EncoderKind, Selection, Selector};
pub use snapshot::keyframe_jpegs;
pub use timeline::{FrameDecimator, ORIGIN_MARGIN, SourceTimeline, TimeOrigin};

/// Whether GStreamer and the elements a CPU ladder needs (x264enc, avdec_h264, a scaler,
/// app source and sink) are installed here; `Err` names what is missing.
pub fn cpu_ladder_available() -> Result<(), CodecError> {
    gstreamer::init().map_err(|e| CodecError::Init(e.to_string()))?;
    for f in [
        "appsrc",
        "appsink",
        "h264parse",
        "tee",
        "queue",
        "capsfilter",
        "x264enc",
        "avdec_h264",
    ] {
        if !pipeline::has_element(f) {
            return Err(CodecError::MissingElement(f));
        }
    }
    if !pipeline::has_element("videoconvertscale") && !pipeline::has_element("videoscale") {
        return Err(CodecError::MissingElement("videoscale"));
    }
    Ok(())
}
