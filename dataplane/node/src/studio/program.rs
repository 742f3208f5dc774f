//! One composed program: participants' streams in, the program stream out.
//!
//! Every 10 ms (or at once on a new scene) the task takes what each participant's
//! subscription delivered and hands it to the compositor, tells the [`Program`] which
//! inputs are live (frames in the last second), applies the plan when it changed,
//! repaints the still layers when placeholders or images changed, and publishes what the
//! compositor encoded through a [`TrackGate`]. Participants are found by stream name in
//! the registry and re-subscribed whenever their stream (re)appears, so a guest who
//! reconnects comes back by itself; one who never comes shows a placeholder.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use weir_bus::{BusEvent, LagPolicy, Publisher, SubscribeOptions, Subscriber};
use weir_codec::{ComposeConfig, ComposeOutput, Compositor, decode_image};
use weir_media::{TrackConfig, TrackKind};
use weir_studio::{Bgra, Canvas, InputState, Plan, Program, Scene, Stills};

use super::{ProgramControl, StudioError};
use crate::gate::{GateOutput, TrackGate};
use crate::registry::{Admission, Registry, Stream};
use crate::shutdown::Shutdown;

/// How often the task runs when nothing wakes it.
const TICK: Duration = Duration::from_millis(10);
/// An input without frames for this long shows its placeholder.
const STALL: Duration = Duration::from_secs(1);
/// The still layers are pushed again this often.
const LAYER_REFRESH: Duration = Duration::from_secs(1);
/// Placeholders are repainted at most this often while they move.
const REPAINT_EVERY: Duration = Duration::from_millis(100);

/// A participant's subscription.
#[derive(Default)]
struct InputSub {
    subscriber: Option<Subscriber>,
    /// The broadcast subscribed to (a new one on the same stream name resubscribes).
    broadcast: String,
    state: InputState,
    last_frame: Option<Instant>,
    refused: u64,
}

/// A program, admitted and ready to run.
pub(crate) struct ProgramTask {
    id: String,
    registry: Arc<Registry>,
    config: ComposeConfig,
    control: Arc<ProgramControl>,
    node: Shutdown,
    stream: Arc<Stream>,
    publisher: Publisher,
    conn: u64,
    kick: Shutdown,
}

impl ProgramTask {
    /// Admits the program stream (no recording, relays or ladder: it is a preview; the
    /// channel's broadcast gets those when the program goes live).
    pub fn admit(
        id: &str,
        registry: Arc<Registry>,
        config: ComposeConfig,
        control: Arc<ProgramControl>,
        node: Shutdown,
    ) -> Result<Self, StudioError> {
        let conn = crate::rtmp_conn::next_connection_id();
        let kick = Shutdown::new();
        let admission = registry
            .begin_publish(
                &control.stream,
                &control.stream,
                conn,
                kick.clone(),
                "studio",
                Some(false),
            )
            .map_err(|r| StudioError::Publish(r.reason))?;
        let Admission {
            stream,
            publisher,
            packaging,
            ..
        } = admission;
        if let Some(packaging) = packaging {
            let task = crate::hls_task::run(stream.clone(), packaging, registry.clone());
            compio::runtime::spawn(task).detach();
        }
        tracing::info!(studio = id, stream = %control.stream, "studio program admitted");
        Ok(Self {
            id: id.to_owned(),
            registry,
            config,
            control,
            node,
            stream,
            publisher,
            conn,
            kick,
        })
    }

    /// Composes until the program is ended, fails, or the node stops.
    pub async fn run(mut self) {
        let config = self.config.clone();
        let started = crate::affinity::spawn_blocking(move || Compositor::start(&config))
            .await
            .unwrap_or_else(|_| Err(weir_codec::CodecError::Start("start panicked".into())));
        match started {
            Ok(c) => {
                let c = Arc::new(c);
                self.compose(&c).await;
                if let Ok(c) = Arc::try_unwrap(c) {
                    let _ = crate::affinity::spawn_blocking(move || c.stop()).await;
                }
            }
            Err(e) => {
                tracing::error!(studio = %self.id, error = %e, "studio compositor did not start")
            }
        }
        self.control.stop.store(true, Ordering::Release);
        drop(self.publisher);
        self.registry
            .end_publish(&self.stream, self.conn, Instant::now());
        tracing::info!(studio = %self.id, "studio program stopped");
    }

    async fn compose(&mut self, c: &Arc<Compositor>) {
        let canvas = Canvas {
            width: self.config.width,
            height: self.config.height,
        };
        let mut st = State {
            program: Program::new(canvas),
            inputs: HashMap::new(),
            images: HashMap::new(),
            stills: Stills::default(),
            stills_key: Vec::new(),
            applied: None,
            painted: None,
            last_refresh: Instant::now(),
            gate: TrackGate::new(),
            gated: Vec::new(),
        };
        loop {
            let listener = self.control.wake.listen();
            if self.control.stop.load(Ordering::Acquire)
                || self.node.is_triggered()
                || self.kick.is_triggered()
            {
                return;
            }
            let now = Instant::now();
            if let Some(scene) = self.control.scene.lock().take() {
                st.set_scene(c, now, scene);
            }
            st.take_inputs(c, &self.registry, now);
            st.apply(c, now);
            if let Err(why) = st.take_outputs(c, &mut self.publisher) {
                tracing::error!(studio = %self.id, error = %why, "studio program failed");
                return;
            }
            let _ = compio::time::timeout(TICK, listener).await;
        }
    }
}

