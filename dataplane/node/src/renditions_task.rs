//! The LL-HLS packager of a broadcast with renditions: one [`LiveStream`] per CMAF track.
//!
//! One task per broadcast, on the shard that created it, subscribed to the broadcast's
//! renditions (the ladder's output, see `ladder_task`). Every video track becomes a
//! video-only rendition and the first audio track the audio rendition they share. The
//! renditions are cut independently but identically: their key frames and timestamps
//! are the same (the ladder keys every rung at the source's key frames), so their
//! segments and parts line up and a player switches at any part boundary. After each
//! batch of events it publishes every changed snapshot, refreshes the renditions'
//! `EXT-X-RENDITION-REPORT`s and re-renders the multivariant playlist when it changed.

use std::sync::Arc;

use bytes::Bytes;
use weir_bus::{BusEvent, Subscriber, TrackSet};
use weir_hls::{
    AudioRendition, DashManifest, DashRepresentation, HlsConfig, LiveStream, RenditionReport,
    Snapshot, VideoVariant, multivariant_playlist, render_mpd_open,
};
use weir_media::{TrackConfig, TrackId, TrackKind};

use crate::delivery::HlsDelivery;
use crate::hooks::RenditionInfo;
use crate::registry::{Registry, Stream, wallclock_ms};
use crate::renditions::{AUDIO_RENDITION, Rendition, RenditionSet};

/// One rendition being packaged.
struct Packaged {
    /// The bus track it packages.
    track: TrackId,
    hls: LiveStream,
    rendition: Arc<Rendition>,
    published: Arc<Snapshot>,
    /// Nominal bitrate (the ladder rung's), bit/s.
    nominal_bps: Option<u64>,
    /// Audio sampling rate.
    sample_rate: Option<u32>,
    /// In the current track set: a ladder rung switched off (the encoder could not keep
    /// up) is paused and left out of the playlists until it comes back.
    active: bool,
    /// DTS of the last frame packaged (gap detection).
    last_dts: Option<i64>,
}

/// A jump in a rendition's decode times this large (90 kHz) is a hole, not a slow frame
/// rate: the encoder skipped to a key frame after its input queue overflowed.
const GAP_TICKS: i64 = weir_media::TIMESCALE as i64;

/// The packagers of one broadcast's renditions.
struct Renditions {
    config: HlsConfig,
    list: Vec<Packaged>,
    multivariant: Option<Bytes>,
    mpd: Option<Bytes>,
    /// What the MPD was last rendered from: per rendition, its segments' (first msn,
    /// newest msn, newest complete) and whether the stream ended.
    mpd_key: Vec<(u64, u64, bool, bool)>,
    /// `availabilityStartTime`, fixed at the first segment (UNIX ms).
    availability_start_ms: Option<u64>,
}

impl Renditions {
    /// Adds packagers for tracks of `tracks` not packaged yet, and gives every packager
    /// its track's (possibly new) configuration.
    fn set_tracks(&mut self, stream: &Stream, tracks: &TrackSet) {
        let audio = tracks.first(TrackKind::Audio);
        for (id, config) in tracks.iter() {
            if id.kind == TrackKind::Audio && Some(id) != audio {
                continue; // one audio rendition (languages come with their metadata)
            }
            let at = match self.list.iter().position(|p| p.track == id) {
                Some(at) => at,
                None => {
                    let Some(p) = self.new_packager(stream, id, config) else {
                        continue;
                    };
                    self.list.push(p);
                    self.list.len() - 1
                }
            };
            let p = &mut self.list[at];
            match config {
                TrackConfig::Video(v) => p.hls.set_tracks(Some(v.clone()), None),
                TrackConfig::Audio(a) => p.hls.set_tracks(None, Some(a.clone())),
            }
            if !p.active {
                // Back from being off: on the others' timeline, from its next key frame.
                p.active = true;
                p.hls.resume_in_place();
            }
        }
        for p in &mut self.list {
            if p.active && !tracks.contains(p.track) {
                p.active = false;
                p.hls.pause();
            }
        }
        // Video top first (bus order), audio last.
        self.list.sort_by_key(|p| p.track);
        self.update_reports();
    }

