//! HTTP sign-in on a node with auth: every request carries a bearer token and is checked by
//! its method and path before its handler runs; the handler then knows its [`Caller`] (from the
//! request's extensions) for checks that depend on the body and for the audit trail.
//!
//! The decisions are [`NodeAccess`]'s, the same ones Kafka requests get.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use headwater_auth::{Principal, TopicOp};
use headwater_domains::{AccessPolicy, Denied};
use headwater_governance::{Actor, NodeAccess};

use crate::error::error;

/// The answer to a refused request (boxed: an error this large would weigh on every `Ok`).
pub(crate) type Denial = Box<Response>;

/// Who an HTTP request is from, and the access control that admitted it.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub(crate) who: Principal,
    pub(crate) access: Arc<NodeAccess>,
}

impl Caller {
    /// Checks a decision of the policy; a refusal is audited and becomes the 403 answer.
    pub(crate) fn check(
        &self,
        action: &str,
        target: &str,
        decide: impl FnOnce(&AccessPolicy, &Principal) -> Result<(), Denied>,
    ) -> Result<(), Denial> {
        decide(&self.access.policy(), &self.who)
            .map_err(|why| Box::new(forbid(&self.access, &self.who, action, target, why)))
    }
}

/// Who a request acts as, for plan/apply and the audit trail: its signed-in caller, or
/// `anonymous` on a node without auth. An extractor: handlers take `By(actor): By`.
#[derive(Debug, Clone)]
pub(crate) struct By(pub(crate) Actor);

impl<S: Send + Sync> FromRequestParts<S> for By {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(By(match parts.extensions.get::<Caller>() {
            Some(c) => Actor::Principal(c.who.clone()),
            None => Actor::Anonymous,
        }))
    }
}

/// Records a refusal told to `who` and returns the 403 answer carrying `why`.
pub(crate) fn forbid(
    access: &NodeAccess,
    who: &Principal,
    action: &str,
    target: &str,
    why: Denied,
) -> Response {
    access.record_refusal(who, action, target, &why.reason);
    error(StatusCode::FORBIDDEN, why.reason)
}

/// The principal a request's `Authorization: Bearer` header names, or the 401 answer.
fn authenticate(
    access: &NodeAccess,
    authorization: Option<&[u8]>,
    source: Option<IpAddr>,
    target: &str,
) -> Result<Principal, Denial> {
    let token = authorization
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let refused = |why: &str| {
        let mut r = error(StatusCode::UNAUTHORIZED, why.to_string());
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer realm=\"headwater\""),
        );
        r
    };
    match token {
        None => {
            let why = "this node requires a bearer token: send `Authorization: Bearer <token>` (the CLI reads HEADWATER_TOKEN); `headwater auth principal` issues one";
            access.record_anonymous_refusal("http", source, target, why);
            Err(Box::new(refused(why)))
        }
        Some(token) => access.users().bearer(token).ok_or_else(|| {
            let why = "the bearer token is not one this node issued; check HEADWATER_TOKEN or issue a new one with `headwater auth principal`";
            access.record_sign_in_failure(
                headwater_governance::ANONYMOUS,
                "bearer",
                source,
                target,
                why,
            );
            Box::new(refused(why))
        }),
    }
}

/// Checks a request by its method and path (what a body decides, the handler checks).
fn authorize(
    access: &NodeAccess,
    who: &Principal,
    method: &Method,
    path: &str,
    query: &str,
) -> Result<(), Denial> {
    let policy = access.policy();
    let refuse = |action: &str, target: &str, why: Denied| {
        Box::new(forbid(access, who, action, target, why))
    };
    // Decoded as the router decodes them, so an escaped name is judged as the name it is.
    let decoded: Vec<String> = path
        .trim_matches('/')
        .split('/')
        .map(percent_decode)
        .collect();
    let segments: Vec<&str> = decoded.iter().map(String::as_str).collect();
    let (action, target, decided) = match (method.as_str(), segments.as_slice()) {
        (_, ["v1", "views", domain, _, ..]) => ("read view", *domain, policy.operate(who, domain)),
        ("GET", ["v1", "streams", d, s, "events"]) => {
            let topic = format!("{d}.{s}");
            // Every `group` the handler could see, decoded as its query extractor decodes
            // keys and values (`%67roup=` is `group=`).
            let checked = policy.topic(who, TopicOp::Consume, &topic).and_then(|()| {
                form_urlencoded::parse(query.as_bytes())
                    .filter(|(key, _)| key == "group")
                    .try_for_each(|(_, group)| policy.group(who, &group))
            });
            return checked.map_err(|why| refuse("consume", &topic, why));
        }
        ("POST", ["v1", "streams", d, s, "events"]) => {
            let topic = format!("{d}.{s}");
            return policy
                .topic(who, TopicOp::Produce, &topic)
                .map_err(|why| refuse("produce", &topic, why));
        }
        ("POST", ["v1", "streams", d, _, "dlq", "replay"])
        | ("POST", ["v1", "pipelines", d, _, "run"])
        | ("POST", ["v1", "rebuild", d, _]) => ("operate", *d, policy.operate(who, d)),
        ("POST", ["subjects", subject, "versions"])
        | ("DELETE", ["subjects", subject, ..])
        | ("PUT" | "DELETE", ["config" | "mode", subject]) => {
            let topic = subject_topic(subject);
            return policy
                .topic(who, TopicOp::Administer, &topic)
                .map_err(|why| refuse("administer", &topic, why));
        }
        ("PUT" | "DELETE", [what @ ("config" | "mode")]) => {
            let what = format!("the registry's global {what}");
            ("administer", "registry", policy.platform_only(who, &what))
        }
        _ => return Ok(()),
    };
    decided.map_err(|why| refuse(action, target, why))
}

/// The principal a request is from, or the answer refusing it before it reaches its handler.
pub(crate) fn check_request(access: &NodeAccess, req: &Request) -> Result<Principal, Denial> {
    let path = req.uri().path();
    let source = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let who = authenticate(
        access,
        req.headers()
            .get(header::AUTHORIZATION)
            .map(|v| v.as_bytes()),
        source,
        path,
    )?;
    authorize(
        access,
        &who,
        req.method(),
        path,
        req.uri().query().unwrap_or(""),
    )?;
    Ok(who)
}

/// The topic a registry subject belongs to (`<topic>-value` / `<topic>-key`).
fn subject_topic(subject: &str) -> String {
    subject
        .strip_suffix("-value")
        .or_else(|| subject.strip_suffix("-key"))
        .unwrap_or(subject)
        .to_string()
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// The HTTP layer: every request signs in with its bearer token and is checked before its
/// handler runs, which then finds its [`Caller`] among the request's extensions.
pub(crate) async fn layer(
    State(access): State<Arc<NodeAccess>>,
    mut req: Request,
    next: Next,
) -> Response {
    match check_request(&access, &req) {
        Ok(who) => {
            req.extensions_mut().insert(Caller {
                who,
                access: access.clone(),
            });
            next.run(req).await
        }
        Err(denied) => denied.into_response(),
    }
}
