//! The studio page (web/studio.html) in headless Chromium against the real `weir serve`:
//! two guests open their invitation links, each in its own Chromium whose fake camera
//! plays a different colour (red, blue) and whose fake microphone a different tone, type a
//! name and join; the page publishes over WHIP. The host (over GraphQL) brings them on
//! stage: each page shows "on stage" from `studioEvents`; the program (read back over
//! LL-HLS with ffmpeg) shows red | blue in GRID, then blue in the middle in SPOTLIGHT
//! (the time it takes is printed); the red guest closes its page: red leaves the program,
//! blue stays, the program keeps running; `endBroadcast` shows as ended on blue's page.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use weir_e2e::browser::{require_browser_peer, web_dir};
use weir_e2e::graphql::{create_channel, gql_ok, register_and_login};
use weir_e2e::studio::{H, W, anywhere, frame, is_blue, is_red, mean, until_frame};
use weir_e2e::{KillOnDrop, Node, TempDir, require, wait_until};

const PASSWORD: &str = "correct horse battery staple";

/// Writes a short flat-`colour` y4m clip and a `tone` Hz wav (Chromium loops them).
fn media(dir: &Path, colour: &str, tone: u32) -> (PathBuf, PathBuf) {
    let (y4m, wav) = (
        dir.join(format!("{colour}.y4m")),
        dir.join(format!("{colour}.wav")),
    );
    let video = format!("color=c={colour}:size=320x180:rate=15");
    let audio = format!("sine=frequency={tone}:sample_rate=48000");
    for (input, out) in [(&video, &y4m), (&audio, &wav)] {
        let ok = Command::new("ffmpeg")
            .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-y"])
            .args(["-f", "lavfi", "-i", input, "-t", "2"])
            .args(if out == &y4m {
                ["-pix_fmt", "yuv420p"]
            } else {
                ["-ac", "1"]
            })
            .arg(out)
            .stdin(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "ffmpeg cannot write {}", out.display());
    }
    (y4m, wav)
}

/// One guest's Chromium (tests/web/studio.mjs), its state file and its close trigger.
struct Guest {
    _browser: KillOnDrop,
    state: PathBuf,
    close: PathBuf,
    log: PathBuf,
}

