//! Connection hygiene and the access log: slowloris under a low file limit,
//! the header-read and keep-alive timeouts, load shedding, the answers hyper
//! writes below the router, and one access-log line per request.
//!
//! The slowloris and access-log tests run the real binary (a file limit of
//! its own, its stdout captured); the others the in-process app.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::helpers::{assert_problem, spawn_app_with, NDJSON};

/// A request head cut before its final blank line: the server waits for more.
const HALF_HEAD: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: 1\r\n";

/// The real binary, its stdout lines, and the address it listens on.
struct ChildServer {
    child: Child,
    addr: SocketAddr,
    lines: mpsc::UnboundedReceiver<String>,
}

impl ChildServer {
    /// Starts `evald --listen 127.0.0.1:0 ARGS` through `sh` with the open-file
    /// limit `nofile`, and waits (bounded) for its "listening" line.
    async fn start(nofile: u32, args: &[&str]) -> ChildServer {
        let script = format!("ulimit -n {nofile} && exec \"$0\" \"$@\"");
        let mut child = Command::new("sh")
            .args(["-c", &script, env!("CARGO_BIN_EXE_evald")])
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn evald");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut server = ChildServer {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            lines,
        };
        let listening = server
            .next_line_with("evald listening", Duration::from_secs(20))
            .await;
        server.addr = listening
            .split(|c: char| c.is_whitespace() || c == '"' || c == '=')
            .find_map(|word| word.parse().ok())
            .unwrap_or_else(|| panic!("no address in {listening}"));
        server
    }

    /// The next stdout line containing `fragment`, waiting at most `within`.
    async fn next_line_with(&mut self, fragment: &str, within: Duration) -> String {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.lines.recv()).await {
                Ok(Some(line)) if line.contains(fragment) => return line,
                Ok(Some(_)) => continue,
                Ok(None) => panic!("evald's stdout closed before a line with {fragment:?}"),
                Err(_) => panic!("no line with {fragment:?} within {within:?}"),
            }
        }
    }

    fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends `request` on a new connection and returns what the server writes
/// before it closes the connection or `within` passes.
async fn exchange(addr: SocketAddr, request: &[u8], within: Duration) -> String {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        stream.write_all(request).await.expect("send request");
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer).await;
        String::from_utf8_lossy(&answer).into_owned()
    };
    tokio::time::timeout(within, exchange)
        .await
        .unwrap_or_else(|_| panic!("no complete answer within {within:?}"))
}

/// `GET /healthz` on a new connection; the time to the status line, which
/// must be 200.
async fn time_healthz(addr: SocketAddr) -> Duration {
    let start = Instant::now();
    let answer = exchange(
        addr,
        b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
        Duration::from_secs(10),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    start.elapsed()
}

/// The soft open-file limit of this process (Linux procfs).
fn own_open_file_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Raises this process's soft open-file limit to `wanted` when it is lower
/// (with util-linux `prlimit`; the hard limit still applies), so the test
/// can hold its slow connections without starving the tests beside it.
fn raise_own_open_file_limit(wanted: u64) {
    if own_open_file_limit().is_some_and(|soft| soft >= wanted) {
        return;
    }
    let pid = std::process::id().to_string();
    let _ = Command::new("prlimit")
        .args(["--pid", &pid, &format!("--nofile={wanted}:")])
        .status();
}

/// Opens `count` connections at once that each send half a request head and
/// stall; returns the open ones and how many failed to connect.
async fn open_slow_connections(addr: SocketAddr, count: usize) -> (Vec<TcpStream>, usize) {
    let mut attempts = tokio::task::JoinSet::new();
    for _ in 0..count {
        attempts.spawn(async move {
            let connect = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(addr));
            let mut stream = connect.await.ok()?.ok()?;
            stream.write_all(HALF_HEAD).await.ok()?;
            Some(stream)
        });
    }
    let mut open = Vec::new();
    let mut failed = 0;
    while let Some(attempt) = attempts.join_next().await {
        match attempt.ok().flatten() {
            Some(stream) => open.push(stream),
            None => failed += 1,
        }
    }
    (open, failed)
}

