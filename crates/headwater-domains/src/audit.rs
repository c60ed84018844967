//! The audit trail's entries and their hash chain.
//!
//! Every entry holds the SHA-256 of the entry before it (`prev`) and its own (`hash`, over its
//! content and `prev`). Changing a byte of an entry breaks its own hash; removing, inserting or
//! reordering entries breaks the `prev` link (and the sequence numbers) of the entry after the
//! change. What a chain alone cannot show is the removal of its newest entries: [`verify`]
//! reports the head (the newest hash) so it can be written down elsewhere and compared.
//!
//! Where entries are stored and who appends them is the node's business; this module only
//! seals and checks them.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The `prev` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One change, before it is sealed into the chain.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// Who made it: an authenticated principal, or `anonymous` on a node without auth.
    pub principal: String,
    /// What kind of change: `domain.apply`, `schema.register`, `pipeline.fail`, ...
    pub action: String,
    /// The domain it belongs to, when it belongs to one.
    pub domain: Option<String>,
    /// What it changed: a stream, a subject, a pipeline.
    pub target: String,
    /// The target before the change, as JSON; `null` when it did not exist or the action
    /// records only what happened (a registry event, a refusal, a run).
    pub before: Value,
    /// The target after the change, or what happened (the registry event, a refusal's reason,
    /// a failed run's error); `null` when it was removed or there is nothing more to say.
    pub after: Value,
}

impl Change {
    /// A change made by `principal` (its audit name: `user:alice`, `anonymous`, `node`).
    pub fn new(
        principal: &str,
        action: &str,
        domain: Option<&str>,
        target: &str,
        before: Value,
        after: Value,
    ) -> Change {
        Change {
            principal: principal.to_string(),
            action: action.to_string(),
            domain: domain.map(str::to_string),
            target: target.to_string(),
            before,
            after,
        }
    }
}

/// Where the node's services record the changes they make. The node's audit trail implements
/// it; services below the trail in the dependency order (the schema registry, the streams)
/// take it at construction, so the trail stays the one place that seals and stores entries.
pub trait Recorder: Send + Sync + std::fmt::Debug {
    /// Records `change` once it took effect. A failure to store it is the recorder's to report:
    /// a change that already happened cannot be refused afterwards.
    fn record(
        &self,
        change: Change,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>>;
}

/// A sealed entry, as stored in `_headwater.audit`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditEntry {
    /// 0 for the first entry, then one more per entry: a gap is a removed entry.
    pub seq: u64,
    /// When, in milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// Who made the change ([`Change::principal`]).
    pub principal: String,
    /// What kind of change ([`Change::action`]).
    pub action: String,
    /// The domain it belongs to; absent when it belongs to none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// What it changed ([`Change::target`]).
    pub target: String,
    /// The target before ([`Change::before`]).
    pub before: Value,
    /// The target after, or what happened ([`Change::after`]).
    pub after: Value,
    /// `hash` of the entry before this one; [`GENESIS`] for the first.
    pub prev: String,
    /// SHA-256 (hex) of this entry's content and `prev`.
    pub hash: String,
}

impl AuditEntry {
    /// Seals `change` as entry `seq`, following the entry whose hash is `prev`.
    pub fn seal(change: Change, seq: u64, at_ms: i64, prev: &str) -> AuditEntry {
        let mut entry = AuditEntry {
            seq,
            at_ms,
            principal: change.principal,
            action: change.action,
            domain: change.domain,
            target: change.target,
            before: change.before,
            after: change.after,
            prev: prev.to_string(),
            hash: String::new(),
        };
        entry.hash = entry.content_hash();
        entry
    }

