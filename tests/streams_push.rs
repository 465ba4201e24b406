//! `evald push`: the real binary streams a local file into a running server.

mod common;

use std::io::Write;
use std::process::Command;

use common::spawn_app;
use serde_json::Value;

fn temp_file(name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("evald-push-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write temp file");
    path
}

/// Runs `evald push` off the async runtime; returns (success, stdout, stderr).
async fn push(args: Vec<String>) -> (bool, String, String) {
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_evald"))
            .arg("push")
            .args(args)
            .output()
            .expect("run evald push")
    })
    .await
    .expect("join");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn push_streams_a_gzipped_csv_and_prints_the_metrics() {
    let app = spawn_app().await;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let _ = writeln!(gz, "user_id,prediction,label");
    for i in 0..300 {
        let _ = writeln!(
            gz,
            "u{},{},{}",
            i % 7,
            f64::from(i % 50) / 50.0,
            u8::from(i % 50 > 20 + i % 9)
        );
    }
    let path = temp_file("clicks.csv.gz", &gz.finish().unwrap_or_default());
    let (ok, stdout, stderr) = push(vec![
        path.display().to_string(),
        "--stream".into(),
        "pushed".into(),
        "--url".into(),
        app.url(""),
    ])
    .await;
    assert!(ok, "push failed: {stderr}");
    assert!(stdout.contains("\"accepted\": 300"), "{stdout}");
    assert!(stdout.contains("\"gauc\""), "{stdout}");
    assert!(
        stderr.contains("100.0%"),
        "no final progress line: {stderr}"
    );
    let stream: Value = app
        .get("/streams/pushed/metrics")
        .await
        .json()
        .await
        .unwrap_or_default();
    assert_eq!(stream["count"], 300);
    assert_eq!(stream["gauc"]["users"], 7);
    let _ = std::fs::remove_file(&path);
}

#[tokio::test]
async fn push_of_a_bad_ndjson_file_fails_with_the_servers_detail_and_applies_nothing() {
    let app = spawn_app().await;
    let path = temp_file(
        "bad.ndjson",
        b"{\"prediction\": 0.5, \"label\": 1}\n{\"prediction\": 0.5, \"label\": 7}\n",
    );
    let (ok, _, stderr) = push(vec![
        path.display().to_string(),
        "--stream".into(),
        "never".into(),
        "--url".into(),
        app.url(""),
        "--quiet".into(),
    ])
    .await;
    assert!(!ok, "a bad file was accepted");
    assert!(stderr.contains("line 2"), "{stderr}");
    assert_eq!(
        app.get("/streams/never/metrics").await.status().as_u16(),
        404
    );
}
