//! The backend contract's part of the conformance suite: the `Kv` calls every backend
//! implements (values, TTLs, CAS, batches over several buckets, ordered ranges).

use std::time::Duration;

use super::uniq;
use crate::store::Store;

/// `put_many` and `list_range` (chat history pages): bounds are exclusive, a nested
/// bucket and a longer bucket name are not part of the bucket.
pub(super) async fn batches_and_ranges(store: &Store) {
    let kv = store.kv();
    let b = format!("conf-{}", uniq("r"));
    let rows: Vec<(String, Vec<u8>)> = (1..=9u8).map(|i| (format!("k{i}"), vec![i])).collect();
    kv.put_many(&b, &rows).await.unwrap();
    // Several buckets at once (one transaction where the backend batches buckets).
    let (b1, b2) = (format!("{b}-m1"), format!("{b}-m2"));
    kv.put_many_buckets(&[
        (b1.clone(), vec![("a".into(), b"1".to_vec())]),
        (
            b2.clone(),
            vec![("a".into(), b"2".to_vec()), ("b".into(), b"3".to_vec())],
        ),
    ])
    .await
    .unwrap();
    assert_eq!(kv.get(&b1, "a").await.unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(kv.list(&b2).await.unwrap().len(), 2);
    // More entries than one etcd transaction takes, over several buckets.
    let many: Vec<_> = (0..3)
        .map(|n| {
            let rows: Vec<(String, Vec<u8>)> =
                (0..90).map(|i| (format!("k{i:03}"), vec![n])).collect();
            (format!("{b}-big{n}"), rows)
        })
        .collect();
    kv.put_many_buckets(&many).await.unwrap();
    for (bucket, _) in &many {
        assert_eq!(kv.list(bucket).await.unwrap().len(), 90, "{bucket}");
    }
    kv.put(&format!("{b}/nested"), "k5", b"x", None)
        .await
        .unwrap();
    kv.put(&format!("{b}x"), "k0", b"x", None).await.unwrap();
    let keys = |v: Vec<(String, Vec<u8>)>| v.into_iter().map(|(k, _)| k).collect::<Vec<_>>();
    assert_eq!(kv.list(&b).await.unwrap().len(), 9);
    assert_eq!(
        keys(kv.list_range(&b, None, None, 3, true).await.unwrap()),
        ["k7", "k8", "k9"]
    );
    assert_eq!(
        keys(kv.list_range(&b, None, None, 2, false).await.unwrap()),
        ["k1", "k2"]
    );
    assert_eq!(
        keys(
            kv.list_range(&b, Some("k3"), Some("k7"), 10, false)
                .await
                .unwrap()
        ),
        ["k4", "k5", "k6"]
    );
    assert_eq!(
        keys(kv.list_range(&b, None, Some("k4"), 2, true).await.unwrap()),
        ["k2", "k3"]
    );
    assert_eq!(
        keys(kv.list_range(&b, Some("k8"), None, 5, false).await.unwrap()),
        ["k9"]
    );
    assert!(
        kv.list_range(&b, Some("k5"), Some("k5"), 5, false)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        kv.list_range(&b, None, None, 0, true)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(kv.get(&b, "k4").await.unwrap(), Some(vec![4]));
}

pub(super) async fn contract(store: &Store) {
    let kv = store.kv();
    let b = format!("conf-{}", uniq("b"));
    let nested = format!("{b}/nested");
    assert_eq!(kv.get(&b, "a").await.unwrap(), None);
    kv.put(&b, "b", b"2", None).await.unwrap();
    kv.put(&b, "a", b"1", None).await.unwrap();
    kv.put(&nested, "z", b"x", None).await.unwrap();
    kv.put(&format!("{b}x"), "q", b"x", None).await.unwrap();
    assert_eq!(kv.get(&b, "a").await.unwrap().as_deref(), Some(&b"1"[..]));
    let listed = kv.list(&b).await.unwrap();
    assert_eq!(
        listed,
        vec![
            ("a".to_string(), b"1".to_vec()),
            ("b".to_string(), b"2".to_vec())
        ],
        "list is sorted and holds only the bucket's own keys"
    );
    // CAS: absent → value, value → value, value → delete; mismatches change nothing.
    assert!(kv.cas(&b, "c", None, Some(b"1")).await.unwrap());
    assert!(!kv.cas(&b, "c", None, Some(b"2")).await.unwrap());
    assert!(!kv.cas(&b, "c", Some(b"9"), Some(b"2")).await.unwrap());
    assert!(kv.cas(&b, "c", Some(b"1"), Some(b"2")).await.unwrap());
    assert_eq!(kv.get(&b, "c").await.unwrap().as_deref(), Some(&b"2"[..]));
    assert!(kv.cas(&b, "c", Some(b"2"), None).await.unwrap());
    assert_eq!(kv.get(&b, "c").await.unwrap(), None);
    assert!(kv.delete(&b, "a").await.unwrap());
    assert!(!kv.delete(&b, "a").await.unwrap());
    assert!(
        kv.get(&b, "bad/key").await.is_err(),
        "keys with '/' are refused"
    );
    // TTL.
    kv.put(&b, "t", b"1", Some(Duration::from_secs(1)))
        .await
        .unwrap();
    assert!(kv.get(&b, "t").await.unwrap().is_some());
    let mut gone = false;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if kv.get(&b, "t").await.unwrap().is_none() {
            gone = true;
            break;
        }
    }
    assert!(gone, "a TTL entry must expire");
    assert!(kv.list(&b).await.unwrap().iter().all(|(k, _)| k != "t"));
}