    /// The hash this entry's content and `prev` give, whatever its `hash` field says.
    pub fn content_hash(&self) -> String {
        // A tuple, not the struct: the field order is fixed here, and `hash` is left out.
        let content = (
            self.seq,
            self.at_ms,
            &self.principal,
            &self.action,
            &self.domain,
            &self.target,
            &self.before,
            &self.after,
            &self.prev,
        );
        let bytes = serde_json::to_vec(&content).unwrap_or_default();
        hex(&Sha256::digest(&bytes))
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// One stored record of the trail, as read back: where it is, and its entry or why it could not
/// be read.
#[derive(Debug, Clone)]
pub struct Stored {
    /// The record's offset in `_headwater.audit` (or its line in an exported file).
    pub offset: i64,
    /// The entry, or why the record does not read as one.
    pub entry: Result<AuditEntry, Unreadable>,
}

/// Why a stored record does not read as an audit entry: each is what tampering (or damage)
/// looks like from the reader's side.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unreadable {
    /// The record has no value.
    #[error("the record has no value")]
    NoValue,
    /// The value is not an entry's JSON.
    #[error("{reason}")]
    NotAnEntry {
        /// What the JSON reader said.
        reason: String,
    },
    /// The record's batch does not decode (its CRC fails, say).
    #[error("its batch (offsets {first}-{last}) does not decode: {reason}")]
    BrokenBatch {
        /// The batch's first offset.
        first: i64,
        /// The batch's last offset.
        last: i64,
        /// What the decoder said.
        reason: String,
    },
}

impl Unreadable {
    /// The value at hand does not read as an entry.
    pub fn not_an_entry(e: &serde_json::Error) -> Unreadable {
        Unreadable::NotAnEntry {
            reason: e.to_string(),
        }
    }
}

/// What [`verify`] found wrong, naming the entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Problem {
    /// Where the entry is: its offset in `_headwater.audit`, or its line (from 1) in an
    /// exported file.
    pub offset: i64,
    /// The entry's sequence number, when it could be read.
    pub seq: Option<u64>,
    /// What is wrong and what it means (modified, removed, reordered), in a sentence.
    pub problem: String,
}

/// The outcome of checking a whole trail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verification {
    /// No problem found.
    pub intact: bool,
    /// Records checked, readable or not.
    pub entries: usize,
    /// The newest entry's hash: write it down to detect a later removal of newest entries.
    pub head: String,
    /// Every problem found, in trail order; empty when intact.
    pub problems: Vec<Problem>,
}

/// Checks every entry's own hash, sequence number and link to the entry before it.
pub fn verify(stored: impl IntoIterator<Item = Stored>) -> Verification {
    let mut out = Verification {
        intact: false,
        entries: 0,
        head: GENESIS.to_string(),
        problems: Vec::new(),
    };
    // The hash and seq the next entry must follow; `None` after an unreadable record.
    let mut expected: Option<(u64, String)> = Some((0, GENESIS.to_string()));
    for Stored { offset, entry } in stored {
        out.entries += 1;
        let entry = match entry {
            Ok(e) => e,
            Err(why) => {
                out.problems.push(Problem {
                    offset,
                    seq: None,
                    problem: format!("not a readable audit entry ({why}): it was modified"),
                });
                expected = None;
                continue;
            }
        };
        let mut problem = |problem: String| {
            out.problems.push(Problem {
                offset,
                seq: Some(entry.seq),
                problem,
            })
        };
        if entry.content_hash() != entry.hash {
            problem(format!(
                "entry {} ({} by {} on {}) was modified: its content no longer matches its hash",
                entry.seq, entry.action, entry.principal, entry.target
            ));
        }
        if let Some((seq, prev)) = &expected {
            if entry.seq > *seq {
                let missing = if entry.seq == seq + 1 {
                    format!("entry {seq} is missing")
                } else {
                    format!("entries {seq} to {} are missing", entry.seq - 1)
                };
                problem(format!("{missing} before entry {}: removed", entry.seq));
            } else if entry.seq < *seq {
                problem(format!(
                    "entry {} comes where entry {seq} should: entries were reordered or repeated",
                    entry.seq
                ));
            } else if entry.prev != *prev {
                problem(format!(
                    "entry {} does not follow the entry before it (its prev is {}, the entry before hashes to {}): an entry before it was rewritten",
                    entry.seq,
                    short(&entry.prev),
                    short(prev)
                ));
            }
        }
        out.head = entry.hash.clone();
        expected = Some((entry.seq + 1, entry.hash));
    }
    out.intact = out.problems.is_empty();
    out
}

fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn chain(n: u64) -> Vec<AuditEntry> {
        let mut prev = GENESIS.to_string();
        (0..n)
            .map(|i| {
                let e = AuditEntry::seal(
                    Change {
                        principal: "user:alice".into(),
                        action: "domain.apply".into(),
                        domain: Some("payments".into()),
                        target: format!("payments.s{i}"),
                        before: Value::Null,
                        after: json!({"partitions": i}),
                    },
                    i,
                    1_000 + i as i64,
                    &prev,
                );
                prev = e.hash.clone();
                e
            })
            .collect()
    }

    fn stored(entries: &[AuditEntry]) -> Vec<Stored> {
        entries
            .iter()
            .enumerate()
            .map(|(i, e)| Stored {
                offset: i as i64,
                entry: Ok(e.clone()),
            })
            .collect()
    }

    #[test]
    fn an_untouched_chain_verifies_and_reports_its_head() {
        let c = chain(5);
        let v = verify(stored(&c));
        assert!(v.intact, "{v:?}");
        assert_eq!((v.entries, v.head.as_str()), (5, c[4].hash.as_str()));
    }

    #[test]
    fn a_modified_byte_names_the_entry() {
        let c = chain(5);
        let mut bytes = serde_json::to_vec(&c[2]).expect("json");
        let at = bytes
            .windows(5)
            .position(|w| w == b"alice")
            .expect("principal");
        bytes[at] = b'A';
        let mut s = stored(&c);
        s[2].entry = serde_json::from_slice(&bytes).map_err(|e| Unreadable::not_an_entry(&e));
        let v = verify(s);
        assert_eq!(v.problems.len(), 1, "{v:?}");
        assert_eq!((v.problems[0].offset, v.problems[0].seq), (2, Some(2)));
        assert!(v.problems[0].problem.contains("was modified"), "{v:?}");
    }

    #[test]
    fn a_rehashed_entry_breaks_the_link_of_the_next() {
        let mut c = chain(4);
        c[1].target = "payments.other".into();
        c[1].hash = c[1].content_hash();
        let v = verify(stored(&c));
        assert_eq!(v.problems.len(), 1, "{v:?}");
        assert_eq!(v.problems[0].seq, Some(2));
        assert!(v.problems[0].problem.contains("rewritten"), "{v:?}");
    }

    #[test]
    fn a_removed_entry_is_named() {
        let mut c = chain(5);
        c.remove(3);
        let v = verify(stored(&c));
        assert_eq!(v.problems.len(), 1, "{v:?}");
        assert!(
            v.problems[0].problem.contains("entry 3 is missing"),
            "{v:?}"
        );
    }

    #[test]
    fn reordered_entries_are_named() {
        let mut c = chain(5);
        c.swap(1, 2);
        let v = verify(stored(&c));
        assert!(!v.intact);
        assert!(
            v.problems
                .iter()
                .any(|p| p.seq == Some(1) && p.problem.contains("reordered")),
            "{v:?}"
        );
    }

    #[test]
    fn an_unreadable_record_is_named_and_the_rest_still_checked() {
        let c = chain(4);
        let mut s = stored(&c);
        s[1].entry = Err(Unreadable::NotAnEntry {
            reason: "expected value at line 1".into(),
        });
        let v = verify(s);
        assert_eq!(v.problems.len(), 1, "{v:?}");
        assert_eq!((v.problems[0].offset, v.problems[0].seq), (1, None));
    }
}
