//! The relays of one broadcast follow the channel's destinations while it is live.
//!
//! Each new broadcast gets one supervisor task, on the shard that admitted it, which
//! owns the broadcast's relay tasks by destination id. The control plane sets the whole
//! list again after every change to the channel's destinations ([`RelaySlot::set`],
//! from any thread); the supervisor wakes, stops the relays of destinations that are
//! gone or disabled (they send `FCUnpublish`/`deleteStream` like at the end of a
//! broadcast), restarts those whose URL or key changed, and starts the new ones. The
//! latest list wins: several changes in a row are applied once. The supervisor leaves
//! when the broadcast ends; its relays end with the bus.

use std::collections::HashMap;
use std::sync::Arc;

use event_listener::Event;
use parking_lot::Mutex;

use super::RelayTarget;
use super::bodies::FrameBodies;
use crate::registry::{Registry, Stream};
use crate::shutdown::Shutdown;

/// Most destinations one broadcast relays to (a bound on what a control plane may ask;
/// fan-outs of a few hundred are benchmarked).
pub const MAX_RELAYS: usize = 1024;

/// The destinations a live broadcast should relay to, as last set by the control plane.
#[derive(Debug, Default)]
pub struct RelaySlot {
    state: Mutex<SlotState>,
    changed: Event,
}

#[derive(Debug, Default)]
struct SlotState {
    /// A supervisor runs for this broadcast.
    supervised: bool,
    /// A list not yet applied.
    pending: Option<Vec<RelayTarget>>,
}

impl RelaySlot {
    /// Asks the broadcast's supervisor to relay to exactly `targets`; false when the
    /// broadcast has none (it ended, or it is not relayed from this node).
    pub fn set(&self, targets: Vec<RelayTarget>) -> bool {
        let mut st = self.state.lock();
        if !st.supervised {
            return false;
        }
        st.pending = Some(targets);
        drop(st);
        self.changed.notify(usize::MAX);
        true
    }

    /// Wakes the supervisor (the broadcast ended).
    pub(crate) fn wake(&self) {
        self.changed.notify(usize::MAX);
    }

    fn take(&self) -> Option<Vec<RelayTarget>> {
        self.state.lock().pending.take()
    }

    /// Marks the broadcast as having (or no longer having) a supervisor.
    pub(super) fn supervised(&self, on: bool) {
        self.state.lock().supervised = on;
    }
}

/// What a new list of destinations changes: relays to stop (by id), relays to start.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Plan {
    pub stop: Vec<String>,
    pub start: Vec<RelayTarget>,
}

/// The same destination for a relay already running: same URL and key (a new name
/// alone does not reconnect).
fn same_destination(a: &RelayTarget, b: &RelayTarget) -> bool {
    a.url == b.url && a.stream_key == b.stream_key
}

/// Compares the running relays with the `desired` list (duplicated ids: the first wins;
/// at most [`MAX_RELAYS`]). A relay that gave up stays given up while its destination
/// is unchanged.
pub(super) fn plan<'a>(
    running: impl IntoIterator<Item = &'a RelayTarget>,
    desired: &[RelayTarget],
) -> Plan {
    let mut want: Vec<&RelayTarget> = Vec::new();
    for t in desired {
        if want.len() < MAX_RELAYS && !want.iter().any(|w| w.id == t.id) {
            want.push(t);
        }
    }
    let running: HashMap<&str, &RelayTarget> =
        running.into_iter().map(|t| (t.id.as_str(), t)).collect();
    let mut plan = Plan::default();
    for (id, now) in &running {
        match want.iter().find(|w| w.id == *id) {
            Some(w) if same_destination(w, now) => {}
            _ => plan.stop.push((*id).to_owned()),
        }
    }
    plan.stop.sort();
    for w in want {
        match running.get(w.id.as_str()) {
            Some(now) if same_destination(w, now) => {}
            _ => plan.start.push(w.clone()),
        }
    }
    plan
}

struct Running {
    target: RelayTarget,
    /// Tells its task to leave (its destination was removed or changed).
    stop: Shutdown,
}

