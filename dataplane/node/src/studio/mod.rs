//! The studio on the node: composed programs and taking them live.
//!
//! [`StudioHub`] is the node's handle for the control plane (the binary's director):
//! - [`StudioHub::compose`] starts or updates the program of a studio broadcast: a task
//!   that subscribes to every on-stage participant's stream (their WHIP ingest, as
//!   ordinary broadcasts on the bus), feeds a [`weir_codec::Compositor`], and publishes
//!   the program as the hidden stream the scene names (LL-HLS / WHEP preview for the
//!   host), admitted through the registry like any ingest (protocol `studio`);
//! - [`StudioHub::go_live`] forwards that program, frame for frame, to the channel of a
//!   publish grant: a second broadcast that viewers, the recorder and the relays to the
//!   channel's destinations take like any other;
//! - [`StudioHub::end`] stops both.
//!
//! Everything runs on one studio thread (its own compio runtime, beside the shards): the
//! tasks are light (GStreamer's threads decode, mix and encode), and a studio never
//! competes with ingest for a shard's loop.

mod forward;
mod program;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use event_listener::Event;
use parking_lot::Mutex;
use weir_codec::ComposeConfig;
use weir_studio::Scene;

use crate::config::IoBackend;
use crate::hooks::PublishGrant;
use crate::registry::Registry;
use crate::shutdown::Shutdown;

/// Why a studio call failed (safe to show).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StudioError {
    /// The codec engine is missing elements or failed to start.
    #[error("the studio compositor cannot run on this node: {0}")]
    Engine(String),
    /// The program or channel stream could not be published.
    #[error("{0}")]
    Publish(String),
    /// No program runs for this broadcast.
    #[error("no program is composed for studio broadcast {0}")]
    NoProgram(String),
    /// The node is shutting down.
    #[error("the node is shutting down")]
    ShuttingDown,
}

/// What the studio thread is asked to start, and where it answers.
enum Job {
    Program {
        id: String,
        control: Arc<ProgramControl>,
        reply: Arc<Reply>,
    },
    Forward {
        stream: String,
        grant: PublishGrant,
        stop: Shutdown,
        reply: Arc<Reply>,
    },
}

/// A one-shot answer from the studio thread, awaitable from any runtime.
#[derive(Default)]
struct Reply {
    slot: Mutex<Option<Result<(), StudioError>>>,
    ready: Event,
}

impl Reply {
    fn send(&self, r: Result<(), StudioError>) {
        *self.slot.lock() = Some(r);
        self.ready.notify(usize::MAX);
    }

    async fn recv(&self) -> Result<(), StudioError> {
        loop {
            if let Some(r) = self.slot.lock().take() {
                return r;
            }
            let listener = self.ready.listen();
            if let Some(r) = self.slot.lock().take() {
                return r;
            }
            listener.await;
        }
    }
}

/// One program's controls, shared with its task.
pub(crate) struct ProgramControl {
    /// The newest scene, taken by the task.
    pub scene: Mutex<Option<Scene>>,
    /// Wakes the task (a scene, or stop).
    pub wake: Event,
    /// The task should stop.
    pub stop: AtomicBool,
    /// The program stream's name.
    pub stream: String,
    /// The forwarder to the channel, while live.
    pub live: Mutex<Option<Shutdown>>,
}

struct Inner {
    registry: Arc<Registry>,
    config: ComposeConfig,
    programs: Mutex<HashMap<String, Arc<ProgramControl>>>,
    jobs: Mutex<Vec<Job>>,
    wake: Event,
    shutdown: Shutdown,
}

/// The node's studio: see the module docs.
#[derive(Clone)]
pub struct StudioHub {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for StudioHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StudioHub")
            .field("programs", &self.inner.programs.lock().len())
            .finish()
    }
}

impl StudioHub {
    /// Starts the studio thread.
    pub(crate) fn start(
        registry: Arc<Registry>,
        config: ComposeConfig,
        backend: IoBackend,
        shutdown: Shutdown,
    ) -> std::io::Result<(Self, std::thread::JoinHandle<()>)> {
        let inner = Arc::new(Inner {
            registry,
            config,
            programs: Mutex::new(HashMap::new()),
            jobs: Mutex::new(Vec::new()),
            wake: Event::new(),
            shutdown,
        });
        let hub = Self { inner };
        let thread_hub = hub.clone();
        let thread = std::thread::Builder::new()
            .name("weir-studio".into())
            .spawn(move || thread_hub.run(backend))?;
        Ok((hub, thread))
    }

