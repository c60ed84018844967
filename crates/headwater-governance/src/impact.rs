//! Contract impact analysis: before a stream's schema changes, who reads the fields it removes
//! or retypes, and whether each would break.
//!
//! Pipelines are judged by the columns their SQL reads (from DataFusion's optimized plan:
//! results, filters, joins and groupings alike) or, without SQL, by the view's key and feature
//! fields; a pipeline breaks when it reads a removed field or its SQL no longer plans over the
//! new contract. Consumer groups and reader domains cannot be looked into, so they are judged by
//! the contract alone: they break if a reader still on the current version cannot read records
//! of the new one (the change is not FORWARD compatible).

use std::collections::{BTreeMap, BTreeSet};

use headwater_contracts::registry::VersionRef;
use headwater_contracts::{check, Compatibility, Contract};
use headwater_domains::{DomainSpec, Output, PipelineSpec, StreamDef};

use headwater_streams::SchemaRegistry;

use crate::{PipelineService, StatusService};

/// The impact lines of changing `s`'s schema to the one it declares; empty when the schema is
/// unchanged, new, or changes no existing field.
pub(crate) async fn of_stream(
    registry: &SchemaRegistry,
    pipelines: &PipelineService,
    status: &StatusService,
    domain: &str,
    s: &StreamDef,
    known: &[DomainSpec],
) -> Vec<String> {
    let subject = format!("{}-value", s.topic);
    let (version, old) = match registry.read().version(&subject, VersionRef::Latest) {
        Ok((v, _, stored)) => (v, stored.contract.clone()),
        Err(_) => return Vec::new(),
    };
    let Ok(new) = Contract::parse(s.format, &s.schema) else {
        return Vec::new();
    };
    if old.text() == new.text() {
        return Vec::new();
    }
    let (before, after): (BTreeMap<_, _>, BTreeMap<_, _>) = (
        old.fields().into_iter().collect(),
        new.fields().into_iter().collect(),
    );
    let removed: BTreeSet<String> = before
        .keys()
        .filter(|f| !after.contains_key(*f))
        .cloned()
        .collect();
    let retyped: BTreeMap<String, String> = before
        .iter()
        .filter_map(|(f, t)| {
            after
                .get(f)
                .filter(|n| *n != t)
                .map(|n| (f.clone(), format!("{t} -> {n}")))
        })
        .collect();
    if removed.is_empty() && retyped.is_empty() {
        return Vec::new();
    }
    let mut what: Vec<String> = removed.iter().map(|f| format!("removes '{f}'")).collect();
    what.extend(retyped.iter().map(|(f, t)| format!("'{f}' {t}")));
    let mut out = vec![format!(
        "{} version {version} -> next: {}",
        s.topic,
        what.join(", ")
    )];
    let forward = check(Compatibility::Forward, &new, &[(version, &old)]).is_empty();
    let verdict_for_opaque = if forward {
        format!("keeps reading: records of the new version are readable with version {version} (FORWARD compatible)")
    } else {
        format!("breaks until it upgrades: records of the new version cannot be read with version {version} (not FORWARD compatible; the stream is {})", s.compatibility)
    };
    let mut unaffected = 0;
    for d in known {
        for (name, p) in d
            .pipelines
            .iter()
            .filter(|(_, p)| p.inputs.contains(&s.topic))
        {
            let full = format!("{}.{name}", d.domain);
            match pipeline_verdict(
                pipelines, p, &s.topic, &old, &new, known, &removed, &retyped,
            )
            .await
            {
                Some(v) => out.push(format!("pipeline {full} {v}")),
                None => unaffected += 1,
            }
        }
    }
    if unaffected > 0 {
        out.push(format!(
            "{unaffected} other pipeline(s) read the stream but none of these fields"
        ));
    }
    if let Ok(st) = status.stream_status(domain, s).await {
        for g in st.subscribers.iter().filter(|g| g.kind == "group") {
            out.push(format!("consumer group {} {verdict_for_opaque}", g.name));
        }
    }
    for r in s.readers.iter().filter(|r| r.as_str() != domain) {
        out.push(format!("reader domain {r} (readers) {verdict_for_opaque}"));
    }
    out
}

/// What happens to pipeline `p` reading `topic` when its contract goes from `old` to `new`;
/// `None` if it reads none of the removed or retyped fields.
#[allow(clippy::too_many_arguments)]
async fn pipeline_verdict(
    pipelines: &PipelineService,
    p: &PipelineSpec,
    topic: &str,
    old: &Contract,
    new: &Contract,
    known: &[DomainSpec],
    removed: &BTreeSet<String>,
    retyped: &BTreeMap<String, String>,
) -> Option<String> {
    let mut contracts = crate::pipelines::input_contracts(known, &p.inputs);
    contracts.insert(topic.to_string(), old.clone());
    let prefix = format!("{topic}.");
    let reads: BTreeSet<String> = match (&p.sql, p.output.target()) {
        (Some(sql), _) => pipelines
            .engine()
            .columns_read(sql, &contracts, p.window.is_some())
            .await
            .ok()?
            .into_iter()
            .filter_map(|c| c.strip_prefix(prefix.as_str()).map(String::from))
            .collect(),
        (None, Ok(Output::View { key, features, .. })) => std::iter::once(key.to_string())
            .chain(features.values().filter_map(|f| f.of.clone()))
            .collect(),
        (None, _) => old.fields().into_iter().map(|(f, _)| f).collect(),
    };
    let gone: Vec<&String> = reads.iter().filter(|f| removed.contains(*f)).collect();
    let changed: Vec<String> = reads
        .iter()
        .filter_map(|f| retyped.get(f).map(|t| format!("'{f}' {t}")))
        .collect();
    if gone.is_empty() && changed.is_empty() {
        return None;
    }
    let uses: Vec<String> = gone
        .iter()
        .map(|f| format!("'{f}' (removed)"))
        .chain(changed.iter().cloned())
        .collect();
    let uses = uses.join(", ");
    if !gone.is_empty() {
        return Some(format!("uses {uses}: breaks"));
    }
    if let Some(sql) = &p.sql {
        contracts.insert(topic.to_string(), new.clone());
        if let Err(e) = pipelines
            .engine()
            .check(sql, &contracts, p.window.is_some())
            .await
        {
            return Some(format!(
                "uses {uses}: breaks, its SQL no longer plans: {}",
                short(&e.to_string())
            ));
        }
    }
    Some(format!("uses {uses}: still plans, check its results"))
}

/// The line of a planning error that says what is wrong (DataFusion's signature errors put it
/// after a page of candidates).
fn short(error: &str) -> String {
    let line = error
        .lines()
        .find(|l| l.contains("No function matches"))
        .or_else(|| error.lines().next())
        .unwrap_or(error);
    line.trim().to_string()
}
