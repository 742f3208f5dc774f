//! The DASH manifest (MPD) over the same CMAF objects as the LL-HLS playlists.
//!
//! A broadcast packaged one CMAF track per playlist (video renditions and one audio
//! track) is also a DASH presentation: each [`crate::LiveStream`]'s init segment and
//! `seg-<msn>.m4s` segments are a Representation addressed with `SegmentTemplate`
//! (`$Number$` = the media sequence number) and a `SegmentTimeline` built from the
//! segments' `tfdt` and exact durations ([`crate::Snapshot::timeline`]). The MPD is
//! `dynamic` with low-latency signalling (DASH-IF IOP low-latency, CMAF):
//!
//! - the segment in progress is listed (with the segment target as its duration until
//!   it completes) and `availabilityTimeOffset` makes it requestable one part after it
//!   starts; the origin sends it with chunked transfer as its parts (CMAF chunks) come;
//! - `ServiceDescription` gives the latency target and playback-rate bounds a player
//!   uses to stay at it; `UTCTiming` (added by the server per request, since it names
//!   the server's own clock URL) lets players sync.
//!
//! The mapping from media time to wall clock, `availabilityStartTime`, is fixed for the
//! broadcast by the caller (from the first segment's ingest time and `tfdt`).

use std::fmt::Write as _;
use std::time::Duration;

use crate::datetime::format_iso8601_ms;
use crate::variant::VariantInfo;

/// One segment in a [`Timeline`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimelineEntry {
    /// Its media sequence number (`$Number$`).
    pub msn: u64,
    /// Decode time of its first sample (timescale ticks).
    pub start: u64,
    /// Its duration (timescale ticks); for the segment in progress, so far.
    pub duration: u64,
    /// Ingest wall clock of its first sample (UNIX ms).
    pub wallclock_ms: u64,
    /// False for the segment in progress.
    pub complete: bool,
}

/// The segments a snapshot holds, in media time.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Timeline {
    /// Ticks per second of `start` and `duration`.
    pub timescale: u32,
    /// Index of the init segment of the newest segment (`init-<n>.mp4`).
    pub init: u64,
    /// Kept segments, oldest first, then the one in progress (if it has a part).
    pub entries: Vec<TimelineEntry>,
}

impl Timeline {
    /// `availabilityStartTime` (UNIX ms) implied by the first segment: its ingest wall
    /// clock minus its media time.
    pub fn availability_start_ms(&self) -> Option<u64> {
        let first = self.entries.first()?;
        let media_ms = u128::from(first.start) * 1000 / u128::from(self.timescale.max(1));
        Some(
            first
                .wallclock_ms
                .saturating_sub(u64::try_from(media_ms).ok()?),
        )
    }
}

/// One Representation of the manifest.
#[derive(Debug, Clone)]
pub struct DashRepresentation<'a> {
    /// `id` (the rendition's name).
    pub id: &'a str,
    /// Its objects' directory, relative to the MPD, with a trailing `/`.
    pub base: String,
    /// What its snapshot says (codecs, resolution, bitrates).
    pub info: &'a VariantInfo,
    /// Nominal bitrate (bit/s) used until measured.
    pub nominal_bps: Option<u64>,
    /// Its segments.
    pub timeline: &'a Timeline,
    /// Audio sampling rate.
    pub sample_rate: Option<u32>,
}

/// What the manifest is rendered from.
#[derive(Debug, Clone)]
pub struct DashManifest<'a> {
    /// `availabilityStartTime`, fixed for the broadcast (UNIX ms).
    pub availability_start_ms: u64,
    /// `publishTime` (UNIX ms): when this version was made.
    pub publish_ms: u64,
    /// The broadcast ended: no more updates.
    pub ended: bool,
    /// Nominal segment duration (the open segment's announced length).
    pub segment_target: Duration,
    /// Part (CMAF chunk) duration.
    pub part_target: Duration,
    /// Longest segment (`maxSegmentDuration`).
    pub max_segment: Duration,
    /// Latency the player should hold (`ServiceDescription`).
    pub latency_target: Duration,
    /// How much media the origin keeps (`timeShiftBufferDepth`: the configured window,
    /// not what exists so far, since players fix their DVR window and cap their latency
    /// target with it once, at start).
    pub time_shift_buffer: Duration,
    /// Video representations, top first.
    pub video: Vec<DashRepresentation<'a>>,
    /// The audio representation.
    pub audio: Option<DashRepresentation<'a>>,
}

