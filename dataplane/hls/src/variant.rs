//! What a multivariant playlist says about a rendition, and the multivariant playlist
//! over several renditions (a transcode ladder or an OBS multitrack stream).
//!
//! A [`Snapshot`](crate::Snapshot) carries its rendition's [`VariantInfo`] (measured
//! bandwidth, codecs, resolution, frame rate); [`multivariant_playlist`] lists video
//! renditions as `EXT-X-STREAM-INF` variants sharing one audio rendition group, as CMAF
//! tracks packaged one per playlist (the same objects a DASH manifest names).

use std::fmt::Write as _;
use std::time::Duration;

use weir_media::{AudioConfig, TrackConfig, VideoConfig};

use crate::playlist::VERSION;
use crate::window::Window;

/// The `GROUP-ID` of the audio rendition group.
pub const AUDIO_GROUP: &str = "audio";

/// What a rendition's playlist carries, as a multivariant playlist describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct VariantInfo {
    /// Peak segment bitrate (bit/s) over the kept segments, or an estimate.
    pub peak_bps: u64,
    /// Average bitrate (bit/s) over the kept segments, or an estimate.
    pub average_bps: u64,
    /// True when the bitrates were measured from segments (not estimated).
    pub measured: bool,
    /// RFC 6381 codec strings of its tracks.
    pub codecs: Vec<String>,
    /// Display width and height of its video.
    pub resolution: Option<(u32, u32)>,
    /// Measured video frame rate.
    pub frame_rate: Option<f64>,
    /// Audio channel count.
    pub channels: Option<u8>,
    /// No segment of the broadcast was cut without a key frame.
    pub independent: bool,
}

impl VariantInfo {
    /// Measures the kept segments of `w`.
    pub(crate) fn of(w: &Window, video: Option<&VideoConfig>, audio: Option<&AudioConfig>) -> Self {
        let (peak_bps, average_bps, measured) = bandwidth(w, video, audio);
        let codecs = video
            .map(|v| TrackConfig::Video(v.clone()).codec_string())
            .into_iter()
            .chain(audio.map(|a| TrackConfig::Audio(a.clone()).codec_string()))
            .collect();
        let resolution = video
            .map(weir_cmaf::video_dimensions)
            .filter(|&(w, h)| w > 0 && h > 0)
            .map(|(w, h)| (u32::from(w), u32::from(h)));
        // Over the segments with video (audio-only ones from a video stall would skew it).
        let (frames, time) = w
            .closed
            .iter()
            .filter(|s| s.has_video())
            .fold((0, Duration::ZERO), |(f, t), s| {
                (f + s.video_frames, t + s.duration)
            });
        let frame_rate = (video.is_some() && frames > 0 && !time.is_zero())
            .then(|| frames as f64 / time.as_secs_f64());
        Self {
            peak_bps,
            average_bps,
            measured,
            codecs,
            resolution,
            frame_rate,
            channels: audio.map(|a| a.channels),
            independent: !w.dependent_cut,
        }
    }

    /// `BANDWIDTH=…,AVERAGE-BANDWIDTH=…,CODECS="…"[,RESOLUTION=…][,FRAME-RATE=…]`, with
    /// `extra` (an audio rendition's) added to bitrates and codecs.
    pub(crate) fn stream_inf_attributes(&self, extra: Option<&VariantInfo>) -> String {
        let peak = self.peak_bps + extra.map_or(0, |a| a.peak_bps);
        let average = self.average_bps + extra.map_or(0, |a| a.average_bps);
        let codecs: Vec<&str> = self
            .codecs
            .iter()
            .chain(extra.iter().flat_map(|a| a.codecs.iter()))
            .map(String::as_str)
            .collect();
        let mut out = format!(
            "BANDWIDTH={peak},AVERAGE-BANDWIDTH={average},CODECS=\"{}\"",
            codecs.join(",")
        );
        if let Some((w, h)) = self.resolution {
            let _ = write!(out, ",RESOLUTION={w}x{h}");
        }
        if let Some(fps) = self.frame_rate {
            let _ = write!(out, ",FRAME-RATE={fps:.3}");
        }
        out
    }
}

/// One video rendition of a multivariant playlist.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoVariant {
    /// Its media playlist, relative to the multivariant playlist.
    pub uri: String,
    /// What its snapshot says.
    pub info: VariantInfo,
    /// Nominal bitrate (bit/s, e.g. the ladder rung's), used until measured.
    pub nominal_bps: Option<u64>,
}

/// The audio rendition the video variants share.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioRendition {
    /// Its media playlist, relative to the multivariant playlist.
    pub uri: String,
    /// `NAME` (and the language, when known).
    pub name: String,
    /// What its snapshot says.
    pub info: VariantInfo,
}

