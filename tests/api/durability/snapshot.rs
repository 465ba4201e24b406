//! Snapshots of the real binary: a restart keeps stream data, a periodic
//! snapshot appears on its own, a corrupt snapshot is refused at start, and
//! a snapshot that cannot be written makes the server not ready.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::process::{
    counts, ingest_ok, metric, refused_start, start_ready, stop, streams, temp_dir, wait_for_status,
};

#[tokio::test]
async fn a_restarted_server_keeps_its_streams() {
    let root = temp_dir("restart");
    let dir = root.join("data");
    let server = start_ready(&dir, &["--snapshot-interval-secs", "1"]).await;
    let body: String = (0..500)
        .map(|i| {
            format!(
                "{{\"prediction\": {}, \"label\": {}, \"user_id\": \"u{}\"}}\n",
                f64::from(i) / 500.0,
                i % 3 % 2,
                i % 17
            )
        })
        .collect();
    let resp = reqwest::Client::new()
        .post(format!("{}/streams/kept", server.base))
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .await
        .expect("ingest");
    assert_eq!(resp.status().as_u16(), 200);
    // The periodic snapshot appears without any shutdown.
    let snap = dir.join("streams.snap");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !snap.exists() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(snap.exists(), "no periodic snapshot after 10 s");
    let before = streams(&server.base).await;
    stop(server).await;

    let again = start_ready(&dir, &[]).await;
    let after = streams(&again.base).await;
    assert_eq!(after[0]["name"], "kept");
    assert_eq!(after[0]["count"], 500);
    assert_eq!(after[0]["users"], 17);
    assert_eq!(after, before);
    stop(again).await;
    let _ = std::fs::remove_dir_all(&root);
}

#[tokio::test]
async fn a_corrupt_snapshot_stops_the_server_from_starting() {
    let dir = temp_dir("corrupt");
    std::fs::write(dir.join("streams.snap"), b"definitely not a snapshot").expect("write");
    let stderr = refused_start(&dir).await;
    assert!(stderr.contains("refusing to start"), "{stderr}");
    assert!(stderr.contains("not an evald snapshot"), "{stderr}");
    // the bad file is left where it was for the operator to inspect
    assert!(dir.join("streams.snap").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_failing_snapshot_makes_the_server_not_ready_until_one_succeeds() {
    let root = temp_dir("snapfail");
    let dir = root.join("data");
    let server = start_ready(&dir, &["--snapshot-interval-secs", "1"]).await;
    wait_for_status(&server.base, "/readyz", 200, 5).await;
    // A directory where the temporary snapshot file goes: not writable, even by root.
    let blocker = dir.join("streams.snap.tmp");
    std::fs::create_dir_all(&blocker).expect("create blocker");
    ingest_ok(&server.base, "s", 100).await;
    let not_ready = wait_for_status(&server.base, "/readyz", 503, 10).await;
    let problem: Value = not_ready.json().await.expect("problem body");
    assert_eq!(problem["type"], "/problems/unavailable");
    let detail = problem["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("the last snapshot failed"), "{detail}");
    assert_eq!(
        metric(&server.base, "evald_data_dir_ready").await,
        Some(0.0)
    );
    assert!(metric(&server.base, "evald_snapshot_failures_total").await >= Some(1.0));
    // Ingest is still served and logged: no acknowledged record depends on the snapshot.
    ingest_ok(&server.base, "s", 5).await;
    std::fs::remove_dir(&blocker).expect("remove blocker");
    wait_for_status(&server.base, "/readyz", 200, 10).await;
    assert_eq!(
        metric(&server.base, "evald_data_dir_ready").await,
        Some(1.0)
    );
    stop(server).await;
    let again = start_ready(&dir, &[]).await;
    assert_eq!(counts(&again.base).await.get("s"), Some(&105));
    stop(again).await;
    let _ = std::fs::remove_dir_all(&root);
}

#[tokio::test]
async fn periodic_snapshots_are_skipped_when_nothing_changed() {
    let root = temp_dir("snapskip");
    let dir = root.join("data");
    let server = start_ready(&dir, &["--snapshot-interval-secs", "1"]).await;
    ingest_ok(&server.base, "s", 10).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(&server.base, "evald_snapshots_skipped_total").await < Some(2.0) {
        assert!(Instant::now() < deadline, "no skipped snapshot in 10 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        metric(&server.base, "evald_snapshots_written_total").await,
        Some(1.0)
    );
    stop(server).await;
    let _ = std::fs::remove_dir_all(&root);
}
