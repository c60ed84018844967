//! Domains on a node: `plan` says what applying a domain's resolved manifest would change,
//! `apply` does it. Each domain is planned and applied on its own: a domain whose plan has an
//! error changes nothing, and applying one domain never touches another's topics or subjects.
//! Applied domains are events in `_headwater.domains`, replayed at start ([`DomainStore`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use headwater_contracts::registry::{RegistryEvent, VersionRef};
use headwater_contracts::{check, Contract};
use headwater_domains::audit::Change;
use headwater_domains::{AppliedDomains, DomainSpec, OnInvalid, StreamDef};
use headwater_kafka::{InternalTopic, StateError};
use headwater_log::Log;
use headwater_streams::{ContractGate, SchemaRegistry};
use serde::Serialize;

use crate::{Actor, ApplyError, AuditTrail, NodeAccess, PipelineService, StatusService};

/// The internal topic holding every applied domain's spec, keyed by domain.
pub const DOMAINS_TOPIC: &str = "_headwater.domains";

/// The applied domains as stored in [`DOMAINS_TOPIC`]: replayed whole at start, then appended
/// by every apply.
#[derive(Debug)]
pub struct DomainStore {
    topic: InternalTopic,
    applied: Arc<AppliedDomains>,
}

impl DomainStore {
    /// Replays the applied domains from `log`. A record that does not read as a spec (written
    /// by a newer node, say) is skipped, and so is a spec that breaks the rules every applied
    /// spec now meets (stored by a node from before those rules): it is logged, not served.
    pub fn open(log: &Arc<Log>) -> Result<Self, StateError> {
        Self::over(InternalTopic::open(log, DOMAINS_TOPIC)?)
    }

    /// Replays the applied domains from `topic` (`_headwater.domains`, on the embedded log or
    /// a cluster), as [`DomainStore::open`] does.
    pub fn over(topic: InternalTopic) -> Result<Self, StateError> {
        let mut specs = BTreeMap::new();
        topic.replay(|_, value| {
            let Some(spec) = value.and_then(|v| serde_json::from_slice::<DomainSpec>(v).ok())
            else {
                return;
            };
            let problems = spec.problems();
            if problems.is_empty() {
                specs.insert(spec.domain.clone(), spec);
            } else {
                tracing::error!(
                    domain = %spec.domain,
                    "an applied domain in {DOMAINS_TOPIC} is not served: {}; apply its manifest again",
                    problems.join("; ")
                );
            }
        })?;
        tracing::info!(domains = specs.len(), "replayed applied domains");
        Ok(DomainStore {
            topic,
            applied: Arc::new(AppliedDomains::new(specs.into_values())),
        })
    }

    /// The applied set, shared with every service that reads it.
    pub fn applied(&self) -> &Arc<AppliedDomains> {
        &self.applied
    }
}

/// What plan/apply changes or consults besides its store: the node's parts, passed in at
/// construction.
#[derive(Debug)]
pub struct ApplyTo {
    /// Where streams and dead-letter streams are created and configured.
    pub log: Arc<Log>,
    /// Where contracts are registered.
    pub registry: Arc<SchemaRegistry>,
    /// Where quality rules take effect.
    pub gate: Arc<ContractGate>,
    /// Plans SQL and deploys pipelines.
    pub pipelines: Arc<PipelineService>,
    /// Consumer groups a schema change would reach.
    pub status: Arc<StatusService>,
    /// Where every applied change is recorded.
    pub audit: Arc<AuditTrail>,
    /// On a node with auth: who may change which domain.
    pub access: Option<Arc<NodeAccess>>,
}

/// What planning or applying one domain found.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DomainOutcome {
    /// The domain's name.
    pub domain: String,
    /// Its manifest is exactly what is applied: nothing to do.
    pub unchanged: bool,
    /// Applying it went through.
    pub applied: bool,
    /// What applying changes (`+ create stream ...`, `~ set ...`), one line each.
    pub changes: Vec<String>,
    /// What a user should know but need not act on.
    pub notes: Vec<String>,
    /// Why it cannot be applied; nothing changes while there is one.
    pub errors: Vec<String>,
    /// For each stream whose schema changes fields: the change, then every reader of those
    /// fields and whether it would break (a pipeline judged by the columns it reads, a consumer
    /// group or reader domain by the contract alone).
    pub impact: Vec<String>,
}

/// Plan and apply of domains on one node.
#[derive(Debug)]
pub struct DomainService {
    store: DomainStore,
    to: ApplyTo,
    writer: tokio::sync::Mutex<()>,
}

