//! WHEP playback on a shard: answer a viewer's offer for a live channel with the codecs
//! its broadcast carries, and once connected subscribe to the bus and send frames.
//!
//! The subscription starts at the GOP cache's key frame, so a viewer sees a picture at
//! once without asking the publisher. A subscriber that falls behind skips to the next
//! key frame (bus policy) and the session waits for it. H.264 with B-frames cannot be
//! played by WebRTC decoders (RTP carries no decode order), so such streams are refused
//! with a clear message until the transcoder offers a rendition without them.

use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures_util::future::select;
use weir_bus::{BusEvent, LagPolicy, SubscribeOptions, Subscriber, TrackSet};
use weir_media::{Codec, TrackId, TrackKind};
use weir_webrtc::{Forward, LayerSelector, PlaybackEvent, WhepSession};

use super::{Answered, Inbox, Refused, WebrtcShard, session_id, wait_turn};
use crate::hooks::PlaybackAccess;
use crate::limits::ConnPermit;
use crate::registry::Stream;
use crate::shutdown::Shutdown;

/// Answers a WHEP offer for `channel` and starts its session on this shard; the session
/// holds `permit` (see [`WebrtcShard::admit`]) while it runs.
pub async fn play(
    shard: &Rc<WebrtcShard>,
    channel: &str,
    token: Option<&str>,
    offer: &str,
    permit: ConnPermit,
) -> Result<Answered, Refused> {
    let registry = &shard.ctx.registry;
    let Some(stream) = registry.get(channel).filter(|s| !s.is_ended()) else {
        return Err(Refused {
            status: 404,
            message: format!("channel {channel} is not live"),
        });
    };
    let expires = if stream.signed_playback.load(Ordering::Relaxed) {
        Some(signed_until(shard, &stream.channel, token)?)
    } else {
        None
    };
    let Some(tracks) = stream.bus.tracks() else {
        return Err(Refused {
            status: 503,
            message: "the stream is starting: no tracks yet, retry shortly".into(),
        });
    };
    let video = tracks
        .first(TrackKind::Video)
        .and_then(|t| tracks.get(t))
        .map(|c| c.codec());
    let audio = tracks
        .first(TrackKind::Audio)
        .and_then(|t| tracks.get(t))
        .map(|c| c.codec());
    if video == Some(Codec::H264) && stream.video_reorders.load(Ordering::Relaxed) {
        return Err(Refused {
            status: 422,
            message: "this stream's H.264 has B-frames, which WebRTC players cannot decode; \
                      publish without B-frames (x264: -bf 0) or watch over LL-HLS"
                .into(),
        });
    }
    // Every H.264 video track is a layer the viewer may be switched to (see `Selection`).
    let layers = tracks
        .iter()
        .filter(|(id, c)| id.is_video() && c.codec() == Codec::H264)
        .count();
    let (session, answer) = WhepSession::accept(
        Instant::now(),
        shard.settings(),
        offer,
        video,
        audio,
        layers,
    )?;
    if !session.sends(TrackKind::Audio) && audio.is_some() {
        tracing::debug!(%channel, codec = ?audio, "WHEP viewer gets no audio: codec not carried");
    }
    let id = session_id()?;
    let kick = Shutdown::new();
    let inbox = shard.register(session.ufrag());
    shard.directory.insert(id.clone(), kick.clone());
    metrics::counter!("weir_whep_sessions_total").increment(1);
    let task = run(
        shard.clone(),
        session,
        inbox,
        stream,
        kick,
        id.clone(),
        expires,
    );
    compio::runtime::spawn(async move {
        task.await;
        drop(permit);
    })
    .detach();
    Ok(Answered { id, answer })
}

/// Checks a signed channel's playback token (`<exp>.<sig>`); the session may run until
/// the returned instant (its expiry), so a revoked entitlement ends it within the TTL.
fn signed_until(
    shard: &WebrtcShard,
    channel: &str,
    token: Option<&str>,
) -> Result<Instant, Refused> {
    let refused = |message: &str| Refused {
        status: 403,
        message: message.to_owned(),
    };
    let Some((exp, sig)) = token.and_then(|t| t.split_once('.')) else {
        return Err(refused(
            "this channel needs signed playback: POST /whep/<channel>/t.<exp>.<sig> (from playbackUrl)",
        ));
    };
    match shard
        .ctx
        .auth
        .playback_access(channel, &format!("exp={exp}&sig={sig}"))
    {
        PlaybackAccess::Allowed => {}
        PlaybackAccess::Expired => return Err(refused("this signed playback token has expired")),
        PlaybackAccess::Denied => return Err(refused("this signed playback token is not valid")),
    }
    let exp: u64 = exp.parse().map_err(|_| refused("bad expiry"))?;
    let now = crate::registry::wallclock_ms() / 1000;
    Ok(Instant::now() + Duration::from_secs(exp.saturating_sub(now)))
}

/// The tracks a viewer is sent: the simulcast layer (video track) its bandwidth allows,
/// and the default audio.
#[derive(Default)]
struct Selection {
    tracks: Option<Arc<TrackSet>>,
    layers: LayerSelector,
    audio: Option<TrackId>,
}

impl Selection {
    /// The video track being sent.
    fn video(&self) -> Option<TrackId> {
        self.layers
            .current()
            .map(|i| TrackId::new(TrackKind::Video, i))
    }
}