    fn new_packager(&self, stream: &Stream, id: TrackId, config: &TrackConfig) -> Option<Packaged> {
        let rung = stream
            .ladder
            .lock()
            .rungs
            .get(usize::from(id.index))
            .cloned();
        let name = match (config, &rung) {
            (TrackConfig::Audio(_), _) => AUDIO_RENDITION.to_owned(),
            (TrackConfig::Video(_), Some(r)) => r.name.clone(),
            (TrackConfig::Video(v), None) => format!("{}p", v.height),
        };
        let name = if self.list.iter().any(|p| p.rendition.name == name) {
            format!("{name}-{}", id.index)
        } else {
            name
        };
        if self.list.len() >= weir_bus::MAX_TRACKS {
            return None;
        }
        let hls = LiveStream::new(HlsConfig {
            media_playlist_uri: format!(
                "{}/{name}/{}",
                stream.broadcast_id,
                weir_hls::MEDIA_PLAYLIST
            ),
            ..self.config.clone()
        });
        let published = hls.snapshot();
        Some(Packaged {
            track: id,
            rendition: Arc::new(Rendition {
                name,
                kind: id.kind,
                delivery: HlsDelivery::new(published.clone()),
            }),
            published,
            hls,
            nominal_bps: rung
                .filter(|r| r.video_kbps > 0)
                .map(|r| u64::from(r.video_kbps) * 1000),
            sample_rate: match config {
                TrackConfig::Audio(a) => Some(a.sample_rate),
                TrackConfig::Video(_) => None,
            },
            active: true,
            last_dts: None,
        })
    }

    /// Publishes what changed: snapshots, rendition reports, the multivariant playlist.
    fn publish(&mut self, stream: &Stream) {
        self.refresh_nominal(stream);
        let mut changed = false;
        for p in &mut self.list {
            let snapshot = p.hls.snapshot();
            if !Arc::ptr_eq(&snapshot, &p.published) {
                p.published = snapshot.clone();
                p.rendition.delivery.publish(snapshot);
                changed = true;
            }
        }
        if changed || self.multivariant.is_none() {
            self.update_reports();
            let mpd = self.render_mpd();
            self.render_multivariant(stream, mpd);
        }
    }

    /// Takes the rungs' current nominal bitrates (per-title mode moves them).
    fn refresh_nominal(&mut self, stream: &Stream) {
        let status = stream.ladder.lock();
        for p in self
            .list
            .iter_mut()
            .filter(|p| p.track.kind == TrackKind::Video)
        {
            if let Some(r) = status.rungs.get(usize::from(p.track.index))
                && r.video_kbps > 0
            {
                p.nominal_bps = Some(u64::from(r.video_kbps) * 1000);
            }
        }
    }

    /// Gives every packager the other active renditions' positions, for the
    /// `EXT-X-RENDITION-REPORT`s of its next playlist (positions only move when a
    /// snapshot is published, so this runs then, not per batch).
    fn update_reports(&mut self) {
        let positions: Vec<(String, Option<(u64, u64)>)> = self
            .list
            .iter()
            .filter(|p| p.active)
            .map(|p| (p.rendition.name.clone(), p.published.last_part()))
            .collect();
        for p in &mut self.list {
            let reports = positions
                .iter()
                .filter(|(name, _)| *name != p.rendition.name)
                .filter_map(|(name, at)| {
                    let (last_msn, last_part) = (*at)?;
                    Some(RenditionReport {
                        uri: format!("../{name}/{}", weir_hls::MEDIA_PLAYLIST),
                        last_msn,
                        last_part,
                    })
                })
                .collect();
            p.hls.set_rendition_reports(reports);
        }
    }

