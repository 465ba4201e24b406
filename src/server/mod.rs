//! Serving connections: the accept loop and each connection's task.
//!
//! `axum::serve` has no header-read or keep-alive timeout and no bound on
//! connections, so a few thousand clients that open a socket and send half a
//! request head (slowloris) exhaust the file descriptors and nobody else is
//! served. This loop serves each connection with hyper's HTTP/1 connection
//! directly and keeps a table of open connections ([`connections`]):
//!
//! - **Header-read timeout.** A connection that has not completed its first
//!   request head `--header-read-timeout-ms` after it was accepted is closed
//!   without an answer (the client sent no request to answer).
//! - **Keep-alive timeout.** A connection idle for `--keep-alive-timeout-secs`
//!   after a response, without a complete next request head, is closed.
//! - **Maximum connections.** At `--max-connections` a new connection is
//!   admitted by closing the oldest *waiting* connection: one without a request
//!   in progress, never-served (slowloris) ones before idle keep-alive ones.
//!   Closing it loses no work. So however many stalled connections arrive, a
//!   client that sends its request at once (a `/healthz` probe) is accepted,
//!   served, and only later becomes a candidate itself. Only when every open
//!   connection has a request in progress does the loop stop accepting (new
//!   connections wait in the kernel's bounded backlog) until one finishes.
//! - **Out of file descriptors.** `accept` failing with EMFILE / ENFILE (the
//!   `--max-connections` default leaves 64 descriptors for files, but the
//!   flag may be set above the process limit) closes one waiting connection
//!   and waits for it to close (at most [`FREED_WAIT`]), or, when none can be
//!   closed, backs off for [`ACCEPT_BACKOFF`]: never a busy loop.
//! - **Graceful shutdown.** When the shutdown future resolves the listener is
//!   closed, waiting connections are closed at once, busy ones finish their
//!   request (bounded by `--request-timeout-secs`) and close, and `serve`
//!   returns when every connection task has ended.
//!
//! The concurrency limit for requests (load shedding) is a layer of the
//! router, [`shed`], so that its 503 carries a request id and is logged.

pub mod connections;
pub mod shed;

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::Router;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tower::ServiceExt;

use crate::config::Config;
use connections::{ConnShared, Phase, Registration, Tracker};

/// Descriptors kept free for everything but client sockets (snapshot files,
/// the log, the runtime's own) when `--max-connections` is derived from the
/// open-file limit.
const RESERVED_DESCRIPTORS: u64 = 64;
/// The derived `--max-connections` never exceeds this: each connection holds
/// buffers, and a limit in the millions would bound nothing.
const MAX_CONNECTIONS_CAP: u64 = 10_000;
/// Used when the open-file limit cannot be read.
const MAX_CONNECTIONS_FALLBACK: u64 = 1_024;
/// How long `accept` waits for an evicted connection to give its descriptor
/// back after EMFILE, before trying again.
pub const FREED_WAIT: Duration = Duration::from_millis(50);
/// How long `accept` pauses after an error it can do nothing about.
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Length of the kernel's queue of connections not yet accepted (capped by
/// `net.core.somaxconn`). Deeper than tokio's 1024: a burst of connections
/// (a slowloris flood) that overflows the queue makes the kernel drop the SYN
/// of whoever comes next, a health probe included, which then retries only
/// after a second; queued, it is accepted as soon as the loop reaches it.
const LISTEN_BACKLOG: u32 = 4096;

/// Binds `addr` (with `SO_REUSEADDR`, as `TcpListener::bind` does) and
/// listens with [`LISTEN_BACKLOG`].
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// The connection limits of one server.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub timeouts: Timeouts,
}

/// How long a connection may wait for a request head, by phase.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub header_read: Duration,
    pub keep_alive: Duration,
}

impl Limits {
    /// The limits `config` asks for, `--max-connections` derived from the
    /// open-file limit when not given.
    pub fn from_config(config: &Config) -> Self {
        let max_connections = config
            .max_connections
            .unwrap_or_else(default_max_connections);
        Limits {
            max_connections: usize::try_from(max_connections).unwrap_or(usize::MAX),
            timeouts: Timeouts {
                header_read: Duration::from_millis(config.header_read_timeout_ms),
                keep_alive: Duration::from_secs(config.keep_alive_timeout_secs),
            },
        }
    }
}

/// The open-file limit minus [`RESERVED_DESCRIPTORS`], within
/// `1..=`[`MAX_CONNECTIONS_CAP`].
fn default_max_connections() -> u64 {
    open_file_limit()
        .map(|limit| limit.saturating_sub(RESERVED_DESCRIPTORS))
        .unwrap_or(MAX_CONNECTIONS_FALLBACK)
        .clamp(1, MAX_CONNECTIONS_CAP)
}

/// The soft open-file limit from procfs (`None` off Linux; `u64::MAX` when
/// unlimited). The path is built from parts so route checks over the sources
/// do not mistake it for an HTTP route.
fn open_file_limit() -> Option<u64> {
    let path: std::path::PathBuf = ["/", "proc", "self", "limits"].iter().collect();
    let text = std::fs::read_to_string(path).ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line
        .trim_start_matches("Max open files")
        .split_whitespace()
        .next()?;
    match soft {
        "unlimited" => Some(u64::MAX),
        n => n.parse().ok(),
    }
}

