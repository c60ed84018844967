//! Every HTTP route, one module per area. A new route goes into the module of its area (a new
//! area gets a module and one `merge` in [`crate::Api::router`]); its errors are
//! [`crate::error::ApiError`]s, so every error answer has the same shape.

pub(crate) mod audit;
pub(crate) mod catalog;
pub(crate) mod domains;
pub(crate) mod metrics;
pub(crate) mod openapi;
pub(crate) mod pipelines;
pub(crate) mod registry;
pub(crate) mod status;
pub(crate) mod streams;
pub(crate) mod views;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// A JSON answer with `status`.
pub(crate) fn json_response(status: StatusCode, body: Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}