/// What must happen to one stream, computed before anything changes.
#[derive(Debug, Default)]
struct StreamPlan {
    create: bool,
    grow_to: Option<i32>,
    configs: Vec<(String, Option<String>)>,
    compatibility: bool,
    register: bool,
    create_dlq: bool,
}

/// The change listed when nothing but the manifest's text differs.
const STORED_ONLY: &str = "~ update the stored manifest";

fn dlq(topic: &str) -> String {
    format!("{topic}.dlq")
}

/// The audit entries of applying `spec` over `before`: the domain's manifest, then each
/// pipeline deployed, changed or removed.
fn applied_changes(
    principal: &str,
    before: Option<&DomainSpec>,
    spec: &DomainSpec,
    changes: &[String],
) -> Vec<Change> {
    use serde_json::{json, Value};
    let domain = Some(spec.domain.as_str());
    let mut out = vec![Change::new(
        principal,
        "domain.apply",
        domain,
        &spec.domain,
        before.map_or(Value::Null, |b| json!({ "manifest": b.manifest })),
        json!({ "manifest": spec.manifest, "applied": spec, "changes": changes }),
    )];
    for s in &spec.streams {
        let was = before.and_then(|b| b.streams.iter().find(|o| o.name == s.name));
        let grants = |d: Option<&StreamDef>| {
            d.map_or(
                Value::Null,
                |d| json!({ "readers": d.readers, "grants": d.grants }),
            )
        };
        let (old, new) = (grants(was), grants(Some(s)));
        if old != new {
            out.push(Change::new(principal, "grant", domain, &s.topic, old, new));
        }
    }
    let old = before.map(|b| &b.pipelines);
    let as_json = |p: Option<&headwater_domains::PipelineSpec>| {
        p.map_or(Value::Null, |p| serde_json::to_value(p).unwrap_or_default())
    };
    for (name, new) in &spec.pipelines {
        let was = old.and_then(|o| o.get(name));
        if was != Some(new) {
            out.push(Change::new(
                principal,
                "pipeline.deploy",
                domain,
                &format!("{}.{name}", spec.domain),
                as_json(was),
                as_json(Some(new)),
            ));
        }
    }
    for (name, was) in old.into_iter().flatten() {
        if !spec.pipelines.contains_key(name) {
            out.push(Change::new(
                principal,
                "pipeline.remove",
                domain,
                &format!("{}.{name}", spec.domain),
                as_json(Some(was)),
                Value::Null,
            ));
        }
    }
    out
}

impl DomainService {
    /// Plan/apply over `store`, changing and consulting `to`. The applied domains' quality
    /// rules take effect and their subjects are marked as theirs; their pipelines start with
    /// [`DomainService::start_pipelines`].
    pub fn new(store: DomainStore, to: ApplyTo) -> Self {
        for spec in store.applied.all() {
            for s in &spec.streams {
                to.gate.set_rules(&s.topic, s.rules.clone());
                to.registry
                    .set_owner(&format!("{}-value", s.topic), &spec.domain);
            }
        }
        DomainService {
            store,
            to,
            writer: tokio::sync::Mutex::new(()),
        }
    }

    /// Starts every applied domain's pipelines that applied state admits (readers and grants
    /// checked again); the rest are logged and left stopped.
    pub async fn start_pipelines(&self) {
        let applied = self.store.applied.all();
        for spec in &applied {
            self.to.pipelines.deploy(spec, &applied).await;
        }
    }

    /// The applied set this service writes.
    pub fn applied_domains(&self) -> &Arc<AppliedDomains> {
        &self.store.applied
    }

    /// The applied definition of the stream stored in `topic`, with its domain's name.
    pub fn stream(&self, topic: &str) -> Option<(String, StreamDef)> {
        self.store.applied.stream(topic)
    }

    /// Every applied domain.
    pub fn applied(&self) -> Vec<DomainSpec> {
        self.store.applied.all()
    }

