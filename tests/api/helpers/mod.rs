//! Test helpers, one home for each: the running app and its per-endpoint
//! requests ([`app`]), the `evald` binary ([`cli`]), numeric and JSON comparisons ([`compare`]), the
//! committed fixtures ([`fixtures`]) and body encodings ([`encoding`]).

pub mod app;
pub mod arrow;
pub mod cli;
pub mod compare;
pub mod encoding;
pub mod fixtures;

pub use app::*;
pub use arrow::*;
pub use cli::*;
pub use compare::*;
pub use encoding::*;
pub use fixtures::*;
