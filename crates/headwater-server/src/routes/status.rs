//! `GET /v1/status` (every stream's freshness and subscribers' lag) and `GET /v1/consistency`
//! (whether every subscriber has processed an offset).

use std::sync::Arc;

use headwater_governance::StatusService;

/// `GET /v1/status` and `GET /v1/consistency`.
pub(crate) fn router(status: Arc<StatusService>) -> axum::Router {
    use axum::routing::get;
    axum::Router::new()
        .route("/v1/status", get(api::all))
        .route("/v1/consistency", get(api::consistency))
        .with_state(status)
}

mod api {
    use std::sync::Arc;
    use std::time::Duration;

    use axum::extract::{Query, State};
    use axum::http::{header, StatusCode};
    use axum::response::{IntoResponse, Response};
    use serde::Deserialize;
    use serde_json::json;

    use headwater_governance::StatusService;
    use headwater_streams::Positions;

    /// The longest `wait` a consistency check may ask for.
    const MAX_WAIT: Duration = Duration::from_secs(60);

    fn answer(status: StatusCode, body: serde_json::Value) -> Response {
        (
            status,
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response()
    }

    pub(super) async fn all(State(s): State<Arc<StatusService>>) -> Response {
        answer(StatusCode::OK, json!(s.all().await))
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct Check {
        stream: String,
        /// An offset, with `partition`; or positions `0:12,1:40`.
        offset: String,
        partition: Option<i32>,
        /// How long to wait for every subscriber, e.g. `5s` (at most 60 s).
        wait: Option<String>,
    }

    pub(super) async fn consistency(
        State(s): State<Arc<StatusService>>,
        Query(q): Query<Check>,
    ) -> Response {
        let bad = |m: String| crate::error::error(StatusCode::UNPROCESSABLE_ENTITY, m);
        let offsets = if q.offset.contains(':') {
            match Positions::parse(&q.offset) {
                Ok(p) => p.0,
                Err(e) => return bad(e.to_string()),
            }
        } else {
            match q.offset.parse::<i64>() {
                Ok(o) => [(q.partition.unwrap_or(0), o)].into(),
                Err(_) => {
                    return bad(format!(
                        "offset '{}' is not a number or PARTITION:OFFSET list",
                        q.offset
                    ))
                }
            }
        };
        let wait = match q
            .wait
            .as_deref()
            .map(headwater_domains::HumanDuration::parse)
        {
            None => Duration::ZERO,
            Some(Ok(d)) => Duration::from_millis(d.millis).min(MAX_WAIT),
            Some(Err(e)) => return bad(e.to_string()),
        };
        match s.processed(&q.stream, &offsets, wait).await {
            Ok((done, status)) => answer(
                StatusCode::OK,
                json!({"stream": q.stream, "offsets": offsets, "processed": done, "subscribers": status.subscribers}),
            ),
            Err(e) => crate::error::error(
                StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::BAD_REQUEST),
                e.to_string(),
            ),
        }
    }
}
