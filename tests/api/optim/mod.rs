//! `POST /optimizer/{name}/step`, `POST /optimizer/{name}/run` and the optimizer core.

mod convergence;
mod http;
mod library;
