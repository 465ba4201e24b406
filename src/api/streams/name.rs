//! The tenant namespace of stream names: the one place where the name a
//! client sends is mapped to the stored one and back.
//!
//! With API keys configured, the request carries the key's [`Tenant`] and
//! every stream it names is looked up under that tenant's prefix (see
//! [`crate::state::tenants`]); without keys the stored name is the client's.

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::api::auth::Tenant;
use crate::api::AppState;
use crate::state::{tenants, StreamInfo};

/// The `{name}` of a stream route, as the client wrote it and as stored.
#[derive(Debug, Clone)]
pub struct StreamName {
    /// The client's name: the one every answer shows.
    pub local: String,
    /// The name in the store: `local` under the caller's tenant.
    pub stored: String,
}

/// The `{name}` path parameter; other parameters of the route are ignored.
#[derive(Deserialize)]
struct NameParam {
    name: String,
}

impl FromRequestParts<AppState> for StreamName {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let Path(NameParam { name }) = Path::<NameParam>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let stored = tenants::qualify(tenant(parts), &name);
        Ok(StreamName {
            local: name,
            stored,
        })
    }
}

fn tenant(parts: &Parts) -> Option<&str> {
    parts.extensions.get::<Tenant>().map(Tenant::name)
}

/// `info` as `caller` sees it (under its own name), or `None` when the stream
/// belongs to another tenant.
pub fn visible(caller: Option<&Tenant>, mut info: StreamInfo) -> Option<StreamInfo> {
    if tenants::tenant_of(&info.name) != caller.map(Tenant::name) {
        return None;
    }
    info.name = tenants::local_name(&info.name).to_owned();
    Some(info)
}