#[tokio::test]
async fn healthz_answers_within_100_ms_under_2000_slowloris_connections_and_512_files() {
    const SLOW: usize = 2_000;
    const FILE_LIMIT: u32 = 512;
    raise_own_open_file_limit(SLOW as u64 + 1_024);
    // A header-read timeout far beyond the test: only eviction makes room.
    let mut server = ChildServer::start(
        FILE_LIMIT,
        &["--log-format", "json", "--header-read-timeout-ms", "600000"],
    )
    .await;
    let test = async {
        let opening = Instant::now();
        let (slow, failed) = open_slow_connections(server.addr, SLOW).await;
        eprintln!("opening took {:?}", opening.elapsed());
        eprintln!("slowloris: {} connected, {failed} failed", slow.len());
        assert!(
            slow.len() > FILE_LIMIT as usize,
            "only {} of {SLOW} slow connections opened ({failed} failed): the test needs more \
             than the server's {FILE_LIMIT} files (raise this process's open-file limit)",
            slow.len()
        );
        // The first probe right after the burst, then a few more.
        let mut timings = Vec::new();
        for _ in 0..6 {
            timings.push(time_healthz(server.addr).await);
        }
        eprintln!("healthz under slowloris: {timings:?}");
        for elapsed in &timings {
            assert!(*elapsed < Duration::from_millis(100), "{timings:?}");
        }
        slow
    };
    let slow = tokio::time::timeout(Duration::from_secs(60), test)
        .await
        .expect("slowloris test took over 60 s");
    assert!(server.is_running(), "evald exited under slowloris");
    drop(slow);
}

#[tokio::test]
async fn the_header_read_timeout_closes_a_stalled_connection() {
    let app = spawn_app_with(|c| c.header_read_timeout_ms = 200).await;
    let start = Instant::now();
    let answer = exchange(app.addr, HALF_HEAD, Duration::from_secs(10)).await;
    let elapsed = start.elapsed();
    assert_eq!(answer, "", "a stalled head gets no answer, only a close");
    assert!(
        elapsed >= Duration::from_millis(190),
        "closed after {elapsed:?}"
    );
    // A complete request on time is still served.
    assert!(time_healthz(app.addr).await < Duration::from_secs(5));
}

#[tokio::test]
async fn the_keep_alive_timeout_closes_an_idle_connection() {
    let app = spawn_app_with(|c| c.keep_alive_timeout_secs = 1).await;
    let test = async {
        let mut stream = TcpStream::connect(app.addr).await.expect("connect");
        let request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
        stream.write_all(request).await.expect("send");
        // Keep-alive: the connection stays open after the answer, then closes.
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        let mut answered_at = None;
        while let Ok(n @ 1..) = stream.read(&mut buf).await {
            answered_at.get_or_insert_with(Instant::now);
            answer.extend_from_slice(&buf[..n]);
        }
        let answer = String::from_utf8_lossy(&answer).into_owned();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert_eq!(answer.matches("HTTP/1.1").count(), 1, "{answer}");
        answered_at.map(|at| at.elapsed()).unwrap_or_default()
    };
    let idle = tokio::time::timeout(Duration::from_secs(10), test)
        .await
        .expect("idle connection not closed within 10 s");
    assert!(idle >= Duration::from_millis(900), "closed after {idle:?}");
}

