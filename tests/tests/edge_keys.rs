//! Keys that an edge cannot mint: a data-plane node holds the control plane's public key
//! (and its node token), checks keys with it, and nothing it holds signs a key that it or
//! any other node accepts.

use std::time::Duration;

use weir_e2e::cluster::{ControlPlane, DataPlane, Secrets};
use weir_e2e::etcd::Etcd;
use weir_e2e::graphql::{create_channel, issue_stream_key, register_and_login};
use weir_e2e::{TempDir, ffmpeg_publish, output, wait_until, weir_command};

const PASSWORD: &str = "correct horse battery";

/// Runs `weir key issue <channel>` with `env`, as an attacker holding it would.
fn mint(channel: &str, env: &[(&str, String)]) -> (bool, String, String) {
    let dir = TempDir::new("mint");
    let mut cmd = weir_command();
    cmd.args(["key", "issue", channel, "--data-dir"])
        .arg(dir.0.join("data"))
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    output(&mut cmd)
}

fn key_line(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("Stream key:"))
        .map(|k| k.trim().to_owned())
        .unwrap_or_else(|| panic!("no key printed: {stdout}"))
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn a_data_plane_node_checks_keys_but_cannot_mint_them() {
    let etcd = Etcd::start();
    let secrets = Secrets::generate();
    let cp = ControlPlane::start(&[etcd.url()], &secrets, &[]);
    let mut cp = cp;
    let dp = DataPlane::start(&cp.url(), "edge-keys", &secrets, &[]);
    let closed = DataPlane::start(
        &cp.url(),
        "edge-closed",
        &secrets,
        &["--unreachable-keys", "closed"],
    );
    let api = cp.api_port;
    let owner = register_and_login(api, "victim", PASSWORD);
    let ch = create_channel(api, &owner.access_token, "victim-show");
    let (_, good) = issue_stream_key(api, &owner.access_token, &ch);

    // With the node's own environment, `weir key issue` refuses: it has no secret.
    let (ok, out, err) = mint("victim-show", &secrets.data_plane_env());
    assert!(!ok, "a data-plane node minted a key: {out}");
    assert!(
        err.contains("only the public key"),
        "unclear refusal: {err}"
    );

    // Keys signed with what the node holds (its public key, its node token) as the secret
    // are well formed but refused by the node.
    for material in [secrets.stream_key_public.clone(), hex(&secrets.node_token)] {
        let (ok, out, err) = mint("victim-show", &[("WEIR_STREAM_KEY_SECRET", material)]);
        assert!(ok, "weir key issue failed: {err}");
        let forged = key_line(&out);
        let (published, _, _) = output(&mut ffmpeg_publish(&dp.rtmp_url(&forged), 2));
        assert!(
            !published,
            "a key minted from the node's material published"
        );
    }
    assert!(
        dp.proc
            .log()
            .contains("stream key signature does not match"),
        "the node did not say why it refused the forged keys:\n{}",
        dp.proc.log()
    );

    // The control plane's key publishes through the same node.
    assert!(
        publishes(&dp, &good),
        "the control plane's key did not publish:\n{}",
        dp.proc.log()
    );
    assert!(
        !dp.proc
            .log()
            .contains("holds the stream key signing secret"),
        "the node was given the secret"
    );

    // Control plane gone: the default node fails open (signed key publishes), the node
    // configured `closed` refuses with a reason.
    cp.proc.kill();
    let (refused_ok, _, _) = output(&mut ffmpeg_publish(&closed.rtmp_url(&good), 2));
    assert!(
        !refused_ok,
        "a fail-closed node published without its control plane"
    );
    assert!(
        closed.proc.log().contains("unreachable_keys = closed"),
        "{}",
        closed.proc.log()
    );
    assert!(
        publishes(&dp, &good),
        "a fail-open node refused a signed key without its control plane:\n{}",
        dp.proc.log()
    );
    assert!(
        dp.proc.log().contains("key accepted by its signature"),
        "{}",
        dp.proc.log()
    );
}

/// Publishes with `key` until the node logs the start (20 s), then stops.
fn publishes(dp: &DataPlane, key: &str) -> bool {
    let before = dp
        .proc
        .log()
        .matches("publishing started channel=victim-show")
        .count();
    let mut child = ffmpeg_publish(&dp.rtmp_url(key), 6)
        .spawn()
        .expect("ffmpeg");
    let started = wait_until(Duration::from_secs(20), || {
        dp.proc
            .log()
            .matches("publishing started channel=victim-show")
            .count()
            > before
    });
    let _ = child.kill();
    let _ = child.wait();
    started
}