    /// The MPD when what it lists changed (a segment started or completed), else None.
    fn render_mpd(&mut self) -> Option<Bytes> {
        let key: Vec<_> = self
            .list
            .iter()
            .filter(|p| p.active)
            .map(|p| {
                let t = p.published.timeline();
                let first = t.entries.first().map_or(0, |e| e.msn);
                let last = t.entries.last().map_or((0, false), |e| (e.msn, e.complete));
                (first, last.0, last.1, p.published.is_ended())
            })
            .collect();
        if key == self.mpd_key && self.mpd.is_some() {
            return None;
        }
        let top = self
            .list
            .iter()
            .find(|p| p.track.kind == TrackKind::Video)
            .or(self.list.first())?;
        if self.availability_start_ms.is_none() {
            self.availability_start_ms = top.published.timeline().availability_start_ms();
        }
        let ast = self.availability_start_ms?;
        fn rep(p: &Packaged) -> Option<DashRepresentation<'_>> {
            Some(DashRepresentation {
                id: &p.rendition.name,
                // `<broadcast>/<name>/`, beside its media playlist.
                base: p
                    .hls
                    .config()
                    .media_playlist_uri
                    .trim_end_matches(weir_hls::MEDIA_PLAYLIST)
                    .to_owned(),
                info: p.published.variant_info()?,
                nominal_bps: p.nominal_bps,
                timeline: p.published.timeline(),
                sample_rate: p.sample_rate,
            })
        }
        let video: Vec<_> = self
            .list
            .iter()
            .filter(|p| {
                p.track.kind == TrackKind::Video && !p.published.timeline().entries.is_empty()
            })
            .filter_map(rep)
            .collect();
        let audio = self
            .list
            .iter()
            .find(|p| {
                p.track.kind == TrackKind::Audio && !p.published.timeline().entries.is_empty()
            })
            .and_then(rep);
        let segment_target = self.config.segment_target;
        let part_target = self.config.advertised_part_target();
        let text = render_mpd_open(&DashManifest {
            availability_start_ms: ast,
            publish_ms: wallclock_ms(),
            ended: self.list.iter().all(|p| p.published.is_ended()),
            segment_target,
            part_target,
            max_segment: self.config.max_segment(),
            latency_target: segment_target + part_target * 3,
            time_shift_buffer: segment_target
                * u32::try_from(self.config.window).unwrap_or(u32::MAX),
            video,
            audio,
        });
        self.mpd_key = key;
        self.mpd = Some(Bytes::from(text));
        self.mpd.clone()
    }

    fn render_multivariant(&mut self, stream: &Stream, new_mpd: Option<Bytes>) {
        let uri = |p: &Packaged| {
            format!(
                "{}/{}/{}",
                stream.broadcast_id,
                p.rendition.name,
                weir_hls::MEDIA_PLAYLIST
            )
        };
        let videos: Vec<VideoVariant> = self
            .list
            .iter()
            .filter(|p| p.active && p.track.kind == TrackKind::Video)
            .filter_map(|p| {
                Some(VideoVariant {
                    uri: uri(p),
                    info: p.published.variant_info()?.clone(),
                    nominal_bps: p.nominal_bps,
                })
            })
            .collect();
        let audio = self
            .list
            .iter()
            .find(|p| p.track.kind == TrackKind::Audio)
            .and_then(|p| {
                Some(AudioRendition {
                    uri: uri(p),
                    name: p.rendition.name.clone(),
                    info: p.published.variant_info()?.clone(),
                })
            });
        if videos.is_empty() && audio.is_none() {
            return;
        }
        let text = Bytes::from(multivariant_playlist(&videos, audio.as_ref()));
        let set_changed = stream
            .renditions
            .get()
            .is_none_or(|s| s.list.len() != self.list.len());
        if !set_changed && new_mpd.is_none() && self.multivariant.as_ref() == Some(&text) {
            return;
        }
        self.multivariant = Some(text.clone());
        stream.renditions.set(RenditionSet {
            list: self.list.iter().map(|p| p.rendition.clone()).collect(),
            multivariant: text,
            mpd: self.mpd.clone(),
        });
    }
}

