//! The write-ahead log through the real binary: `kill -9` during ingest loses
//! no acknowledged record and applies none twice, a torn log tail is cut off,
//! a delete survives replay, and a failing log refuses changes.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::process::{
    counts, ingest, ingest_ok, kill9, metric, refused_start, segments, start_ready, stop, temp_dir,
    wait_for_status,
};

/// Records acknowledged (200) and records sent without an answer, per stream.
#[derive(Debug, Default)]
struct Ledger {
    acked: BTreeMap<String, u64>,
    unanswered: BTreeMap<String, u64>,
}

/// Clients posting batches to three streams until they fail (the kill).
fn spawn_clients(
    base: &str,
    ledger: &Arc<Mutex<Ledger>>,
    clients: usize,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..clients)
        .map(|c| {
            let (base, ledger) = (base.to_owned(), ledger.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                for i in 0.. {
                    let stream = format!("s{}", (c + i) % 3);
                    let n = 200 + (c * 131 + i * 37) % 800;
                    let answer = ingest(&client, &base, &stream, n, c * 1000 + i).await;
                    let mut l = ledger.lock().unwrap_or_else(|e| e.into_inner());
                    match answer {
                        Ok((200, accepted)) => {
                            assert_eq!(accepted, n as u64);
                            *l.acked.entry(stream).or_default() += accepted;
                        }
                        Ok((status, _)) => panic!("ingest answered {status} before the kill"),
                        Err(_) => {
                            *l.unanswered.entry(stream).or_default() += n as u64;
                            return;
                        }
                    }
                }
            })
        })
        .collect()
}

#[tokio::test]
async fn kill_9_during_ingest_loses_no_acknowledged_record() {
    let root = temp_dir("kill9");
    let dir = root.join("data");
    // Snapshots every second, so kills also land during snapshots and
    // between a snapshot and the truncation of the log it covers.
    let args = ["--snapshot-interval-secs", "1", "--fsync", "always"];
    let mut before: BTreeMap<String, u64> = BTreeMap::new();
    let trials = 5;
    let mut acked_total = 0;
    for trial in 0..trials {
        let server = start_ready(&dir, &args).await;
        assert_eq!(
            counts(&server.base).await,
            before,
            "trial {trial}: state at start"
        );
        let ledger = Arc::new(Mutex::new(Ledger::default()));
        let clients = spawn_clients(&server.base, &ledger, 4);
        tokio::time::sleep(Duration::from_millis(700 + 250 * trial)).await;
        kill9(server);
        for client in clients {
            client.await.expect("client task");
        }
        let ledger = std::mem::take(&mut *ledger.lock().unwrap_or_else(|e| e.into_inner()));
        let again = start_ready(&dir, &args).await;
        let after = counts(&again.base).await;
        for name in ["s0", "s1", "s2"] {
            let base = before.get(name).copied().unwrap_or(0);
            let acked = ledger.acked.get(name).copied().unwrap_or(0);
            let maybe = ledger.unanswered.get(name).copied().unwrap_or(0);
            let got = after.get(name).copied().unwrap_or(0);
            assert!(
                got >= base + acked,
                "trial {trial}: {name} lost acknowledged records: {got} < {base} + {acked}"
            );
            assert!(
                got <= base + acked + maybe,
                "trial {trial}: {name} has records applied twice: {got} > {base} + {acked} + {maybe}"
            );
            acked_total += acked;
        }
        before = after;
        kill9(again);
    }
    assert!(
        acked_total > 0,
        "no batch was acknowledged in {trials} trials"
    );
    let _ = std::fs::remove_dir_all(&root);
}

/// A data directory whose log alone holds two batches into "s" (300 and 200
/// records), left by `kill -9`; and its last log segment.
async fn two_logged_batches(tag: &str) -> (PathBuf, PathBuf, PathBuf) {
    let root = temp_dir(tag);
    let dir = root.join("data");
    let server = start_ready(&dir, &[]).await;
    ingest_ok(&server.base, "s", 300).await;
    ingest_ok(&server.base, "s", 200).await;
    kill9(server);
    let segment = segments(&dir).pop().expect("a log segment");
    (root, dir, segment)
}

#[tokio::test]
async fn a_torn_log_tail_is_cut_off_with_a_warning() {
    let (root, dir, segment) = two_logged_batches("torn").await;
    let good_len = std::fs::metadata(&segment).expect("stat").len();
    // A frame cut short by the crash: its marker, a length past the end, a few bytes.
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&segment)
        .expect("open segment");
    file.write_all(&0xE7A1_D0F5u32.to_le_bytes())
        .expect("append");
    file.write_all(&5000u32.to_le_bytes()).expect("append");
    file.write_all(&[7u8; 100]).expect("append");
    drop(file);

    let again = start_ready(&dir, &[]).await;
    assert_eq!(counts(&again.base).await.get("s"), Some(&500));
    let log = std::fs::read_to_string(&again.log).unwrap_or_default();
    assert!(log.contains("cutting off a torn log tail"), "{log}");
    assert_eq!(
        std::fs::metadata(&segment).map(|m| m.len()).ok(),
        Some(good_len)
    );
    // The log goes on in a new segment.
    ingest_ok(&again.base, "s", 1).await;
    kill9(again);
    let third = start_ready(&dir, &[]).await;
    assert_eq!(counts(&third.base).await.get("s"), Some(&501));
    stop(third).await;
    let _ = std::fs::remove_dir_all(&root);
}

