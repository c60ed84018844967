//! `/v1/views`: feature views served by key, one at a time or many in one request.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use headwater_governance::PipelineService;
use headwater_log::now_ms;

use crate::error::{error, ApiError};
use crate::routes::json_response;

type Shared = State<Arc<PipelineService>>;

/// Keys per batch lookup: a bigger batch is refused rather than stalling other lookups.
const MAX_KEYS: usize = 1_000;

fn not_served(domain: &str, view: &str) -> Response {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("no view '{domain}.{view}' is served; declare a streaming pipeline with `output: {{ view: {view} }}` in {domain}'s manifest, or list views with GET /v1/views"),
    )
    .with_code(40401)
    .into_response()
}

pub(crate) async fn list(State(p): Shared) -> Response {
    json_response(StatusCode::OK, json!(p.supervisor().views()))
}

/// One key's features; 404 naming the key if the view has seen no event for it.
pub(crate) async fn get_one(
    State(p): Shared,
    Path((domain, view, key)): Path<(String, String, String)>,
) -> Response {
    one_key(&p, &domain, &view, &key)
}

/// The answer to `GET /v1/views/{domain}/{view}/{key}`, for the router and for the HTTP
/// thread's direct path (see [`crate::http`]).
pub(crate) fn one_key(p: &PipelineService, domain: &str, view: &str, key: &str) -> Response {
    let Some(store) = p.supervisor().view(domain, view) else {
        return not_served(domain, view);
    };
    match store.lookup_json(key, now_ms()) {
        Ok(Some(json)) => {
            let mut answer = Response::new(axum::body::Body::from(json));
            answer.headers_mut().insert(
                axum::http::header::CONTENT_TYPE,
                axum::http::HeaderValue::from_static("application/json"),
            );
            answer
        }
        Ok(None) => ApiError::new(
            StatusCode::NOT_FOUND,
            format!(
                "view '{domain}.{view}' has no events for {} '{key}'",
                store.key
            ),
        )
        .with_code(40402)
        .into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// Many keys at once: `{"keys": [...]}` answers `{"results": [...]}` in the same order, `null`
/// for a key without events.
pub(crate) async fn lookup(
    State(p): Shared,
    Path((domain, view)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    let Some(store) = p.supervisor().view(&domain, &view) else {
        return not_served(&domain, &view);
    };
    // Any content type: `curl -d '{"keys": [...]}'` sends a form content type.
    let keys: Option<Vec<String>> = serde_json::from_slice::<Value>(&body).ok().and_then(|v| {
        v.get("keys")?
            .as_array()?
            .iter()
            .map(|k| match k {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .collect()
    });
    let Some(keys) = keys else {
        return ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "the body must be {\"keys\": [\"k1\", \"k2\", ...]} with string or number keys",
        )
        .with_code(42201)
        .into_response();
    };
    if keys.len() > MAX_KEYS {
        return ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "{} keys in one lookup; send at most {MAX_KEYS} per request",
                keys.len()
            ),
        )
        .with_code(42202)
        .into_response();
    }
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    match store.lookup(&refs, now_ms()) {
        Ok(rows) => json_response(StatusCode::OK, json!({ "results": rows })),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
