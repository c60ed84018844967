//! Access derived from ownership: who may produce to, read, administer a domain's streams and
//! use its consumer groups, from the applied manifests alone. No ACLs to keep in step: a
//! domain's `owners` and each stream's `readers` are the grants.
//!
//! - A domain's topics are `<domain>.*`. Its owners produce to them and administer them; the
//!   domains a stream's `readers` list (or `*`) read it; the owners read everything of theirs,
//!   dead letters included.
//! - A consumer group belongs to the domain its name starts with (`finance.reports`); the
//!   domain's owners use it.
//! - Changes to a `governance: central` domain (applying its manifest, its schemas, topic
//!   administration) need a platform principal; operations (runs, rebuilds, replays) stay
//!   with the owners.
//! - Platform principals may do everything; internal topics (`_headwater.*`) and topics of no
//!   applied domain are theirs alone.
//!
//! Every refusal says which grant is missing and who can give it.

use std::collections::BTreeMap;

use headwater_auth::Principal;
pub use headwater_auth::{Denied, TopicOp};

use crate::{DomainSpec, Governance, StreamDef};

/// A refusal saying `reason`.
fn deny(reason: String) -> Result<(), Denied> {
    Err(Denied::new(reason))
}

/// The applied domains, as access decisions need them.
#[derive(Debug, Clone, Default)]
pub struct AccessPolicy {
    domains: BTreeMap<String, DomainSpec>,
    platform: Vec<String>,
}

impl AccessPolicy {
    /// The policy of the `applied` domains. `platform` lists the platform identities only to
    /// name them in refusals; whether a principal is one is its own `platform` flag.
    pub fn new(applied: impl IntoIterator<Item = DomainSpec>, platform: Vec<String>) -> Self {
        AccessPolicy {
            domains: applied.into_iter().map(|d| (d.domain.clone(), d)).collect(),
            platform,
        }
    }

    /// Whether `domain` is applied.
    pub fn has_domain(&self, domain: &str) -> bool {
        self.domains.contains_key(domain)
    }

    fn owns(who: &Principal, d: &DomainSpec) -> bool {
        who.identities().any(|i| d.owners.contains(&i))
    }

    /// The domains `who` owns, for messages.
    pub fn owned(&self, who: &Principal) -> Vec<&str> {
        self.domains
            .values()
            .filter(|d| Self::owns(who, d))
            .map(|d| d.domain.as_str())
            .collect()
    }

    fn platform_names(&self) -> String {
        if self.platform.is_empty() {
            "none is configured; add one to `platform` under [auth]".to_string()
        } else {
            self.platform.join(", ")
        }
    }

    fn owners_of(d: &DomainSpec) -> String {
        if d.owners.is_empty() {
            "it lists none".into()
        } else {
            d.owners.join(", ")
        }
    }

    fn who(&self, who: &Principal) -> String {
        let owned = self.owned(who);
        if owned.is_empty() {
            format!("{} (owns no domain)", who.audit_name())
        } else {
            format!("{} (owns {})", who.audit_name(), owned.join(", "))
        }
    }

    /// The domain and declared stream a topic belongs to.
    fn locate(&self, topic: &str) -> Option<(&DomainSpec, Option<&StreamDef>)> {
        let (domain, _) = topic.split_once('.')?;
        let d = self.domains.get(domain)?;
        Some((d, d.streams.iter().find(|s| s.topic == topic)))
    }

    /// Using `topic` for `op`: producing is for the domain's owners; reading and describing
    /// for the owners and the stream's `readers` (dead letters and undeclared topics of a
    /// domain: its owners alone); administering for the owners, or the platform when the domain
    /// is central. Internal topics and topics of no applied domain are the platform's.
    pub fn topic(&self, who: &Principal, op: TopicOp, topic: &str) -> Result<(), Denied> {
        if who.platform {
            return Ok(());
        }
        let Some((d, stream)) = self.locate(topic).filter(|_| !topic.starts_with('_')) else {
            return deny(format!(
                "{} may not use topic '{topic}': it belongs to no applied domain, so only a platform principal may ({}); declare it as a stream in a domain's manifest",
                self.who(who),
                self.platform_names()
            ));
        };
        let owner = Self::owns(who, d);
        match op {
            TopicOp::Produce if owner => Ok(()),
            TopicOp::Produce => deny(format!(
                "{} may not produce to {topic}: only owners of {} ({}) may",
                self.who(who),
                d.domain,
                Self::owners_of(d)
            )),
            TopicOp::Consume | TopicOp::Describe if owner => Ok(()),
            TopicOp::Consume | TopicOp::Describe => match stream {
                Some(s) if self.reads(who, s) => Ok(()),
                Some(s) => deny(format!(
                    "{} may not read {topic}: its readers are [{}]; an owner of {} ({}) must add your domain to `readers` of stream {} in the {} manifest",
                    self.who(who),
                    s.readers.join(", "),
                    d.domain,
                    Self::owners_of(d),
                    s.name,
                    d.domain
                )),
                None => deny(format!(
                    "{} may not read {topic}: it is not a declared stream of {}, so only its owners ({}) may",
                    self.who(who),
                    d.domain,
                    Self::owners_of(d)
                )),
            },
            TopicOp::Administer => self.change(who, d),
        }
    }

