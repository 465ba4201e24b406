//! `POST /loss/{name}`, `GET /loss` and the losses core.

mod fixtures;
mod gradients;
mod http;
mod kernels;
