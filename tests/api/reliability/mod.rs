//! Reliability and security (README, "Reliability and security").

mod auth;
mod auth_log;
mod connections;
