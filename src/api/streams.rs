//! HTTP routes for streams (work in progress).

use axum::Router;

use super::AppState;

/// Routes of this resource.
pub fn router() -> Router<AppState> {
    Router::new()
}
