//! The publisher's test media: H.264 constrained baseline (no B-frames) as Annex B access
//! units and Opus packets from an Ogg file, both encoded once by ffmpeg, and the frame
//! hash that ties a subscriber's frame to the moment the publisher sent it.

use std::hash::Hasher as _;
use std::path::Path;
use std::process::Command;

use anyhow::{Context as _, ensure};

use crate::media::cached;

/// Video frame rate of the test media.
pub const FPS: u32 = 30;
/// Duration of one Opus packet (ffmpeg's libopus default frame size).
pub const OPUS_FRAME_MS: u32 = 20;

/// The test media, loaded in memory.
#[derive(Debug)]
pub struct TestMedia {
    /// Video access units (Annex B, one frame each), in decoding = presentation order.
    pub video: Vec<Vec<u8>>,
    /// Opus packets, one per [`OPUS_FRAME_MS`].
    pub audio: Vec<Vec<u8>>,
}

impl TestMedia {
    /// Encodes (once, cached) and loads 30 s of 720p30 testsrc2, ~1.35 Mbit/s H.264
    /// baseline with a 2 s GOP, and a 48 kHz Opus sine at 96 kbit/s: ~1.5 Mbit/s in all.
    pub fn load() -> anyhow::Result<Self> {
        let mut v = Command::new("ffmpeg");
        v.args(["-hide_banner", "-loglevel", "error", "-y"])
            .args([
                "-f",
                "lavfi",
                "-i",
                "testsrc2=size=1280x720:rate=30",
                "-t",
                "30",
            ])
            .args([
                "-c:v",
                "libx264",
                "-profile:v",
                "baseline",
                "-preset",
                "veryfast",
            ])
            .args([
                "-pix_fmt",
                "yuv420p",
                "-bf",
                "0",
                "-g",
                "60",
                "-keyint_min",
                "60",
            ])
            .args(["-sc_threshold", "0", "-b:v", "1400k", "-maxrate", "1400k"])
            .args(["-bufsize", "1400k", "-x264-params", "aud=1", "-f", "h264"]);
        let video_path = cached("testsrc2-720p30-h264-baseline-1400k-30s.h264", v)?;
        let mut a = Command::new("ffmpeg");
        a.args(["-hide_banner", "-loglevel", "error", "-y"])
            .args([
                "-f",
                "lavfi",
                "-i",
                "sine=frequency=440:sample_rate=48000",
                "-t",
                "30",
            ])
            .args(["-c:a", "libopus", "-b:a", "96k", "-frame_duration", "20"])
            .args(["-f", "ogg"]);
        let audio_path = cached("sine-opus-96k-30s.ogg", a)?;
        let media = Self {
            video: access_units(&read(&video_path)?),
            audio: ogg_packets(&read(&audio_path)?)?,
        };
        ensure!(
            media.video.len() >= 60 && media.audio.len() >= 50,
            "test media too short ({} video frames, {} Opus packets)",
            media.video.len(),
            media.audio.len()
        );
        Ok(media)
    }

    /// Average bit rate of video + audio, in bit/s.
    pub fn bitrate(&self) -> f64 {
        let v: usize = self.video.iter().map(Vec::len).sum();
        let a: usize = self.audio.iter().map(Vec::len).sum();
        let v_secs = self.video.len() as f64 / f64::from(FPS);
        let a_secs = self.audio.len() as f64 * f64::from(OPUS_FRAME_MS) / 1000.0;
        8.0 * (v as f64 / v_secs + a as f64 / a_secs)
    }
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// NAL units of an Annex B stream (without their start codes).
pub fn nal_units(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let ends: Vec<usize> = starts
        .iter()
        .skip(1)
        .map(|&s| {
            // The next start code begins 3 bytes before its payload (4 with a leading zero).
            let mut e = s - 3;
            while e > 0 && data[e - 1] == 0 {
                e -= 1;
            }
            e
        })
        .chain(std::iter::once(data.len()))
        .collect();
    starts
        .into_iter()
        .zip(ends)
        .filter(|(s, e)| s < e)
        .map(move |(s, e)| &data[s..e])
}

/// Splits an Annex B stream at its access unit delimiters (x264 `aud=1`), one frame each.
fn access_units(stream: &[u8]) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    for nal in nal_units(stream) {
        let kind = nal[0] & 0x1f;
        if kind == 9 {
            out.push(Vec::new());
            continue;
        }
        if let Some(au) = out.last_mut() {
            au.extend_from_slice(&[0, 0, 0, 1]);
            au.extend_from_slice(nal);
        }
    }
    out.retain(|au| !au.is_empty());
    out
}

