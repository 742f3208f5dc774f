use super::*;

fn user(id: &str) -> UserRef {
    UserRef {
        id: id.into(),
        name: format!("{id}-name"),
    }
}

fn limits() -> Limits {
    Limits::new(
        Rate {
            burst: 100,
            per_second: 100.0,
        },
        Rate {
            burst: 100,
            per_second: 100.0,
        },
        1000,
    )
}

fn room(settings: Settings) -> Room {
    Room::new(
        "ch",
        RoomConfig::default(),
        settings,
        (Vec::new(), 0),
        Vec::new(),
    )
}

/// Stores the pending batch the way the local fan-out does; returns it with ids.
fn commit(r: &mut Room) -> Vec<ChatMessage> {
    let mut batch = r.take_pending();
    r.assign_ids(&mut batch);
    let msgs: Vec<ChatMessage> = batch.into_iter().map(|p| p.msg).collect();
    r.committed(&msgs);
    msgs
}

fn author(u: &UserRef) -> Author<'_> {
    Author {
        conn: 7,
        user: u,
        ip: "1.2.3.4",
        moderator: false,
        subscriber: false,
        followed_at: None,
    }
}

fn code(r: Result<ChatMessage, Refusal>) -> Code {
    match r {
        Ok(m) => panic!("accepted {m:?}"),
        Err(e) => e.code,
    }
}

#[test]
fn ids_are_monotonic_and_pending_until_committed() {
    let mut r = room(Settings::default());
    let mut l = limits();
    let u = user("u");
    let a = r.submit(1000, &author(&u), " hello ", None, Some("n".into()), &mut l);
    assert_eq!(a.expect("a").id, 0, "no id before the fan-out gives one");
    assert_eq!(r.pending_len(), 1);
    let p = r.take_pending();
    assert_eq!((p[0].conn, p[0].nonce.as_deref()), (7, Some("n")));
    r.restore_pending(p);
    let a = commit(&mut r);
    assert_eq!((a[0].id, a[0].text.as_str(), a[0].ts), (1, "hello", 1000));
    let b = r.submit(1001, &author(&u), "world", Some(1), None, &mut l);
    assert_eq!(b.expect("b").reply_to, Some(1));
    let c = r.submit(1002, &author(&u), "more", None, None, &mut l);
    assert!(c.is_ok());
    let bc = commit(&mut r);
    assert_eq!(bc.iter().map(|m| m.id).collect::<Vec<_>>(), [2, 3]);
    assert_eq!(r.last_committed_id(), 3);
    assert_eq!(r.recent_after(1).map(|v| v.len()), Some(2));
    // Ids from a shared sequencer move the counter; a replayed message is not doubled.
    r.observe(10);
    assert_eq!(r.last_id(), 10);
    r.committed(&bc);
    assert_eq!(r.recent().count(), 3);
    // Resuming from stored state continues the ids.
    let r2 = Room::new(
        "ch",
        RoomConfig::default(),
        Settings::default(),
        (bc, 3),
        Vec::new(),
    );
    assert_eq!(r2.last_id(), 3);
    let r3 = Room::new(
        "ch",
        RoomConfig::default(),
        Settings::default(),
        (Vec::new(), 7),
        Vec::new(),
    );
    assert_eq!(r3.last_id(), 7, "deleted messages keep their ids");
}

#[test]
fn ring_is_bounded_and_resume_falls_back_to_the_store() {
    let cfg = RoomConfig {
        history_len: 3,
        ..RoomConfig::default()
    };
    let mut r = Room::new("ch", cfg, Settings::default(), (Vec::new(), 0), Vec::new());
    let mut l = limits();
    let u = user("u");
    for i in 0..5 {
        r.submit(
            i * 100_000,
            &author(&u),
            &format!("m{i}"),
            None,
            None,
            &mut l,
        )
        .expect("accepted");
    }
    commit(&mut r);
    assert_eq!(r.recent().map(|m| m.id).collect::<Vec<_>>(), [3, 4, 5]);
    assert_eq!(r.recent_after(2).map(|v| v.len()), Some(3));
    assert_eq!(r.recent_after(1), None, "message 2 is only in the store");
    assert_eq!(r.recent_after(5).map(|v| v.len()), Some(0));
}

#[test]
fn text_checks() {
    let mut r = room(Settings::default());
    let mut l = limits();
    let u = user("u");
    assert_eq!(
        code(r.submit(0, &author(&u), "   ", None, None, &mut l)),
        Code::Empty
    );
    let long = "é".repeat(501);
    assert_eq!(
        code(r.submit(0, &author(&u), &long, None, None, &mut l)),
        Code::TooLong
    );
    assert!(
        r.submit(0, &author(&u), &"é".repeat(500), None, None, &mut l)
            .is_ok()
    );
    assert_eq!(
        code(r.submit(0, &author(&u), "a\nb", None, None, &mut l)),
        Code::InvalidText
    );
    assert_eq!(
        code(r.submit(0, &author(&u), "x", Some(99), None, &mut l)),
        Code::BadReply
    );
}