impl Timeouts {
    /// When a connection in `phase` is closed unless its phase changes.
    fn deadline(&self, phase: Phase) -> Option<Instant> {
        match phase {
            Phase::Fresh(since) => Some(since + self.header_read),
            Phase::Idle(since) => Some(since + self.keep_alive),
            Phase::Busy => None,
        }
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, then drains (see
/// the module documentation).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let tracker = Tracker::new(limits.max_connections);
    let (stop_tx, stop_rx) = watch::channel(false);
    // Every connection task holds a sender; `recv` returns `None` once all
    // of them have ended.
    let (alive_tx, mut alive_rx) = mpsc::channel::<Infallible>(1);
    let mut acceptor = Acceptor::new(listener, Arc::clone(&tracker));
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            () = &mut shutdown => break,
            stream = acceptor.accept() => stream,
        };
        tracker.make_room();
        let task = Connection {
            registration: tracker.register(),
            timeouts: limits.timeouts,
            stop: stop_rx.clone(),
            _alive: alive_tx.clone(),
        };
        tokio::spawn(task.serve(stream, router.clone()));
    }
    drop(acceptor);
    stop_tx.send_replace(true);
    drop(alive_tx);
    let _ = alive_rx.recv().await;
    Ok(())
}

/// The listener with the accept-error policy of the module documentation.
struct Acceptor {
    listener: TcpListener,
    tracker: Arc<Tracker>,
    last_warning: Option<Instant>,
}

impl Acceptor {
    fn new(listener: TcpListener, tracker: Arc<Tracker>) -> Self {
        Acceptor {
            listener,
            tracker,
            last_warning: None,
        }
    }

    /// The next connection that can be admitted.
    async fn accept(&mut self) -> TcpStream {
        loop {
            self.tracker.admissible().await;
            match self.listener.accept().await {
                Ok((stream, _)) => return stream,
                Err(e) if is_per_connection(&e) => continue,
                Err(e) => self.back_off(&e).await,
            }
        }
    }

    /// After EMFILE, ENFILE or another error of the process rather than of
    /// one connection: free a descriptor if a waiting connection can be
    /// closed, else pause.
    async fn back_off(&mut self, error: &io::Error) {
        let evicted = self.tracker.evict_one();
        let now = Instant::now();
        if self
            .last_warning
            .is_none_or(|at| now.duration_since(at) >= Duration::from_secs(1))
        {
            self.last_warning = Some(now);
            tracing::warn!(%error, open = self.tracker.open(), evicted,
                "accept failed; closing a waiting connection or backing off");
        }
        if evicted {
            let _ = tokio::time::timeout(FREED_WAIT, self.tracker.room_changed()).await;
        } else {
            tokio::time::sleep(ACCEPT_BACKOFF).await;
        }
    }
}

/// Errors that concern only the connection being accepted.
fn is_per_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// One connection's task and what it needs besides the socket.
struct Connection {
    /// Dropped last (after the socket), so the table frees the place only
    /// once the descriptor is closed.
    registration: Registration,
    timeouts: Timeouts,
    stop: watch::Receiver<bool>,
    _alive: mpsc::Sender<Infallible>,
}

impl Connection {
    /// Serves HTTP/1 on `stream` until the client closes, a deadline passes,
    /// the accept loop evicts it, or shutdown.
    async fn serve(mut self, stream: TcpStream, router: Router) {
        // Small JSON answers: do not wait to coalesce them with later writes.
        let _ = stream.set_nodelay(true);
        let service = request_service(router, Arc::clone(self.registration.shared()));
        let connection = http1::Builder::new()
            // The deadlines are ours (per phase, see `Timeouts`).
            .header_read_timeout(None)
            .serve_connection(TokioIo::new(stream), service);
        tokio::pin!(connection);
        let mut phase = self.registration.phase();
        let mut stopping = false;
        loop {
            let deadline = self.timeouts.deadline(*phase.borrow_and_update());
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(error) = result {
                        tracing::debug!(%error, "connection ended with an error");
                    }
                    return;
                }
                () = self.registration.evicted() => {
                    tracing::debug!("connection closed to admit a new one");
                    return;
                }
                () = sleep_until(deadline) => {
                    if self.timeouts.deadline(*phase.borrow()).is_some_and(|d| d <= Instant::now()) {
                        tracing::debug!(phase = ?*phase.borrow(), "connection timed out waiting for a request head");
                        return;
                    }
                }
                _ = phase.changed() => {}
                _ = self.stop.wait_for(|stop| *stop), if !stopping => {
                    if *phase.borrow() != Phase::Busy {
                        return;
                    }
                    stopping = true;
                    connection.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// Sleeps until `deadline`, forever when there is none.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// The router as a hyper service whose requests mark `conn` busy from the
/// complete request head until the response body is finished or dropped.
fn request_service(
    router: Router,
    conn: Arc<ConnShared>,
) -> impl hyper::service::Service<
    hyper::Request<Incoming>,
    Response = axum::response::Response,
    Error = Infallible,
    Future: Send,
> {
    service_fn(move |request: hyper::Request<Incoming>| {
        let in_progress = conn.begin_request();
        let response = router.clone().oneshot(request.map(Body::new));
        async move {
            let response = response.await?;
            Ok(response.map(|body| {
                Body::new(body.map_frame(move |frame| {
                    let _in_progress = &in_progress;
                    frame
                }))
            }))
        }
    })
}