/// The packets of an Ogg Opus stream, without the OpusHead and OpusTags headers.
fn ogg_packets(data: &[u8]) -> anyhow::Result<Vec<Vec<u8>>> {
    let mut packets = Vec::new();
    let mut current = Vec::new();
    let mut pos = 0;
    while pos < data.len() {
        let page = data.get(pos..).context("ogg: truncated")?;
        ensure!(
            page.len() >= 27 && &page[..4] == b"OggS",
            "ogg: bad page at {pos}"
        );
        let segments = usize::from(page[26]);
        let lacing = page
            .get(27..27 + segments)
            .context("ogg: truncated lacing")?;
        let mut body = 27 + segments;
        for &len in lacing {
            let len = usize::from(len);
            current.extend_from_slice(page.get(body..body + len).context("ogg: truncated page")?);
            body += len;
            if len < 255 {
                packets.push(std::mem::take(&mut current));
            }
        }
        pos += body;
    }
    Ok(packets
        .into_iter()
        .filter(|p| !p.starts_with(b"OpusHead") && !p.starts_with(b"OpusTags"))
        .collect())
}

/// A hash of a video frame's coded slices (NAL types 1 and 5), the same whether an SFU
/// forwards the packets as they came (Janus) or re-packetizes the frame with parameter
/// sets in front of key frames (weir).
pub fn frame_hash(annexb: &[u8]) -> Option<u64> {
    let mut h = std::hash::DefaultHasher::new();
    let mut any = false;
    for nal in nal_units(annexb) {
        if matches!(nal[0] & 0x1f, 1 | 5) {
            // The slice's length and first bytes (its header and the start of its data)
            // tell frames apart; hashing every byte would cost the load client CPU.
            h.write_usize(nal.len());
            h.write(&nal[..nal.len().min(256)]);
            any = true;
        }
    }
    any.then(|| h.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_access_units_and_hashes_slices_only() {
        let stream = [
            &[0, 0, 0, 1, 9, 0xf0][..],
            &[0, 0, 0, 1, 0x67, 1, 2],
            &[0, 0, 1, 0x65, 7, 7, 7],
            &[0, 0, 0, 1, 9, 0xf0],
            &[0, 0, 0, 1, 0x41, 5, 5],
        ]
        .concat();
        let aus = access_units(&stream);
        assert_eq!(aus.len(), 2);
        assert_eq!(aus[1], vec![0, 0, 0, 1, 0x41, 5, 5]);
        let with_sps = frame_hash(&aus[0]);
        let slice_only = frame_hash(&[0, 0, 0, 1, 0x65, 7, 7, 7]);
        assert_eq!(with_sps, slice_only);
        assert_ne!(frame_hash(&aus[1]), slice_only);
    }

    #[test]
    fn reads_ogg_lacing() {
        let mut page = b"OggS".to_vec();
        page.extend_from_slice(&[0; 22]);
        page.push(3);
        page.extend_from_slice(&[255, 1, 2]);
        page.extend(std::iter::repeat_n(7u8, 256));
        page.extend_from_slice(&[8, 8]);
        let p = ogg_packets(&page).expect("parses");
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].len(), 256);
        assert_eq!(p[1], vec![8, 8]);
    }
}