/// The multivariant playlist over `videos` (highest bitrate first is conventional; the
/// order is kept) and one optional shared audio rendition (`EXT-X-MEDIA`, group
/// [`AUDIO_GROUP`]). With no video, the audio playlist is the only variant.
pub fn multivariant_playlist(videos: &[VideoVariant], audio: Option<&AudioRendition>) -> String {
    let mut out = format!("#EXTM3U\n#EXT-X-VERSION:{VERSION}\n");
    let independent = videos.iter().all(|v| v.info.independent);
    if independent {
        out.push_str("#EXT-X-INDEPENDENT-SEGMENTS\n");
    }
    if let Some(a) = audio {
        let _ = write!(
            out,
            "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"{AUDIO_GROUP}\",NAME=\"{}\",DEFAULT=YES,AUTOSELECT=YES",
            quoted(&a.name)
        );
        if let Some(ch) = a.info.channels {
            let _ = write!(out, ",CHANNELS=\"{ch}\"");
        }
        let _ = writeln!(out, ",URI=\"{}\"", quoted(&a.uri));
    }
    if videos.is_empty() {
        if let Some(a) = audio {
            let _ = write!(
                out,
                "#EXT-X-STREAM-INF:{}\n{}\n",
                a.info.stream_inf_attributes(None),
                a.uri
            );
        }
        return out;
    }
    for v in videos {
        let mut info = v.info.clone();
        if let (false, Some(nominal)) = (info.measured, v.nominal_bps) {
            info.peak_bps = nominal + nominal / 10;
            info.average_bps = nominal;
        }
        let attrs = info.stream_inf_attributes(audio.map(|a| &a.info));
        let group = if audio.is_some() {
            format!(",AUDIO=\"{AUDIO_GROUP}\"")
        } else {
            String::new()
        };
        let _ = write!(out, "#EXT-X-STREAM-INF:{attrs}{group}\n{}\n", v.uri);
    }
    out
}

/// A quoted-string attribute value: `"` and line breaks are not allowed in it.
fn quoted(s: &str) -> String {
    s.chars()
        .filter(|c| !matches!(c, '"' | '\n' | '\r'))
        .collect()
}

/// Bits per second (peak segment, average, measured?) over the kept segments, or an
/// estimate.
fn bandwidth(
    w: &Window,
    video: Option<&VideoConfig>,
    audio: Option<&AudioConfig>,
) -> (u64, u64, bool) {
    let rate = |bytes: usize, d: Duration| {
        let nanos = d.as_nanos().max(1);
        u64::try_from(bytes as u128 * 8 * 1_000_000_000 / nanos).unwrap_or(u64::MAX)
    };
    let measured: Vec<(usize, Duration)> = w
        .closed
        .iter()
        .map(|s| &**s)
        .chain(w.open.as_ref())
        .filter(|s| s.duration >= Duration::from_millis(100))
        .map(|s| (s.bytes, s.duration))
        .collect();
    if measured.is_empty() {
        // Nothing measured yet: about 3 bits per pixel per second, plus 128 kbit/s audio.
        let v = video.map_or(0, |v| {
            let (w, h) = weir_cmaf::video_dimensions(v);
            (u64::from(w) * u64::from(h) * 3).max(500_000)
        });
        let a = audio.map_or(0, |_| 128_000);
        return (v + a, v + a, false);
    }
    let peak = measured.iter().map(|&(b, d)| rate(b, d)).max().unwrap_or(0);
    let bytes = measured.iter().map(|&(b, _)| b).sum();
    let time = measured.iter().map(|&(_, d)| d).sum();
    (peak, rate(bytes, time), true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(peak: u64, codecs: &[&str], res: Option<(u32, u32)>) -> VariantInfo {
        VariantInfo {
            peak_bps: peak,
            average_bps: peak * 9 / 10,
            measured: true,
            codecs: codecs.iter().map(|c| (*c).to_owned()).collect(),
            resolution: res,
            frame_rate: res.map(|_| 30.0),
            channels: res.is_none().then_some(2),
            independent: true,
        }
    }

    #[test]
    fn video_variants_share_the_audio_group_and_add_its_bitrate() {
        let audio = AudioRendition {
            uri: "b/audio/media.m3u8".into(),
            name: "audio".into(),
            info: info(130_000, &["mp4a.40.2"], None),
        };
        let videos = [
            VideoVariant {
                uri: "b/720p/media.m3u8".into(),
                info: info(3_000_000, &["avc1.64001f"], Some((1280, 720))),
                nominal_bps: Some(3_000_000),
            },
            VideoVariant {
                uri: "b/360p/media.m3u8".into(),
                info: VariantInfo {
                    measured: false,
                    ..info(1, &["avc1.64001e"], Some((640, 360)))
                },
                nominal_bps: Some(700_000),
            },
        ];
        let text = multivariant_playlist(&videos, Some(&audio));
        assert!(text.contains(
            "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"audio\",DEFAULT=YES,AUTOSELECT=YES,CHANNELS=\"2\",URI=\"b/audio/media.m3u8\"\n"
        ), "{text}");
        assert!(text.contains(
            "#EXT-X-STREAM-INF:BANDWIDTH=3130000,AVERAGE-BANDWIDTH=2817000,CODECS=\"avc1.64001f,mp4a.40.2\",RESOLUTION=1280x720,FRAME-RATE=30.000,AUDIO=\"audio\"\nb/720p/media.m3u8\n"
        ), "{text}");
        // Not measured yet: the nominal bitrate (+10 % peak) is announced.
        assert!(
            text.contains("BANDWIDTH=900000,AVERAGE-BANDWIDTH=817000,"),
            "{text}"
        );
        assert!(text.contains("#EXT-X-INDEPENDENT-SEGMENTS\n"));
    }

    #[test]
    fn an_audio_only_broadcast_lists_its_audio_playlist_as_the_variant() {
        let audio = AudioRendition {
            uri: "b/audio/media.m3u8".into(),
            name: "a\"b".into(),
            info: info(130_000, &["opus"], None),
        };
        let text = multivariant_playlist(&[], Some(&audio));
        assert!(text.contains("NAME=\"ab\""), "{text}");
        assert!(
            text.ends_with("CODECS=\"opus\"\nb/audio/media.m3u8\n"),
            "{text}"
        );
    }
}
