//! The node's access control when its config has an `[auth]` table: Kafka sign-ins and
//! request checks (as [`headwater_kafka::Authorizer`]), HTTP bearer tokens and per-route checks,
//! and an audit entry for every refusal. The decisions themselves are
//! [`headwater_domains::AccessPolicy`]'s, over the applied manifests.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use headwater_auth::{Denied, Principal, TopicOp, Users};
use headwater_domains::{AccessPolicy, DomainSpec};
use parking_lot::RwLock;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use serde_json::{json, Value};

use crate::audit::ANONYMOUS;
use crate::AuditTrail;

/// The answer to a refused request (boxed: an error this large would weigh on every `Ok`).
pub(crate) type Refusal = Box<Response>;

/// Who an HTTP request is from, and the access control that admitted it.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub who: Principal,
    pub access: Arc<NodeAccess>,
}

tokio::task_local! {
    /// The caller of the HTTP request being handled: for checks that depend on its body and
    /// for the audit entries of its changes.
    static CALLER: Caller;
}

/// How the audit trail names the caller of the request being handled: `anonymous` on a node
/// without auth.
pub fn caller_name() -> String {
    CALLER
        .try_with(|c| c.who.audit_name())
        .unwrap_or_else(|_| ANONYMOUS.to_string())
}

/// The caller of the request being handled, on a node with auth.
pub(crate) fn caller() -> Option<Caller> {
    CALLER.try_with(Caller::clone).ok()
}

impl Caller {
    /// Checks a decision of the policy; a refusal is audited and becomes the 403 answer.
    pub(crate) fn check(
        &self,
        action: &str,
        target: &str,
        decide: impl FnOnce(&AccessPolicy, &Principal) -> Result<(), String>,
    ) -> Result<(), Refusal> {
        decide(&self.access.policy(), &self.who)
            .map_err(|why| Box::new(self.access.forbid(&self.who, action, target, why)))
    }
}

/// Refusals and failed sign-ins counted for `/metrics`, by what was refused: the label set
/// stays small whatever names strangers try.
pub type RefusalCounts = Family<RefusalLabel, Counter>;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RefusalLabel {
    /// `access.refused` or `auth.failed`.
    pub outcome: String,
    /// What was refused (`produce`, `consume`, `use group`, `apply`, `http`, a mechanism, ...).
    pub action: String,
}

/// What an audited refusal was, and the audit action it is recorded as.
#[derive(Debug, Clone, Copy)]
enum Outcome {
    Refused,
    SignInFailed,
}

impl Outcome {
    fn action(self) -> &'static str {
        match self {
            Outcome::Refused => "access.refused",
            Outcome::SignInFailed => "auth.failed",
        }
    }
}

#[derive(Debug)]
pub struct NodeAccess {
    users: Users,
    platform: Vec<String>,
    policy: RwLock<Arc<AccessPolicy>>,
    audit: Arc<AuditTrail>,
    counts: RefusalCounts,
}

impl NodeAccess {
    pub fn new(users: Users, audit: Arc<AuditTrail>, counts: RefusalCounts) -> Arc<NodeAccess> {
        let platform = users.platform().to_vec();
        Arc::new(NodeAccess {
            policy: RwLock::new(Arc::new(AccessPolicy::new([], platform.clone()))),
            users,
            platform,
            audit,
            counts,
        })
    }

    /// Decisions from now on follow `applied`.
    pub(crate) fn refresh(&self, applied: impl IntoIterator<Item = DomainSpec>) {
        *self.policy.write() = Arc::new(AccessPolicy::new(applied, self.platform.clone()));
    }

    pub fn policy(&self) -> Arc<AccessPolicy> {
        self.policy.read().clone()
    }