#[test]
fn rate_limits_per_user_and_per_ip() {
    let mut r = room(Settings::default());
    let rate = Rate {
        burst: 2,
        per_second: 1.0,
    };
    let mut l = Limits::new(
        rate,
        Rate {
            burst: 3,
            per_second: 1.0,
        },
        100,
    );
    let (u, v, w) = (user("u"), user("v"), user("w"));
    assert!(r.submit(0, &author(&u), "1", None, None, &mut l).is_ok());
    assert!(r.submit(0, &author(&u), "2", None, None, &mut l).is_ok());
    let e = r
        .submit(0, &author(&u), "3", None, None, &mut l)
        .expect_err("limited");
    assert_eq!((e.code, e.retry_after_ms), (Code::RateLimited, Some(1000)));
    assert!(
        r.submit(1000, &author(&u), "3", None, None, &mut l).is_ok(),
        "refilled"
    );
    // Same address, other users: the per-IP bucket (3, one refilled) runs out.
    assert!(r.submit(1000, &author(&v), "a", None, None, &mut l).is_ok());
    assert_eq!(
        code(r.submit(1000, &author(&w), "b", None, None, &mut l)),
        Code::RateLimited
    );
    let other_ip = Author {
        ip: "5.6.7.8",
        ..author(&w)
    };
    assert!(r.submit(1000, &other_ip, "b", None, None, &mut l).is_ok());
}

#[test]
fn slow_mode_applies_to_users_not_moderators() {
    let mut r = room(Settings {
        slow_mode_s: 10,
        ..Settings::default()
    });
    let mut l = limits();
    let (u, m) = (user("u"), user("m"));
    assert!(r.submit(0, &author(&u), "one", None, None, &mut l).is_ok());
    let e = r
        .submit(4000, &author(&u), "two", None, None, &mut l)
        .expect_err("slow");
    assert_eq!((e.code, e.retry_after_ms), (Code::SlowMode, Some(6000)));
    assert!(
        r.submit(10_000, &author(&u), "two", None, None, &mut l)
            .is_ok()
    );
    let moder = Author {
        moderator: true,
        ..author(&m)
    };
    assert!(r.submit(10_000, &moder, "a", None, None, &mut l).is_ok());
    assert!(r.submit(10_001, &moder, "b", None, None, &mut l).is_ok());
}

#[test]
fn repeats_are_refused_within_the_window() {
    let mut r = room(Settings::default());
    let mut l = limits();
    let u = user("u");
    assert!(
        r.submit(0, &author(&u), "buy my stuff", None, None, &mut l)
            .is_ok()
    );
    assert_eq!(
        code(r.submit(1000, &author(&u), "BUY  my ｓｔｕｆｆ", None, None, &mut l)),
        Code::Duplicate
    );
    assert!(
        r.submit(
            1000,
            &author(&user("v")),
            "buy my stuff",
            None,
            None,
            &mut l
        )
        .is_ok()
    );
    assert!(
        r.submit(31_000, &author(&u), "buy my stuff", None, None, &mut l)
            .is_ok()
    );
}

#[test]
fn banned_words_links_emotes_subscribers() {
    let mut r = room(Settings {
        banned_words: vec!["badword".into()],
        allowed_domains: vec!["weir.example".into()],
        ..Settings::default()
    });
    let mut l = limits();
    let u = user("u");
    assert_eq!(
        code(r.submit(0, &author(&u), "you b4dwоrd", None, None, &mut l)),
        Code::BannedWord
    );
    assert_eq!(
        code(r.submit(0, &author(&u), "see evil.com/x", None, None, &mut l)),
        Code::LinkBlocked
    );
    assert!(
        r.submit(
            0,
            &author(&u),
            "see https://clips.weir.example/1",
            None,
            None,
            &mut l
        )
        .is_ok()
    );
    let mut s = r.settings().clone();
    s.emote_only = true;
    s.subscribers_only = true;
    r.set_settings(s);
    assert_eq!(
        code(r.submit(0, &author(&u), ":wave:", None, None, &mut l)),
        Code::SubscribersOnly
    );
    let sub = Author {
        subscriber: true,
        ..author(&u)
    };
    assert_eq!(
        code(r.submit(0, &sub, "hello", None, None, &mut l)),
        Code::EmoteOnly
    );
    assert!(r.submit(0, &sub, ":wave: 👋", None, None, &mut l).is_ok());
}