/// The renditions are known: the broadcast is live, as one rendition per video track
/// (the ladder's rungs, with their nominal bitrates) carrying the shared audio.
fn report_live(stream: &Stream, registry: &Registry, tracks: &TrackSet) {
    let audio = tracks
        .first(TrackKind::Audio)
        .and_then(|id| tracks.get(id))
        .map(TrackConfig::codec_string);
    let rungs = stream.ladder.lock().rungs.clone();
    let renditions = tracks
        .iter()
        .filter_map(|(id, config)| match config {
            TrackConfig::Video(v) => Some((id, v, config.codec_string())),
            TrackConfig::Audio(_) => None,
        })
        .map(|(id, v, codec)| {
            let rung = rungs.get(usize::from(id.index));
            RenditionInfo {
                name: rung.map_or_else(|| format!("{}p", v.height), |r| r.name.clone()),
                codecs: [Some(codec), audio.clone()]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(","),
                width: v.width.into(),
                height: v.height.into(),
                bitrate: rung.map_or(0, |r| u64::from(r.video_kbps) * 1000),
            }
        })
        .collect();
    registry.events().stream_live(&stream.info, renditions);
}

/// Runs the renditions' packagers of `stream` until its broadcast ends; the first track
/// set is reported to `registry`'s events as the broadcast going live (`None`: a second
/// packager of a broadcast already reported, for DASH).
pub async fn run(
    stream: Arc<Stream>,
    config: HlsConfig,
    mut subscriber: Subscriber,
    registry: Option<Arc<Registry>>,
) {
    let mut set = Renditions {
        config,
        list: Vec::new(),
        multivariant: None,
        mpd: None,
        mpd_key: Vec::new(),
        availability_start_ms: None,
    };
    let mut live_reported = false;
    let mut events = Vec::new();
    loop {
        subscriber.ready().await;
        let closed = subscriber.drain_into(&mut events).is_err();
        let mut ended = false;
        for event in events.drain(..) {
            match event {
                BusEvent::Tracks(tracks) => {
                    set.set_tracks(&stream, &tracks);
                    if !live_reported {
                        live_reported = true;
                        if let Some(registry) = &registry {
                            report_live(&stream, registry, &tracks);
                        }
                    }
                }
                BusEvent::Frame(mut frame) => {
                    let Some(p) = set.list.iter_mut().find(|p| p.track == frame.track) else {
                        continue;
                    };
                    frame.track = match frame.track.kind {
                        TrackKind::Video => TrackId::VIDEO,
                        TrackKind::Audio => TrackId::AUDIO,
                    };
                    if p.track.kind == TrackKind::Video
                        && p.last_dts.is_some_and(|d| frame.dts - d > GAP_TICKS)
                    {
                        // Close the segment before the hole and go on from the next key
                        // frame with a discontinuity, as for a rung that was switched off:
                        // no segment spans the hole.
                        tracing::info!(channel = %stream.channel, rendition = %p.rendition.name, gap_ms = (frame.dts - p.last_dts.unwrap_or(frame.dts)) / 90, "rendition skipped frames: new segment after the gap");
                        p.hls.resume_in_place();
                    }
                    p.last_dts = Some(frame.dts);
                    p.hls.push_frame(wallclock_ms(), frame);
                }
                BusEvent::Skipped { frames } => {
                    tracing::warn!(channel = %stream.channel, frames, "rendition packager fell behind: frames skipped");
                }
                BusEvent::PublisherLeft => set.list.iter_mut().for_each(|p| p.hls.pause()),
                BusEvent::PublisherJoined { .. } => {}
                BusEvent::Ended => ended = true,
            }
        }
        if closed || ended {
            set.list.iter_mut().for_each(|p| p.hls.end());
        }
        set.publish(&stream);
        if closed || ended {
            return;
        }
    }
}