/// Supervises the relays of `stream`, starting with `initial`, until it ends.
pub(super) async fn run(registry: Arc<Registry>, stream: Arc<Stream>, initial: Vec<RelayTarget>) {
    let bodies = FrameBodies::new();
    let mut running: HashMap<String, Running> = HashMap::new();
    let mut next = Some(initial);
    loop {
        let listener = stream.relays.changed.listen();
        if let Some(desired) = next.take().or_else(|| stream.relays.take()) {
            let Plan { stop, start } = plan(running.values().map(|r| &r.target), &desired);
            for id in stop {
                if let Some(r) = running.remove(&id) {
                    tracing::info!(channel = %stream.channel, destination = %r.target.name, "destination removed or changed: its relay stops");
                    r.stop.trigger();
                }
            }
            for target in start {
                tracing::info!(channel = %stream.channel, destination = %target.name, url = %target.url, "relaying to a destination");
                let stop = Shutdown::new();
                let task = super::task::run(
                    registry.clone(),
                    stream.clone(),
                    target.clone(),
                    bodies.clone(),
                    stop.clone(),
                );
                compio::runtime::spawn(task).detach();
                running.insert(target.id.clone(), Running { target, stop });
            }
            continue;
        }
        if stream.is_ended() {
            break;
        }
        listener.await;
    }
    stream.relays.supervised(false);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(id: &str, url: &str, key: &str) -> RelayTarget {
        RelayTarget {
            id: id.into(),
            name: id.to_uppercase(),
            url: url.into(),
            stream_key: key.into(),
        }
    }

    #[test]
    fn a_new_list_starts_what_is_new_and_stops_what_is_gone() {
        let running = [t("a", "rtmp://a/live", "ka"), t("b", "rtmp://b/live", "kb")];
        let desired = [t("b", "rtmp://b/live", "kb"), t("c", "rtmp://c/live", "kc")];
        let p = plan(&running, &desired);
        assert_eq!(p.stop, vec!["a".to_string()]);
        assert_eq!(p.start, vec![t("c", "rtmp://c/live", "kc")]);
    }

    #[test]
    fn a_changed_url_or_key_reconnects_and_a_new_name_does_not() {
        let running = [
            t("a", "rtmp://a/live", "ka"),
            t("b", "rtmp://b/live", "kb"),
            t("c", "rtmp://c/live", "kc"),
        ];
        let mut renamed = t("c", "rtmp://c/live", "kc");
        renamed.name = "Twitch".into();
        let desired = [
            t("a", "rtmp://a2/live", "ka"),
            t("b", "rtmp://b/live", "kb2"),
            renamed,
        ];
        let p = plan(&running, &desired);
        assert_eq!(p.stop, vec!["a".to_string(), "b".to_string()]);
        assert_eq!(
            p.start,
            vec![
                t("a", "rtmp://a2/live", "ka"),
                t("b", "rtmp://b/live", "kb2")
            ]
        );
    }

    #[test]
    fn the_same_list_changes_nothing_and_an_empty_one_stops_everything() {
        let running = [t("a", "rtmp://a/live", "ka")];
        assert_eq!(plan(&running, &running), Plan::default());
        let p = plan(&running, &[]);
        assert_eq!(p.stop, vec!["a".to_string()]);
        assert!(p.start.is_empty());
    }

    #[test]
    fn duplicated_ids_and_lists_over_the_cap_are_bounded() {
        let mut desired = vec![t("a", "rtmp://a/live", "1"), t("a", "rtmp://x/live", "2")];
        for i in 0..MAX_RELAYS + 10 {
            desired.push(t(&format!("d{i}"), "rtmp://d/live", "k"));
        }
        let p = plan(&[], &desired);
        assert_eq!(p.start.len(), MAX_RELAYS);
        assert_eq!(p.start[0], t("a", "rtmp://a/live", "1"));
    }

    #[test]
    fn a_slot_takes_lists_only_while_supervised_and_keeps_the_latest() {
        let slot = RelaySlot::default();
        assert!(!slot.set(vec![t("a", "rtmp://a/live", "k")]));
        slot.supervised(true);
        assert!(slot.set(vec![t("a", "rtmp://a/live", "k")]));
        assert!(slot.set(vec![t("b", "rtmp://b/live", "k")]));
        assert_eq!(slot.take(), Some(vec![t("b", "rtmp://b/live", "k")]));
        assert_eq!(slot.take(), None);
        slot.supervised(false);
        assert!(!slot.set(Vec::new()));
    }
}
