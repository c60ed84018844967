//! `/v1/audit`: the audit trail, read and verified.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use serde_json::json;

use headwater_governance::AuditTrail;

use crate::error::error;
use crate::routes::json_response;

pub(crate) fn router(audit: Arc<AuditTrail>) -> Router {
    Router::new()
        .route("/v1/audit", get(log))
        .route("/v1/audit/verify", get(verify))
        .with_state(audit)
}

/// The most entries one page holds, and the default page size.
const MAX_PAGE: usize = 1000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Filter {
    domain: Option<String>,
    action: Option<String>,
    /// Entries per page (at most 1000, the default).
    limit: Option<usize>,
    /// The `next` cursor of the page before: entries after that offset.
    after: Option<i64>,
}

/// A page of entries, oldest first, optionally of one domain or one kind of change; records
/// that do not read as entries are listed apart with their offsets. `next` is the cursor of
/// the following page, `null` at the end of the trail.
async fn log(State(audit): State<Arc<AuditTrail>>, Query(filter): Query<Filter>) -> Response {
    let limit = filter.limit.unwrap_or(MAX_PAGE).clamp(1, MAX_PAGE);
    let keep = |s: &headwater_domains::audit::Stored| match &s.entry {
        Ok(e) => {
            let domain_ok = filter.domain.is_none() || e.domain == filter.domain;
            let action_ok = filter
                .action
                .as_ref()
                .is_none_or(|a| e.action.starts_with(a.as_str()));
            domain_ok && action_ok
        }
        Err(_) => true,
    };
    let (stored, next) = match audit.page(filter.after, limit, keep) {
        Ok(page) => page,
        Err(e) => return unreadable(e),
    };
    let (mut entries, mut broken) = (Vec::new(), Vec::new());
    for s in stored {
        match s.entry {
            Ok(e) => entries.push(e),
            Err(problem) => {
                broken.push(json!({"offset": s.offset, "problem": problem.to_string()}))
            }
        }
    }
    json_response(
        StatusCode::OK,
        json!({"entries": entries, "unreadable": broken, "next": next}),
    )
}

/// The whole chain checked; `intact: false` with each problem naming its entry.
async fn verify(State(audit): State<Arc<AuditTrail>>) -> Response {
    match audit.verify() {
        Ok(v) => json_response(StatusCode::OK, json!(v)),
        Err(e) => unreadable(e),
    }
}

fn unreadable(e: headwater_kafka::StateError) -> Response {
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("the audit trail (_headwater.audit) could not be read: {e}"),
    )
}
