//! Confidence intervals (DeLong's `auc_ci`, the GAUC standard error), model
//! comparison (`POST /metrics/compare`, `GET /streams/{a}/compare/{b}`) and
//! the per-user `ranking` metrics.

mod compare;
mod errors;
mod references;
mod streams;
