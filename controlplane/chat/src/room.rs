//! One room's state, sans-IO: the moderation pipeline a message goes through before it
//! is accepted, message ids, the recent-history ring, bans and timeouts. Time is passed
//! in (`now`, Unix ms); nothing here does I/O.
//!
//! A message's life: [`Room::submit`] runs the checks (it is then *pending*, without an
//! id); the room's writer takes the pending batch ([`Room::take_pending`]) and hands it
//! to the fan-out, which gives the ids (from this room's counter with
//! [`Room::assign_ids`], or from a sequencer shared by gateways), stores and delivers
//! it; delivered messages enter the recent ring ([`Room::committed`]).

use std::collections::{HashMap, VecDeque};
use std::hash::{DefaultHasher, Hash, Hasher};

use serde::{Deserialize, Serialize};

use crate::bucket::{Buckets, Rate};
use crate::filter::{WordFilter, find_links, host_allowed, is_emote_only};
use crate::fold::fold_plain;
use crate::protocol::{ChatMessage, Code, UserRef};
use crate::settings::Settings;

/// Limits of a room.
#[derive(Debug, Clone, PartialEq)]
pub struct RoomConfig {
    /// Longest message, in characters (Unicode scalar values).
    pub max_chars: usize,
    /// Messages kept in memory and sent on join.
    pub history_len: usize,
    /// The same text from the same user within this window is refused (ms).
    pub repeat_window_ms: i64,
    /// Accepted messages waiting for the store before new ones are refused.
    pub max_pending: usize,
}

impl Default for RoomConfig {
    fn default() -> Self {
        Self {
            max_chars: 500,
            history_len: 50,
            repeat_window_ms: 30_000,
            max_pending: 10_000,
        }
    }
}

/// A ban (`until: None`) or timeout of one user, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ban {
    /// The user.
    pub user: UserRef,
    /// End of a timeout (Unix ms); `None` for a ban.
    pub until: Option<i64>,
    /// Why.
    pub reason: Option<String>,
    /// The moderator.
    pub by: UserRef,
    /// When (Unix ms).
    pub at: i64,
}

/// Who is posting, as the gateway authenticated them.
#[derive(Debug, Clone)]
pub struct Author<'a> {
    /// The connection (subscriber id) the `ack` goes to.
    pub conn: u64,
    /// The user.
    pub user: &'a UserRef,
    /// The client address key (per-IP limit).
    pub ip: &'a str,
    /// A moderator of this channel (exempt from slow mode, subscribers-only, emote-only,
    /// link and repeat filters; not from bans, length, rate limits or banned words).
    pub moderator: bool,
    /// A subscriber of the channel (exempt from followers-only too).
    pub subscriber: bool,
    /// When the user began following the channel (Unix ms), if it does.
    pub followed_at: Option<i64>,
}

/// A refused message: the code, a message for people, and when to retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The code.
    pub code: Code,
    /// Why, for people.
    pub message: String,
    /// For rate limits, slow mode, timeouts.
    pub retry_after_ms: Option<u64>,
}

impl Refusal {
    fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after_ms: None,
        }
    }

    fn retry(mut self, ms: u64) -> Self {
        self.retry_after_ms = Some(ms);
        self
    }
}

/// Gateway-wide rate limits: per user and per client address, across rooms.
#[derive(Debug)]
pub struct Limits {
    per_user: Buckets,
    per_ip: Buckets,
}

impl Limits {
    /// Limits with these rates (at most `max_keys` users and addresses each).
    pub fn new(per_user: Rate, per_ip: Rate, max_keys: usize) -> Self {
        Self {
            per_user: Buckets::new(per_user, max_keys),
            per_ip: Buckets::new(per_ip, max_keys),
        }
    }

    fn take(&mut self, user: &str, ip: &str, now: i64) -> Result<(), u64> {
        self.per_user.take(user, now)?;
        self.per_ip.take(ip, now)
    }
}

#[derive(Debug, Default)]
struct Recent {
    last_ms: i64,
    texts: VecDeque<(i64, u64)>,
}

/// An accepted message waiting for its id and the store.
#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    /// The message (`id` 0 until sequenced).
    pub msg: ChatMessage,
    /// The author's connection, for the `ack`.
    pub conn: u64,
    /// The author's tag, echoed in the `ack`.
    pub nonce: Option<String>,
}

/// Most texts remembered per user for repeat detection.
const REPEAT_MEMORY: usize = 8;
/// Users tracked before old entries are pruned.
const PRUNE_AT: usize = 10_000;

/// One room.
#[derive(Debug)]
pub struct Room {
    channel: String,
    cfg: RoomConfig,
    settings: Settings,
    words: WordFilter,
    last_id: u64,
    recent: VecDeque<ChatMessage>,
    pending: Vec<Pending>,
    bans: HashMap<String, Ban>,
    users: HashMap<String, Recent>,
}