    /// Changing `key` of `topic` outside its manifest (over Kafka): refused for the settings
    /// a declared stream's manifest sets (`partitions`, `retention.ms`, and
    /// `headwater.validation` from `quality.on_invalid`), whoever asks: `headwater apply` would
    /// set them back, and a gate switched off where the manifest says records are validated
    /// breaks the stream's promise to its readers.
    pub fn setting(&self, topic: &str, key: &str) -> Result<(), Denied> {
        let Some((d, Some(s))) = self.locate(topic) else {
            return Ok(());
        };
        match s.managed_settings().into_iter().find(|m| m.key == key) {
            Some(m) => deny(format!(
                "{key} of {topic} is set by domain {}'s manifest (`{}` of stream {}); change it there and run `headwater apply`",
                d.domain, m.field, s.name
            )),
            None => Ok(()),
        }
    }

    fn reads(&self, who: &Principal, s: &StreamDef) -> bool {
        s.readers.iter().any(|r| {
            r == "*"
                || self
                    .domains
                    .get(r)
                    .is_some_and(|reader| Self::owns(who, reader))
        })
    }

    /// Changing `d` (its manifest, schemas, topics): its owners, or the platform when central.
    fn change(&self, who: &Principal, d: &DomainSpec) -> Result<(), Denied> {
        if who.platform {
            return Ok(());
        }
        if d.governance == Governance::Central {
            return deny(format!(
                "{} may not change {}: the domain is centrally governed, so its changes need a platform principal ({})",
                self.who(who),
                d.domain,
                self.platform_names()
            ));
        }
        if Self::owns(who, d) {
            Ok(())
        } else {
            deny(format!(
                "{} may not change {}: only its owners ({}) may",
                self.who(who),
                d.domain,
                Self::owners_of(d)
            ))
        }
    }

    /// Applying `new`: the current manifest's owners decide (the new one could name anyone),
    /// and a new domain may only be created by a principal it names as an owner.
    pub fn apply(&self, who: &Principal, new: &DomainSpec) -> Result<(), Denied> {
        if let Some(current) = self.domains.get(&new.domain) {
            return self.change(who, current);
        }
        if who.platform {
            return Ok(());
        }
        if new.governance == Governance::Central {
            return self.change(who, new);
        }
        if Self::owns(who, new) {
            return Ok(());
        }
        deny(format!(
            "{} may not create domain {}: its manifest's owners ({}) do not include you; add one of your identities ({}) to `owners`",
            self.who(who),
            new.domain,
            Self::owners_of(new),
            who.identities().collect::<Vec<_>>().join(", ")
        ))
    }

    /// Operating a domain's pipelines and reading its tables and views: its owners.
    pub fn operate(&self, who: &Principal, domain: &str) -> Result<(), Denied> {
        if who.platform {
            return Ok(());
        }
        match self.domains.get(domain) {
            Some(d) if Self::owns(who, d) => Ok(()),
            Some(d) => deny(format!(
                "{} may not use {domain}'s pipelines, tables or views: only its owners ({}) may",
                self.who(who),
                Self::owners_of(d)
            )),
            None => deny(format!("domain '{domain}' is not applied")),
        }
    }

    /// Reading `<domain>.<name>` in SQL: a stream by its readers, a table by its domain's owners.
    pub fn read_relation(&self, who: &Principal, name: &str) -> Result<(), Denied> {
        match self.locate(name) {
            Some((_, Some(_))) => self.topic(who, TopicOp::Consume, name),
            _ => {
                let domain = name.split('.').next().unwrap_or(name);
                self.operate(who, domain)
            }
        }
    }

    /// Using consumer group `group`: the owners of the domain it is named for.
    pub fn group(&self, who: &Principal, group: &str) -> Result<(), Denied> {
        if who.platform {
            return Ok(());
        }
        let domain = group.split('.').next().unwrap_or(group);
        if group.contains('.') && self.domains.get(domain).is_some_and(|d| Self::owns(who, d)) {
            return Ok(());
        }
        let fix = match self.owned(who).first() {
            Some(mine) => format!("name it '{mine}.{group}'"),
            None => "add one of your identities to a domain's `owners`".to_string(),
        };
        deny(format!(
            "{} may not use consumer group '{group}': a group belongs to the domain its name starts with (<domain>.<name>) and only that domain's owners use it; {fix}",
            self.who(who)
        ))
    }

