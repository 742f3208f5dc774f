//! Real encoded frames from ffmpeg: H.264 (Annex B, converted to length-prefixed NAL
//! units and an avcC record) and AAC (ADTS, converted to raw frames and an
//! AudioSpecificConfig), on the bus timeline.

use std::path::Path;
use std::process::Command;

use bytes::Bytes;
use weir_media::{AudioConfig, Codec, Frame, TIMESCALE, TrackId, VideoConfig};

/// Encoded frames and the track configs that describe them.
#[derive(Debug, Clone)]
pub struct Fixture {
    /// The H.264 track (320x240, 30 fps, no B-frames).
    pub video: VideoConfig,
    /// The AAC-LC track (44.1 kHz mono).
    pub audio: AudioConfig,
    /// Video and audio frames interleaved in decode order, starting at dts 90 000.
    pub frames: Vec<Frame>,
}

/// True when `tool -version` runs (ffmpeg, ffprobe).
pub fn tool_available(tool: &str) -> bool {
    Command::new(tool)
        .arg("-version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Encodes `seconds` of test pattern and tone with ffmpeg into `dir` and reads it back.
///
/// `gop` is the key frame interval in frames (30 fps).
pub fn encode_fixture(dir: &Path, seconds: u32, gop: u32) -> Result<Fixture, String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let h264 = dir.join("fixture.h264");
    let aac = dir.join("fixture.aac");
    let t = seconds.to_string();
    let g = gop.to_string();
    run_ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=320x240:rate=30",
        "-t",
        &t,
        "-c:v",
        "libx264",
        "-profile:v",
        "high",
        "-pix_fmt",
        "yuv420p",
        "-bf",
        "0",
        "-g",
        &g,
        "-keyint_min",
        &g,
        "-sc_threshold",
        "0",
        "-x264-params",
        "aud=1",
        "-threads",
        "1",
        "-f",
        "h264",
        &h264.to_string_lossy(),
    ])?;
    run_ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=44100",
        "-t",
        &t,
        "-c:a",
        "aac",
        "-b:a",
        "64k",
        "-ac",
        "1",
        "-f",
        "adts",
        &aac.to_string_lossy(),
    ])?;
    let h264 = std::fs::read(h264).map_err(|e| e.to_string())?;
    let aac = std::fs::read(aac).map_err(|e| e.to_string())?;

    let (record, units) = annexb_to_avcc(&h264).ok_or("no SPS/PPS in the H.264 stream")?;
    let (asc, raw) = parse_adts(&aac).ok_or("malformed ADTS stream")?;
    let start = i64::from(TIMESCALE);
    let mut frames = Vec::with_capacity(units.len() + raw.len());
    for (i, (keyframe, data)) in units.into_iter().enumerate() {
        let dts = start + i as i64 * 3000;
        frames.push(Frame {
            track: TrackId::VIDEO,
            dts,
            pts: dts,
            keyframe,
            data: Bytes::from(data),
        });
    }
    for (i, data) in raw.into_iter().enumerate() {
        let dts = start + (i as i64 * 1024 * 90_000 + 22_050) / 44_100;
        frames.push(Frame {
            track: TrackId::AUDIO,
            dts,
            pts: dts,
            keyframe: true,
            data: Bytes::from(data),
        });
    }
    frames.sort_by_key(|f| f.dts);
    Ok(Fixture {
        video: VideoConfig {
            codec: Codec::H264,
            width: 320,
            height: 240,
            record: Bytes::from(record),
        },
        audio: AudioConfig {
            codec: Codec::Aac,
            sample_rate: 44_100,
            channels: 1,
            record: Bytes::from(asc.to_vec()),
        },
        frames,
    })
}

fn run_ffmpeg(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-nostdin"])
        .args(args)
        .output()
        .map_err(|e| format!("running ffmpeg: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// An access unit: key frame flag and length-prefixed NAL units.
pub type AccessUnit = (bool, Vec<u8>);

/// Splits an Annex B stream into NAL units (without start codes).
fn nal_units(data: &[u8]) -> Vec<&[u8]> {
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
    let mut out = Vec::with_capacity(starts.len());
    for (n, &s) in starts.iter().enumerate() {
        let mut end = starts.get(n + 1).map_or(data.len(), |&next| next - 3);
        while end > s && data[end - 1] == 0 {
            end -= 1; // trailing zero of a 4-byte start code
        }
        if end > s {
            out.push(&data[s..end]);
        }
    }
    out
}

/// Converts an Annex B H.264 stream with access unit delimiters into an avcC record and
/// access units of 4-byte length-prefixed NAL units (AUD, SPS and PPS left out), each
/// with its key frame flag (contains an IDR slice).
pub fn annexb_to_avcc(data: &[u8]) -> Option<(Vec<u8>, Vec<AccessUnit>)> {
    let mut sps = None;
    let mut pps = None;
    let mut units: Vec<AccessUnit> = Vec::new();
    let mut current: Option<AccessUnit> = None;
    for nal in nal_units(data) {
        match nal[0] & 0x1f {
            9 => {
                if let Some(u) = current.take().filter(|u| !u.1.is_empty()) {
                    units.push(u);
                }
                current = Some((false, Vec::new()));
            }
            7 => sps = sps.or(Some(nal)),
            8 => pps = pps.or(Some(nal)),
            t => {
                let unit = current.get_or_insert_with(|| (false, Vec::new()));
                unit.0 |= t == 5;
                unit.1.extend_from_slice(&(nal.len() as u32).to_be_bytes());
                unit.1.extend_from_slice(nal);
            }
        }
    }
    if let Some(u) = current.filter(|u| !u.1.is_empty()) {
        units.push(u);
    }
    let (sps, pps) = (sps?, pps?);
    if sps.len() < 4 {
        return None;
    }
    let mut record = vec![1, sps[1], sps[2], sps[3], 0xff, 0xe1];
    record.extend_from_slice(&(sps.len() as u16).to_be_bytes());
    record.extend_from_slice(sps);
    record.push(1);
    record.extend_from_slice(&(pps.len() as u16).to_be_bytes());
    record.extend_from_slice(pps);
    Some((record, units))
}

/// Splits an ADTS stream into raw AAC frames and derives the AudioSpecificConfig.
pub fn parse_adts(data: &[u8]) -> Option<([u8; 2], Vec<Vec<u8>>)> {
    let mut frames = Vec::new();
    let mut asc = None;
    let mut pos = 0;
    while pos + 7 <= data.len() {
        let h = &data[pos..pos + 7];
        if h[0] != 0xff || h[1] & 0xf0 != 0xf0 {
            return None;
        }
        let header_len = if h[1] & 1 == 1 { 7 } else { 9 };
        let object_type = u16::from((h[2] >> 6) + 1);
        let freq = u16::from((h[2] >> 2) & 0x0f);
        let channels = u16::from(((h[2] & 1) << 2) | (h[3] >> 6));
        let len = (usize::from(h[3] & 3) << 11) | (usize::from(h[4]) << 3) | usize::from(h[5] >> 5);
        if len < header_len || pos + len > data.len() {
            return None;
        }
        asc.get_or_insert(((object_type << 11) | (freq << 7) | (channels << 3)).to_be_bytes());
        frames.push(data[pos + header_len..pos + len].to_vec());
        pos += len;
    }
    Some((asc?, frames))
}
