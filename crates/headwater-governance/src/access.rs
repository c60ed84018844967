//! The node's access control when its config has an `[auth]` table: who may sign in (Kafka
//! SASL, HTTP bearer tokens), the decisions of [`AccessPolicy`] over the applied domains, and an
//! audit entry and a counted metric for every refusal and failed sign-in.
//!
//! Kafka requests are checked through [`headwater_kafka::Authorizer`], which this implements; HTTP
//! requests by the server's sign-in layer, which asks [`NodeAccess`] the same questions.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use headwater_auth::{Denied, Principal, TopicOp, Users};
use headwater_domains::audit::Change;
use headwater_domains::{AccessPolicy, AppliedDomains};
use parking_lot::RwLock;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use serde_json::{json, Value};

use crate::sign_in_failures::{kept_name, source_of, SignInFailures, Verdict};
use crate::AuditTrail;

/// Refusals and failed sign-ins counted for `/metrics`, by what was refused: the label set
/// stays small whatever names strangers try.
pub type RefusalCounts = Family<RefusalLabel, Counter>;

/// The labels of [`RefusalCounts`].
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

/// Access control of one node: its principals and the policy derived from the applied domains.
#[derive(Debug)]
pub struct NodeAccess {
    users: Arc<Users>,
    platform: Vec<String>,
    applied: Arc<AppliedDomains>,
    /// The policy of the applied set at a version of it; rebuilt when the set changes.
    policy: RwLock<(u64, Arc<AccessPolicy>)>,
    audit: Arc<AuditTrail>,
    counts: RefusalCounts,
    failures: SignInFailures,
}

impl NodeAccess {
    /// Access control for `users`, deciding over `applied` as it changes; refusals are
    /// recorded in `audit` and counted in `counts`.
    pub fn new(
        users: Users,
        applied: Arc<AppliedDomains>,
        audit: Arc<AuditTrail>,
        counts: RefusalCounts,
    ) -> Arc<NodeAccess> {
        let platform = users.platform().to_vec();
        let version = applied.version();
        let policy = Arc::new(AccessPolicy::new(applied.all(), platform.clone()));
        Arc::new(NodeAccess {
            policy: RwLock::new((version, policy)),
            applied,
            users: Arc::new(users),
            platform,
            audit,
            counts,
            failures: SignInFailures::default(),
        })
    }

    /// The principals that may sign in.
    pub fn users(&self) -> &Arc<Users> {
        &self.users
    }

    /// How long sign-ins from `source` as `user` are refused unchecked, after that name failed
    /// there too often.
    pub fn sign_in_cool_down(&self, source: Option<IpAddr>, user: &str) -> Option<Duration> {
        self.failures.cool_down(source, user, Instant::now())
    }

    /// The decisions over the domains applied now.
    pub fn policy(&self) -> Arc<AccessPolicy> {
        // The version is read before the specs, so a policy built while an apply lands is
        // stored under the older version and rebuilt on the next call.
        let version = self.applied.version();
        {
            let current = self.policy.read();
            if current.0 == version {
                return current.1.clone();
            }
        }
        let fresh = Arc::new(AccessPolicy::new(self.applied.all(), self.platform.clone()));
        *self.policy.write() = (version, fresh.clone());
        fresh
    }

    /// Counts and audits one refusal: `what` was refused (an action, or for a failed sign-in
    /// its mechanism) on `target`, and why; a sampled entry says how many refusals it stands
    /// for (`count`).
    fn record(
        &self,
        principal: String,
        outcome: Outcome,
        what: &str,
        target: &str,
        why: &str,
        count: Option<u64>,
    ) {
        self.count(outcome, what);
        let mut after = match outcome {
            Outcome::Refused => json!({ "action": what, "why": why }),
            Outcome::SignInFailed => json!({ "mechanism": what, "why": why }),
        };
        if let Some(count) = count {
            after["count"] = json!(count);
        }
        let action = outcome.action();
        let domain = target
            .split('.')
            .next()
            .map(str::to_string)
            .filter(|d| self.policy().has_domain(d));
        let change = Change::new(
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

    fn count(&self, outcome: Outcome, what: &str) {
        self.counts
            .get_or_create(&RefusalLabel {
                outcome: outcome.action().to_string(),
                action: what.to_string(),
            })
            .inc();
    }

    /// Records (logs, counts, audits) a refusal told to `who`: `action` on `target`, and why.
    pub fn record_refusal(&self, who: &Principal, action: &str, target: &str, why: &str) {
        tracing::info!(principal = %who.audit_name(), action, target, "refused: {why}");
        self.record(
            who.audit_name(),
            Outcome::Refused,
            action,
            target,
            why,
            None,
        );
    }

    /// Records a request from `source` refused before anyone signed in (no credentials at
    /// all): counted, and audited as failed sign-ins are, sampled per address.
    pub fn record_anonymous_refusal(
        &self,
        action: &str,
        source: Option<IpAddr>,
        target: &str,
        why: &str,
    ) {
        self.record_unsigned(
            crate::audit::ANONYMOUS,
            Outcome::Refused,
            action,
            source,
            target,
            why,
        );
    }

    /// Records a failed sign-in from `source` by `who` (as the audit trail names the claimed
    /// identity, cut short when long) with `mechanism`, at `target` (a peer or a path): always
    /// counted; audited at the 1st, 10th, 100th, ... failure of a minute from the address, each
    /// entry with the number it stands for.
    pub fn record_sign_in_failure(
        &self,
        who: &str,
        mechanism: &str,
        source: Option<IpAddr>,
        target: &str,
        why: &str,
    ) {
        self.record_unsigned(who, Outcome::SignInFailed, mechanism, source, target, why);
    }

    fn record_unsigned(
        &self,
        who: &str,
        outcome: Outcome,
        what: &str,
        source: Option<IpAddr>,
        target: &str,
        why: &str,
    ) {
        match self.failures.failed(source, who, Instant::now()) {
            // `count`: the failures from this address this entry stands for, itself included.
            Verdict::Audit { failures } => {
                self.record(kept_name(who), outcome, what, target, why, Some(failures))
            }
            Verdict::Quiet => self.count(outcome, what),
        }
    }
}

impl headwater_kafka::Authorizer for NodeAccess {
    fn users(&self) -> &Arc<Users> {
        &self.users
    }

    fn topic(&self, who: &Principal, op: TopicOp, topic: &str) -> Result<(), Denied> {
        self.policy().topic(who, op, topic)
    }

    fn group(&self, who: &Principal, group: &str) -> Result<(), Denied> {
        self.policy().group(who, group)
    }

    fn node_wide(&self, who: &Principal, what: &str) -> Result<(), Denied> {
        self.policy().platform_only(who, what)
    }

    fn setting(&self, topic: &str, key: &str) -> Result<(), Denied> {
        self.policy().setting(topic, key)
    }

    fn refused(&self, who: &Principal, action: &str, target: &str, why: &Denied) {
        self.record_refusal(who, action, target, &why.reason);
    }

    fn sign_in_failed(&self, user: &str, mechanism: &str, peer: &str, why: &str) {
        self.record_sign_in_failure(
            &format!("user:{user}"),
            mechanism,
            source_of(peer),
            &format!("kafka:{peer}"),
            why,
        );
    }

    fn sign_in_cool_down(&self, user: &str, peer: &str) -> Option<Duration> {
        NodeAccess::sign_in_cool_down(self, source_of(peer), &format!("user:{user}"))
    }
}
