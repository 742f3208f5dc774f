//! What a ladder is asked to produce: rungs, encoder choice, keyframe and overload policy.

use std::time::Duration;

use crate::error::CodecError;
use crate::overload::OverloadConfig;
use crate::pertitle::PerTitleConfig;

/// Which H.264 encoder the ladder uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum EncoderChoice {
    /// NVENC (`nvh264enc`) when its element exists and can reach PLAYING, else x264.
    #[default]
    Auto,
    /// Always x264 (`x264enc`, CPU).
    X264,
    /// Always NVENC (`nvh264enc`); starting fails where no NVENC-capable GPU is present.
    Nvenc,
}

/// One rendition of the ladder, as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rung {
    /// Rendition name (`"720p"`), used in playlists and logs.
    pub name: String,
    /// Output height in pixels (even); the width follows the source aspect ratio.
    pub height: u16,
    /// Target video bitrate in kbit/s.
    pub video_bitrate_kbps: u32,
    /// Frame-rate cap: frames are dropped (never duplicated) to stay at or under it.
    pub max_fps: Option<u32>,
}

impl Rung {
    /// A rung with no frame-rate cap.
    pub fn new(name: impl Into<String>, height: u16, video_bitrate_kbps: u32) -> Self {
        Self {
            name: name.into(),
            height,
            video_bitrate_kbps,
            max_fps: None,
        }
    }
}

/// The default live ladder: 1080p 6 Mb/s, 720p 3 Mb/s, 480p 1.2 Mb/s, 360p 700 kb/s
/// (H.264 High at 30 fps; roughly what Twitch and YouTube recommend for live).
pub fn default_ladder() -> Vec<Rung> {
    vec![
        Rung::new("1080p", 1080, 6000),
        Rung::new("720p", 720, 3000),
        Rung::new("480p", 480, 1200),
        Rung::new("360p", 360, 700),
    ]
}

/// x264 knobs that trade latency and CPU for quality.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncoderTuning {
    /// B-frames between references. 0 (the default) keeps encoder output in presentation
    /// order: no reorder delay, and every rung gets the same decode timestamps as the
    /// source timeline (see the crate docs). With B-frames, output DTS come from the encoder.
    pub bframes: u32,
    /// x264 `tune=zerolatency`: no lookahead, sliced threads, no frame delay (default true).
    pub zerolatency: bool,
}

impl Default for EncoderTuning {
    fn default() -> Self {
        Self {
            bframes: 0,
            zerolatency: true,
        }
    }
}

/// A ladder's configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct LadderConfig {
    /// Renditions wanted; [`crate::plan`] caps them at the source.
    pub rungs: Vec<Rung>,
    /// The top rendition is the source itself, not re-encoded (see [`crate::plan`]).
    pub passthrough_top: bool,
    /// Which encoder to use.
    pub encoder: EncoderChoice,
    /// Keyframes exactly at the source's keyframes on every rung (default true). When
    /// false, rungs use a fixed GOP of [`LadderConfig::max_gop`] and are only aligned with
    /// each other, not with the source.
    pub gop_follows_source: bool,
    /// Longest GOP the encoder makes on its own: the fixed GOP when
    /// `gop_follows_source` is false, a safety net against sources that stop sending
    /// keyframes otherwise (default 10 s).
    pub max_gop: Duration,
    /// Encoder tuning.
    pub tuning: EncoderTuning,
    /// Input queue bound: frames pushed while this much media is waiting to be decoded
    /// are refused with [`crate::PushError::Full`] (default 2 s).
    pub max_input_backlog: Duration,
    /// Bound on encoded output waiting in [`crate::Ladder::try_recv`], in frames (default
    /// 1024); past it, a rung's frames are dropped up to its next keyframe.
    pub max_output_queue: usize,
    /// Dropping and restoring rungs when the engine falls behind; `None` never drops.
    pub overload: Option<OverloadConfig>,
    /// Per-title mode: the encoded rungs' bitrates follow the content's measured
    /// complexity (see [`crate::pertitle`]); `None` (the default) keeps the table's.
    pub per_title: Option<PerTitleConfig>,
}

impl Default for LadderConfig {
    fn default() -> Self {
        Self {
            rungs: default_ladder(),
            passthrough_top: false,
            encoder: EncoderChoice::Auto,
            gop_follows_source: true,
            max_gop: Duration::from_secs(10),
            tuning: EncoderTuning::default(),
            max_input_backlog: Duration::from_secs(2),
            max_output_queue: 1024,
            overload: Some(OverloadConfig::default()),
            per_title: None,
        }
    }
}

impl LadderConfig {
    /// Checks the configuration: at least one rung, even heights of 16..=4320, non-zero
    /// bitrates and frame-rate caps, unique names.
    pub fn validate(&self) -> Result<(), CodecError> {
        if self.rungs.is_empty() {
            return Err(CodecError::Config("the ladder has no rungs".into()));
        }
        for (i, r) in self.rungs.iter().enumerate() {
            if !(16..=4320).contains(&r.height) || r.height % 2 != 0 {
                return Err(CodecError::Config(format!(
                    "rung {:?}: height {} must be even and within 16..=4320",
                    r.name, r.height
                )));
            }
            if r.video_bitrate_kbps == 0 {
                return Err(CodecError::Config(format!(
                    "rung {:?}: bitrate is 0",
                    r.name
                )));
            }
            if r.max_fps == Some(0) {
                return Err(CodecError::Config(format!(
                    "rung {:?}: max_fps is 0",
                    r.name
                )));
            }
            if self.rungs[..i].iter().any(|o| o.name == r.name) {
                return Err(CodecError::Config(format!(
                    "rung name {:?} used twice",
                    r.name
                )));
            }
        }
        if self.max_gop.is_zero() {
            return Err(CodecError::Config("max_gop is 0".into()));
        }
        if self.max_output_queue == 0 {
            return Err(CodecError::Config("max_output_queue is 0".into()));
        }
        if let Some(p) = &self.per_title {
            p.validate().map_err(CodecError::Config)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_is_valid() {
        assert_eq!(LadderConfig::default().validate(), Ok(()));
        let heights: Vec<u16> = default_ladder().iter().map(|r| r.height).collect();
        assert_eq!(heights, [1080, 720, 480, 360]);
    }

    #[test]
    fn bad_rungs_are_refused() {
        let with = |rungs: Vec<Rung>| LadderConfig {
            rungs,
            ..LadderConfig::default()
        };
        assert!(with(vec![]).validate().is_err());
        assert!(with(vec![Rung::new("odd", 481, 1000)]).validate().is_err());
        assert!(with(vec![Rung::new("tiny", 8, 1000)]).validate().is_err());
        assert!(with(vec![Rung::new("zero", 480, 0)]).validate().is_err());
        assert!(
            with(vec![Rung::new("a", 480, 1), Rung::new("a", 360, 1)])
                .validate()
                .is_err()
        );
        let mut capped = Rung::new("fps", 480, 1000);
        capped.max_fps = Some(0);
        assert!(with(vec![capped]).validate().is_err());
    }
}
