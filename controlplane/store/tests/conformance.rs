//! Runs the conformance suite against each backend. The etcd run starts a real `etcd`
//! (Debian package `etcd-server`) on a free loopback port with a temporary data directory.

use std::net::TcpListener;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use weir_store::Kv as _;
use weir_store::{EmbeddedKv, EtcdKv, MemoryKv, Role, SecretBox, Store, conformance};

#[tokio::test]
async fn memory_backend() {
    let store = Store::new(Arc::new(MemoryKv::new()), SecretBox::generate());
    conformance::run(&store).await;
}

#[tokio::test]
async fn embedded_backend_and_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = SecretBox::generate();
    let user_id;
    let dest_id;
    {
        let store = Store::new(
            Arc::new(EmbeddedKv::open(dir.path()).expect("open")),
            key.clone(),
        );
        conformance::run(&store).await;
        let u = store
            .create_user("persisted", "p@example.com", "h", Role::Owner)
            .await
            .expect("user");
        let ch = store
            .create_channel(&u.id, "persisted-ch", "t", "")
            .await
            .expect("ch");
        let d = store
            .create_destination(&ch.id, "d", "rtmp", "rtmp://x/y", "sekrit")
            .await
            .expect("dest");
        user_id = u.id;
        dest_id = d.id;
    }
    // Expired entries are deleted from the file, not only hidden.
    {
        let kv = EmbeddedKv::open(dir.path()).expect("open");
        kv.put("purge", "short", b"x", Some(Duration::from_millis(50)))
            .await
            .expect("put");
        kv.put("purge", "long", b"y", None).await.expect("put");
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(kv.purge_expired().await.expect("purge") >= 1);
        assert_eq!(
            kv.purge_expired().await.expect("purge"),
            0,
            "nothing left to purge"
        );
        assert!(kv.get("purge", "long").await.expect("get").is_some());
    }
    // Reopen: everything is still there, and the sealed key still opens.
    let store = Store::new(Arc::new(EmbeddedKv::open(dir.path()).expect("reopen")), key);
    let u = store
        .get_user(&user_id)
        .await
        .expect("get")
        .expect("user survives");
    assert_eq!(u.username, "persisted");
    let d = store
        .get_destination(&dest_id)
        .await
        .expect("get")
        .expect("dest survives");
    assert_eq!(store.destination_stream_key(&d).expect("open"), "sekrit");
    assert!(
        store
            .channel_by_slug("persisted-ch")
            .await
            .expect("slug")
            .is_some()
    );
}

struct EtcdProcess {
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl Drop for EtcdProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

fn start_etcd() -> (EtcdProcess, String) {
    let found = std::process::Command::new("etcd")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "the `etcd` binary is not installed: run the project's setup (`cargo xtask setup --test`, \
         which installs the Debian package etcd-server) and try again"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let (client, peer) = (free_port(), free_port());
    let client_url = format!("http://127.0.0.1:{client}");
    let peer_url = format!("http://127.0.0.1:{peer}");
    let child = std::process::Command::new("etcd")
        .args(["--name", "weir-test", "--data-dir"])
        .arg(dir.path())
        .args(["--listen-client-urls", &client_url])
        .args(["--advertise-client-urls", &client_url])
        .args(["--listen-peer-urls", &peer_url])
        .args(["--initial-advertise-peer-urls", &peer_url])
        .args(["--initial-cluster", &format!("weir-test={peer_url}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn etcd");
    (EtcdProcess { child, _dir: dir }, client_url)
}

#[tokio::test]
async fn etcd_backend() {
    let (_etcd, url) = start_etcd();
    let mut kv = None;
    for _ in 0..50 {
        if let Ok(k) = EtcdKv::connect(std::slice::from_ref(&url), "/weir-test").await
            && k.list("probe").await.is_ok()
        {
            kv = Some(k);
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let kv = kv.expect("etcd did not come up within 10 s");
    let store = Store::new(Arc::new(kv), SecretBox::generate());
    conformance::run(&store).await;
}

/// Heartbeats and viewer counts of a node reuse its lease (kept alive by each write)
/// instead of granting one per write; TTL writes without an owner share expiry slots.
#[tokio::test]
async fn etcd_reuses_leases() {
    let (_etcd, url) = start_etcd();
    let mut admin = None;
    for _ in 0..50 {
        if let Ok(mut c) = etcd_client::Client::connect([url.as_str()], None).await
            && c.leases().await.is_ok()
        {
            admin = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut admin = admin.expect("etcd did not come up within 10 s");
    let kv = Arc::new(
        EtcdKv::connect(std::slice::from_ref(&url), "/weir-lease")
            .await
            .expect("connect"),
    );
    let store = Store::new(kv.clone(), SecretBox::generate());
    let node = weir_store::Node {
        id: "edge-1".into(),
        address: "10.0.0.1:8080".into(),
        shards: 2,
        version: "t".into(),
        load: weir_store::NodeLoad::default(),
        last_seen: 0,
        studio_url: None,
    };
    let before = admin.leases().await.expect("leases").leases().len();
    for i in 0..20u64 {
        store
            .register_node(node.clone(), Duration::from_secs(10))
            .await
            .expect("heartbeat");
        for ch in ["ch-a", "ch-b"] {
            store
                .set_viewer_count(ch, "edge-1", i, Duration::from_secs(30))
                .await
                .expect("viewers");
        }
    }
    for i in 0..20 {
        let t = weir_store::RefreshToken {
            token_hash: format!("tok{i}"),
            user_id: "u".into(),
            family_id: "f".into(),
            expires_at: weir_store::ids::now_ms() + 86_400_000,
            used: false,
            created_at: 0,
        };
        store.put_refresh_token(&t).await.expect("token");
    }
    let after = admin.leases().await.expect("leases").leases().len();
    // One lease for the registration, one for the viewer counts, one or two expiry slots
    // for the tokens (a slot boundary may fall inside the loop): 60 + 20 writes before.
    assert!(
        after - before <= 4,
        "{} leases for 80 TTL writes",
        after - before
    );
    assert_eq!(kv.cached_leases().0, 2);
    assert!(store.get_node("edge-1").await.expect("get").is_some());
    assert_eq!(store.viewer_count("ch-a").await.expect("count"), 19);
}

/// Runs only when `WEIR_SCYLLA_NODES` names a cluster (e.g. `127.0.0.1:9042`) and the crate
/// is built with `--features scylla`.
#[cfg(feature = "scylla")]
#[tokio::test]
async fn scylla_backend() {
    let Ok(nodes) = std::env::var("WEIR_SCYLLA_NODES") else {
        eprintln!("WEIR_SCYLLA_NODES not set: skipping the Scylla conformance run");
        return;
    };
    let nodes: Vec<String> = nodes.split(',').map(str::to_string).collect();
    let kv = weir_store::ScyllaKv::connect(&nodes, "weir_test", 1)
        .await
        .expect("connect to Scylla");
    let store = Store::new(Arc::new(kv), SecretBox::generate());
    conformance::run(&store).await;
}
