//! The Redis store itself (library level): exact merges against the
//! aggregate code run directly, batch ids, and a batch interrupted halfway.

use std::collections::BTreeMap;
use std::time::Duration;

use evald::core::metrics::GaucWeighting;
use evald::state::redis::{RedisOptions, RedisStore};
use evald::state::{
    BatchBuilder, Budgets, GaucSums, Record, ScoreAggregate, StagedBatch, TenantLimits,
};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config as PropConfig, TestRunner};

use super::{cluster_url, fresh_prefix, standalone_url};

fn budgets() -> Budgets {
    Budgets {
        max_streams: 100,
        max_users_per_stream: 10_000,
        max_scores_per_user: 10_000,
        max_scores_per_stream: 100_000,
        memory_budget: 1 << 30,
    }
}

async fn store(url: String, test: &str, buckets: u32) -> RedisStore {
    let options = RedisOptions {
        urls: url,
        prefix: fresh_prefix(test),
        buckets,
        batch_ttl: Duration::from_secs(600),
        max_inflight: 8,
    };
    match RedisStore::connect(options, budgets(), TenantLimits::default()).await {
        Ok(s) => s,
        Err(e) => panic!("could not connect to Redis: {e}"),
    }
}

/// (user, score, label, weight)
type Row = (String, f64, bool, f64);

fn stage(rows: &[Row]) -> StagedBatch {
    let mut b = BatchBuilder::new();
    for (user, score, positive, weight) in rows {
        let r = Record {
            score: *score,
            positive: *positive,
            weight: *weight,
        };
        assert!(b.push(Some(user), r).is_ok(), "staging {user} {score}");
    }
    b.finish()
}

/// The aggregates of `rows` computed in one go: global and per user.
fn expected(rows: &[Row]) -> (ScoreAggregate, BTreeMap<String, ScoreAggregate>) {
    let rec = |r: &Row| Record {
        score: r.1,
        positive: r.2,
        weight: r.3,
    };
    let mut all: Vec<Record> = rows.iter().map(rec).collect();
    let mut users: BTreeMap<String, Vec<Record>> = BTreeMap::new();
    for r in rows {
        users.entry(r.0.clone()).or_default().push(rec(r));
    }
    (
        ScoreAggregate::from_records(&mut all),
        users
            .into_iter()
            .map(|(u, mut rs)| (u, ScoreAggregate::from_records(&mut rs)))
            .collect(),
    )
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1.0)
}

/// Same counts and bins, weights to 1e-12 (real weights summed in another
/// order differ in the last bit).
fn assert_agg_close(got: &ScoreAggregate, want: &ScoreAggregate, what: &str) {
    assert_eq!(got.counts(), want.counts(), "{what}: counts");
    let (g, w) = (got.bins(), want.bins());
    assert_eq!(g.len(), w.len(), "{what}: bins");
    for (a, b) in g.iter().zip(&w) {
        let same = a.lo == b.lo && a.hi == b.hi && close(a.pos, b.pos) && close(a.neg, b.neg);
        assert!(same, "{what}: {a:?} vs {b:?}");
    }
}

/// Checks stream `name` in `store` against the one-shot aggregates of `rows`.
async fn check_stream(store: &RedisStore, name: &str, rows: &[Row]) {
    let (global, users) = expected(rows);
    let view = match store.read_stream(name).await {
        Ok(v) => v,
        Err(e) => panic!("reading {name}: {e}"),
    };
    assert_agg_close(
        &view.global,
        &global,
        &format!("global aggregate of {name}"),
    );
    assert_eq!(view.info.count, rows.len() as u64);
    assert_eq!(view.info.users, users.len());
    for (user, agg) in &users {
        match store.read_user(name, user).await {
            Ok(Some(got)) => assert_agg_close(&got, agg, &format!("user {user}")),
            other => panic!("user {user}: {other:?}"),
        }
    }
    for w in GaucWeighting::ALL {
        let (mut sw, mut swa) = (0.0, 0.0);
        for agg in users.values() {
            let (p, n) = agg.weight_totals();
            if let (Some(auc), true) = (agg.auc(), p > 0.0 && n > 0.0) {
                sw += w.user_weight(p, n);
                swa += w.user_weight(p, n) * auc;
            }
        }
        let total = GaucSums::total(&view.gauc);
        let sums = total.weighted(w);
        assert!(close(sums.weight, sw), "{w:?} Σw {} vs {sw}", sums.weight);
        assert!(
            close(sums.weighted_auc, swa),
            "{w:?} Σw·a {} vs {swa}",
            sums.weighted_auc
        );
    }
}

fn rows_strategy() -> impl Strategy<Value = (Vec<Row>, Vec<usize>)> {
    let row = (
        0u8..12,
        0u16..40,
        any::<bool>(),
        prop_oneof![Just(1.0), Just(0.0), 0.1f64..3.0],
    )
        .prop_map(|(u, s, l, w)| (format!("u{u}"), f64::from(s) / 40.0, l, w));
    (
        proptest::collection::vec(row, 1..120),
        proptest::collection::vec(1usize..40, 1..8),
    )
}

