//! A room's moderation settings (stored per channel, changed by moderators).

use serde::{Deserialize, Serialize};

/// Longest banned-word list and allow-list a room may hold.
pub const MAX_LIST: usize = 500;
/// Longest slow-mode interval (one hour).
pub const MAX_SLOW_MODE_S: u32 = 3600;
/// Longest follow age followers-only mode may ask for (90 days, in minutes).
pub const MAX_FOLLOW_AGE_MIN: u32 = 90 * 24 * 60;

/// The settings of one room. Missing fields take their defaults, so clients may send
/// only what they change on top of the current settings they were given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Seconds a user must wait between two messages (0: off). Moderators are exempt.
    pub slow_mode_s: u32,
    /// Only channel subscribers (and moderators) may write.
    pub subscribers_only: bool,
    /// Only followers of the channel (and subscribers and moderators) may write.
    pub followers_only: bool,
    /// In followers-only mode, how long (minutes) a follow must be before its user may
    /// write (0: any follower, at once).
    pub follow_age_min: u32,
    /// Only emotes (`:name:`) and emoji / symbols may be written.
    pub emote_only: bool,
    /// Whether links are allowed at all; when false only `allowed_domains` pass.
    pub allow_links: bool,
    /// Domains whose links pass even when links are blocked (subdomains included).
    pub allowed_domains: Vec<String>,
    /// Refused words or patterns (`*` at either end: prefix/suffix/substring match),
    /// matched after case and confusable folding.
    pub banned_words: Vec<String>,
}

impl Settings {
    /// Checks bounds; returns why not.
    pub fn validate(&self) -> Result<(), String> {
        if self.slow_mode_s > MAX_SLOW_MODE_S {
            return Err(format!("slow_mode_s is at most {MAX_SLOW_MODE_S}"));
        }
        if self.follow_age_min > MAX_FOLLOW_AGE_MIN {
            return Err(format!(
                "follow_age_min is at most {MAX_FOLLOW_AGE_MIN} (90 days)"
            ));
        }
        if self.allowed_domains.len() > MAX_LIST || self.banned_words.len() > MAX_LIST {
            return Err(format!("lists hold at most {MAX_LIST} entries"));
        }
        let too_long = |v: &Vec<String>| v.iter().any(|s| s.is_empty() || s.chars().count() > 100);
        if too_long(&self.allowed_domains) || too_long(&self.banned_words) {
            return Err("entries must be 1 to 100 characters".into());
        }
        Ok(())
    }
}