    fn plan_stream(&self, spec: &DomainSpec, s: &StreamDef, out: &mut DomainOutcome) -> StreamPlan {
        let mut plan = StreamPlan::default();
        let subject = format!("{}-value", s.topic);
        if let Some(owner) = self.store.applied.other_owner(&spec.domain, &s.topic) {
            out.errors.push(format!(
                "stream {}: topic is owned by domain '{owner}'",
                s.topic
            ));
            return plan;
        }
        // The topic configs the manifest sets (partitions are grown below, not set).
        let wanted: Vec<(String, Option<String>)> = s
            .managed_settings()
            .into_iter()
            .filter(|m| m.key != "partitions")
            .map(|m| (m.key.to_string(), m.value))
            .collect();
        match self.to.log.topic(&s.topic) {
            None => {
                plan.create = true;
                let retention = s
                    .retention_ms
                    .map(|r| format!(", retention {r} ms"))
                    .unwrap_or_default();
                out.changes.push(format!(
                    "+ create stream {} ({} partitions{retention}, records validated)",
                    s.topic, s.partitions
                ));
                plan.configs = wanted;
            }
            Some(t) => {
                let have = t.partitions().len() as i32;
                if s.partitions > have {
                    plan.grow_to = Some(s.partitions);
                    out.changes.push(format!(
                        "~ grow {} from {have} to {} partitions",
                        s.topic, s.partitions
                    ));
                } else if s.partitions < have {
                    out.errors.push(format!("stream {}: partitions cannot shrink from {have} to {} (records are keyed to partitions); keep {have} or more", s.topic, s.partitions));
                }
                let overrides = t.overrides();
                for (k, v) in wanted {
                    if overrides.get(&k) != v.as_ref() {
                        out.changes.push(format!(
                            "~ set {} {k} = {}",
                            s.topic,
                            v.clone().unwrap_or_else(|| "default".into())
                        ));
                        plan.configs.push((k, v));
                    }
                }
            }
        }
        let reg = self.to.registry.read();
        if reg.subject_compatibility(&subject) != Some(s.compatibility) {
            plan.compatibility = true;
            out.changes
                .push(format!("~ set {subject} compatibility {}", s.compatibility));
        }
        let new = match Contract::parse(s.format, &s.schema) {
            Ok(c) => c,
            Err(e) => {
                out.errors.push(format!("stream {}: {e}", s.topic));
                return plan;
            }
        };
        if reg.lookup(&subject, s.format, &s.schema).is_err() {
            let versions = reg.versions(&subject, false).unwrap_or_default();
            let previous: Vec<(u32, Contract)> = versions
                .iter()
                .filter_map(|v| {
                    reg.version(&subject, VersionRef::Number(*v))
                        .ok()
                        .map(|(v, _, st)| (v, st.contract.clone()))
                })
                .collect();
            let refs: Vec<(u32, &Contract)> = previous.iter().map(|(v, c)| (*v, c)).collect();
            let problems = check(s.compatibility, &new, &refs);
            if problems.is_empty() {
                plan.register = true;
                let next = versions.iter().max().copied().unwrap_or(0) + 1;
                let verdict = if previous.is_empty() {
                    "first version".to_string()
                } else {
                    format!("compatible under {}", s.compatibility)
                };
                out.changes
                    .push(format!("+ register {subject} version {next} ({verdict})"));
            } else {
                for p in problems {
                    out.errors.push(format!("stream {}: {p}", s.topic));
                }
            }
        }
        let before = self
            .store
            .applied
            .get(&spec.domain)
            .and_then(|d| d.streams.iter().find(|o| o.topic == s.topic).cloned());
        if before.as_ref().map(|b| &b.rules) != Some(&s.rules) && !s.rules.is_empty() {
            out.changes.push(format!(
                "~ set {} quality rules: {}",
                s.topic,
                s.rules
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if before.as_ref().map(|b| &b.readers) != Some(&s.readers) {
            out.changes.push(format!(
                "~ set {} readers: {}",
                s.topic,
                if s.readers.is_empty() {
                    "owner only".to_string()
                } else {
                    s.readers.join(", ")
                }
            ));
        }
        if s.on_invalid == OnInvalid::DeadLetter && self.to.log.topic(&dlq(&s.topic)).is_none() {
            plan.create_dlq = true;
            out.changes
                .push(format!("+ create dead-letter stream {}", dlq(&s.topic)));
        }
        plan
    }

    fn plan_domain(&self, spec: &DomainSpec) -> (DomainOutcome, Vec<(StreamDef, StreamPlan)>) {
        let mut out = DomainOutcome {
            domain: spec.domain.clone(),
            unchanged: false,
            applied: false,
            changes: Vec::new(),
            notes: Vec::new(),
            errors: Vec::new(),
            impact: Vec::new(),
        };
        let problems = spec.problems();
        if !problems.is_empty() {
            out.errors = problems;
            return (out, Vec::new());
        }
        if self.store.applied.is_applied(spec) {
            out.unchanged = true;
            return (out, Vec::new());
        }
        let plans = spec
            .streams
            .iter()
            .map(|s| (s.clone(), self.plan_stream(spec, s, &mut out)))
            .collect();
        if let Some(before) = self.store.applied.get(&spec.domain) {
            for old in before
                .streams
                .iter()
                .filter(|o| !spec.streams.iter().any(|s| s.topic == o.topic))
            {
                out.notes.push(format!(
                    "{} is no longer declared; its topic and records are kept",
                    old.topic
                ));
            }
        }
        if out.changes.is_empty() {
            out.changes.push(STORED_ONLY.into());
        }
        (out, plans)
    }

    /// The domain's plan, pipelines included.
    async fn plan_full(
        &self,
        spec: &DomainSpec,
        known: &[DomainSpec],
        by: &Actor,
    ) -> (DomainOutcome, Vec<(StreamDef, StreamPlan)>) {
        let (mut out, plans) = self.plan_domain(spec);
        if out.unchanged {
            return (out, plans);
        }
        if let Some((_, _, why)) = self.refused(spec, by) {
            out.errors.push(format!("refused: {why}"));
        }
        for s in &spec.streams {
            out.impact.extend(
                crate::impact::of_stream(
                    &self.to.registry,
                    &self.to.pipelines,
                    &self.to.status,
                    &spec.domain,
                    s,
                    known,
                )
                .await,
            );
        }
        let before = self.store.applied.get(&spec.domain);
        let (changes, errors) = self.to.pipelines.plan(spec, before.as_ref(), known).await;
        if !changes.is_empty() {
            out.changes.retain(|c| c != STORED_ONLY);
        }
        out.changes.extend(changes);
        out.errors.extend(errors);
        (out, plans)
    }

    /// Whether `by` may not change `spec`'s domain (on a node with auth), and why.
    fn refused<'a>(
        &'a self,
        spec: &DomainSpec,
        by: &'a Actor,
    ) -> Option<(&'a NodeAccess, &'a headwater_auth::Principal, String)> {
        let access = self.to.access.as_deref()?;
        let who = by.principal()?;
        let why = access.policy().apply(who, spec).err()?.reason;
        Some((access, who, why))
    }

    /// Plans `specs` in rounds, each against the applied domains plus the specs accepted in
    /// earlier rounds, until a round accepts no more. A domain reading another's new stream is
    /// so accepted once that domain is, whatever the order of the request, while a refused spec
    /// never becomes known to another: only what is applied, or would be, decides readers and
    /// grants. Returns the accepted specs' indexes, in the order they can be applied.
    async fn acceptance_order(&self, specs: &[DomainSpec], by: &Actor) -> Vec<usize> {
        let mut accepted: Vec<usize> = Vec::new();
        loop {
            let before = accepted.len();
            for (i, spec) in specs.iter().enumerate() {
                if accepted.contains(&i) {
                    continue;
                }
                let mut planned: Vec<DomainSpec> =
                    accepted.iter().map(|&a| specs[a].clone()).collect();
                planned.push(spec.clone());
                let known = self.store.applied.with(&planned);
                let (out, _) = self.plan_full(spec, &known, by).await;
                if out.errors.is_empty() {
                    accepted.push(i);
                }
            }
            if accepted.len() == before {
                return accepted;
            }
        }
    }

    /// What applying each of `specs` would change, and why it may not, as `by` asks it.
    pub async fn plan(&self, specs: &[DomainSpec], by: &Actor) -> Vec<DomainOutcome> {
        let accepted = self.acceptance_order(specs, by).await;
        let known: Vec<DomainSpec> = accepted.iter().map(|&i| specs[i].clone()).collect();
        let mut out = Vec::new();
        for (i, spec) in specs.iter().enumerate() {
            // A refused spec is planned against what would be applied without it, to say why.
            let mut planned = known.clone();
            if !accepted.contains(&i) {
                planned.push(spec.clone());
            }
            let known = self.store.applied.with(&planned);
            out.push(self.plan_full(spec, &known, by).await.0);
        }
        out
    }

    /// Applies each of `specs` on behalf of `by`: a domain whose plan has an error, or that
    /// `by` may not change, is left as it was. Domains are applied in an order where each comes
    /// after those it reads; outcomes come back in the request's order.
    pub async fn apply(&self, specs: &[DomainSpec], by: &Actor) -> Vec<DomainOutcome> {
        let _one_at_a_time = self.writer.lock().await;
        let accepted = self.acceptance_order(specs, by).await;
        let refused = (0..specs.len()).filter(|i| !accepted.contains(i));
        let mut outcomes: Vec<(usize, DomainOutcome)> = Vec::new();
        for i in accepted.iter().copied().chain(refused) {
            outcomes.push((i, self.apply_one(&specs[i], by).await));
        }
        outcomes.sort_by_key(|(i, _)| *i);
        outcomes.into_iter().map(|(_, o)| o).collect()
    }

    /// Plans `spec` against the applied domains (with it in place of its applied version) and
    /// applies it if nothing stands in the way.
    async fn apply_one(&self, spec: &DomainSpec, by: &Actor) -> DomainOutcome {
        let principal = by.audit_name();
        let known = self.store.applied.with(std::slice::from_ref(spec));
        let (mut out, plans) = self.plan_full(spec, &known, by).await;
        if let (false, Some((access, who, why))) = (out.unchanged, self.refused(spec, by)) {
            access.record_refusal(who, "apply", &spec.domain, &why);
        } else if let (false, false, true, Some(who)) = (
            out.unchanged,
            out.errors.is_empty(),
            self.to.access.is_some(),
            by.principal(),
        ) {
            // Refused for what it would do (a pii field exposed, SQL that does not plan):
            // an attempted change, on the record with its reasons.
            let after = serde_json::json!({ "errors": out.errors });
            let change = Change::new(
                &who.audit_name(),
                "apply.refused",
                Some(&spec.domain),
                &spec.domain,
                serde_json::Value::Null,
                after,
            );
            self.to.audit.record(change).await;
        }
        if out.unchanged || !out.errors.is_empty() {
            return out;
        }
        let before = self.store.applied.get(&spec.domain);
        if let Err(e) = self.execute(spec, plans, &principal).await {
            out.errors
                .push(format!("applying stopped: {e}; run apply again to finish"));
            return out;
        }
        out.applied = true;
        let applied = self.store.applied.all();
        for refusal in self.to.pipelines.deploy(spec, &applied).await {
            out.notes.push(format!("not running: {refusal}"));
        }
        // Readers and grants of this domain's streams may have changed under the pipelines of
        // others that read them: those are checked again (and stopped if no longer admitted).
        let topics: Vec<&str> = spec.streams.iter().map(|s| s.topic.as_str()).collect();
        for other in applied.iter().filter(|d| d.domain != spec.domain) {
            let reads = other
                .pipelines
                .values()
                .any(|p| p.inputs.iter().any(|i| topics.contains(&i.as_str())));
            if reads {
                self.to.pipelines.deploy(other, &applied).await;
            }
        }
        for change in applied_changes(&principal, before.as_ref(), spec, &out.changes) {
            self.to.audit.record(change).await;
        }
        tracing::info!(domain = %spec.domain, changes = out.changes.len(), "applied domain");
        out
    }

    async fn execute(
        &self,
        spec: &DomainSpec,
        plans: Vec<(StreamDef, StreamPlan)>,
        principal: &str,
    ) -> Result<(), ApplyError> {
        for (s, plan) in plans {
            let subject = format!("{}-value", s.topic);
            // Before the registry changes, so their audit entries name the domain.
            self.to.registry.set_owner(&subject, &spec.domain);
            if plan.create {
                let configs = plan
                    .configs
                    .iter()
                    .filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v)))
                    .collect();
                self.to.log.create_topic(&s.topic, s.partitions, configs)?;
            } else {
                if let Some(n) = plan.grow_to {
                    self.to.log.create_partitions(&s.topic, n, false)?;
                }
                if !plan.configs.is_empty() {
                    self.to
                        .log
                        .alter_topic_config(&s.topic, &plan.configs, false)?;
                }
            }
            if plan.create_dlq {
                let mut configs = BTreeMap::new();
                if let Some(r) = s.retention_ms {
                    configs.insert("retention.ms".to_string(), r.to_string());
                }
                self.to.log.create_topic(&dlq(&s.topic), 1, configs)?;
            }
            if plan.compatibility {
                let event = RegistryEvent::ConfigSet {
                    subject: Some(subject.clone()),
                    compatibility: Some(s.compatibility),
                };
                self.to.registry.record(principal, event).await?;
            }
            if plan.register {
                let (format, text) = (s.format, s.schema.clone());
                self.to
                    .registry
                    .change(principal, |reg| {
                        match reg.plan_register(&subject, format, &text)? {
                            Ok(event) => Ok((Some(event), ())),
                            Err(_) => Ok((None, ())),
                        }
                    })
                    .await?;
            }
            self.to.gate.set_rules(&s.topic, s.rules.clone());
        }
        self.store
            .topic
            .append_json(Some(&spec.domain), spec)
            .await?;
        self.store.applied.insert(spec.clone());
        Ok(())
    }
}
