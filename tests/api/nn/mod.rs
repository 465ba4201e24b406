//! `POST /normalize/{kind}`, `POST /activation/{name}` and their cores.

mod fixtures;
mod gradients;
mod http;
mod library;