#[test]
fn followers_only_asks_for_a_follow_of_the_set_age() {
    let mut r = room(Settings {
        followers_only: true,
        follow_age_min: 10,
        ..Settings::default()
    });
    let mut l = limits();
    let u = user("u");
    let e = r
        .submit(0, &author(&u), "hi", None, None, &mut l)
        .expect_err("not following");
    assert_eq!((e.code, e.retry_after_ms), (Code::FollowersOnly, None));
    // Followed 4 minutes ago: 6 more to wait.
    let now = 3_600_000;
    let young = Author {
        followed_at: Some(now - 4 * 60_000),
        ..author(&u)
    };
    let e = r
        .submit(now, &young, "hi", None, None, &mut l)
        .expect_err("too young");
    assert_eq!(
        (e.code, e.retry_after_ms),
        (Code::FollowersOnly, Some(6 * 60_000))
    );
    let old = Author {
        followed_at: Some(now - 10 * 60_000),
        ..author(&u)
    };
    assert!(r.submit(now, &old, "hi", None, None, &mut l).is_ok());
    // Subscribers and moderators need no follow.
    for exempt in [
        Author {
            subscriber: true,
            ..author(&u)
        },
        Author {
            moderator: true,
            ..author(&u)
        },
    ] {
        let text = format!("exempt {}", exempt.moderator);
        assert!(r.submit(now, &exempt, &text, None, None, &mut l).is_ok());
    }
    // Age 0: any follower at once.
    let mut s = r.settings().clone();
    s.follow_age_min = 0;
    r.set_settings(s);
    let just = Author {
        followed_at: Some(now),
        ..author(&u)
    };
    assert!(
        r.submit(now, &just, "just followed", None, None, &mut l)
            .is_ok()
    );
    assert!(
        Settings {
            follow_age_min: 90 * 24 * 60 + 1,
            ..Settings::default()
        }
        .validate()
        .is_err()
    );
}

#[test]
fn bans_timeouts_unbans_deletes() {
    let mut r = room(Settings::default());
    let mut l = limits();
    let (u, m) = (user("u"), user("m"));
    r.submit(0, &author(&u), "hi", None, None, &mut l)
        .expect("ok");
    let msg = commit(&mut r).remove(0);
    r.ban(Ban {
        user: u.clone(),
        until: Some(60_000),
        reason: None,
        by: m.clone(),
        at: 0,
    });
    let e = r
        .submit(1000, &author(&u), "again", None, None, &mut l)
        .expect_err("timed out");
    assert_eq!((e.code, e.retry_after_ms), (Code::TimedOut, Some(59_000)));
    assert!(
        r.submit(60_000, &author(&u), "free", None, None, &mut l)
            .is_ok(),
        "expired"
    );
    r.ban(Ban {
        user: u.clone(),
        until: None,
        reason: Some("spam".into()),
        by: m.clone(),
        at: 0,
    });
    assert_eq!(
        code(r.submit(70_000, &author(&u), "x", None, None, &mut l)),
        Code::Banned
    );
    assert!(r.unban("u", 70_000));
    assert!(!r.unban("u", 70_000));
    assert!(
        r.submit(70_000, &author(&u), "back", None, None, &mut l)
            .is_ok()
    );
    assert!(r.delete(msg.id));
    assert!(!r.delete(msg.id));
    assert_eq!(r.recent().count(), 0);
    assert_eq!(r.take_pending().len(), 2);
}

#[test]
fn bans_resume_from_storage() {
    let u = user("u");
    let r = Room::new(
        "ch",
        RoomConfig::default(),
        Settings::default(),
        (Vec::new(), 0),
        vec![Ban {
            user: u.clone(),
            until: None,
            reason: None,
            by: user("m"),
            at: 0,
        }],
    );
    assert!(r.ban_of("u", 0).is_some());
}

#[test]
fn pending_is_bounded() {
    let cfg = RoomConfig {
        max_pending: 2,
        ..RoomConfig::default()
    };
    let mut r = Room::new("ch", cfg, Settings::default(), (Vec::new(), 0), Vec::new());
    let mut l = limits();
    let u = user("u");
    assert!(r.submit(0, &author(&u), "a", None, None, &mut l).is_ok());
    assert!(r.submit(0, &author(&u), "b", None, None, &mut l).is_ok());
    assert_eq!(
        code(r.submit(0, &author(&u), "c", None, None, &mut l)),
        Code::Unavailable
    );
    let b = r.take_pending();
    r.restore_pending(b);
    assert_eq!(r.pending_len(), 2);
}