/// Random records in random batches equal the one-shot aggregates, on `url`.
async fn random_batches_equal_one_shot(url: String, test: &str) {
    let store = store(url, test, 8).await;
    // Cases drawn up front (the checks are async, proptest's runner is not).
    let mut runner = TestRunner::new(PropConfig::default());
    let strategy = rows_strategy();
    let cases: Vec<(Vec<Row>, Vec<usize>)> = (0..24)
        .map(|_| match strategy.new_tree(&mut runner) {
            Ok(tree) => tree.current(),
            Err(e) => panic!("drawing a case: {e}"),
        })
        .collect();
    for (i, (rows, cuts)) in cases.into_iter().enumerate() {
        let name = format!("s{i}");
        let mut at = 0;
        for cut in cuts.iter().cycle() {
            if at >= rows.len() {
                break;
            }
            let end = (at + cut).min(rows.len());
            let r = store.ingest(&name, stage(&rows[at..end]), None, 1).await;
            assert!(r.is_ok(), "ingest: {r:?}");
            at = end;
        }
        check_stream(&store, &name, &rows).await;
    }
}

#[tokio::test]
#[ignore = "needs Redis: run scripts/ci-redis"]
async fn random_batches_equal_one_shot_on_standalone_redis() {
    random_batches_equal_one_shot(standalone_url(), "oneshot-standalone").await;
}

#[tokio::test]
#[ignore = "needs Redis: run scripts/ci-redis"]
async fn random_batches_equal_one_shot_on_a_redis_cluster() {
    random_batches_equal_one_shot(cluster_url(), "oneshot-cluster").await;
}

fn sample_rows(n: usize, offset: usize) -> Vec<Row> {
    (0..n)
        .map(|i| {
            let k = i + offset;
            (
                format!("user{}", k % 23),
                (k % 17) as f64 / 17.0,
                k % 3 == 0,
                1.0,
            )
        })
        .collect()
}

#[tokio::test]
#[ignore = "needs Redis: run scripts/ci-redis"]
async fn the_same_batch_id_twice_is_counted_once_with_the_first_answer() {
    let store = store(cluster_url(), "idem", 8).await;
    let rows = sample_rows(50, 0);
    let first = store.ingest("s", stage(&rows), Some("key-1"), 1).await;
    let again = store.ingest("s", stage(&rows), Some("key-1"), 2).await;
    assert!(first.is_ok(), "{first:?}");
    assert_eq!(first, again);
    check_stream(&store, "s", &rows).await;
}

#[tokio::test]
#[ignore = "needs Redis: run scripts/ci-redis"]
async fn a_batch_interrupted_halfway_then_retried_is_counted_once() {
    let store = store(cluster_url(), "interrupted", 8).await;
    let before = sample_rows(40, 0);
    assert!(store.ingest("s", stage(&before), None, 1).await.is_ok());
    let rows = sample_rows(60, 7);
    let cut = store
        .ingest_interrupted("s", stage(&rows), "key-2", 3, 2)
        .await;
    assert!(cut.is_ok(), "{cut:?}");
    let retried = store.ingest("s", stage(&rows), Some("key-2"), 3).await;
    let Ok(summary) = retried else {
        panic!("retry failed: {retried:?}")
    };
    assert_eq!(summary.count, 100);
    let all: Vec<Row> = before.into_iter().chain(rows).collect();
    check_stream(&store, "s", &all).await;
    assert_eq!(
        store
            .list()
            .await
            .map(|l| l.iter().map(|i| (i.count, i.users)).collect::<Vec<_>>()),
        Ok(vec![(100, 23)])
    );
}

#[tokio::test]
#[ignore = "needs Redis: run scripts/ci-redis"]
async fn concurrent_writers_to_one_stream_lose_nothing() {
    let store = std::sync::Arc::new(store(cluster_url(), "concurrent", 4).await);
    let batches: Vec<Vec<Row>> = (0..12).map(|i| sample_rows(30, i * 30)).collect();
    let mut tasks = tokio::task::JoinSet::new();
    for rows in batches.clone() {
        let s = store.clone();
        tasks.spawn(async move { s.ingest("s", stage(&rows), None, 1).await.is_ok() });
    }
    while let Some(ok) = tasks.join_next().await {
        assert_eq!(ok.ok(), Some(true));
    }
    let all: Vec<Row> = batches.into_iter().flatten().collect();
    check_stream(&store, "s", &all).await;
}

#[tokio::test]
#[ignore = "needs Redis: run scripts/ci-redis"]
async fn delete_forgets_a_stream_and_a_new_one_starts_empty() {
    let store = store(standalone_url(), "delete", 4).await;
    let rows = sample_rows(20, 0);
    assert!(store.ingest("s", stage(&rows), None, 1).await.is_ok());
    assert_eq!(store.delete("s").await, Ok(true));
    assert_eq!(store.delete("s").await, Ok(false));
    assert!(store.read_stream("s").await.is_err());
    let more = sample_rows(5, 3);
    assert!(store.ingest("s", stage(&more), None, 2).await.is_ok());
    check_stream(&store, "s", &more).await;
    assert_eq!(
        store.purge_idle(10_000, 1_000).await,
        Ok(vec!["s".to_owned()])
    );
    assert_eq!(store.list().await, Ok(vec![]));
}
