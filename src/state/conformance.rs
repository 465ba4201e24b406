//! What every [`StreamStore`] must do, as one async check per behaviour, so
//! each store's tests run the same checks (`conformance::all(&store)`) and
//! the stores cannot drift apart. Each check uses its own stream names
//! (prefixed `conformance-`) and leaves them deleted.

use super::gauc::GaucSums;
use super::store::{BatchId, StoreError, StreamStore};
use super::users::{UserOrder, UserPager};
use super::{BatchBuilder, Record, StagedBatch};
use crate::core::metrics::GaucWeighting;

/// A batch of `n` records over users `u0`..`u4` (scores cycling through
/// ten values, every third record positive).
pub fn batch(n: u32) -> StagedBatch {
    let mut b = BatchBuilder::new();
    for i in 0..n {
        let r = Record {
            score: f64::from(i * 7 % 10) / 10.0,
            positive: i % 3 == 0,
            weight: 1.0,
        };
        let user = format!("u{}", i % 5);
        assert!(b.push(Some(&user), r).is_ok());
    }
    b.finish()
}

fn ok<T>(result: Result<T, StoreError>, what: &str) -> T {
    result.unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// Runs every check.
pub async fn all(store: &dyn StreamStore) {
    reads_agree_with_what_was_applied(store).await;
    a_client_batch_id_is_applied_once(store).await;
    gauc_sums_equal_the_sums_over_the_users(store).await;
    pages_visit_every_user_once(store).await;
    delete_and_purge_remove_streams(store).await;
}

/// `info`, `stream`, `user`, `list` and `gauges` agree with the batches.
pub async fn reads_agree_with_what_was_applied(store: &dyn StreamStore) {
    let name = "conformance-reads";
    let first = ok(
        store
            .apply(name, batch(12), &BatchId::generated(), 1_000)
            .await,
        "apply",
    );
    assert_eq!((first.accepted, first.count, first.users), (12, 12, 5));
    let second = ok(
        store
            .apply(name, batch(8), &BatchId::generated(), 2_000)
            .await,
        "apply",
    );
    assert_eq!((second.accepted, second.count, second.users), (8, 20, 5));
    let info = ok(store.info(name).await, "info");
    assert_eq!((info.count, info.users, info.exact), (20, 5, true));
    assert_eq!((info.created_at_ms, info.updated_at_ms), (1_000, 2_000));
    let read = ok(store.stream(name, false).await, "stream");
    assert_eq!(read.info, info);
    assert_eq!(read.global.counts().count, 20);
    assert!(read.gauc.is_empty(), "GAUC sums only when asked");
    let u0 = ok(store.user(name, "u0").await, "user");
    assert_eq!(u0.map(|a| a.counts().count), Some(5));
    assert_eq!(ok(store.user(name, "nobody").await, "user"), None);
    assert!(matches!(
        store.user("conformance-missing", "u0").await,
        Err(StoreError::UnknownStream(_))
    ));
    assert!(ok(store.list().await, "list")
        .iter()
        .any(|s| s.name == name && s.count == 20));
    let gauges = ok(store.gauges().await, "gauges");
    assert!(gauges.streams >= 1 && gauges.records >= 20, "{gauges:?}");
    assert!(ok(store.delete(name).await, "delete"));
}

/// A repeated client id is answered with the first answer and not applied;
/// generated ids and other keys are applied.
pub async fn a_client_batch_id_is_applied_once(store: &dyn StreamStore) {
    let name = "conformance-retries";
    let key = BatchId::from_client("retry-1");
    let first = ok(store.apply(name, batch(6), &key, 1).await, "apply");
    ok(
        store
            .apply(name, batch(3), &BatchId::from_client("other"), 2)
            .await,
        "apply",
    );
    let repeat = ok(store.apply(name, batch(6), &key, 3).await, "apply");
    assert_eq!(
        (repeat.accepted, repeat.count, repeat.users),
        (first.accepted, first.count, first.users)
    );
    ok(
        store.apply(name, batch(6), &BatchId::generated(), 4).await,
        "apply",
    );
    assert_eq!(ok(store.info(name).await, "info").count, 15);
    assert!(ok(store.delete(name).await, "delete"));
}

/// The per-bucket GAUC sums add up to the sums over the users' aggregates.
pub async fn gauc_sums_equal_the_sums_over_the_users(store: &dyn StreamStore) {
    let name = "conformance-gauc";
    ok(
        store.apply(name, batch(40), &BatchId::generated(), 1).await,
        "apply",
    );
    ok(
        store.apply(name, batch(17), &BatchId::generated(), 2).await,
        "apply",
    );
    let read = ok(store.stream(name, true).await, "stream");
    let total = GaucSums::total(&read.gauc);
    let mut users = Vec::new();
    for i in 0..5 {
        let agg = ok(store.user(name, &format!("u{i}")).await, "user");
        users.push(agg.unwrap_or_else(|| panic!("user u{i} missing")));
    }
    let want = GaucSums::of_users(&users);
    assert_eq!((total.users, total.skipped), (want.users, want.skipped));
    for w in GaucWeighting::ALL {
        let (got, exp) = (total.finish(w), want.finish(w));
        match (got.gauc.value, exp.gauc.value) {
            (Some(a), Some(b)) => assert!((a - b).abs() <= 1e-12, "{w:?}: {a} vs {b}"),
            other => assert_eq!(other.0, other.1, "{w:?}"),
        }
    }
    assert!(ok(store.delete(name).await, "delete"));
}

/// Paging with each order visits every user once.
pub async fn pages_visit_every_user_once(store: &dyn StreamStore) {
    let name = "conformance-users";
    ok(
        store.apply(name, batch(23), &BatchId::generated(), 1).await,
        "apply",
    );
    for order in UserOrder::ALL {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let pager =
                UserPager::new(order, 2, cursor.as_deref()).unwrap_or_else(|e| panic!("{e}"));
            let page = ok(store.users(name, pager).await, "users");
            seen.extend(page.users.into_iter().map(|u| u.user_id));
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        seen.sort();
        assert_eq!(seen, ["u0", "u1", "u2", "u3", "u4"], "{order:?}");
    }
    assert!(ok(store.delete(name).await, "delete"));
}

/// `delete` says whether the stream existed; `purge_idle` removes only
/// streams idle past the TTL.
pub async fn delete_and_purge_remove_streams(store: &dyn StreamStore) {
    let (old, new) = ("conformance-old", "conformance-new");
    ok(
        store
            .apply(old, batch(3), &BatchId::generated(), 1_000)
            .await,
        "apply",
    );
    ok(
        store
            .apply(new, batch(3), &BatchId::generated(), 9_000)
            .await,
        "apply",
    );
    let purged = ok(store.purge_idle(10_000, 5_000).await, "purge");
    assert!(purged.iter().any(|n| n == old), "{purged:?}");
    assert!(!purged.iter().any(|n| n == new), "{purged:?}");
    assert!(matches!(
        store.info(old).await,
        Err(StoreError::UnknownStream(_))
    ));
    assert!(ok(store.delete(new).await, "delete"));
    assert!(!ok(store.delete(new).await, "delete"));
}
