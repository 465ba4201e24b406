//! Reliability under hostile or heavy traffic (README, "Reliability and security").

mod connections;
