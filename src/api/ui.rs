//! The dashboard: `GET /` and `GET /ui/...` serve one HTML page, its style
//! sheet and scripts, embedded in the binary at compile time (no CDN, no
//! build step; it works with no internet). The page calls the JSON API and
//! the plot routes with the API key the user saved in the browser (README,
//! "Dashboard and plots").
//!
//! The assets hold no data, so they are served without a key
//! (`auth::required_scope`); everything they show comes from routes that
//! need one.

use axum::extract::Path;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::{ApiError, AppState};

const INDEX_HTML: &str = include_str!("../../ui/index.html");

/// Name, media type and content of each asset under `/ui/assets/`.
const ASSETS: [(&str, &str, &str); 3] = [
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../../ui/app.js"),
    ),
    (
        "errors.js",
        "text/javascript; charset=utf-8",
        include_str!("../../ui/errors.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("../../ui/style.css"),
    ),
];

/// The page may load only its own scripts and styles, and images from
/// `blob:` URLs (the charts, fetched with the key).
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' blob:; \
     object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// Routes of the dashboard.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(page))
        .route("/ui", get(page))
        .route("/ui/", get(page))
        .route("/ui/assets/{file}", get(asset))
        .route("/ui/{*page}", get(page))
}

/// Every page path gets the one HTML page; its script picks the view from
/// the path, so a stream page's URL can be bookmarked and shared.
async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        INDEX_HTML,
    )
        .into_response()
}

async fn asset(Path(file): Path<String>) -> Result<Response, ApiError> {
    let (_, media_type, content) = ASSETS
        .iter()
        .find(|(name, _, _)| *name == file)
        .ok_or_else(|| {
            let names: Vec<&str> = ASSETS.iter().map(|(name, _, _)| *name).collect();
            ApiError::unknown_name("dashboard asset", &file, &names)
        })?;
    Ok((
        [
            (header::CONTENT_TYPE, *media_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        *content,
    )
        .into_response())
}
