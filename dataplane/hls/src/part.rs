//! The part being filled: buffered samples per track and how they become a CMAF chunk.

use std::time::Duration;

use bytes::Bytes;
use weir_cmaf::{FragmentTrack, Rope, Sample, fragment};

/// `track_ID` of the video track in init segments and fragments.
pub(crate) const VIDEO_TRACK_ID: u32 = 1;
/// `track_ID` of the audio track.
pub(crate) const AUDIO_TRACK_ID: u32 = 2;

/// A finished part.
#[derive(Debug, Clone)]
pub(crate) struct PartOut {
    /// `moof` + `mdat`.
    pub data: Rope,
    /// Duration of its master-track samples.
    pub duration: Duration,
    /// Starts with a key frame (always true for audio-only parts).
    pub independent: bool,
    /// Wall clock at ingest of its first master sample (UNIX ms).
    pub wallclock_ms: u64,
    /// Video samples in it.
    pub video_frames: u32,
    /// Audio only in a stream with a video track (the video stalled): listed with
    /// `GAP=YES`, so players skip it and jump the hole in the video.
    pub gap: bool,
    /// Decode time of its first master sample, in `timescale` ticks (its `tfdt`).
    pub start: u64,
    /// Sum of its master samples' durations, in `timescale` ticks.
    pub ticks: u64,
    /// The master track's timescale.
    pub timescale: u32,
}

/// A video frame waiting for the next one (which gives its duration).
#[derive(Debug)]
pub(crate) struct Held {
    pub dts: i64,
    pub pts: i64,
    pub keyframe: bool,
    pub data: Bytes,
    pub wallclock_ms: u64,
}

/// Samples of the part being filled.
#[derive(Debug, Default)]
pub(crate) struct PartBuf {
    pub video: Vec<Sample>,
    pub audio: Vec<Sample>,
    pub video_base: u64,
    pub audio_base: u64,
    /// Decode time after the last buffered audio sample.
    pub audio_next: u64,
    /// Master-track time of the first master sample.
    pub start: Option<u64>,
    /// Sum of master sample durations.
    pub master_len: u64,
    pub independent: bool,
    pub wallclock_ms: u64,
    pub bytes: usize,
}

impl PartBuf {
    /// Appends an audio sample decoded at `decode`.
    pub(crate) fn push_audio(&mut self, decode: u64, sample: Sample) {
        if self.audio.is_empty() {
            self.audio_base = decode;
        }
        self.audio_next = decode + u64::from(sample.duration);
        self.bytes += sample.data.len();
        self.audio.push(sample);
    }

    /// Removes and returns the last `n` buffered audio samples (all of them if fewer),
    /// each with its decode time.
    pub(crate) fn split_audio_tail(&mut self, n: usize) -> Vec<(u64, Sample)> {
        let keep = self.audio.len().saturating_sub(n);
        let mut at = self.audio_base;
        for s in &self.audio[..keep] {
            at += u64::from(s.duration);
        }
        let tail = self.audio.split_off(keep);
        if !tail.is_empty() {
            self.audio_next = at;
        }
        let mut out = Vec::with_capacity(tail.len());
        for s in tail {
            self.bytes = self.bytes.saturating_sub(s.data.len());
            let d = u64::from(s.duration);
            out.push((at, s));
            at += d;
        }
        out
    }

    /// The CMAF chunk of this part (fragment sequence number `seq`), or None when it holds
    /// no master sample (only audio waiting for video: nothing to play).
    pub(crate) fn finish(self, seq: u32, master_timescale: u32) -> Option<PartOut> {
        let start = self.start?;
        let mut tracks = Vec::with_capacity(2);
        if !self.video.is_empty() {
            tracks.push(FragmentTrack {
                track_id: VIDEO_TRACK_ID,
                base_decode_time: self.video_base,
                samples: &self.video,
            });
        }
        if !self.audio.is_empty() {
            tracks.push(FragmentTrack {
                track_id: AUDIO_TRACK_ID,
                base_decode_time: self.audio_base,
                samples: &self.audio,
            });
        }
        let nanos = u128::from(self.master_len) * 1_000_000_000 / u128::from(master_timescale);
        Some(PartOut {
            data: fragment(seq, &tracks),
            duration: Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX)),
            independent: self.independent,
            wallclock_ms: self.wallclock_ms,
            video_frames: u32::try_from(self.video.len()).unwrap_or(u32::MAX),
            gap: false,
            start,
            ticks: self.master_len,
            timescale: master_timescale,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(n: u8) -> Sample {
        Sample {
            duration: 1024,
            composition_offset: 0,
            keyframe: true,
            data: Bytes::from(vec![n; 10]),
        }
    }

    #[test]
    fn the_audio_tail_splits_off_with_decode_times() {
        let mut p = PartBuf::default();
        for i in 0..4 {
            p.push_audio(10_000 + 1024 * u64::from(i), sample(i));
        }
        assert_eq!(p.bytes, 40);
        let tail = p.split_audio_tail(2);
        let decodes: Vec<u64> = tail.iter().map(|t| t.0).collect();
        assert_eq!(decodes, [12_048, 13_072]);
        assert_eq!((p.audio.len(), p.bytes, p.audio_next), (2, 20, 12_048));
        assert!(p.split_audio_tail(0).is_empty());
        assert_eq!(p.audio.len(), 2);
        assert_eq!(p.split_audio_tail(5).len(), 2);
        assert_eq!(p.bytes, 0);
    }
}