#[tokio::test]
async fn over_the_concurrency_limit_a_request_is_shed_with_503_and_retry_after() {
    let app = spawn_app_with(|c| c.max_concurrent_requests = 1).await;
    // One ingest whose body never ends holds the only permit.
    let (feed, body) = mpsc::channel::<Result<String, std::io::Error>>(1);
    let stream = futures_util::stream::unfold(body, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let held = app
        .client
        .post(app.url("/streams/held"))
        .header("content-type", NDJSON)
        .body(reqwest::Body::wrap_stream(stream))
        .send();
    let held = tokio::spawn(held);
    feed.send(Ok("{\"prediction\": 0.5, \"label\": 1}\n".into()))
        .await
        .expect("feed the held request");
    let metrics = json!({"predictions": [0.1, 0.9], "labels": [0, 1]});
    let deadline = Instant::now() + Duration::from_secs(10);
    let shed = loop {
        let response = app.post_metrics(&metrics).await;
        if response.status() == 503 {
            break response;
        }
        assert!(
            Instant::now() < deadline,
            "no 503 while a request holds the only permit"
        );
    };
    let retry_after = shed.headers().get("retry-after").cloned();
    assert_eq!(
        retry_after.as_ref().and_then(|v| v.to_str().ok()),
        Some("1")
    );
    let body = assert_problem(shed, 503).await;
    assert_eq!(body["limit"], "max_concurrent_requests", "{body}");
    assert!(body["detail"]
        .as_str()
        .unwrap_or("")
        .contains("--max-concurrent-requests"));
    // Probes are never shed.
    assert_eq!(app.get("/healthz").await.status(), 200);
    // The held request ends; its permit serves the next request.
    drop(feed);
    let held = tokio::time::timeout(Duration::from_secs(10), held)
        .await
        .expect("held request did not finish")
        .expect("held task")
        .expect("held request");
    assert_eq!(held.status(), 200);
    assert_eq!(app.post_metrics(&metrics).await.status(), 200);
}

#[tokio::test]
async fn hyper_answers_malformed_heads_itself_with_400_414_431() {
    let app = spawn_app_with(|_| {}).await;
    let within = Duration::from_secs(10);
    let garbage = exchange(app.addr, b"NOT HTTP AT ALL\r\n\r\n", within).await;
    assert!(garbage.starts_with("HTTP/1.1 400"), "{garbage}");
    let long_uri = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(70_000));
    let answer = exchange(app.addr, long_uri.as_bytes(), within).await;
    assert!(answer.starts_with("HTTP/1.1 414"), "{answer}");
    let many_headers: String = (0..120).map(|i| format!("X-H{i}: v\r\n")).collect();
    let request = format!("GET /healthz HTTP/1.1\r\nHost: x\r\n{many_headers}\r\n");
    let answer = exchange(app.addr, request.as_bytes(), within).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    // The server is unharmed.
    assert!(time_healthz(app.addr).await < within);
}

/// The access-log line of the request with id `request_id`.
async fn access_line(server: &mut ChildServer, request_id: &str) -> String {
    let fragment = format!("\"request_id\":\"{request_id}\"");
    server
        .next_line_with(&fragment, Duration::from_secs(10))
        .await
}

#[tokio::test]
async fn the_access_log_has_one_json_line_per_request_with_its_fields() {
    let mut server = ChildServer::start(1024, &["--log-format", "json"]).await;
    let client = reqwest::Client::new();
    let base = format!("http://{}", server.addr);
    let send = |path: &str, id: &str| {
        client
            .get(format!("{base}{path}"))
            .header("x-request-id", id)
            .send()
    };
    let ok = send("/healthz", "access-ok").await.expect("GET /healthz");
    let ok_bytes = ok.bytes().await.expect("body").len();
    let missing = send("/streams/nope/metrics", "access-404")
        .await
        .expect("GET");
    assert_eq!(missing.status(), 404);
    let _ = missing.bytes().await;

    let line: Value = serde_json::from_str(&access_line(&mut server, "access-ok").await)
        .expect("access line is JSON");
    assert_eq!(line["target"], "evald::access", "{line}");
    assert_eq!(line["level"], "INFO", "{line}");
    assert_eq!(line["method"], "GET", "{line}");
    assert_eq!(line["route"], "/healthz", "{line}");
    assert_eq!(line["status"], 200, "{line}");
    assert_eq!(line["bytes"], ok_bytes, "{line}");
    assert!(
        line["latency_ms"].as_f64().is_some_and(|ms| ms >= 0.0),
        "{line}"
    );
    let line: Value = serde_json::from_str(&access_line(&mut server, "access-404").await)
        .expect("access line is JSON");
    assert_eq!(line["route"], "/streams/{name}/metrics", "{line}");
    assert_eq!(line["status"], 404, "{line}");
}

#[tokio::test]
async fn the_pretty_log_has_no_colours_when_not_on_a_terminal() {
    let mut server = ChildServer::start(1024, &["--log-format", "pretty"]).await;
    let response = reqwest::Client::new()
        .get(format!("http://{}/healthz", server.addr))
        .header("x-request-id", "pretty-1")
        .send()
        .await
        .expect("GET /healthz");
    assert_eq!(response.status(), 200);
    let line = server
        .next_line_with("pretty-1", Duration::from_secs(10))
        .await;
    assert!(!line.contains('\u{1b}'), "ANSI escape in {line:?}");
    for field in [
        "method=GET",
        "route=/healthz",
        "status=200",
        "bytes=",
        "latency_ms=",
    ] {
        assert!(line.contains(field), "{field} missing from {line:?}");
    }
}
