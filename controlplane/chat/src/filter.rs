//! Content filters: banned words and patterns, links, emote-only. Pure functions of the
//! text; the room decides which apply to whom.

use std::collections::HashSet;

use crate::fold::{fold_plain, fold_words};

/// Banned words and patterns, compiled from a room's list. Each entry is folded like
/// the text ([`fold_words`]); then:
/// - `word` or `two words`: matches whole words (also when spelled out letter by letter,
///   `b a d`, `b.a.d`);
/// - `word*`: a word starting with it; `*word`: a word ending with it;
/// - `*word*`: anywhere, even across separators (`w-o-r-d`).
#[derive(Debug, Clone, Default)]
pub struct WordFilter {
    phrases: HashSet<String>,
    prefixes: Vec<String>,
    suffixes: Vec<String>,
    anywhere: Vec<String>,
}

fn words(folded: &str) -> Vec<&str> {
    folded
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect()
}

/// Words plus runs of single letters joined (`b a d` → `bad`).
fn candidate_words(folded: &str) -> Vec<String> {
    let ws = words(folded);
    let mut out: Vec<String> = ws.iter().map(|w| (*w).to_string()).collect();
    let mut run = String::new();
    for w in ws.iter().chain(std::iter::once(&"")) {
        if w.chars().count() == 1 {
            run.push_str(w);
        } else {
            if run.chars().count() > 1 {
                out.push(std::mem::take(&mut run));
            }
            run.clear();
        }
    }
    out
}

impl WordFilter {
    /// Compiles a list of patterns (empty entries are ignored).
    pub fn new(patterns: &[String]) -> Self {
        let mut f = WordFilter::default();
        for p in patterns {
            let p = fold_words(p.trim());
            let (starts, ends) = (p.starts_with('*'), p.ends_with('*'));
            let core = words(p.trim_matches('*')).join(" ");
            if core.is_empty() {
                continue;
            }
            match (starts, ends) {
                (false, false) => {
                    f.phrases.insert(core);
                }
                (false, true) => f.prefixes.push(core.replace(' ', "")),
                (true, false) => f.suffixes.push(core.replace(' ', "")),
                (true, true) => f.anywhere.push(core.replace(' ', "")),
            }
        }
        f
    }

    /// Whether no pattern is set.
    pub fn is_empty(&self) -> bool {
        self.phrases.is_empty()
            && self.prefixes.is_empty()
            && self.suffixes.is_empty()
            && self.anywhere.is_empty()
    }

    /// Whether `text` contains a banned word or pattern.
    pub fn matches(&self, text: &str) -> bool {
        if self.is_empty() {
            return false;
        }
        let folded = fold_words(text);
        let cands = candidate_words(&folded);
        if cands.iter().any(|w| {
            self.phrases.contains(w.as_str())
                || self.prefixes.iter().any(|p| w.starts_with(p.as_str()))
                || self.suffixes.iter().any(|s| w.ends_with(s.as_str()))
        }) {
            return true;
        }
        let ws = words(&folded);
        if self.phrases.iter().any(|p| p.contains(' ')) {
            let joined = format!(" {} ", ws.join(" "));
            if self
                .phrases
                .iter()
                .any(|p| p.contains(' ') && joined.contains(&format!(" {p} ")))
            {
                return true;
            }
        }
        if !self.anywhere.is_empty() {
            let compact: String = ws.concat();
            return self.anywhere.iter().any(|a| compact.contains(a.as_str()));
        }
        false
    }
}

/// Top-level domains recognised without a scheme or `www.` (`example.com`, not `e.g`).
const COMMON_TLDS: &[&str] = &[
    "com", "net", "org", "io", "gg", "tv", "co", "me", "xyz", "ru", "de", "uk", "info", "biz",
    "app", "dev", "ly", "be", "to", "cc", "us", "fr", "es", "it", "nl", "pl", "br", "in", "jp",
    "cn", "link", "site", "online", "top", "club", "shop", "live", "stream", "fm", "am", "sh",
    "ai", "gl", "tk", "ml", "ga", "cf", "gq", "su", "ua", "ca", "au", "eu", "ch", "se", "no",
];

