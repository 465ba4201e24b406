//! Reliability and security (README, "Reliability and security").

mod admission;
mod auth;
mod auth_log;
mod connections;
mod edges;
