//! HTTP routes for losses (work in progress).

use axum::Router;

use super::AppState;

/// Routes of this resource.
pub fn router() -> Router<AppState> {
    Router::new()
}
