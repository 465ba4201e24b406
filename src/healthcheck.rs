//! `evald healthcheck`: a tiny HTTP probe for container HEALTHCHECKs.
//!
//! Slim runtime images carry no curl or wget; probing with the binary itself
//! keeps the image minimal and the probe identical on every platform.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Sends `GET path` to `addr` (`host:port`, the host a name or an IP
/// address) and returns whether the answer was `200`. A name is resolved
/// and its addresses tried in turn, as curl does, so `localhost:8080`
/// reaches a server listening on either 127.0.0.1 or ::1.
///
/// # Errors
/// When `addr` is not `host:port`, the name does not resolve, or no
/// address accepts a connection (the last address's error).
pub fn probe(addr: &str, path: &str, timeout: Duration) -> std::io::Result<bool> {
    let candidates: Vec<SocketAddr> = addr
        .to_socket_addrs()
        .map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("--addr '{addr}' is not a reachable host:port ({e})"),
            )
        })?
        .collect();
    let mut last = std::io::Error::new(
        std::io::ErrorKind::NotFound,
        format!("--addr '{addr}' resolves to no address"),
    );
    for candidate in candidates {
        match TcpStream::connect_timeout(&candidate, timeout) {
            Ok(stream) => return ask(stream, addr, path, timeout),
            Err(e) => last = std::io::Error::new(e.kind(), format!("{candidate}: {e}")),
        }
    }
    Err(last)
}

fn ask(mut stream: TcpStream, host: &str, path: &str, timeout: Duration) -> std::io::Result<bool> {
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )?;
    let mut head = [0u8; 32];
    let n = stream.read(&mut head)?;
    let status_line = String::from_utf8_lossy(&head[..n]);
    Ok(status_line.starts_with("HTTP/1.1 200") || status_line.starts_with("HTTP/1.0 200"))
}
