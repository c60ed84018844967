//! `/v1/openapi.json`: the HTTP API as an OpenAPI 3 document. The document is written by hand
//! next to the crate (`openapi.json`); `tests/openapi.rs` fails when a route exists without an
//! entry there, or an entry without its route, so it cannot drift from the routers.

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

/// The document, as served.
pub const OPENAPI: &str = include_str!("../../openapi.json");

pub(crate) fn router() -> Router {
    Router::new().route(
        "/v1/openapi.json",
        get(|| async { ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response() }),
    )
}