/// `PT<seconds>S` with milliseconds.
fn iso_duration(d: Duration) -> String {
    let ms = d.as_millis();
    format!("PT{}.{:03}S", ms / 1000, ms % 1000)
}

/// The MPD text without its closing `</MPD>` (the server adds `UTCTiming` and closes it).
pub fn render_mpd_open(m: &DashManifest<'_>) -> String {
    let mut out = String::with_capacity(2048);
    let all = m.video.iter().chain(m.audio.as_ref());
    let earliest = all
        .clone()
        .filter_map(|r| {
            let e = r.timeline.entries.first()?;
            Some(u128::from(e.start) * 1000 / u128::from(r.timeline.timescale.max(1)))
        })
        .max()
        .unwrap_or(0);
    let newest_end = all
        .filter_map(|r| {
            let e = r.timeline.entries.last()?;
            Some(u128::from(e.start + e.duration) * 1000 / u128::from(r.timeline.timescale.max(1)))
        })
        .min()
        .unwrap_or(earliest);
    let depth =
        Duration::from_millis(u64::try_from(newest_end.saturating_sub(earliest)).unwrap_or(0));
    let _ = write!(
        out,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" \
         profiles=\"urn:mpeg:dash:profile:isoff-live:2011,urn:mpeg:dash:profile:cmaf:2019\" \
         type=\"dynamic\" availabilityStartTime=\"{}\" publishTime=\"{}\" \
         maxSegmentDuration=\"{}\" minBufferTime=\"{}\" timeShiftBufferDepth=\"{}\"",
        format_iso8601_ms(m.availability_start_ms),
        format_iso8601_ms(m.publish_ms),
        iso_duration(m.max_segment),
        iso_duration(m.part_target * 2),
        iso_duration(m.time_shift_buffer.max(depth).max(m.latency_target * 2)),
    );
    if m.ended {
        let _ = write!(
            out,
            " mediaPresentationDuration=\"{}\"",
            iso_duration(Duration::from_millis(
                u64::try_from(newest_end).unwrap_or(0)
            ))
        );
    } else {
        let _ = write!(
            out,
            " minimumUpdatePeriod=\"{}\"",
            iso_duration(m.segment_target)
        );
    }
    out.push_str(">\n");
    let target_ms = m.latency_target.as_millis();
    let _ = write!(
        out,
        "  <ServiceDescription id=\"0\">\n    <Latency target=\"{target_ms}\" min=\"{}\" max=\"{}\"/>\n    <PlaybackRate min=\"0.96\" max=\"1.04\"/>\n  </ServiceDescription>\n",
        target_ms * 3 / 4,
        target_ms * 2
    );
    out.push_str("  <Period id=\"0\" start=\"PT0S\">\n");
    if !m.video.is_empty() {
        let _ = writeln!(
            out,
            "    <AdaptationSet id=\"0\" contentType=\"video\" mimeType=\"video/mp4\" segmentAlignment=\"true\" startWithSAP=\"1\">"
        );
        for r in &m.video {
            representation(&mut out, m, r);
        }
        out.push_str("    </AdaptationSet>\n");
    }
    if let Some(r) = &m.audio {
        let _ = writeln!(
            out,
            "    <AdaptationSet id=\"1\" contentType=\"audio\" mimeType=\"audio/mp4\" segmentAlignment=\"true\" startWithSAP=\"1\" lang=\"und\">"
        );
        representation(&mut out, m, r);
        out.push_str("    </AdaptationSet>\n");
    }
    out.push_str("  </Period>\n");
    out
}

/// The closing of an MPD begun by [`render_mpd_open`], with a `UTCTiming` element naming
/// `time_url` (a server clock answering ISO 8601 with milliseconds).
pub fn close_mpd(time_url: &str) -> String {
    format!(
        "  <UTCTiming schemeIdUri=\"urn:mpeg:dash:utc:http-iso:2014\" value=\"{}\"/>\n</MPD>\n",
        escape(time_url)
    )
}

