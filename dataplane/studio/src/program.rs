//! The program plan: scene + inputs + time → what every compositor pad shows.
//!
//! Sans-IO: [`Program::set_scene`] and [`Program::set_input`] take `now`;
//! [`Program::plan`] answers for any `now` (the driver calls it every output frame while
//! [`Plan::animating`], else after each change). A layout change animates every tile
//! from where it was drawn to where it goes (smoothstep over the scene's transition);
//! a participant coming on stage fades in at its place; one leaving the stage goes at
//! once (its input is released with it). A participant whose stream is not live, or whose camera is off, shows a
//! placeholder in its tile, and its audio is muted when it is not live or its
//! microphone is off: the program never waits for a missing input.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::geometry::{Crop, Rect, cover_crop};
use crate::layout::{Canvas, layout};
use crate::scene::Scene;

/// What the driver knows of a participant's stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InputState {
    /// Frames are arriving.
    pub live: bool,
    /// Decoded picture size (0 when unknown).
    pub width: u32,
    /// Decoded picture height.
    pub height: u32,
}

/// One participant's picture on the canvas.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoPlacement {
    /// Participant id.
    pub participant: String,
    /// Destination rectangle.
    pub rect: Rect,
    /// Cut from the source so it fills `rect` undistorted.
    pub crop: Crop,
    /// Opacity, 0.0 (hidden) to 1.0.
    pub alpha: f32,
    /// Stacking order.
    pub z: u32,
}

/// A tile without a picture.
#[derive(Debug, Clone, PartialEq)]
pub struct Placeholder {
    /// Participant id.
    pub participant: String,
    /// Display name, for the tile's label.
    pub name: String,
    /// The tile.
    pub rect: Rect,
    /// Opacity (fades like a picture would).
    pub alpha: f32,
}

/// The plan at one instant.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Plan {
    /// Pictures to draw (every live participant on stage with its camera on).
    pub video: Vec<VideoPlacement>,
    /// Tiles to draw as placeholders, under the pictures.
    pub placeholders: Vec<Placeholder>,
    /// Mix volume by participant id (0.0: muted).
    pub audio: Vec<(String, f32)>,
    /// A transition is running: ask again next frame.
    pub animating: bool,
}

/// A tile as drawn: where, how opaque, at which z.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Drawn {
    rect: Rect,
    alpha: f32,
    z: u32,
}

/// The program's state.
#[derive(Debug)]
pub struct Program {
    canvas: Canvas,
    scene: Scene,
    inputs: HashMap<String, InputState>,
    /// Where each participant was when the current transition began.
    from: HashMap<String, Drawn>,
    /// Where each participant goes.
    to: HashMap<String, Drawn>,
    started: Option<Instant>,
}

impl Program {
    /// An empty program on `canvas`.
    pub fn new(canvas: Canvas) -> Self {
        Self {
            canvas,
            scene: Scene::default(),
            inputs: HashMap::new(),
            from: HashMap::new(),
            to: HashMap::new(),
            started: None,
        }
    }

    /// The canvas.
    pub fn canvas(&self) -> Canvas {
        self.canvas
    }

    /// The current scene.
    pub fn scene(&self) -> &Scene {
        &self.scene
    }

    /// A new scene: tiles move to their new places over `scene.transition`.
    pub fn set_scene(&mut self, now: Instant, scene: Scene) {
        let drawn = self.drawn_at(now);
        self.scene = scene;
        self.inputs
            .retain(|id, _| self.scene.participants.iter().any(|p| &p.id == id));
        let to = self.targets();
        if to == self.to {
            return;
        }
        self.from = drawn;
        self.to = to;
        self.started = Some(now);
    }

    /// What the driver observed of a participant's stream.
    pub fn set_input(&mut self, id: &str, state: InputState) {
        if self.scene.participant(id).is_some() {
            self.inputs.insert(id.to_owned(), state);
        }
    }

    /// The input state of participant `id`.
    pub fn input(&self, id: &str) -> InputState {
        self.inputs.get(id).copied().unwrap_or_default()
    }