async fn run(
    shard: Rc<WebrtcShard>,
    mut session: WhepSession,
    inbox: Rc<Inbox>,
    stream: Arc<Stream>,
    kick: Shutdown,
    id: String,
    expires: Option<Instant>,
) {
    let node_stop = shard.ctx.shutdown.clone();
    let mut subscriber: Option<Subscriber> = None;
    let mut selection = Selection::default();
    let mut events = Vec::new();
    let mut counted = false;
    // Charged to the memory budget while the session runs (see `WHEP_SESSION_BYTES`).
    let mut charge = shard
        .ctx
        .registry
        .budget()
        .charge(super::WHEP_SESSION_BYTES);
    loop {
        let now = Instant::now();
        inbox.charge(&mut charge, super::WHEP_SESSION_BYTES);
        for (from, data) in inbox.take() {
            session.handle_datagram(now, from, shard.local, &data);
        }
        if session.timeout() <= now {
            session.handle_timeout(now);
        }
        if kick.is_triggered() || node_stop.is_triggered() {
            session.close();
        }
        if expires.is_some_and(|t| t <= now) && session.failure().is_none() {
            tracing::info!(channel = %stream.channel, session = %id, "WHEP session ended: its signed playback token expired");
            session.close();
        }
        while let Some(e) = session.poll_event() {
            match e {
                PlaybackEvent::Connected if subscriber.is_none() => {
                    let options = SubscribeOptions {
                        policy: LagPolicy::SkipToKeyframe,
                        ..SubscribeOptions::default()
                    };
                    match stream.bus.subscribe(options) {
                        Ok(s) => subscriber = Some(s),
                        Err(e) => session.fail_with(format!("cannot subscribe: {e}")),
                    }
                    stream.webrtc_viewers.fetch_add(1, Ordering::Relaxed);
                    counted = true;
                    tracing::info!(channel = %stream.channel, session = %id, "WHEP viewer connected");
                }
                PlaybackEvent::Connected => {}
                PlaybackEvent::KeyframeWanted => {
                    // The viewer lost a picture NACK could not repair: ask the source
                    // (throttled there, coalesced on the bus).
                    metrics::counter!("weir_whep_keyframe_requests_total").increment(1);
                    if let Some(video) = selection.video() {
                        stream.bus.request_keyframe(video);
                    }
                }
                PlaybackEvent::Bandwidth(bps) => {
                    let before = selection.layers.current();
                    selection.layers.on_estimate(now, bps);
                    tracing::trace!(session = %id, bps, layer = ?before, "viewer bandwidth");
                }
            }
        }
        if let Some(sub) = subscriber.as_mut() {
            let ended = sub.drain_into(&mut events).is_err();
            for event in events.drain(..) {
                forward(&mut session, &mut selection, now, event);
            }
            if let Some(layer) = selection.layers.poll_keyframe_request(now) {
                // Switching layers: the new one starts at its next key frame.
                metrics::counter!("weir_whep_layer_switches_total").increment(1);
                stream
                    .bus
                    .request_keyframe(TrackId::new(TrackKind::Video, layer));
            }
            if ended {
                session.close();
            }
        }
        while let Some(d) = session.poll_transmit() {
            shard.send(d).await;
        }
        if let Some(why) = session.failure() {
            tracing::info!(channel = %stream.channel, session = %id, reason = %why, "WHEP session ended");
            break;
        }
        match subscriber.as_ref() {
            Some(sub) => {
                let wake = expires.map_or(session.timeout(), |t| session.timeout().min(t));
                let turn = std::pin::pin!(wait_turn(&inbox, wake, &kick, &node_stop));
                let media = std::pin::pin!(sub.ready());
                let _ = select(turn, media).await;
            }
            None => {
                let wake = expires.map_or(session.timeout(), |t| session.timeout().min(t));
                wait_turn(&inbox, wake, &kick, &node_stop).await;
            }
        }
    }
    if counted {
        stream.webrtc_viewers.fetch_sub(1, Ordering::Relaxed);
    }
    shard.unregister(session.ufrag(), &inbox);
    shard.directory.remove(&id);
}

fn forward(session: &mut WhepSession, sel: &mut Selection, now: Instant, event: BusEvent) {
    match event {
        BusEvent::Tracks(tracks) => {
            sel.audio = tracks.first(TrackKind::Audio);
            sel.tracks = Some(tracks);
        }
        BusEvent::Frame(frame) => {
            let Some(config) = sel.tracks.as_ref().and_then(|t| t.get(frame.track)) else {
                return;
            };
            if frame.track.is_video() {
                // Every H.264 video track is a candidate layer (simulcast, or E-RTMP
                // renditions); the selector says which one this viewer gets.
                if config.codec() != Codec::H264 {
                    return;
                }
                let f =
                    sel.layers
                        .on_frame(now, frame.track.index, frame.data.len(), frame.keyframe);
                if f == Forward::Drop {
                    return;
                }
            } else if Some(frame.track) != sel.audio {
                return;
            }
            if session.send_frame(now, &frame, config) {
                metrics::counter!("weir_whep_frames_sent_total").increment(1);
            }
        }
        BusEvent::Skipped { .. } => session.resync(),
        BusEvent::PublisherLeft | BusEvent::PublisherJoined { .. } | BusEvent::Ended => {}
    }
}