    /// Node-wide settings (the registry's global config and mode): the platform.
    pub fn platform_only(&self, who: &Principal, what: &str) -> Result<(), Denied> {
        if who.platform {
            Ok(())
        } else {
            deny(format!(
                "{} may not change {what}: it is node-wide, so only a platform principal may ({})",
                self.who(who),
                self.platform_names()
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load_dir;

    fn policy() -> AccessPolicy {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/domains");
        let loaded = load_dir(std::path::Path::new(dir)).expect("examples load");
        AccessPolicy::new(
            loaded.iter().map(|d| d.spec()),
            vec!["user:platform".into()],
        )
    }

    fn user(name: &str, group: &str) -> Principal {
        Principal {
            name: name.into(),
            groups: vec![group.into()],
            platform: false,
        }
    }

    /// Checks each `(who, op, topic, refusal)`: `None` is allowed, `Some(parts)` refused with a
    /// reason naming every part.
    fn check_topics(p: &AccessPolicy, cases: &[(&Principal, TopicOp, &str, Option<&[&str]>)]) {
        for (who, op, topic, refusal) in cases {
            match (p.topic(who, *op, topic), refusal) {
                (Ok(()), None) => {}
                (Err(denied), Some(parts)) => {
                    for part in *parts {
                        assert!(denied.reason.contains(part), "{topic}: {}", denied.reason);
                    }
                }
                (got, _) => panic!("{} {op:?} {topic}: got {got:?}", who.name),
            }
        }
    }

    #[test]
    fn owners_produce_readers_read_others_are_told_the_missing_grant() {
        use TopicOp::{Consume, Describe, Produce};
        let payments = user("pay", "team:payments");
        let finance = user("fin", "team:finance-eng");
        let settled = "payments.transaction_settled";
        let dead_letters = "payments.transaction_settled.dlq";
        check_topics(
            &policy(),
            &[
                (&payments, Produce, settled, None),
                (&finance, Consume, settled, None),
                (
                    &finance,
                    Produce,
                    settled,
                    Some(&["only owners of payments (team:payments)"]),
                ),
                (
                    &finance,
                    Consume,
                    "payments.chargeback_opened",
                    Some(&[
                        "its readers are [ml]",
                        "add your domain to `readers` of stream chargeback_opened",
                    ]),
                ),
                (
                    &finance,
                    Consume,
                    dead_letters,
                    Some(&["not a declared stream"]),
                ),
                (&payments, Consume, dead_letters, None),
                (&finance, Describe, "_headwater.audit", Some(&[])),
                (&finance, Consume, "marketing.campaign_click", None),
            ],
        );
    }

    #[test]
    fn groups_belong_to_the_domain_they_are_named_for() {
        let p = policy();
        let finance = user("fin", "team:finance-eng");
        assert!(p.group(&finance, "finance.reports").is_ok());
        let err = p.group(&finance, "reports").expect_err("unprefixed").reason;
        assert!(err.contains("name it 'finance.reports'"), "{err}");
        assert!(p.group(&finance, "payments.x").is_err());
    }

    #[test]
    fn central_domains_change_only_through_the_platform() {
        use TopicOp::{Administer, Produce};
        let p = policy();
        let finance = user("fin", "team:finance-eng");
        let admin = Principal {
            platform: true,
            ..user("platform", "team:none")
        };
        let payments = user("pay", "team:payments");
        let ledger = "finance.ledger_entry";
        check_topics(
            &p,
            &[
                (
                    &finance,
                    Administer,
                    ledger,
                    Some(&["centrally governed", "user:platform"]),
                ),
                (&admin, Administer, ledger, None),
                // Producing stays with the owners.
                (&finance, Produce, ledger, None),
                (&payments, Administer, "payments.refund_issued", None),
            ],
        );
        // So do operations.
        assert!(p.operate(&finance, "finance").is_ok());
    }

    #[test]
    fn a_new_domain_needs_its_creator_among_its_owners() {
        let p = policy();
        let mut spec = p.domains["payments"].clone();
        spec.domain = "risk".into();
        let payments = user("pay", "team:payments");
        assert!(p.apply(&payments, &spec).is_ok());
        let finance = user("fin", "team:finance-eng");
        let err = p.apply(&finance, &spec).expect_err("not an owner").reason;
        assert!(err.contains("add one of your identities"), "{err}");
        // The current owners decide, not the ones a new manifest names.
        let mut takeover = p.domains["payments"].clone();
        takeover.owners.push("team:finance-eng".into());
        assert!(p.apply(&finance, &takeover).is_err());
    }
}