    /// What every pad shows at `now`.
    pub fn plan(&self, now: Instant) -> Plan {
        let mut plan = Plan {
            animating: self.progress(now) < 1.0,
            ..Plan::default()
        };
        let drawn = self.drawn_at(now);
        let mut ids: Vec<&String> = drawn.keys().collect();
        ids.sort();
        for id in ids {
            let d = drawn[id];
            let Some(p) = self.scene.participant(id) else {
                continue;
            };
            let input = self.input(id);
            if input.live && p.video && input.width > 0 {
                plan.video.push(VideoPlacement {
                    participant: id.clone(),
                    rect: d.rect,
                    crop: cover_crop(input.width, input.height, d.rect.w, d.rect.h),
                    alpha: d.alpha,
                    z: d.z,
                });
            } else {
                plan.placeholders.push(Placeholder {
                    participant: id.clone(),
                    name: p.name.clone(),
                    rect: d.rect,
                    alpha: d.alpha,
                });
            }
        }
        for p in &self.scene.participants {
            let live = self.input(&p.id).live;
            let volume = if live && p.audio {
                p.gain.clamp(0.0, 2.0)
            } else {
                0.0
            };
            plan.audio.push((p.id.clone(), volume));
        }
        plan
    }

    /// Transition progress, 0.0 to 1.0 (1.0 when none runs).
    fn progress(&self, now: Instant) -> f32 {
        let Some(start) = self.started else {
            return 1.0;
        };
        let total = self.scene.transition;
        if total.is_zero() {
            return 1.0;
        }
        let t = now.saturating_duration_since(start).as_secs_f32() / total.as_secs_f32();
        t.clamp(0.0, 1.0)
    }

    /// Every tile as drawn at `now`, fading ones included.
    fn drawn_at(&self, now: Instant) -> HashMap<String, Drawn> {
        let t = self.progress(now);
        if t >= 1.0 {
            return self.to.clone();
        }
        let s = t * t * (3.0 - 2.0 * t);
        let mut out = HashMap::new();
        for (id, to) in &self.to {
            let d = match self.from.get(id) {
                Some(from) => Drawn {
                    rect: from.rect.lerp(to.rect, s),
                    alpha: from.alpha + (to.alpha - from.alpha) * s,
                    z: to.z.max(from.z),
                },
                None => Drawn {
                    alpha: to.alpha * s,
                    ..*to
                },
            };
            out.insert(id.clone(), d);
        }
        out
    }

    /// Where the scene's layout puts each participant.
    fn targets(&self) -> HashMap<String, Drawn> {
        let s = &self.scene;
        layout(s.layout, s.participants.len(), s.featured(), self.canvas)
            .into_iter()
            .filter_map(|t| {
                let p = s.participants.get(t.participant)?;
                Some((
                    p.id.clone(),
                    Drawn {
                        rect: t.rect,
                        alpha: 1.0,
                        z: t.z,
                    },
                ))
            })
            .collect()
    }
}

