//! The domains applied on a node, shared by the node's services.
//!
//! Plan/apply is the one writer; the contract gate, the streams, access control, status and the
//! catalog read it. Keeping the set here, below all of them, is what lets each be built with
//! what it needs at construction instead of being wired to the others afterwards.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::RwLock;

use crate::{DomainSpec, StreamDef};

/// Every applied domain's spec, by domain name.
#[derive(Debug, Default)]
pub struct AppliedDomains {
    specs: RwLock<BTreeMap<String, DomainSpec>>,
    /// Raised on every change, so readers that derive something from the set (an access
    /// policy) can tell whether theirs is still current without comparing specs.
    version: AtomicU64,
}

impl AppliedDomains {
    /// The set holding `specs` (as replayed from the node's store at start).
    pub fn new(specs: impl IntoIterator<Item = DomainSpec>) -> Self {
        AppliedDomains {
            specs: RwLock::new(specs.into_iter().map(|s| (s.domain.clone(), s)).collect()),
            version: AtomicU64::new(0),
        }
    }

    /// Every applied domain, by name.
    pub fn all(&self) -> Vec<DomainSpec> {
        self.specs.read().values().cloned().collect()
    }

    /// The applied spec of `domain`.
    pub fn get(&self, domain: &str) -> Option<DomainSpec> {
        self.specs.read().get(domain).cloned()
    }

    /// Whether `spec` is exactly what is applied for its domain.
    pub fn is_applied(&self, spec: &DomainSpec) -> bool {
        self.specs.read().get(&spec.domain) == Some(spec)
    }

    /// The applied definition of the stream stored in `topic`, with its domain's name.
    pub fn stream(&self, topic: &str) -> Option<(String, StreamDef)> {
        self.specs.read().values().find_map(|d| {
            d.streams
                .iter()
                .find(|s| s.topic == topic)
                .map(|s| (d.domain.clone(), s.clone()))
        })
    }

    /// The domain other than `domain` that declares a stream in `topic`, if one does.
    pub fn other_owner(&self, domain: &str, topic: &str) -> Option<String> {
        self.specs
            .read()
            .values()
            .find(|d| d.domain != domain && d.streams.iter().any(|o| o.topic == topic))
            .map(|d| d.domain.clone())
    }

    /// The domains a plan sees: `planned`, and the applied ones they do not replace.
    pub fn with(&self, planned: &[DomainSpec]) -> Vec<DomainSpec> {
        let mut known = self.specs.read().clone();
        for s in planned {
            known.insert(s.domain.clone(), s.clone());
        }
        known.into_values().collect()
    }

    /// Records `spec` as applied. Only plan/apply calls this, after storing it.
    pub fn insert(&self, spec: DomainSpec) {
        self.specs.write().insert(spec.domain.clone(), spec);
        self.version.fetch_add(1, Ordering::Release);
    }

    /// A number that changes whenever the set does.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use headwater_contracts::Format;

    fn spec(domain: &str, stream: &str) -> DomainSpec {
        DomainSpec {
            domain: domain.into(),
            owners: vec![],
            governance: Default::default(),
            manifest: String::new(),
            streams: vec![StreamDef::new(domain, stream, Format::JsonSchema, "{}")],
            pipelines: Default::default(),
        }
    }

    #[test]
    fn finds_streams_and_their_owner_and_counts_changes() {
        let applied = AppliedDomains::new([spec("payments", "settled")]);
        assert_eq!(
            applied
                .stream("payments.settled")
                .map(|(d, _)| d)
                .as_deref(),
            Some("payments")
        );
        assert_eq!(
            applied
                .other_owner("finance", "payments.settled")
                .as_deref(),
            Some("payments")
        );
        assert_eq!(applied.other_owner("payments", "payments.settled"), None);
        let v = applied.version();
        applied.insert(spec("finance", "totals"));
        assert!(applied.version() > v);
        assert_eq!(applied.all().len(), 2);
        let planned = applied.with(&[spec("payments", "refunds")]);
        assert_eq!(planned.len(), 2);
        assert!(planned.iter().any(|d| d.streams[0].name == "refunds"));
    }
}
