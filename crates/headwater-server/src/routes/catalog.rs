//! `GET /v1/catalog`: every applied domain as the catalog describes it; with `?q=`, what matches.

use std::sync::Arc;

use headwater_governance::CatalogService;

pub(crate) fn router(catalog: Arc<CatalogService>) -> axum::Router {
    axum::Router::new()
        .route("/v1/catalog", axum::routing::get(catalog_http))
        .with_state(catalog)
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Query {
    q: Option<String>,
}

/// Every domain; with `?q=`, what matches instead.
async fn catalog_http(
    axum::extract::State(c): axum::extract::State<Arc<CatalogService>>,
    axum::extract::Query(query): axum::extract::Query<Query>,
) -> axum::response::Response {
    let domains = c.domains().await;
    let body = match query.q.filter(|q| !q.trim().is_empty()) {
        Some(q) => {
            serde_json::json!({ "matches": headwater_governance::catalog::search(&domains, q.trim()), "query": q })
        }
        None => serde_json::json!({ "domains": domains }),
    };
    crate::routes::json_response(axum::http::StatusCode::OK, body)
}