/// The composing loop's state.
struct State {
    program: Program,
    inputs: HashMap<String, InputSub>,
    /// Decoded images by content id.
    images: HashMap<String, Option<Bgra>>,
    stills: Stills,
    stills_key: Vec<Option<String>>,
    applied: Option<Plan>,
    /// Placeholders and stills of the layer last painted, and when.
    painted: Option<(Vec<weir_studio::Placeholder>, Vec<Option<String>>, Instant)>,
    last_refresh: Instant,
    gate: TrackGate,
    gated: Vec<GateOutput>,
}

impl State {
    fn image(&mut self, img: Option<&weir_studio::Image>) -> Option<Bgra> {
        let img = img?;
        self.images
            .entry(img.id.clone())
            .or_insert_with(|| match decode_image(&img.data) {
                Ok(b) => Some(b),
                Err(e) => {
                    tracing::warn!(image = %img.id, error = %e, "studio image not shown");
                    None
                }
            })
            .clone()
    }

    fn set_scene(&mut self, c: &Compositor, now: Instant, scene: Scene) {
        let gone: Vec<String> = self
            .inputs
            .keys()
            .filter(|id| scene.participant(id).is_none())
            .cloned()
            .collect();
        for id in gone {
            self.inputs.remove(&id);
            c.remove(&id);
        }
        let key = vec![
            scene.background.as_ref().map(|i| i.id.clone()),
            scene.logo.as_ref().map(|i| i.id.clone()),
            scene.overlay.as_ref().map(|i| i.id.clone()),
        ];
        if key != self.stills_key {
            self.stills = Stills {
                background: self.image(scene.background.as_ref()),
                logo: self.image(scene.logo.as_ref()),
                overlay: self.image(scene.overlay.as_ref()),
            };
            self.stills_key = key;
            // Keep the cache to the images in use.
            let keep = self.stills_key.clone();
            self.images
                .retain(|id, _| keep.iter().flatten().any(|k| k == id));
        }
        c.set_banner(scene.banner.as_ref());
        self.program.set_scene(now, scene);
    }

    /// Subscribes to participants' streams and hands their frames to the compositor.
    fn take_inputs(&mut self, c: &Compositor, registry: &Registry, now: Instant) {
        let participants: Vec<(String, String)> = self
            .program
            .scene()
            .participants
            .iter()
            .map(|p| (p.id.clone(), p.stream.clone()))
            .collect();
        let mut events = Vec::new();
        for (id, stream_name) in participants {
            let input = self.inputs.entry(id.clone()).or_default();
            if let Some(stream) = registry.get(&stream_name)
                && !stream.is_ended()
                && (input.subscriber.is_none() || input.broadcast != stream.broadcast_id)
            {
                let options = SubscribeOptions {
                    policy: LagPolicy::SkipToKeyframe,
                    max_frames: 600,
                    max_bytes: 16 << 20,
                };
                if let Ok(sub) = stream.bus.subscribe(options) {
                    tracing::info!(participant = %id, stream = %stream_name, "studio input subscribed");
                    input.subscriber = Some(sub);
                    input.broadcast = stream.broadcast_id.clone();
                }
            }
            let Some(sub) = input.subscriber.as_mut() else {
                continue;
            };
            events.clear();
            let closed = sub.drain_into(&mut events).is_err();
            for e in events.drain(..) {
                match e {
                    BusEvent::Tracks(t) => {
                        let video = t.first(TrackKind::Video).and_then(|v| t.get(v));
                        let audio = t.first(TrackKind::Audio).and_then(|a| t.get(a));
                        if let Some(TrackConfig::Video(v)) = video {
                            input.state.width = u32::from(v.width);
                            input.state.height = u32::from(v.height);
                        }
                        if let Err(e) = c.set_tracks(&id, video, audio) {
                            tracing::warn!(participant = %id, error = %e, "studio input track not composed");
                        }
                    }
                    BusEvent::Frame(f) if f.track.index == 0 => {
                        input.last_frame = Some(now);
                        if c.push(&id, &f).is_err() {
                            input.refused += 1;
                        }
                    }
                    BusEvent::Ended => input.subscriber = None,
                    _ => {}
                }
            }
            if closed {
                input.subscriber = None;
            }
            input.state.live = input
                .last_frame
                .is_some_and(|t| now.saturating_duration_since(t) < STALL);
            self.program.set_input(&id, input.state);
        }
    }

    /// Applies the plan and repaints the still layers when they changed.
    fn apply(&mut self, c: &Compositor, now: Instant) {
        let plan = self.program.plan(now);
        let repaint = match &self.painted {
            None => true,
            Some((holders, key, at)) => {
                (holders != &plan.placeholders || key != &self.stills_key)
                    && now.saturating_duration_since(*at) >= REPAINT_EVERY
            }
        };
        if repaint {
            let canvas = self.program.canvas();
            let under = weir_studio::under(canvas, &self.stills, &plan.placeholders);
            let over = weir_studio::over(canvas, &self.stills);
            c.set_layers(&under, over.as_ref());
            self.painted = Some((plan.placeholders.clone(), self.stills_key.clone(), now));
            self.last_refresh = now;
        } else if now.saturating_duration_since(self.last_refresh) >= LAYER_REFRESH {
            c.refresh_layers();
            self.last_refresh = now;
        }
        if self.applied.as_ref() != Some(&plan) {
            c.apply(&plan);
            self.applied = Some(plan);
        }
    }

    /// Publishes what the compositor produced; `Err` when it failed.
    fn take_outputs(&mut self, c: &Compositor, publisher: &mut Publisher) -> Result<(), String> {
        while let Some(o) = c.try_recv() {
            match o {
                ComposeOutput::Config(id, config) => {
                    self.gate.on_track(id, config, &mut self.gated)
                }
                ComposeOutput::Frame(f) => self.gate.on_frame(f, &mut self.gated),
                ComposeOutput::Failed(why) => return Err(why),
            }
        }
        crate::gate::publish(&mut self.gated, publisher);
        Ok(())
    }
}
