//! `GET /v1/lineage?name=&direction=`: where data named `name` comes from or goes.

use std::sync::Arc;

use headwater_governance::LineageService;

pub(crate) fn router(lineage: Arc<LineageService>) -> axum::Router {
    axum::Router::new()
        .route("/v1/lineage", axum::routing::get(lineage_http))
        .with_state(lineage)
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Query {
    name: String,
    /// `downstream` (the default) or `upstream`.
    direction: Option<String>,
}

async fn lineage_http(
    axum::extract::State(l): axum::extract::State<Arc<LineageService>>,
    axum::extract::Query(q): axum::extract::Query<Query>,
) -> axum::response::Response {
    use axum::http::StatusCode;
    let downstream = match q.direction.as_deref() {
        None | Some("downstream") => true,
        Some("upstream") => false,
        Some(other) => {
            return crate::error::error(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("direction '{other}' is unknown; use upstream or downstream"),
            )
        }
    };
    match l.walk(&q.name, downstream).await {
        Some(edges) => crate::routes::json_response(
            StatusCode::OK,
            serde_json::json!({"name": q.name, "direction": if downstream { "downstream" } else { "upstream" }, "edges": edges}),
        ),
        None => crate::error::error(
            StatusCode::NOT_FOUND,
            format!("nothing named '{}' is in the lineage graph; names are streams, fields (<stream>.<field>), pipelines, tables, views, producer client ids and consumer groups; `headwater catalog {}` searches them", q.name, q.name),
        ),
    }
}