/// Repeat detection sees case, lookalikes and spacing alike, but not digits (leetspeak
/// folding would make `6` and `9` one message).
fn text_hash(text: &str) -> u64 {
    let mut h = DefaultHasher::new();
    fold_plain(text)
        .split_whitespace()
        .collect::<Vec<_>>()
        .hash(&mut h);
    h.finish()
}

impl Room {
    /// A room for `channel` resuming from stored state: the newest stored messages
    /// (oldest first), the newest id ever stored (deleted messages included), the
    /// settings and the bans in force.
    pub fn new(
        channel: &str,
        cfg: RoomConfig,
        settings: Settings,
        stored: (Vec<ChatMessage>, u64),
        bans: Vec<Ban>,
    ) -> Self {
        let (stored_recent, last_id) = stored;
        let last_id = stored_recent.last().map_or(0, |m| m.id).max(last_id);
        let skip = stored_recent.len().saturating_sub(cfg.history_len);
        Self {
            channel: channel.to_string(),
            words: WordFilter::new(&settings.banned_words),
            settings,
            last_id,
            recent: stored_recent.into_iter().skip(skip).collect(),
            pending: Vec::new(),
            bans: bans.into_iter().map(|b| (b.user.id.clone(), b)).collect(),
            users: HashMap::new(),
            cfg,
        }
    }

    /// The channel id.
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Replaces the settings.
    pub fn set_settings(&mut self, s: Settings) {
        self.words = WordFilter::new(&s.banned_words);
        self.settings = s;
    }

    /// The newest id given out or seen (0: none).
    pub fn last_id(&self) -> u64 {
        self.last_id
    }

    /// Notes an id given by a shared sequencer (messages of other gateways).
    pub fn observe(&mut self, id: u64) {
        self.last_id = self.last_id.max(id);
    }

    /// Gives the next ids of this room to the messages of `batch` that have none.
    pub fn assign_ids(&mut self, batch: &mut [Pending]) {
        for p in batch.iter_mut().filter(|p| p.msg.id == 0) {
            self.last_id += 1;
            p.msg.id = self.last_id;
        }
    }

    /// The newest stored id (what clients can have seen).
    pub fn last_committed_id(&self) -> u64 {
        self.recent.back().map_or(0, |m| m.id)
    }

    /// The stored recent messages, oldest first.
    pub fn recent(&self) -> impl Iterator<Item = &ChatMessage> {
        self.recent.iter()
    }

    /// The oldest id held in the recent ring.
    pub fn oldest_recent_id(&self) -> Option<u64> {
        self.recent.front().map(|m| m.id)
    }

    /// The stored messages after `since`, when the ring holds all of them (`None`: some
    /// are older than the ring, read the store).
    pub fn recent_after(&self, since: u64) -> Option<Vec<ChatMessage>> {
        let covered = match self.recent.front() {
            Some(first) => since + 1 >= first.id,
            None => true,
        };
        covered.then(|| {
            self.recent
                .iter()
                .filter(|m| m.id > since)
                .cloned()
                .collect()
        })
    }

    /// How many messages wait for the store.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// The ban or timeout of `user_id` in force at `now`, if any.
    pub fn ban_of(&self, user_id: &str, now: i64) -> Option<&Ban> {
        self.bans
            .get(user_id)
            .filter(|b| b.until.is_none_or(|u| u > now))
    }