    /// Counts and audits one refusal: `what` was refused (an action, or for a failed sign-in
    /// its mechanism) on `target`, and why.
    fn record(&self, principal: String, outcome: Outcome, what: &str, target: &str, why: &str) {
        self.counts
            .get_or_create(&RefusalLabel {
                outcome: outcome.action().to_string(),
                action: what.to_string(),
            })
            .inc();
        let after = match outcome {
            Outcome::Refused => json!({ "action": what, "why": why }),
            Outcome::SignInFailed => json!({ "mechanism": what, "why": why }),
        };
        let action = outcome.action();
        let domain = target
            .split('.')
            .next()
            .map(str::to_string)
            .filter(|d| self.policy().has_domain(d));
        let change = crate::audit::change(
            &principal,
            action,
            domain.as_deref(),
            target,
            Value::Null,
            after,
        );
        let audit = self.audit.clone();
        // Refusals are decided on paths that do not wait (a Kafka request's check); the entry
        // is sealed in order with every other by the trail's own lock.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move { audit.record(change).await });
        }
    }

    /// Records a refusal told to `who` and returns the 403 answer carrying `why`.
    pub(crate) fn forbid(
        &self,
        who: &Principal,
        action: &str,
        target: &str,
        why: String,
    ) -> Response {
        self.record_refusal(who, action, target, &why);
        error(StatusCode::FORBIDDEN, why)
    }

    pub(crate) fn record_refusal(&self, who: &Principal, action: &str, target: &str, why: &str) {
        tracing::info!(principal = %who.audit_name(), action, target, "refused: {why}");
        self.record(who.audit_name(), Outcome::Refused, action, target, why);
    }

    /// The principal a request's `Authorization: Bearer` header names, or the 401 answer.
    fn authenticate(
        &self,
        authorization: Option<&[u8]>,
        target: &str,
    ) -> Result<Principal, Refusal> {
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
                self.record(ANONYMOUS.into(), Outcome::Refused, "http", target, why);
                Err(Box::new(refused(why)))
            }
            Some(token) => self.users.bearer(token).ok_or_else(|| {
                let why = "the bearer token is not one this node issued; check HEADWATER_TOKEN or issue a new one with `headwater auth principal`";
                self.record(ANONYMOUS.into(), Outcome::SignInFailed, "bearer", target, why);
                Box::new(refused(why))
            }),
        }
    }

    /// Checks a request by its method and path (what a body decides, the handler checks).
    fn authorize(
        &self,
        who: &Principal,
        method: &Method,
        path: &str,
        query: &str,
    ) -> Result<(), Refusal> {
        let policy = self.policy();
        // Decoded as the router decodes them, so an escaped name is judged as the name it is.
        let decoded: Vec<String> = path
            .trim_matches('/')
            .split('/')
            .map(percent_decode)
            .collect();
        let segments: Vec<&str> = decoded.iter().map(String::as_str).collect();
        let (action, target, decided) = match (method.as_str(), segments.as_slice()) {
            (_, ["v1", "views", domain, _, ..]) => {
                ("read view", *domain, policy.operate(who, domain))
            }
            ("GET", ["v1", "streams", d, s, "events"]) => {
                let topic = format!("{d}.{s}");
                let group = query
                    .split('&')
                    .find_map(|kv| kv.strip_prefix("group="))
                    .map(percent_decode);
                let checked =
                    policy
                        .topic(who, TopicOp::Consume, &topic)
                        .and_then(|()| match &group {
                            Some(g) => policy.group(who, g),
                            None => Ok(()),
                        });
                return checked.map_err(|why| Box::new(self.forbid(who, "consume", &topic, why)));
            }
            ("POST", ["v1", "streams", d, s, "events"]) => {
                let topic = format!("{d}.{s}");
                return policy
                    .topic(who, TopicOp::Produce, &topic)
                    .map_err(|why| Box::new(self.forbid(who, "produce", &topic, why)));
            }
            ("POST", ["v1", "streams", d, _, "dlq", "replay"])
            | ("POST", ["v1", "pipelines", d, _, "run"])
            | ("POST", ["v1", "rebuild", d, _]) => ("operate", *d, policy.operate(who, d)),
            ("POST", ["subjects", subject, "versions"]) | ("DELETE", ["subjects", subject, ..]) => {
                let topic = subject_topic(subject);
                return policy
                    .topic(who, TopicOp::Administer, &topic)
                    .map_err(|why| Box::new(self.forbid(who, "administer", &topic, why)));
            }
            ("PUT" | "DELETE", ["config" | "mode", subject]) => {
                let topic = subject_topic(subject);
                return policy
                    .topic(who, TopicOp::Administer, &topic)
                    .map_err(|why| Box::new(self.forbid(who, "administer", &topic, why)));
            }
            ("PUT" | "DELETE", [what @ ("config" | "mode")]) => {
                let what = format!("the registry's global {what}");
                ("administer", "registry", policy.platform_only(who, &what))
            }
            _ => return Ok(()),
        };
        decided.map_err(|why| Box::new(self.forbid(who, action, target, why)))
    }

    /// The answer to a request refused before it reaches its handler, if it is.
    pub(crate) fn check_request(&self, req: &Request) -> Result<Principal, Refusal> {
        let path = req.uri().path();
        let who = self.authenticate(
            req.headers()
                .get(header::AUTHORIZATION)
                .map(|v| v.as_bytes()),
            path,
        )?;
        self.authorize(&who, req.method(), path, req.uri().query().unwrap_or(""))?;
        Ok(who)
    }
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

fn error(status: StatusCode, why: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        json!({ "error_code": status.as_u16(), "message": why, "error": why }).to_string(),
    )
        .into_response()
}

/// The HTTP layer: every request signs in with its bearer token and is checked before its
/// handler runs, which then runs as that caller.
pub(crate) async fn layer(
    State(access): State<Arc<NodeAccess>>,
    req: Request,
    next: Next,
) -> Response {
    match access.check_request(&req) {
        Ok(who) => {
            let caller = Caller {
                who,
                access: access.clone(),
            };
            CALLER.scope(caller, next.run(req)).await
        }
        Err(refused) => *refused,
    }
}

impl headwater_kafka::Authorizer for NodeAccess {
    fn users(&self) -> &Users {
        &self.users
    }

    fn topic(&self, who: &Principal, op: TopicOp, topic: &str) -> Result<(), Denied> {
        self.policy().topic(who, op, topic).map_err(Denied::from)
    }

    fn group(&self, who: &Principal, group: &str) -> Result<(), Denied> {
        self.policy().group(who, group).map_err(Denied::from)
    }

    fn node_wide(&self, who: &Principal, what: &str) -> Result<(), Denied> {
        self.policy().platform_only(who, what).map_err(Denied::from)
    }

    fn refused(&self, who: &Principal, action: &str, target: &str, why: &Denied) {
        self.record_refusal(who, action, target, &why.reason);
    }

    fn sign_in_failed(&self, user: &str, mechanism: &str, peer: &str, why: &str) {
        let target = format!("kafka:{peer}");
        self.record(
            format!("user:{user}"),
            Outcome::SignInFailed,
            mechanism,
            &target,
            why,
        );
    }
}