    fn run(self, backend: IoBackend) {
        let rt = match crate::shard::runtime(backend, None) {
            Ok(rt) => rt,
            Err(e) => {
                tracing::error!(error = %e, "studio runtime did not start");
                return;
            }
        };
        rt.block_on(async move {
            let inner = &self.inner;
            loop {
                let listener = inner.wake.listen();
                let jobs: Vec<Job> = std::mem::take(&mut *inner.jobs.lock());
                for job in jobs {
                    self.start_job(job);
                }
                if inner.shutdown.is_triggered() {
                    break;
                }
                let stop = inner.shutdown.wait();
                futures_util::future::select(std::pin::pin!(listener), std::pin::pin!(stop)).await;
            }
            // Ask every program to stop, and give them a moment to unpublish.
            for p in inner.programs.lock().values() {
                p.stop.store(true, Ordering::Release);
                p.wake.notify(usize::MAX);
            }
            compio::time::sleep(std::time::Duration::from_millis(300)).await;
        });
    }

    /// Admits and spawns a job (on the studio thread: admission starts packagers,
    /// recorders and relays, which run on the thread that admits).
    fn start_job(&self, job: Job) {
        let inner = &self.inner;
        match job {
            Job::Program { id, control, reply } => {
                match program::ProgramTask::admit(
                    &id,
                    inner.registry.clone(),
                    inner.config.clone(),
                    control,
                    inner.shutdown.clone(),
                ) {
                    Ok(task) => {
                        compio::runtime::spawn(task.run()).detach();
                        reply.send(Ok(()));
                    }
                    Err(e) => {
                        inner.programs.lock().remove(&id);
                        reply.send(Err(e));
                    }
                }
            }
            Job::Forward {
                stream,
                grant,
                stop,
                reply,
            } => match forward::ForwardTask::admit(
                &inner.registry,
                &stream,
                grant,
                stop.clone(),
                inner.shutdown.clone(),
            ) {
                Ok(task) => {
                    compio::runtime::spawn(task.run()).detach();
                    reply.send(Ok(()));
                }
                Err(e) => {
                    stop.trigger();
                    reply.send(Err(e));
                }
            },
        }
    }

    async fn submit(&self, job: Job, reply: Arc<Reply>) -> Result<(), StudioError> {
        if self.inner.shutdown.is_triggered() {
            return Err(StudioError::ShuttingDown);
        }
        self.inner.jobs.lock().push(job);
        self.inner.wake.notify(usize::MAX);
        reply.recv().await
    }

    /// Starts or updates the program of studio broadcast `id`, published as
    /// `program_stream`.
    pub async fn compose(
        &self,
        id: &str,
        program_stream: &str,
        scene: Scene,
    ) -> Result<(), StudioError> {
        let control = {
            let mut programs = self.inner.programs.lock();
            if let Some(p) = programs.get(id)
                && !p.stop.load(Ordering::Acquire)
            {
                *p.scene.lock() = Some(scene);
                p.wake.notify(usize::MAX);
                return Ok(());
            }
            weir_codec::cpu_ladder_available().map_err(|e| StudioError::Engine(e.to_string()))?;
            let control = Arc::new(ProgramControl {
                scene: Mutex::new(Some(scene)),
                wake: Event::new(),
                stop: AtomicBool::new(false),
                stream: program_stream.to_owned(),
                live: Mutex::new(None),
            });
            programs.insert(id.to_owned(), control.clone());
            control
        };
        let reply = Arc::new(Reply::default());
        let job = Job::Program {
            id: id.to_owned(),
            control,
            reply: reply.clone(),
        };
        self.submit(job, reply).await
    }

    /// Forwards the program of `id` to the channel `grant` admits.
    pub async fn go_live(&self, id: &str, grant: PublishGrant) -> Result<(), StudioError> {
        let control = self
            .inner
            .programs
            .lock()
            .get(id)
            .cloned()
            .ok_or_else(|| StudioError::NoProgram(id.to_owned()))?;
        let stop = {
            let mut live = control.live.lock();
            if live.as_ref().is_some_and(|s| !s.is_triggered()) {
                return Ok(());
            }
            let stop = Shutdown::new();
            *live = Some(stop.clone());
            stop
        };
        let reply = Arc::new(Reply::default());
        let job = Job::Forward {
            stream: control.stream.clone(),
            grant,
            stop,
            reply: reply.clone(),
        };
        self.submit(job, reply).await
    }

    /// Stops the forwarding and the program of `id`; false when none ran.
    pub fn end(&self, id: &str) -> bool {
        let Some(control) = self.inner.programs.lock().remove(id) else {
            return false;
        };
        if let Some(live) = control.live.lock().take() {
            live.trigger();
        }
        control.stop.store(true, Ordering::Release);
        control.wake.notify(usize::MAX);
        true
    }

    /// Ids of the programs being composed.
    pub fn programs(&self) -> Vec<String> {
        self.inner.programs.lock().keys().cloned().collect()
    }
}