    /// Runs the moderation pipeline; on success the message is pending (returned
    /// without its id).
    pub fn submit(
        &mut self,
        now: i64,
        author: &Author<'_>,
        text: &str,
        reply_to: Option<u64>,
        nonce: Option<String>,
        limits: &mut Limits,
    ) -> Result<ChatMessage, Refusal> {
        let uid = author.user.id.as_str();
        if let Some(b) = self.ban_of(uid, now) {
            return Err(match b.until {
                None => Refusal::new(Code::Banned, "you are banned from this chat"),
                Some(u) => {
                    Refusal::new(Code::TimedOut, "you are timed out").retry((u - now).max(1) as u64)
                }
            });
        }
        let text = text.trim();
        if text.is_empty() {
            return Err(Refusal::new(Code::Empty, "the message is empty"));
        }
        if text.chars().count() > self.cfg.max_chars {
            return Err(Refusal::new(
                Code::TooLong,
                format!("messages are at most {} characters", self.cfg.max_chars),
            ));
        }
        if text.chars().any(char::is_control) {
            return Err(Refusal::new(
                Code::InvalidText,
                "control characters (newlines included) are not allowed",
            ));
        }
        if self.pending.len() >= self.cfg.max_pending {
            return Err(
                Refusal::new(Code::Unavailable, "chat storage is behind, try again").retry(1000),
            );
        }
        limits.take(uid, author.ip, now).map_err(|ms| {
            Refusal::new(Code::RateLimited, "too many messages, slow down").retry(ms)
        })?;
        let exempt = author.moderator;
        if self.settings.subscribers_only && !exempt && !author.subscriber {
            return Err(Refusal::new(
                Code::SubscribersOnly,
                "this chat is for subscribers only",
            ));
        }
        if self.settings.followers_only && !exempt && !author.subscriber {
            followers_only(&self.settings, author.followed_at, now)?;
        }
        let slow_ms = i64::from(self.settings.slow_mode_s) * 1000;
        if slow_ms > 0
            && !exempt
            && let Some(r) = self.users.get(uid)
            && now - r.last_ms < slow_ms
        {
            return Err(Refusal::new(
                Code::SlowMode,
                format!(
                    "slow mode: one message every {} s",
                    self.settings.slow_mode_s
                ),
            )
            .retry((slow_ms - (now - r.last_ms)) as u64));
        }
        if self.settings.emote_only && !exempt && !is_emote_only(text) {
            return Err(Refusal::new(Code::EmoteOnly, "this chat is emote-only"));
        }
        if let Some(r) = reply_to
            && (r == 0 || r > self.last_id)
        {
            return Err(Refusal::new(
                Code::BadReply,
                "reply_to names no message of this room",
            ));
        }
        if self.words.matches(text) {
            return Err(Refusal::new(
                Code::BannedWord,
                "the message contains a word this chat does not allow",
            ));
        }
        if !exempt && !self.settings.allow_links {
            let allowed = &self.settings.allowed_domains;
            if let Some(h) = find_links(text).iter().find(|h| !host_allowed(h, allowed)) {
                return Err(Refusal::new(
                    Code::LinkBlocked,
                    format!("links are not allowed here ({h})"),
                ));
            }
        }
        let hash = text_hash(text);
        let window = self.cfg.repeat_window_ms;
        if !exempt
            && let Some(r) = self.users.get(uid)
            && r.texts.iter().any(|&(t, h)| h == hash && now - t < window)
        {
            return Err(Refusal::new(
                Code::Duplicate,
                "you just sent this message, say something new",
            ));
        }
        if self.users.len() >= PRUNE_AT && !self.users.contains_key(uid) {
            self.prune(now);
        }
        let r = self.users.entry(uid.to_string()).or_default();
        r.last_ms = now;
        r.texts.retain(|&(t, _)| now - t < window);
        if r.texts.len() >= REPEAT_MEMORY {
            r.texts.pop_front();
        }
        r.texts.push_back((now, hash));
        let msg = ChatMessage {
            id: 0,
            ts: now,
            user: author.user.clone(),
            text: text.to_string(),
            reply_to,
        };
        self.pending.push(Pending {
            msg: msg.clone(),
            conn: author.conn,
            nonce,
        });
        Ok(msg)
    }

    fn prune(&mut self, now: i64) {
        let keep = self
            .cfg
            .repeat_window_ms
            .max(i64::from(self.settings.slow_mode_s) * 1000);
        self.users.retain(|_, r| now - r.last_ms < keep);
        self.bans.retain(|_, b| b.until.is_none_or(|u| u > now));
    }

    /// Takes the messages waiting for the store, oldest first.
    pub fn take_pending(&mut self) -> Vec<Pending> {
        std::mem::take(&mut self.pending)
    }

    /// Gives back a batch the store refused (it is retried first).
    pub fn restore_pending(&mut self, mut batch: Vec<Pending>) {
        batch.append(&mut self.pending);
        self.pending = batch;
    }

    /// Records delivered messages in the recent ring (and their ids as seen).
    pub fn committed<'a>(&mut self, batch: impl IntoIterator<Item = &'a ChatMessage>) {
        for m in batch {
            self.observe(m.id);
            if self.recent.back().is_some_and(|last| last.id >= m.id) {
                continue;
            }
            self.recent.push_back(m.clone());
        }
        while self.recent.len() > self.cfg.history_len {
            self.recent.pop_front();
        }
    }

    /// Removes a message from the recent ring; true when it was there. The stored copy
    /// is the caller's to mark.
    pub fn delete(&mut self, id: u64) -> bool {
        let before = self.recent.len();
        self.recent.retain(|m| m.id != id);
        before != self.recent.len()
    }

    /// Records a ban or timeout (replacing any other of that user).
    pub fn ban(&mut self, ban: Ban) {
        self.bans.insert(ban.user.id.clone(), ban);
    }

    /// Lifts a ban or timeout; true when one was in force.
    pub fn unban(&mut self, user_id: &str, now: i64) -> bool {
        let was = self.ban_of(user_id, now).is_some();
        self.bans.remove(user_id);
        was
    }
}

/// Followers-only mode: a follow, at least `follow_age_min` old.
fn followers_only(settings: &Settings, followed_at: Option<i64>, now: i64) -> Result<(), Refusal> {
    let Some(since) = followed_at else {
        return Err(Refusal::new(
            Code::FollowersOnly,
            "this chat is for followers: follow the channel to write",
        ));
    };
    let age_ms = i64::from(settings.follow_age_min) * 60_000;
    let wait = age_ms - (now - since);
    if wait > 0 {
        return Err(Refusal::new(
            Code::FollowersOnly,
            format!(
                "this chat is for followers of at least {} minutes",
                settings.follow_age_min
            ),
        )
        .retry(wait as u64));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
