//! `evald serve` and `evald healthcheck` flags.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::{evald, free_port};

/// Kills the server it holds (by its PID) when the test ends, pass or fail.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn server_flags_are_accepted_after_the_subcommand_and_healthcheck_takes_a_host_name() {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let _server = Server(
        Command::new(env!("CARGO_BIN_EXE_evald"))
            .args(["serve", "--listen", &listen, "--max-streams", "3"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start evald serve"),
    );
    let addr = format!("localhost:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = evald(&["healthcheck", "--addr", &addr]).await;
    while !last.ok && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        last = evald(&["healthcheck", "--addr", &addr]).await;
    }
    assert!(last.ok, "healthcheck --addr {addr} failed: {}", last.stderr);

    // the old order still works too
    let before = evald(&["--listen", "127.0.0.1:1", "serve", "--help"]).await;
    assert!(before.ok, "{}", before.stderr);
}

#[tokio::test]
async fn healthcheck_names_an_address_that_is_not_host_port() {
    let run = evald(&["healthcheck", "--addr", "no-port-here"]).await;
    assert!(!run.ok);
    assert!(run.stderr.contains("'no-port-here'"), "{}", run.stderr);
    let port = free_port();
    let closed = evald(&["healthcheck", "--addr", &format!("localhost:{port}")]).await;
    assert!(!closed.ok, "nothing listens on {port}");
}
