//! The initialisation segment: `ftyp` + `moov` with one `trak` per track and `mvex`.

use bytes::Bytes;
use weir_media::{Codec, TIMESCALE, TrackConfig};

use crate::sample_entry::{video_dimensions, write_audio, write_video};
use crate::writer::BoxWriter;

/// One track of an initialisation segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitTrack {
    /// The `track_ID` (non-zero, unique in the presentation); fragments refer to it.
    pub track_id: u32,
    /// Codec and decoder configuration.
    pub config: TrackConfig,
}

/// The media timescale a track is written with: 90 kHz for video (the bus clock),
/// the sample rate for audio (48 kHz for Opus), so audio durations are whole samples.
pub fn timescale(config: &TrackConfig) -> u32 {
    match config {
        TrackConfig::Video(_) => TIMESCALE,
        TrackConfig::Audio(a) if a.codec == Codec::Opus => 48_000,
        TrackConfig::Audio(a) if a.sample_rate > 0 => a.sample_rate,
        TrackConfig::Audio(_) => 48_000,
    }
}

/// The compatible brands written in `ftyp` (major brand `iso6`).
pub const COMPATIBLE_BRANDS: [&[u8; 4]; 4] = [b"iso6", b"cmfc", b"mp41", b"dash"];

/// Writes an initialisation segment (`ftyp` + `moov`) describing `tracks`.
pub fn init_segment(tracks: &[InitTrack]) -> Bytes {
    let mut w = BoxWriter::with_capacity(1024);
    w.begin(*b"ftyp");
    w.bytes(b"iso6");
    w.u32(0); // minor_version
    for b in COMPATIBLE_BRANDS {
        w.bytes(b);
    }
    w.end();

    w.begin(*b"moov");
    write_mvhd(
        &mut w,
        tracks.iter().map(|t| t.track_id).max().unwrap_or(0) + 1,
    );
    for t in tracks {
        write_trak(&mut w, t);
    }
    w.begin(*b"mvex");
    for t in tracks {
        w.begin_full(*b"trex", 0, 0);
        w.u32(t.track_id);
        w.u32(1); // default_sample_description_index
        w.u32(0); // default_sample_duration
        w.u32(0); // default_sample_size
        w.u32(0); // default_sample_flags
        w.end();
    }
    w.end();
    w.end();
    w.finish()
}

const MATRIX: [u32; 9] = [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000];

fn write_mvhd(w: &mut BoxWriter, next_track_id: u32) {
    w.begin_full(*b"mvhd", 0, 0);
    w.u32(0); // creation_time
    w.u32(0); // modification_time
    w.u32(1000); // timescale
    w.u32(0); // duration: unknown (fragmented)
    w.u32(0x0001_0000); // rate 1.0
    w.u16(0x0100); // volume 1.0
    w.zeros(10); // reserved
    for m in MATRIX {
        w.u32(m);
    }
    w.zeros(24); // pre_defined
    w.u32(next_track_id);
    w.end();
}

fn write_trak(w: &mut BoxWriter, t: &InitTrack) {
    let video = matches!(t.config, TrackConfig::Video(_));
    w.begin(*b"trak");

    w.begin_full(*b"tkhd", 0, 0x3); // enabled, in movie
    w.u32(0); // creation_time
    w.u32(0); // modification_time
    w.u32(t.track_id);
    w.u32(0); // reserved
    w.u32(0); // duration
    w.zeros(8); // reserved
    w.u16(0); // layer
    w.u16(0); // alternate_group
    w.u16(if video { 0 } else { 0x0100 }); // volume
    w.u16(0); // reserved
    for m in MATRIX {
        w.u32(m);
    }
    let (width, height) = match &t.config {
        TrackConfig::Video(v) => video_dimensions(v),
        TrackConfig::Audio(_) => (0, 0),
    };
    w.u32(u32::from(width) << 16);
    w.u32(u32::from(height) << 16);
    w.end();

    w.begin(*b"mdia");
    w.begin_full(*b"mdhd", 0, 0);
    w.u32(0); // creation_time
    w.u32(0); // modification_time
    w.u32(timescale(&t.config));
    w.u32(0); // duration
    w.u16(0x55c4); // language "und"
    w.u16(0); // pre_defined
    w.end();

    w.begin_full(*b"hdlr", 0, 0);
    w.u32(0); // pre_defined
    w.bytes(if video { b"vide" } else { b"soun" });
    w.zeros(12); // reserved
    w.bytes(if video {
        b"VideoHandler\0"
    } else {
        b"SoundHandler\0"
    });
    w.end();

    w.begin(*b"minf");
    if video {
        w.begin_full(*b"vmhd", 0, 1);
        w.zeros(8); // graphicsmode, opcolor
    } else {
        w.begin_full(*b"smhd", 0, 0);
        w.zeros(4); // balance, reserved
    }
    w.end();
    w.begin(*b"dinf");
    w.begin_full(*b"dref", 0, 0);
    w.u32(1);
    w.begin_full(*b"url ", 0, 1); // media data in the same file
    w.end();
    w.end();
    w.end();
    write_stbl(w, &t.config);
    w.end(); // minf
    w.end(); // mdia
    w.end(); // trak
}

fn write_stbl(w: &mut BoxWriter, config: &TrackConfig) {
    w.begin(*b"stbl");
    w.begin_full(*b"stsd", 0, 0);
    w.u32(1);
    match config {
        TrackConfig::Video(v) => write_video(w, v),
        TrackConfig::Audio(a) => write_audio(w, a),
    }
    w.end();
    for kind in [*b"stts", *b"stsc", *b"stco"] {
        w.begin_full(kind, 0, 0);
        w.u32(0); // entry_count
        w.end();
    }
    w.begin_full(*b"stsz", 0, 0);
    w.u32(0); // sample_size
    w.u32(0); // sample_count
    w.end();
    w.end();
}
