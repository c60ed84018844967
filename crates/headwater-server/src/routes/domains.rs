//! `/v1/domains`: the applied domains, and plan/apply of resolved manifests.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use headwater_governance::DomainService;
use serde_json::json;

use crate::error::ApiError;
use crate::routes::registry::reply;
use crate::sign_in::By;

/// Headwater's own API under `/v1`: domains.
pub(crate) fn router(domains: Arc<DomainService>) -> Router {
    Router::new()
        .route("/v1/domains", get(list_domains))
        .route("/v1/domains/plan", post(plan_domains))
        .route("/v1/domains/apply", post(apply_domains))
        .with_state(domains)
}

fn specs(body: &str) -> Result<Vec<headwater_domains::DomainSpec>, ApiError> {
    serde_json::from_str(body).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "the body must be a JSON list of resolved domains (as `headwater plan` sends): {e}"
            ),
        )
        .with_code(42200)
    })
}

async fn list_domains(State(d): State<Arc<DomainService>>) -> Response {
    reply(json!(d.applied()))
}

async fn plan_domains(State(d): State<Arc<DomainService>>, By(by): By, body: String) -> Response {
    match specs(&body) {
        Ok(s) => reply(json!(d.plan(&s, &by).await)),
        Err(e) => e.into_response(),
    }
}

async fn apply_domains(State(d): State<Arc<DomainService>>, By(by): By, body: String) -> Response {
    match specs(&body) {
        Ok(s) => reply(json!(d.apply(&s, &by).await)),
        Err(e) => e.into_response(),
    }
}
