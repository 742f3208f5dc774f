//! WHIP ingest on a shard: authorise the stream key exactly like an RTMP publishing
//! name, admit the publisher through the registry, answer the offer, then run the
//! session: datagrams and timeouts in, bus tracks and frames out (through the same
//! [`TrackGate`] as RTMP, so packagers see a complete track set first).

use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use weir_bus::Publisher;
use weir_webrtc::{IngestEvent, WhipSession};

use super::{Answered, Inbox, Refused, WebrtcShard, session_id, wait_turn};
use crate::gate::TrackGate;
use crate::limits::ConnPermit;
use crate::registry::{Admission, Stream};
use crate::shutdown::Shutdown;

/// Longest wait for the stream key check.
const AUTH_TIMEOUT: Duration = Duration::from_secs(5);

/// Answers a WHIP offer for `key` from `peer` and starts its session on this shard; the
/// session holds `permit` (see [`WebrtcShard::admit`]) while it runs.
pub async fn publish(
    shard: &Rc<WebrtcShard>,
    key: &str,
    offer: &str,
    permit: ConnPermit,
    peer: Option<std::net::IpAddr>,
) -> Result<Answered, Refused> {
    let ctx = &shard.ctx;
    let grant = compio::time::timeout(AUTH_TIMEOUT, ctx.auth.authorize(&ctx.app, key))
        .await
        .map_err(|_| Refused {
            status: 503,
            message: "authorisation timed out".into(),
        })?
        .map_err(|r| {
            metrics::counter!("weir_publishes_total", "result" => "refused").increment(1);
            let peer = peer.map_or_else(|| "unknown".to_owned(), |p| p.to_string());
            crate::limits::log_refused_publish("whip", &peer, &r.code, &r.reason);
            Refused {
                status: 403,
                message: r.reason,
            }
        })?;
    // Answer before admitting: a bad offer must not start (or take over) a broadcast.
    let now = Instant::now();
    let (session, answer) = WhipSession::accept(now, shard.settings(), offer)?;
    let id = session_id()?;
    let conn = crate::rtmp_conn::next_connection_id();
    let kick = Shutdown::new();
    let admission = ctx
        .registry
        .begin_publish(
            &grant.channel,
            &grant.channel_id,
            conn,
            kick.clone(),
            "webrtc",
            grant.transcode,
        )
        .map_err(|r| Refused {
            status: 409,
            message: r.reason,
        })?;
    ctx.registry.start_recording(&admission, grant.record);
    ctx.registry.start_relays(&admission, grant.destinations);
    let Admission {
        stream,
        publisher,
        packaging,
        ..
    } = admission;
    stream
        .signed_playback
        .store(grant.signed_playback, Ordering::Relaxed);
    metrics::counter!("weir_publishes_total", "result" => "accepted").increment(1);
    tracing::info!(channel = %stream.channel, session = %id, "WHIP publishing started");
    if let Some(packaging) = packaging {
        let task = crate::hls_task::run(stream.clone(), packaging, ctx.registry.clone());
        compio::runtime::spawn(task).detach();
    }
    let inbox = shard.register(session.ufrag());
    shard.directory.insert(id.clone(), kick.clone());
    let publishing = Publishing {
        stream,
        publisher,
        conn,
        kick,
        id: id.clone(),
    };
    let task = run(shard.clone(), session, inbox, publishing);
    compio::runtime::spawn(async move {
        task.await;
        drop(permit);
    })
    .detach();
    Ok(Answered { id, answer })
}

/// What a WHIP session publishes to, and how it is told to end.
struct Publishing {
    stream: Arc<Stream>,
    publisher: Publisher,
    conn: u64,
    kick: Shutdown,
    id: String,
}

async fn run(shard: Rc<WebrtcShard>, mut session: WhipSession, inbox: Rc<Inbox>, p: Publishing) {
    let Publishing {
        stream,
        mut publisher,
        conn,
        kick,
        id,
    } = p;
    let mut gate = TrackGate::new();
    let mut gated = Vec::new();
    let node_stop = shard.ctx.shutdown.clone();
    // Charged to the memory budget while the session runs (see `WHIP_SESSION_BYTES`).
    let mut charge = shard
        .ctx
        .registry
        .budget()
        .charge(super::WHIP_SESSION_BYTES);
    loop {
        let now = Instant::now();
        inbox.charge(&mut charge, super::WHIP_SESSION_BYTES);
        for (from, data) in inbox.take() {
            session.handle_datagram(now, from, shard.local, &data);
        }
        if session.timeout() <= now {
            session.handle_timeout(now);
        }
        for track in publisher.take_keyframe_requests() {
            session.request_keyframe(now, track);
        }
        if kick.is_triggered() || node_stop.is_triggered() {
            session.close();
        }
        while let Some(event) = session.poll_event() {
            match event {
                IngestEvent::Connected => {
                    tracing::info!(channel = %stream.channel, session = %id, "WHIP connected");
                }
                IngestEvent::Track(track, config) => gate.on_track(track, config, &mut gated),
                IngestEvent::Frame(frame) => gate.on_frame(frame, &mut gated),
            }
        }
        crate::gate::publish(&mut gated, &mut publisher);
        while let Some(d) = session.poll_transmit() {
            shard.send(d).await;
        }
        if let Some(why) = session.failure() {
            tracing::info!(channel = %stream.channel, session = %id, reason = %why, "WHIP session ended");
            break;
        }
        wait_turn(&inbox, session.timeout(), &kick, &node_stop).await;
    }
    drop(publisher); // the bus hears that the publisher left
    shard
        .ctx
        .registry
        .end_publish(&stream, conn, Instant::now());
    shard.unregister(session.ufrag(), &inbox);
    shard.directory.remove(&id);
}
