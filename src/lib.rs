//! evald: an HTTP evaluation microservice for model metrics.
//!
//! # Layout
//!
//! Dependencies point one way: `api -> state -> core`.
//!
//! - [`core`]: pure numeric code over slices and `ndarray` (metrics, losses,
//!   normalizations, activations, optimizers). No HTTP, no serde_json, no tokio:
//!   usable as a library on its own.
//! - [`state`]: named streams with mergeable, serializable per-user aggregates
//!   behind a small store interface (in-memory by default).
//! - [`api`]: the axum HTTP layer: routes, request/response types, and the one
//!   error type that becomes `application/problem+json`.
//! - [`config`], [`telemetry`], [`startup`]: process wiring (CLI flags, logs,
//!   building the app and serving it until a shutdown signal), and
//!   [`healthcheck`] (the container probe).
//! - [`server`]: the accept loop with connection limits and timeouts, and
//!   load shedding.
//! - [`client`]: `evald push`, streaming a local file into a stream.
//! - [`plots`]: SVG charts (ROC, score histograms, ...) drawn from the
//!   metrics core's results; no HTTP (`api::plots` serves them, `api::ui`
//!   the dashboard page).

pub mod api;
pub mod client;
pub mod config;
pub mod core;
pub mod fuzzing;
pub mod healthcheck;
pub mod plots;
pub mod server;
pub mod startup;
pub mod state;
pub mod telemetry;
