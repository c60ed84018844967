//! Domains on a node: `plan` says what applying a domain's resolved manifest would change,
//! `apply` does it. Each domain is planned and applied on its own: a domain whose plan has an
//! error changes nothing, and applying one domain never touches another's topics or subjects.
//! Applied domains are events in `_headwater.domains`, replayed at start.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use headwater_contracts::registry::{RegistryEvent, VersionRef};
use headwater_contracts::{check, Contract};
use headwater_domains::{DomainSpec, OnInvalid, StreamDef};
use headwater_kafka::InternalTopic;
use headwater_log::{Log, LogError};
use parking_lot::RwLock;
use serde::Serialize;

use crate::{ContractGate, SchemaRegistry};

const DOMAINS_TOPIC: &str = "_headwater.domains";

/// What planning or applying one domain found.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DomainOutcome {
    pub domain: String,
    pub unchanged: bool,
    pub applied: bool,
    pub changes: Vec<String>,
    pub notes: Vec<String>,
    pub errors: Vec<String>,
    /// For each stream whose schema changes fields: the change, then every reader of those
    /// fields and whether it would break (see [`crate::impact`]).
    pub impact: Vec<String>,
}

#[derive(Debug)]
pub struct DomainService {
    log: Arc<Log>,
    registry: Arc<SchemaRegistry>,
    gate: Arc<ContractGate>,
    topic: InternalTopic,
    applied: RwLock<BTreeMap<String, DomainSpec>>,
    writer: tokio::sync::Mutex<()>,
    pipelines: std::sync::OnceLock<Arc<crate::PipelineService>>,
    audit: std::sync::OnceLock<Arc<crate::AuditTrail>>,
    status: std::sync::OnceLock<Arc<crate::StatusService>>,
    access: std::sync::OnceLock<Arc<crate::NodeAccess>>,
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
) -> Vec<headwater_domains::audit::Change> {
    use serde_json::{json, Value};
    let domain = Some(spec.domain.as_str());
    let mut out = vec![crate::audit::change(
        principal,
        "domain.apply",
        domain,
        &spec.domain,
        before.map_or(Value::Null, |b| json!({ "manifest": b.manifest })),
        json!({ "manifest": spec.manifest, "changes": changes }),
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
            out.push(crate::audit::change(
                principal, "grant", domain, &s.topic, old, new,
            ));
        }
    }
    let old = before.map(|b| &b.pipelines);
    let as_json = |p: Option<&headwater_domains::PipelineSpec>| {
        p.map_or(Value::Null, |p| serde_json::to_value(p).unwrap_or_default())
    };
    for (name, new) in &spec.pipelines {
        let was = old.and_then(|o| o.get(name));
        if was != Some(new) {
            out.push(crate::audit::change(
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
            out.push(crate::audit::change(
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
    pub fn open(
        log: Arc<Log>,
        registry: Arc<SchemaRegistry>,
        gate: Arc<ContractGate>,
    ) -> Result<Self, LogError> {
        let topic = InternalTopic::open(&log, DOMAINS_TOPIC)?;
        let mut applied = BTreeMap::new();
        topic.replay(|_, value| {
            if let Some(spec) = value.and_then(|v| serde_json::from_slice::<DomainSpec>(v).ok()) {
                applied.insert(spec.domain.clone(), spec);
            }
        })?;
        for spec in applied.values() {
            for s in &spec.streams {
                gate.set_rules(&s.topic, s.rules.clone());
                registry.set_owner(&format!("{}-value", s.topic), &spec.domain);
            }
        }
        tracing::info!(domains = applied.len(), "replayed applied domains");
        Ok(DomainService {
            log,
            registry,
            gate,
            topic,
            applied: RwLock::new(applied),
            writer: tokio::sync::Mutex::new(()),
            pipelines: std::sync::OnceLock::new(),
            audit: std::sync::OnceLock::new(),
            status: std::sync::OnceLock::new(),
            access: std::sync::OnceLock::new(),
        })
    }

    /// The applied definition of the stream stored in `topic`, with its domain's name.
    pub fn stream(&self, topic: &str) -> Option<(String, StreamDef)> {
        self.applied.read().values().find_map(|d| {
            d.streams
                .iter()
                .find(|s| s.topic == topic)
                .map(|s| (d.domain.clone(), s.clone()))
        })
    }

    pub fn applied(&self) -> Vec<DomainSpec> {
        self.applied.read().values().cloned().collect()
    }

    fn plan_stream(&self, spec: &DomainSpec, s: &StreamDef, out: &mut DomainOutcome) -> StreamPlan {
        let mut plan = StreamPlan::default();
        let subject = format!("{}-value", s.topic);
        if let Some(owner) = self
            .applied
            .read()
            .values()
            .find(|d| d.domain != spec.domain && d.streams.iter().any(|o| o.topic == s.topic))
        {
            out.errors.push(format!(
                "stream {}: topic is owned by domain '{}'",
                s.topic, owner.domain
            ));
            return plan;
        }
        let validation = match s.on_invalid {
            OnInvalid::Reject => "reject",
            OnInvalid::DeadLetter => "dead-letter",
        };
        let mut wanted: Vec<(String, Option<String>)> =
            vec![("headwater.validation".into(), Some(validation.into()))];
        wanted.push(("retention.ms".into(), s.retention_ms.map(|r| r.to_string())));
        match self.log.topic(&s.topic) {
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
        let reg = self.registry.read();
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
            .applied
            .read()
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
        if s.on_invalid == OnInvalid::DeadLetter && self.log.topic(&dlq(&s.topic)).is_none() {
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
        if self.applied.read().get(&spec.domain) == Some(spec) {
            out.unchanged = true;
            return (out, Vec::new());
        }
        let plans = spec
            .streams
            .iter()
            .map(|s| (s.clone(), self.plan_stream(spec, s, &mut out)))
            .collect();
        if let Some(before) = self.applied.read().get(&spec.domain) {
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

    /// Runs the applied domains' pipelines, and those of every domain applied from now on.
    /// Records every applied domain and deployed or removed pipeline in `audit`.
    pub fn attach_audit(&self, audit: Arc<crate::AuditTrail>) {
        let _ = self.audit.set(audit);
    }

    /// Where plans find the consumer groups a schema change would reach.
    /// Access decisions follow every apply from now on.
    pub fn attach_access(&self, access: Arc<crate::NodeAccess>) {
        access.refresh(self.applied());
        let _ = self.access.set(access);
    }

    pub fn attach_status(&self, status: Arc<crate::StatusService>) {
        let _ = self.status.set(status);
    }

    /// The node's audit trail, once attached.
    pub fn audit(&self) -> Option<&Arc<crate::AuditTrail>> {
        self.audit.get()
    }

    pub fn attach_pipelines(&self, pipelines: Arc<crate::PipelineService>) {
        for spec in self.applied.read().values() {
            pipelines.deploy(&spec.domain, &spec.pipelines);
        }
        let _ = self.pipelines.set(pipelines);
    }

    /// The domains a plan sees: those being planned, and the applied ones they do not replace.
    fn known_with(&self, specs: &[DomainSpec]) -> Vec<DomainSpec> {
        let mut known: BTreeMap<String, DomainSpec> = self.applied.read().clone();
        for s in specs {
            known.insert(s.domain.clone(), s.clone());
        }
        known.into_values().collect()
    }

    /// The domain's plan, pipelines included.
    async fn plan_full(
        &self,
        spec: &DomainSpec,
        known: &[DomainSpec],
    ) -> (DomainOutcome, Vec<(StreamDef, StreamPlan)>) {
        let (mut out, plans) = self.plan_domain(spec);
        if out.unchanged {
            return (out, plans);
        }
        if let Some((_, why)) = self.refused(spec) {
            out.errors.push(format!("refused: {why}"));
        }
        for s in &spec.streams {
            out.impact.extend(
                crate::impact::of_stream(
                    &self.registry,
                    self.pipelines.get().map(|p| &**p),
                    self.status.get().map(|s| &**s),
                    &spec.domain,
                    s,
                    known,
                )
                .await,
            );
        }
        if let Some(p) = self.pipelines.get() {
            let before = self.applied.read().get(&spec.domain).cloned();
            let (changes, errors) = p.plan(spec, before.as_ref(), known).await;
            if !changes.is_empty() {
                out.changes.retain(|c| c != STORED_ONLY);
            }
            out.changes.extend(changes);
            out.errors.extend(errors);
        }
        (out, plans)
    }

    /// Whether the caller of the request being handled may not change `spec`'s domain (on a
    /// node with auth), and why.
    fn refused(&self, spec: &DomainSpec) -> Option<(crate::access::Caller, String)> {
        let caller = crate::access::caller()?;
        let why = caller.access.policy().apply(&caller.who, spec).err()?;
        Some((caller, why))
    }

    pub async fn plan(&self, specs: &[DomainSpec]) -> Vec<DomainOutcome> {
        let known = self.known_with(specs);
        let mut out = Vec::new();
        for s in specs {
            out.push(self.plan_full(s, &known).await.0);
        }
        out
    }

    pub async fn apply(&self, specs: &[DomainSpec], principal: &str) -> Vec<DomainOutcome> {
        let _one_at_a_time = self.writer.lock().await;
        let known = self.known_with(specs);
        let mut outcomes = Vec::new();
        for spec in specs {
            let (mut out, plans) = self.plan_full(spec, &known).await;
            if let (false, Some((caller, why))) = (out.unchanged, self.refused(spec)) {
                caller
                    .access
                    .record_refusal(&caller.who, "apply", &spec.domain, &why);
            } else if let (false, false, Some(caller)) = (
                out.unchanged,
                out.errors.is_empty(),
                crate::access::caller(),
            ) {
                // Refused for what it would do (a pii field exposed, SQL that does not plan):
                // an attempted change, on the record with its reasons.
                if let Some(audit) = self.audit.get() {
                    let after = serde_json::json!({ "errors": out.errors });
                    let change = crate::audit::change(
                        &caller.who.audit_name(),
                        "apply.refused",
                        Some(&spec.domain),
                        &spec.domain,
                        serde_json::Value::Null,
                        after,
                    );
                    audit.record(change).await;
                }
            }
            if out.unchanged || !out.errors.is_empty() {
                outcomes.push(out);
                continue;
            }
            let before = self.applied.read().get(&spec.domain).cloned();
            if let Err(e) = self.execute(spec, plans, principal).await {
                out.errors
                    .push(format!("applying stopped: {e}; run apply again to finish"));
                outcomes.push(out);
                continue;
            }
            out.applied = true;
            if let Some(p) = self.pipelines.get() {
                p.deploy(&spec.domain, &spec.pipelines);
            }
            if let Some(audit) = self.audit.get() {
                for change in applied_changes(principal, before.as_ref(), spec, &out.changes) {
                    audit.record(change).await;
                }
            }
            tracing::info!(domain = %spec.domain, changes = out.changes.len(), "applied domain");
            outcomes.push(out);
        }
        outcomes
    }

    async fn execute(
        &self,
        spec: &DomainSpec,
        plans: Vec<(StreamDef, StreamPlan)>,
        principal: &str,
    ) -> Result<(), String> {
        for (s, plan) in plans {
            let subject = format!("{}-value", s.topic);
            // Before the registry changes, so their audit entries name the domain.
            self.registry.set_owner(&subject, &spec.domain);
            if plan.create {
                let configs = plan
                    .configs
                    .iter()
                    .filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v)))
                    .collect();
                self.log
                    .create_topic(&s.topic, s.partitions, configs)
                    .map_err(|e| e.to_string())?;
            } else {
                if let Some(n) = plan.grow_to {
                    self.log
                        .create_partitions(&s.topic, n, false)
                        .map_err(|e| e.to_string())?;
                }
                if !plan.configs.is_empty() {
                    self.log
                        .alter_topic_config(&s.topic, &plan.configs, false)
                        .map_err(|e| e.to_string())?;
                }
            }
            if plan.create_dlq {
                let mut configs = BTreeMap::new();
                if let Some(r) = s.retention_ms {
                    configs.insert("retention.ms".to_string(), r.to_string());
                }
                self.log
                    .create_topic(&dlq(&s.topic), 1, configs)
                    .map_err(|e| e.to_string())?;
            }
            if plan.compatibility {
                let event = RegistryEvent::ConfigSet {
                    subject: Some(subject.clone()),
                    compatibility: Some(s.compatibility),
                };
                self.registry
                    .record_as(principal, event)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            if plan.register {
                let (format, text) = (s.format, s.schema.clone());
                self.registry
                    .change_as(principal, |reg| {
                        match reg.plan_register(&subject, format, &text)? {
                            Ok(event) => Ok((Some(event), ())),
                            Err(_) => Ok((None, ())),
                        }
                    })
                    .await
                    .map_err(|e| e.to_string())?;
            }
            self.gate.set_rules(&s.topic, s.rules.clone());
        }
        let value = serde_json::to_vec(spec).map_err(|e| e.to_string())?;
        self.topic
            .append(vec![(
                Some(Bytes::from(spec.domain.clone())),
                Some(Bytes::from(value)),
            )])
            .await
            .map_err(|e| e.to_string())?;
        self.applied
            .write()
            .insert(spec.domain.clone(), spec.clone());
        if let Some(access) = self.access.get() {
            access.refresh(self.applied());
        }
        Ok(())
    }
}
