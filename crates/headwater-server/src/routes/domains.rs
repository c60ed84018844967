//! `/v1/domains`: the applied domains, and plan/apply of manifest bundles.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use headwater_domains::{load_bundle, Bundle, DomainSpec};
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

/// The domains a plan/apply body holds: a manifest bundle (`{"files": {path: text}}`, as
/// `headwater plan|apply DIR` sends), parsed and checked here like a directory. Specs a client
/// resolved itself are not taken: the node derives every spec from the manifests.
fn specs(body: &str) -> Result<Vec<DomainSpec>, ApiError> {
    let unprocessable = |message: String, code: u32| {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message).with_code(code)
    };
    let bundle: Bundle = serde_json::from_str(body).map_err(|e| {
        unprocessable(
            format!("the body must be a manifest bundle, {{\"files\": {{\"<path>\": \"<text>\"}}}}, as `headwater plan|apply DIR` sends it (resolved domain specs are not taken): {e}"),
            42200,
        )
    })?;
    let loaded = load_bundle(&bundle).map_err(|errors| {
        let listed: Vec<String> = errors.iter().map(ToString::to_string).collect();
        unprocessable(
            format!(
                "{} problem(s) in the manifests, nothing was planned or applied:\n{}",
                listed.len(),
                listed.join("\n")
            ),
            42201,
        )
    })?;
    Ok(loaded.iter().map(|d| d.spec()).collect())
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
