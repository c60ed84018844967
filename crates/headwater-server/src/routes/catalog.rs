//! The catalog and the lineage graph built on it:
//!
//! - `GET /v1/catalog`: every applied domain as the catalog describes it; with `?q=`, what
//!   matches;
//! - `GET /v1/lineage?name=&direction=`: where data named `name` comes from or goes.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use headwater_governance::{CatalogService, LineageService};
use serde::Deserialize;
use serde_json::json;

use crate::error::error;
use crate::routes::json_response;

pub(crate) fn router(catalog: Arc<CatalogService>, lineage: Arc<LineageService>) -> Router {
    Router::new()
        .route("/v1/catalog", get(search).with_state(catalog))
        .route("/v1/lineage", get(walk).with_state(lineage))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Search {
    q: Option<String>,
}

/// Every domain; with `?q=`, what matches instead.
async fn search(State(c): State<Arc<CatalogService>>, Query(query): Query<Search>) -> Response {
    let domains = c.domains().await;
    let body = match query.q.filter(|q| !q.trim().is_empty()) {
        Some(q) => {
            json!({ "matches": headwater_governance::catalog::search(&domains, q.trim()), "query": q })
        }
        None => json!({ "domains": domains }),
    };
    json_response(StatusCode::OK, body)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Walk {
    name: String,
    /// `downstream` (the default) or `upstream`.
    direction: Option<String>,
}

/// The part of the lineage graph reachable from `name`.
async fn walk(State(l): State<Arc<LineageService>>, Query(q): Query<Walk>) -> Response {
    let downstream = match q.direction.as_deref() {
        None | Some("downstream") => true,
        Some("upstream") => false,
        Some(other) => {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("direction '{other}' is unknown; use upstream or downstream"),
            )
        }
    };
    match l.walk(&q.name, downstream).await {
        Some(edges) => json_response(
            StatusCode::OK,
            json!({"name": q.name, "direction": if downstream { "downstream" } else { "upstream" }, "edges": edges}),
        ),
        None => error(
            StatusCode::NOT_FOUND,
            format!("nothing named '{}' is in the lineage graph; names are streams, fields (<stream>.<field>), pipelines, tables, views, producer client ids and consumer groups; `headwater catalog {}` searches them", q.name, q.name),
        ),
    }
}