fn representation(out: &mut String, m: &DashManifest<'_>, r: &DashRepresentation<'_>) {
    let bandwidth = match (r.info.measured, r.nominal_bps) {
        (false, Some(n)) => n,
        _ => r.info.average_bps.max(1),
    };
    let _ = write!(
        out,
        "      <Representation id=\"{}\" codecs=\"{}\" bandwidth=\"{bandwidth}\"",
        escape(r.id),
        escape(&r.info.codecs.join(","))
    );
    if let Some((w, h)) = r.info.resolution {
        let _ = write!(out, " width=\"{w}\" height=\"{h}\" sar=\"1:1\"");
    }
    if let Some(fps) = r.info.frame_rate {
        let _ = write!(out, " frameRate=\"{}\"", (fps * 1000.0).round() / 1000.0);
    }
    if let Some(rate) = r.sample_rate {
        let _ = write!(out, " audioSamplingRate=\"{rate}\"");
    }
    out.push_str(">\n");
    if let Some(ch) = r.info.channels {
        let _ = writeln!(
            out,
            "        <AudioChannelConfiguration schemeIdUri=\"urn:mpeg:dash:23003:3:audio_channel_configuration:2011\" value=\"{ch}\"/>"
        );
    }
    let t = r.timeline;
    let ts = u64::from(t.timescale.max(1));
    let ticks = |d: Duration| {
        u64::try_from(d.as_nanos() * u128::from(ts) / 1_000_000_000).unwrap_or(u64::MAX)
    };
    // One part's worth before its nominal end, the segment in progress can be asked for.
    let offset = m.segment_target.saturating_sub(m.part_target);
    let start_number = t.entries.first().map_or(0, |e| e.msn);
    let _ = write!(
        out,
        "        <SegmentTemplate timescale=\"{ts}\" startNumber=\"{start_number}\" \
         initialization=\"{base}init-{}.mp4\" media=\"{base}seg-$Number$.m4s\"",
        t.init,
        base = escape(&r.base)
    );
    if !m.ended {
        let _ = write!(
            out,
            " availabilityTimeOffset=\"{:.3}\" availabilityTimeComplete=\"false\"",
            offset.as_secs_f64()
        );
    }
    out.push_str(">\n          <SegmentTimeline>\n");
    let mut next: Option<u64> = None;
    let mut last_complete = false;
    for e in t.entries.iter().filter(|e| e.complete || !m.ended) {
        last_complete = e.complete;
        let d = if e.complete {
            e.duration
        } else {
            e.duration.max(ticks(m.segment_target))
        };
        if next == Some(e.start) {
            let _ = writeln!(out, "            <S d=\"{d}\"/>");
        } else {
            let _ = writeln!(out, "            <S t=\"{}\" d=\"{d}\"/>", e.start);
        }
        next = Some(e.start + d);
    }
    if !m.ended && next.is_some() {
        // The next segment, announced ahead: players only ask for what the timeline lists
        // and reload the MPD at most about once a second, so without it they would find
        // each new segment up to an update period late instead of one part into it (the
        // origin holds a request for it until its first part exists). When the newest
        // listed segment is complete, that next one is already in progress.
        let ahead = if last_complete { 2 } else { 1 };
        let d = nominal_ticks(ticks(m.segment_target), r);
        for _ in 0..ahead {
            let _ = writeln!(out, "            <S d=\"{d}\"/>");
        }
    }
    out.push_str(
        "          </SegmentTimeline>\n        </SegmentTemplate>\n      </Representation>\n",
    );
}

/// A segment target in ticks, rounded to whole audio frames for audio (AAC: 1024
/// samples) so the prediction matches what the packager cuts.
fn nominal_ticks(ticks: u64, r: &DashRepresentation<'_>) -> u64 {
    match r.sample_rate {
        Some(_) => ticks.div_ceil(1024) * 1024,
        None => ticks,
    }
}

