//! Keys never reach the log: the real binary, logging everything at trace
//! level, is sent valid, unknown, malformed and under-scoped keys, and its
//! whole output (stdout and stderr) holds none of them.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::auth::{key_file, CONFIGURED_KEYS};

/// How long the binary may take to start, and to close its output once killed.
const DEADLINE: Duration = Duration::from_secs(20);

/// The binary, killed when dropped, and every line it writes.
struct Server {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Forwards each line of `output` to `sink` until the output closes.
fn forward(output: impl Read + Send + 'static, sink: mpsc::Sender<String>) {
    std::thread::spawn(move || {
        for line in BufReader::new(output).lines().map_while(Result::ok) {
            if sink.send(line).is_err() {
                break;
            }
        }
    });
}

impl Server {
    /// Starts the binary on a free loopback port with `keys`, logging at trace.
    fn start(keys: &Path) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_evald"))
            .args(["--listen", "127.0.0.1:0", "--log-format", "json"])
            .arg("--api-keys-file")
            .arg(keys)
            .env("RUST_LOG", "trace")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn evald");
        let (sink, lines) = mpsc::channel();
        if let Some(out) = child.stdout.take() {
            forward(out, sink.clone());
        }
        if let Some(err) = child.stderr.take() {
            forward(err, sink);
        }
        Server {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// The address of the "evald listening" line (waits for it).
    fn address(&mut self) -> String {
        let deadline = Instant::now() + DEADLINE;
        while let Some(wait) = deadline.checked_duration_since(Instant::now()) {
            let Ok(line) = self.lines.recv_timeout(wait) else {
                break;
            };
            let address = serde_json::from_str::<Value>(&line)
                .ok()
                .filter(|event| event["message"] == "evald listening")
                .and_then(|event| event["address"].as_str().map(str::to_owned));
            self.seen.push(line);
            if let Some(address) = address {
                return address;
            }
        }
        panic!("evald did not start: {:#?}", self.seen);
    }

    /// Kills the binary and returns everything it wrote.
    fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let deadline = Instant::now() + DEADLINE;
        while let Some(wait) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(wait) {
                Ok(line) => self.seen.push(line),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => panic!("evald's output did not close"),
            }
        }
        std::mem::take(&mut self.seen).join("\n")
    }
}

#[tokio::test]
async fn no_key_appears_in_the_log_even_at_trace_level() {
    let unknown = "never-configured-0123456789abcdef";
    let [read_key, _, _, acme_key, _] = CONFIGURED_KEYS;
    let mut server = Server::start(&key_file("log"));
    let base = format!("http://{}", server.address());
    let client = reqwest::Client::new();
    let record = "{\"prediction\": 0.5, \"label\": 1, \"user_id\": \"u\"}\n";
    let requests = [
        client
            .post(format!("{base}/streams/s"))
            .bearer_auth(acme_key),
        client
            .post(format!("{base}/streams/s"))
            .bearer_auth(read_key),
        client
            .get(format!("{base}/streams/s/metrics"))
            .bearer_auth(acme_key),
        client.get(format!("{base}/streams")).bearer_auth(unknown),
        client
            .get(format!("{base}/streams"))
            .header("authorization", format!("Basic {acme_key}")),
        client.get(format!("{base}/openapi.json")),
    ];
    let mut statuses = Vec::new();
    for request in requests {
        let response = request
            .header("content-type", "application/x-ndjson")
            .body(record)
            .timeout(DEADLINE)
            .send()
            .await
            .expect("request failed");
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses, [200, 403, 200, 401, 401, 401]);
    let log = server.stop();
    assert!(log.contains("API keys loaded"), "{log}");
    assert!(
        log.contains("/streams/s/metrics"),
        "requests are logged: {log}"
    );
    for key in CONFIGURED_KEYS.iter().chain([&unknown]) {
        assert!(!log.contains(key), "a key is in the log:\n{log}");
    }
}