impl Guest {
    fn open(dir: &Path, url: &str, name: &str, colour: &str, tone: u32) -> Self {
        let (y4m, wav) = media(dir, colour, tone);
        let state = dir.join(format!("{colour}.state.json"));
        let close = dir.join(format!("{colour}.close"));
        let log = dir.join(format!("{colour}.log"));
        let child = Command::new("node")
            .arg(web_dir().join("studio.mjs"))
            .args(["--url", url, "--name", name, "--timeout", "300"])
            .arg("--video")
            .arg(&y4m)
            .arg("--audio")
            .arg(&wav)
            .arg("--state")
            .arg(&state)
            .arg("--close")
            .arg(&close)
            .current_dir(web_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("node");
        Self {
            _browser: KillOnDrop(child),
            state,
            close,
            log,
        }
    }

    /// The page's last window.weirStudio() (Null before the first).
    fn state(&self) -> Value {
        std::fs::read(&self.state)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(Value::Null)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait(&self, what: &str, within: Duration, check: impl Fn(&Value) -> bool) {
        assert!(
            wait_until(within, || check(&self.state())),
            "{what}: the page shows {}; its browser said:\n{}",
            self.state(),
            self.log()
        );
    }
}

fn host(api: u16, token: &str, query: &str, vars: Value) -> Value {
    gql_ok(api, Some(token), query, vars)
}

#[test]
fn studio_page_guests_join_publish_and_follow_the_stage() {
    require("ffmpeg");
    require_browser_peer(&["node_modules/playwright-core/package.json"]);
    let node = Node::start();
    assert!(
        node.wait_log("GraphQL API listening on", Duration::from_secs(20)),
        "no API"
    );
    let api = node.api_port;
    let owner = register_and_login(api, "pagehost", PASSWORD);
    let ht = owner.access_token.as_str();
    let ch = create_channel(api, ht, "studio-page");
    let d = host(
        api,
        ht,
        "mutation($c: ID!) { createStudioBroadcast(channelId: $c, input: { title: \"Page show\" }) { id programHlsPath } }",
        json!({ "c": ch }),
    );
    let b = d["createStudioBroadcast"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let program = node.http_url(
        d["createStudioBroadcast"]["programHlsPath"]
            .as_str()
            .expect("programHlsPath"),
    );

    // Two guests open their invitation links, one after the other (join order = tile order).
    let dir = TempDir::new("studio-page");
    let mut guests = Vec::new();
    for (name, colour, tone) in [("Red", "red", 440), ("Blue", "blue", 1000)] {
        let path = host(
            api,
            ht,
            "mutation($b: ID!) { inviteGuest(broadcastId: $b) { path } }",
            json!({ "b": b }),
        )["inviteGuest"]["path"]
            .as_str()
            .expect("path")
            .to_string();
        assert!(path.starts_with("/web/studio.html?invite="), "{path}");
        let url = node.http_url(&format!("{path}&api=http://127.0.0.1:{api}"));
        let g = Guest::open(&dir.0, &url, name, colour, tone);
        g.wait(
            &format!("{name} never published"),
            Duration::from_secs(90),
            |s| s["publish"] == "connected" && s["me"].is_string() && s["stage"] == "BACKSTAGE",
        );
        guests.push(g);
    }
    let ids: Vec<String> = guests
        .iter()
        .map(|g| g.state()["me"].as_str().expect("me").to_string())
        .collect();
    let names: Vec<Value> = guests[1].state()["broadcast"]["participants"]
        .as_array()
        .expect("participants")
        .iter()
        .map(|p| p["displayName"].clone())
        .collect();
    assert_eq!(names, [json!("Red"), json!("Blue")], "the names typed in");

    // On stage: each page learns it from studioEvents.
    for id in &ids {
        host(
            api,
            ht,
            "mutation($p: ID!) { bringOnStage(participantId: $p) { id } }",
            json!({ "p": id }),
        );
    }
    for g in &guests {
        g.wait(
            "the page never showed on stage",
            Duration::from_secs(20),
            |s| s["stage"] == "ON_STAGE",
        );
    }
    host(
        api,
        ht,
        "mutation($b: ID!) { setLayout(broadcastId: $b, layout: GRID, transitionMs: 0) { id } }",
        json!({ "b": b }),
    );
    let centres = |f: &[u8]| {
        (
            mean(f, 4, W / 2 - 4, H / 2 - 4, H / 2 + 4),
            mean(f, W / 2 + 4, W - 4, H / 2 - 4, H / 2 + 4),
        )
    };
    let grid = until_frame(&program, Duration::from_secs(60), |f| {
        let (l, r) = centres(f);
        is_red(l) && is_blue(r)
    });
    assert!(
        grid.is_some(),
        "the program never showed the browsers' red | blue; last centres: {:?}; log:\n{}",
        frame(&program).map(|f| centres(&f)),
        node.log()
    );

    // Spotlight on blue: measured from the mutation to the first frame showing it.
    let t = Instant::now();
    host(
        api,
        ht,
        "mutation($b: ID!, $p: ID!) { setLayout(broadcastId: $b, layout: SPOTLIGHT, spotlightParticipantId: $p, transitionMs: 0) { id } }",
        json!({ "b": b, "p": ids[1] }),
    );
    let spot = until_frame(&program, Duration::from_secs(20), |f| {
        is_blue(mean(f, W / 3, W / 2, H / 3, 2 * H / 3))
    });
    assert!(spot.is_some(), "the spotlight never showed blue");
    println!(
        "studio page: GRID → SPOTLIGHT visible in the program after {:?}",
        t.elapsed()
    );
    for g in &guests {
        g.wait(
            "the layout never reached the page",
            Duration::from_secs(10),
            |s| s["broadcast"]["layout"] == "SPOTLIGHT",
        );
    }

    // Red closes its page: red leaves the program, blue stays, the program keeps running.
    std::fs::write(&guests[0].close, b"").expect("close");
    guests[0].wait("red's page never closed", Duration::from_secs(20), |s| {
        s["closed"] == true
    });
    let t = Instant::now();
    let gone = until_frame(&program, Duration::from_secs(30), |f| {
        !anywhere(f, is_red) && anywhere(f, is_blue)
    });
    assert!(
        gone.is_some(),
        "red stayed in the program (or blue left) after red's page closed; log:\n{}",
        node.log()
    );
    println!(
        "studio page: a closed guest left the program after {:?}",
        t.elapsed()
    );

    // The end reaches the remaining page.
    host(
        api,
        ht,
        "mutation($b: ID!) { endBroadcast(broadcastId: $b) { status } }",
        json!({ "b": b }),
    );
    guests[1].wait(
        "the end never reached blue's page",
        Duration::from_secs(20),
        |s| {
            s["publish"] == "closed"
                && (s["broadcast"]["status"] == "ENDED" || s["stage"] == "LEFT")
        },
    );
    std::fs::write(&guests[1].close, b"").expect("close");
    guests[1].wait("blue's page never closed", Duration::from_secs(20), |s| {
        s["closed"] == true
    });
}
