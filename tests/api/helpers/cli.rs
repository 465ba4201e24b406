//! Running the real `evald` binary from a test: its output, and files for
//! it to read.

use std::path::PathBuf;
use std::process::Command;

/// What a run of the binary printed, and whether it exited 0.
#[derive(Debug)]
pub struct Run {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `evald ARGS` off the async runtime (stderr is a pipe, so the
/// progress bar writes only its final line).
pub async fn evald(args: &[&str]) -> Run {
    let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_evald"))
            .args(&args)
            .env_remove("EVALD_URL")
            .output()
            .expect("run evald")
    })
    .await
    .expect("join");
    Run {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Writes `bytes` to `name` in a directory of its own for `test` (tests run
/// in parallel and some use the same file name); returns its path.
pub fn cli_file(test: &str, name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("evald-cli-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write temp file");
    path
}

/// A loopback port nothing listens on (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}