#[tokio::test]
async fn a_corrupt_record_before_the_tail_is_refused() {
    let (root, dir, segment) = two_logged_batches("walcorrupt").await;
    let mut bytes = std::fs::read(&segment).expect("read segment");
    // a byte inside the first frame's payload (header 12 + frame header 12)
    bytes[40] ^= 0x20;
    std::fs::write(&segment, &bytes).expect("write segment");
    let stderr = refused_start(&dir).await;
    assert!(stderr.contains("refusing to start"), "{stderr}");
    assert!(stderr.contains("checksum mismatch"), "{stderr}");
    assert!(
        stderr.contains("acknowledged records are damaged"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&root);
}

#[tokio::test]
async fn a_deleted_stream_stays_deleted_after_a_crash() {
    let root = temp_dir("delete");
    let dir = root.join("data");
    let args = ["--snapshot-interval-secs", "1"];
    let server = start_ready(&dir, &args).await;
    ingest_ok(&server.base, "a", 100).await;
    ingest_ok(&server.base, "b", 50).await;
    ingest_ok(&server.base, "c", 20).await;
    // "a" and "b" are in a snapshot; their deletes and later batches only in the log.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while metric(&server.base, "evald_snapshots_written_total").await < Some(1.0) {
        assert!(std::time::Instant::now() < deadline, "no snapshot in 10 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let client = reqwest::Client::new();
    for name in ["a", "c"] {
        let gone = client
            .delete(format!("{}/streams/{name}", server.base))
            .send()
            .await
            .expect("DELETE");
        assert_eq!(gone.status().as_u16(), 204);
    }
    ingest_ok(&server.base, "a", 7).await;
    kill9(server);

    let again = start_ready(&dir, &args).await;
    let after = counts(&again.base).await;
    assert_eq!(after.get("a"), Some(&7), "{after:?}");
    assert_eq!(after.get("b"), Some(&50), "{after:?}");
    assert_eq!(after.get("c"), None, "{after:?}");
    kill9(again);
    let third = start_ready(&dir, &[]).await;
    assert_eq!(counts(&third.base).await, after);
    stop(third).await;
    let _ = std::fs::remove_dir_all(&root);
}

#[tokio::test]
async fn a_failing_log_refuses_changes_and_is_not_ready_until_a_snapshot() {
    let root = temp_dir("logfail");
    let dir = root.join("data");
    std::fs::create_dir_all(&dir).expect("create data dir");
    // A directory where the first log segment goes: not writable, even by root.
    let blocker = dir.join(format!("wal-{:020}.log", 1));
    std::fs::create_dir_all(&blocker).expect("create blocker");
    let server = start_ready(&dir, &["--snapshot-interval-secs", "1"]).await;
    let client = reqwest::Client::new();
    // The first batch was applied but could not be made durable: not acknowledged.
    let first = ingest(&client, &server.base, "s", 10, 1)
        .await
        .expect("ingest");
    assert_eq!(first.0, 500);
    // Later ones are refused before anything is applied.
    let refused = client
        .post(format!("{}/streams/s", server.base))
        .header("content-type", "application/x-ndjson")
        .body(super::process::ndjson(10, 2))
        .send()
        .await
        .expect("ingest");
    assert_eq!(refused.status().as_u16(), 503);
    let problem: serde_json::Value = refused.json().await.expect("problem");
    assert_eq!(problem["type"], "/problems/unavailable");
    assert!(problem["detail"]
        .as_str()
        .unwrap_or_default()
        .contains("nothing was applied"));
    let not_ready = wait_for_status(&server.base, "/readyz", 503, 5).await;
    let detail = not_ready.text().await.unwrap_or_default();
    assert!(detail.contains("write-ahead log"), "{detail}");
    assert!(metric(&server.base, "evald_wal_failures_total").await >= Some(1.0));
    // The next snapshot saves the state and retires the broken segment.
    wait_for_status(&server.base, "/readyz", 200, 10).await;
    ingest_ok(&server.base, "s", 5).await;
    kill9(server);
    let again = start_ready(&dir, &[]).await;
    assert_eq!(counts(&again.base).await.get("s"), Some(&15));
    stop(again).await;
    let _ = std::fs::remove_dir_all(&root);
}
