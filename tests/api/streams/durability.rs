//! Durability of the real binary: a restart keeps stream data, a periodic
//! snapshot appears on its own, and a corrupt snapshot is refused at start.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("evald-durability-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

struct Server {
    child: Child,
    base: String,
}

fn start(data_dir: &Path, port: u16, extra: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_evald"))
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--log-format",
            "json",
        ])
        .arg("--data-dir")
        .arg(data_dir)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn evald")
}

async fn start_ready(data_dir: &Path, extra: &[&str]) -> Server {
    let port = free_port();
    let mut child = start(data_dir, port, extra);
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if reqwest::get(format!("{base}/healthz"))
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return Server { child, base };
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("evald did not become healthy on port {port}");
}

/// SIGTERM, then wait for a clean exit (the final snapshot is written on the way out).
fn stop(mut server: Server) {
    let status = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    let exit = server.child.wait().expect("wait for evald");
    assert!(exit.success(), "evald exited with {exit}");
}

async fn streams(base: &str) -> Value {
    reqwest::get(format!("{base}/streams"))
        .await
        .expect("GET /streams")
        .json()
        .await
        .expect("JSON list")
}

#[tokio::test]
async fn a_restarted_server_keeps_its_streams() {
    let dir = temp_dir("restart");
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
    stop(server);

    let again = start_ready(&dir, &[]).await;
    let after = streams(&again.base).await;
    assert_eq!(after[0]["name"], "kept");
    assert_eq!(after[0]["count"], 500);
    assert_eq!(after[0]["users"], 17);
    assert_eq!(after, before);
    stop(again);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_corrupt_snapshot_stops_the_server_from_starting() {
    let dir = temp_dir("corrupt");
    std::fs::write(dir.join("streams.snap"), b"definitely not a snapshot").expect("write");
    let child = start(&dir, free_port(), &[]);
    let output = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("join")
        .expect("wait");
    assert!(
        !output.status.success(),
        "evald started on a corrupt snapshot"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("refusing to start"), "{stderr}");
    assert!(stderr.contains("not an evald snapshot"), "{stderr}");
    // the bad file is left where it was for the operator to inspect
    assert!(dir.join("streams.snap").exists());
    let _ = std::fs::remove_dir_all(&dir);
}