/// How long to wait between plans when nothing animates (input liveness re-checks).
pub const IDLE_REPLAN: Duration = Duration::from_millis(250);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::Layout;
    use crate::scene::Participant;

    const HD: Canvas = Canvas {
        width: 1280,
        height: 720,
    };

    fn guest(id: &str) -> Participant {
        Participant {
            id: id.into(),
            name: format!("Guest {id}"),
            stream: format!("studio-{id}"),
            audio: true,
            video: true,
            gain: 1.0,
        }
    }

    fn scene(layout: Layout, ids: &[&str]) -> Scene {
        Scene {
            layout,
            participants: ids.iter().map(|i| guest(i)).collect(),
            transition: Duration::from_millis(400),
            ..Scene::default()
        }
    }

    fn live(p: &mut Program, id: &str) {
        p.set_input(
            id,
            InputState {
                live: true,
                width: 640,
                height: 480,
            },
        );
    }

    #[test]
    fn a_layout_change_animates_and_lands_on_the_layout() {
        let t0 = Instant::now();
        let mut p = Program::new(HD);
        p.set_scene(t0, scene(Layout::Grid, &["a", "b"]));
        live(&mut p, "a");
        live(&mut p, "b");
        let settled = p.plan(t0 + Duration::from_secs(1));
        assert!(!settled.animating);
        assert_eq!(settled.video.len(), 2);
        let grid_a = settled.video[0].rect;

        let t1 = t0 + Duration::from_secs(2);
        let mut s = scene(Layout::Spotlight, &["a", "b"]);
        s.spotlight = Some("b".into());
        p.set_scene(t1, s);
        let mid = p.plan(t1 + Duration::from_millis(200));
        assert!(mid.animating);
        let end = p.plan(t1 + Duration::from_millis(400));
        assert!(!end.animating);
        let target = layout(Layout::Spotlight, 2, Some(1), HD);
        let a_end = end
            .video
            .iter()
            .find(|v| v.participant == "a")
            .map(|v| v.rect);
        assert_eq!(a_end, Some(target[1].rect));
        let a_mid = mid
            .video
            .iter()
            .find(|v| v.participant == "a")
            .map(|v| v.rect);
        assert_ne!(a_mid, Some(grid_a));
        assert_ne!(a_mid, a_end);
        // Crops follow the tile: 4:3 into 16:9 cuts top and bottom, evenly.
        let c = end.video[0].crop;
        assert_eq!(c.top, c.bottom);
        assert!(c.top > 0);
    }

    #[test]
    fn missing_inputs_show_placeholders_and_are_muted() {
        let t0 = Instant::now();
        let mut p = Program::new(HD);
        let mut s = scene(Layout::Grid, &["a", "b", "c"]);
        s.participants[2].video = false;
        p.set_scene(t0, s);
        live(&mut p, "a");
        live(&mut p, "c");
        let plan = p.plan(t0 + Duration::from_secs(1));
        let shown: Vec<&str> = plan.video.iter().map(|v| v.participant.as_str()).collect();
        assert_eq!(shown, ["a"]);
        let holders: Vec<&str> = plan
            .placeholders
            .iter()
            .map(|v| v.participant.as_str())
            .collect();
        assert_eq!(holders, ["b", "c"]);
        let vol: HashMap<_, _> = plan.audio.into_iter().collect();
        assert_eq!((vol["a"], vol["b"], vol["c"]), (1.0, 0.0, 1.0));
    }

    #[test]
    fn muted_and_gained_audio() {
        let t0 = Instant::now();
        let mut p = Program::new(HD);
        let mut s = scene(Layout::Grid, &["a", "b"]);
        s.participants[0].audio = false;
        s.participants[1].gain = 5.0;
        p.set_scene(t0, s);
        live(&mut p, "a");
        live(&mut p, "b");
        let vol: HashMap<_, _> = p.plan(t0).audio.into_iter().collect();
        assert_eq!((vol["a"], vol["b"]), (0.0, 2.0));
    }

    #[test]
    fn joining_fades_in_and_a_cut_lands_at_once() {
        let t0 = Instant::now();
        let mut p = Program::new(HD);
        p.set_scene(t0, scene(Layout::Grid, &["a"]));
        live(&mut p, "a");
        let t1 = t0 + Duration::from_secs(1);
        p.set_scene(t1, scene(Layout::Grid, &["a", "b"]));
        live(&mut p, "b");
        let alpha = |plan: &Plan, id: &str| {
            plan.video
                .iter()
                .find(|v| v.participant == id)
                .map(|v| v.alpha)
        };
        let start = p.plan(t1);
        assert_eq!(alpha(&start, "b"), Some(0.0));
        assert_eq!(alpha(&p.plan(t1 + Duration::from_secs(1)), "b"), Some(1.0));
        // A cut (no transition) lands at once.
        let mut cut = scene(Layout::Solo, &["a", "b"]);
        cut.transition = Duration::ZERO;
        let t2 = t1 + Duration::from_secs(2);
        p.set_scene(t2, cut);
        let now = p.plan(t2);
        assert!(!now.animating);
        assert_eq!(now.video.len(), 1);
        assert_eq!(now.video[0].rect, HD.rect());
    }

    #[test]
    fn an_unchanged_scene_does_not_restart_the_transition() {
        let t0 = Instant::now();
        let mut p = Program::new(HD);
        p.set_scene(t0, scene(Layout::Grid, &["a", "b"]));
        let t1 = t0 + Duration::from_secs(5);
        let mut s = scene(Layout::Grid, &["a", "b"]);
        s.participants[0].audio = false;
        p.set_scene(t1, s);
        assert!(!p.plan(t1).animating);
    }
}
