//! The real `evald` binary as a child process: start it on a data directory,
//! talk to it, stop it with SIGTERM or kill it with SIGKILL.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A fresh, empty directory for one test.
pub fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("evald-durability-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

pub struct Server {
    pub child: Child,
    pub base: String,
    /// Where the server's log lines (stdout) go.
    pub log: PathBuf,
}

/// Starts evald on `data_dir` and `port`; its logs go to `log` when given.
pub fn start(data_dir: &Path, port: u16, extra: &[&str], log: Option<&Path>) -> Child {
    let stdout = match log {
        Some(path) => Stdio::from(std::fs::File::create(path).expect("create log file")),
        None => Stdio::null(),
    };
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
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn evald")
}

/// Starts evald on `data_dir` expecting it to refuse to start: its stderr.
pub async fn refused_start(data_dir: &Path) -> String {
    let child = start(data_dir, free_port(), &[], None);
    let output = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("join")
        .expect("wait");
    assert!(
        !output.status.success(),
        "evald started on a damaged data directory"
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Starts evald and waits (at most 20 s) until `/healthz` answers.
pub async fn start_ready(data_dir: &Path, extra: &[&str]) -> Server {
    let log = data_dir.with_extension(format!("{}.log", free_port()));
    let port = free_port();
    let mut child = start(data_dir, port, extra, Some(&log));
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if reqwest::get(format!("{base}/healthz"))
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return Server { child, base, log };
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("evald exited with {status} before it was healthy");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("evald did not become healthy on port {port}");
}

/// Sends SIGTERM and waits (at most 30 s) for the exit status.
pub async fn terminate(mut server: Server) -> ExitStatus {
    let status = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(exit) = server.child.try_wait().expect("wait for evald") {
            return exit;
        }
        if Instant::now() > deadline {
            let _ = server.child.kill();
            panic!("evald did not exit within 30 s of SIGTERM");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// SIGTERM, then a clean exit (the final snapshot is written on the way out).
pub async fn stop(server: Server) {
    let exit = terminate(server).await;
    assert!(exit.success(), "evald exited with {exit}");
}

/// SIGKILL: no final snapshot, no flush; only what is on disk survives.
pub fn kill9(mut server: Server) {
    server.child.kill().expect("SIGKILL evald");
    let _ = server.child.wait();
}

/// `GET /streams`.
pub async fn streams(base: &str) -> Value {
    reqwest::get(format!("{base}/streams"))
        .await
        .expect("GET /streams")
        .json()
        .await
        .expect("JSON list")
}

/// Record count of each stream, by name.
pub async fn counts(base: &str) -> std::collections::BTreeMap<String, u64> {
    let list = streams(base).await;
    list.as_array()
        .expect("a list")
        .iter()
        .map(|s| {
            let name = s["name"].as_str().expect("name").to_owned();
            (name, s["count"].as_u64().expect("count"))
        })
        .collect()
}

/// `n` NDJSON records (users `u0`..`u16`, scores spread by `seed`).
pub fn ndjson(n: usize, seed: usize) -> String {
    (0..n)
        .map(|i| {
            let k = i * 7919 + seed * 104_729;
            format!(
                "{{\"prediction\": {}, \"label\": {}, \"user_id\": \"u{}\"}}\n",
                (k % 1000) as f64 / 1000.0,
                k % 3 % 2,
                k % 17
            )
        })
        .collect()
}

/// POSTs `n` records to stream `name`; the response status and, on 200, the
/// `accepted` count.
pub async fn ingest(
    client: &reqwest::Client,
    base: &str,
    name: &str,
    n: usize,
    seed: usize,
) -> Result<(u16, u64), reqwest::Error> {
    let response = client
        .post(format!("{base}/streams/{name}"))
        .header("content-type", "application/x-ndjson")
        .body(ndjson(n, seed))
        .send()
        .await?;
    let status = response.status().as_u16();
    let accepted = if status == 200 {
        let body: Value = response.json().await?;
        body["accepted"].as_u64().unwrap_or(0)
    } else {
        0
    };
    Ok((status, accepted))
}

/// Ingests `n` records and asserts the 200.
pub async fn ingest_ok(base: &str, name: &str, n: usize) {
    let answer = ingest(&reqwest::Client::new(), base, name, n, 1).await;
    assert_eq!(answer.ok(), Some((200, n as u64)), "ingest into {name}");
}

/// Polls `GET path` until its status is `want` (at most `secs` seconds).
pub async fn wait_for_status(base: &str, path: &str, want: u16, secs: u64) -> reqwest::Response {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let response = reqwest::get(format!("{base}{path}")).await.expect("GET");
        if response.status().as_u16() == want {
            return response;
        }
        assert!(
            Instant::now() < deadline,
            "{path} did not answer {want} within {secs} s (last: {})",
            response.status()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The value of Prometheus series `name` in `/internal/metrics`.
pub async fn metric(base: &str, name: &str) -> Option<f64> {
    let text = reqwest::get(format!("{base}/internal/metrics"))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// The write-ahead log segments in `data_dir`, by name.
pub fn segments(data_dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(data_dir)
        .expect("read data dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("wal-") && n.ends_with(".log"))
        })
        .collect();
    out.sort();
    out
}