/// The hosts of the links in `text` (lowercase, folded), in order.
pub fn find_links(text: &str) -> Vec<String> {
    let folded = fold_plain(text);
    let mut hosts = Vec::new();
    for token in folded.split_whitespace() {
        let t = token.trim_matches(|c: char| "()<>[]{}\"'`,;!?*".contains(c));
        let (explicit, rest) = match t.find("://") {
            Some(i) => (true, &t[i + 3..]),
            None => (t.starts_with("www."), t),
        };
        let rest = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let rest = rest.rsplit('@').next().unwrap_or_default();
        let host = rest
            .split(':')
            .next()
            .unwrap_or_default()
            .trim_end_matches('.');
        let labels: Vec<&str> = host.split('.').collect();
        let well_formed = labels.len() >= 2
            && labels
                .iter()
                .all(|l| !l.is_empty() && l.chars().all(|c| c.is_alphanumeric() || c == '-'));
        if !well_formed {
            continue;
        }
        let tld = labels.last().copied().unwrap_or_default();
        if explicit || COMMON_TLDS.contains(&tld) {
            hosts.push(host.to_string());
        }
    }
    hosts
}

/// Whether `host` is one of `allowed` or a subdomain of one.
pub fn host_allowed(host: &str, allowed: &[String]) -> bool {
    allowed.iter().any(|d| {
        let d = d.trim().trim_start_matches("*.").to_lowercase();
        !d.is_empty()
            && (host == d
                || host
                    .strip_suffix(d.as_str())
                    .is_some_and(|p| p.ends_with('.')))
    })
}

/// Whether `text` holds only emotes (`:name:`) and tokens without letters or digits
/// (emoji, symbols).
pub fn is_emote_only(text: &str) -> bool {
    text.split_whitespace().all(|t| {
        let is_emote = t.len() > 2
            && t.starts_with(':')
            && t.ends_with(':')
            && t[1..t.len() - 1]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_');
        is_emote || !t.chars().any(char::is_alphanumeric)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(p: &[&str]) -> WordFilter {
        WordFilter::new(&p.iter().map(|s| (*s).to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn words_match_through_disguises() {
        let f = filter(&["badword", "buy followers", "spam*", "*scam*"]);
        assert!(f.matches("you BADWORD"));
        assert!(f.matches("you ｂａｄｗｏｒｄ"));
        assert!(f.matches("you bаdwоrd"), "Cyrillic а and о");
        assert!(f.matches("b4dw0rd!"));
        assert!(f.matches("bad\u{200B}word"));
        assert!(f.matches("b a d w o r d"));
        assert!(f.matches("b.a.d.w.o.r.d"));
        assert!(f.matches("please BUY   followers now"));
        assert!(f.matches("spammer here"));
        assert!(f.matches("total s-c-a-m"));
        assert!(!f.matches("a good word"));
        assert!(!f.matches("badwords are words"), "whole words only");
        assert!(!f.matches("buy more followers"));
        assert!(!filter(&[]).matches("anything"));
        assert!(!filter(&["  ", "**"]).matches("anything"));
    }

    #[test]
    fn links_are_found() {
        assert_eq!(find_links("see https://Evil.example/x?y"), ["evil.example"]);
        assert_eq!(find_links("go to www.site.io now"), ["www.site.io"]);
        assert_eq!(find_links("(example.com)"), ["example.com"]);
        assert_eq!(find_links("ｅｖｉｌ．ｃｏｍ"), ["evil.com"]);
        assert_eq!(find_links("user:pw@host.com:80/p"), ["host.com"]);
        assert!(find_links("e.g. this, i.e. that. end.").is_empty());
        assert!(find_links("version 1.2.3 and 3.14").is_empty());
        assert!(find_links("hello.there friend").is_empty());
    }

    #[test]
    fn allow_list_covers_subdomains() {
        let allowed = vec!["example.com".to_string(), "*.clips.tv".to_string()];
        assert!(host_allowed("example.com", &allowed));
        assert!(host_allowed("www.example.com", &allowed));
        assert!(host_allowed("a.clips.tv", &allowed));
        assert!(!host_allowed("badexample.com", &allowed));
        assert!(!host_allowed("example.com.evil.io", &allowed));
    }

    #[test]
    fn emote_only() {
        assert!(is_emote_only(":wave: :heart:"));
        assert!(is_emote_only("👋 ❤️ :pog:"));
        assert!(!is_emote_only("hi :wave:"));
        assert!(!is_emote_only(":not an emote:"));
    }
}