/// XML attribute escaping.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(video: bool) -> VariantInfo {
        VariantInfo {
            peak_bps: 1_100_000,
            average_bps: 1_000_000,
            measured: true,
            codecs: vec![if video { "avc1.64001f" } else { "mp4a.40.2" }.to_owned()],
            resolution: video.then_some((1280, 720)),
            frame_rate: video.then_some(30.0),
            channels: (!video).then_some(2),
            independent: true,
        }
    }

    fn entry(msn: u64, start: u64, duration: u64, complete: bool) -> TimelineEntry {
        TimelineEntry {
            msn,
            start,
            duration,
            wallclock_ms: 1_000_000 + start / 90,
            complete,
        }
    }

    #[test]
    fn a_live_mpd_lists_the_timeline_and_the_segment_in_progress() {
        let video = Timeline {
            timescale: 90_000,
            init: 0,
            entries: vec![
                entry(3, 540_000, 180_000, true),
                entry(4, 720_000, 180_000, true),
                entry(5, 900_000, 36_000, false),
            ],
        };
        assert_eq!(video.availability_start_ms(), Some(1_000_000));
        let audio = Timeline {
            timescale: 48_000,
            init: 0,
            entries: vec![TimelineEntry {
                msn: 7,
                start: 288_000,
                duration: 96_000,
                wallclock_ms: 1_006_000,
                complete: true,
            }],
        };
        let (vi, ai) = (info(true), info(false));
        let m = DashManifest {
            availability_start_ms: 1_000_000,
            publish_ms: 1_010_000,
            ended: false,
            segment_target: Duration::from_secs(2),
            part_target: Duration::from_millis(200),
            max_segment: Duration::from_secs(4),
            latency_target: Duration::from_secs(3),
            time_shift_buffer: Duration::from_secs(24),
            video: vec![DashRepresentation {
                id: "720p",
                base: "b1/720p/".into(),
                info: &vi,
                nominal_bps: None,
                timeline: &video,
                sample_rate: None,
            }],
            audio: Some(DashRepresentation {
                id: "audio",
                base: "b1/audio/".into(),
                info: &ai,
                nominal_bps: None,
                timeline: &audio,
                sample_rate: Some(48_000),
            }),
        };
        let text = render_mpd_open(&m) + &close_mpd("http://h/time");
        assert!(text.contains("type=\"dynamic\""), "{text}");
        assert!(text.contains("minimumUpdatePeriod=\"PT2.000S\""), "{text}");
        assert!(text.contains("startNumber=\"3\" initialization=\"b1/720p/init-0.mp4\" media=\"b1/720p/seg-$Number$.m4s\" availabilityTimeOffset=\"1.800\""), "{text}");
        assert!(text.contains("<S t=\"540000\" d=\"180000\"/>\n            <S d=\"180000\"/>\n            <S d=\"180000\"/>\n            <S d=\"180000\"/>\n          </S"), "the open segment and the next one are announced at the target:\n{text}");
        assert!(
            text.contains("timeShiftBufferDepth=\"PT24.000S\""),
            "{text}"
        );
        assert!(text.contains("width=\"1280\" height=\"720\""), "{text}");
        assert!(text.contains("<Latency target=\"3000\""), "{text}");
        assert!(text.contains("audioSamplingRate=\"48000\""), "{text}");
        // Audio: its complete segment, then the one in progress and the next predicted
        // in whole AAC frames (2 s at 48 kHz = 93.75 frames → 94).
        assert!(text.contains("<S t=\"288000\" d=\"96000\"/>\n            <S d=\"96256\"/>\n            <S d=\"96256\"/>\n"), "{text}");
        assert!(
            text.ends_with("value=\"http://h/time\"/>\n</MPD>\n"),
            "{text}"
        );
    }

    #[test]
    fn an_ended_mpd_has_a_duration_and_only_complete_segments() {
        let video = Timeline {
            timescale: 90_000,
            init: 1,
            entries: vec![entry(0, 0, 180_000, true), entry(1, 180_000, 90_000, false)],
        };
        let vi = info(true);
        let m = DashManifest {
            availability_start_ms: 0,
            publish_ms: 0,
            ended: true,
            segment_target: Duration::from_secs(2),
            part_target: Duration::from_millis(200),
            max_segment: Duration::from_secs(4),
            latency_target: Duration::from_secs(3),
            time_shift_buffer: Duration::from_secs(24),
            video: vec![DashRepresentation {
                id: "v",
                base: "b/v/".into(),
                info: &vi,
                nominal_bps: None,
                timeline: &video,
                sample_rate: None,
            }],
            audio: None,
        };
        let text = render_mpd_open(&m);
        assert!(
            !text.contains("minimumUpdatePeriod") && !text.contains("availabilityTimeOffset"),
            "{text}"
        );
        assert!(text.contains("init-1.mp4"), "{text}");
        assert_eq!(text.matches("<S ").count(), 1, "{text}");
    }
}
