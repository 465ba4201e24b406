//! Ordered shutdown: SIGTERM while periodic snapshots run under ingest load
//! exits 0, and the final snapshot holds every acknowledged record.

use std::time::Duration;

use super::process::{counts, ingest, start_ready, stop, temp_dir, terminate};

#[tokio::test]
async fn sigterm_during_periodic_snapshots_under_load_exits_cleanly() {
    let root = temp_dir("sigterm");
    let dir = root.join("data");
    let args = [
        "--snapshot-interval-secs",
        "1",
        "--shutdown-timeout-secs",
        "5",
    ];
    let mut expected = 0u64;
    for trial in 0..4u64 {
        let server = start_ready(&dir, &args).await;
        assert_eq!(
            counts(&server.base).await.get("load").copied().unwrap_or(0),
            expected
        );
        let base = server.base.clone();
        let load = tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut acked = 0u64;
            for i in 0.. {
                match ingest(&client, &base, "load", 3000, i).await {
                    Ok((200, n)) => acked += n,
                    _ => return acked,
                }
            }
            acked
        });
        // Just after a periodic snapshot has started (they tick every second
        // from the start), with batches arriving all along.
        tokio::time::sleep(Duration::from_millis(1000 + 30 * trial)).await;
        let exit = terminate(server).await;
        assert!(exit.success(), "trial {trial}: evald exited with {exit}");
        let acked = load.await.expect("load task");
        let again = start_ready(&dir, &args).await;
        let got = counts(&again.base).await.get("load").copied().unwrap_or(0);
        // Batches in flight at the signal are drained: acknowledged ones are all kept.
        assert!(
            got >= expected + acked,
            "trial {trial}: {got} < {expected} + {acked}"
        );
        expected = got;
        stop(again).await;
    }
    let _ = std::fs::remove_dir_all(&root);
}
