//! Compatibility modes with Confluent Schema Registry's meaning.
//!
//! - BACKWARD: consumers on the new schema can read data written with the latest version
//!   (the new schema is the reader); *_TRANSITIVE: with every earlier version.
//! - FORWARD: consumers on the latest version can read data written with the new schema
//!   (the new schema is the writer); *_TRANSITIVE: every earlier version can.
//! - FULL: both; NONE: no check.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::contract::{Contract, Format};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Compatibility {
    None,
    /// Confluent's default.
    #[default]
    Backward,
    BackwardTransitive,
    Forward,
    ForwardTransitive,
    Full,
    FullTransitive,
}

impl Compatibility {
    pub fn as_str(&self) -> &'static str {
        match self {
            Compatibility::None => "NONE",
            Compatibility::Backward => "BACKWARD",
            Compatibility::BackwardTransitive => "BACKWARD_TRANSITIVE",
            Compatibility::Forward => "FORWARD",
            Compatibility::ForwardTransitive => "FORWARD_TRANSITIVE",
            Compatibility::Full => "FULL",
            Compatibility::FullTransitive => "FULL_TRANSITIVE",
        }
    }

    /// Parses `BACKWARD`, `backward_transitive`, `full-transitive`, ...
    pub fn parse(s: &str) -> Option<Self> {
        let norm = s.trim().to_ascii_uppercase().replace('-', "_");
        [
            Compatibility::None,
            Compatibility::Backward,
            Compatibility::BackwardTransitive,
            Compatibility::Forward,
            Compatibility::ForwardTransitive,
            Compatibility::Full,
            Compatibility::FullTransitive,
        ]
        .into_iter()
        .find(|c| c.as_str() == norm)
    }

    fn backward(&self) -> bool {
        matches!(
            self,
            Compatibility::Backward
                | Compatibility::BackwardTransitive
                | Compatibility::Full
                | Compatibility::FullTransitive
        )
    }
    fn forward(&self) -> bool {
        matches!(
            self,
            Compatibility::Forward
                | Compatibility::ForwardTransitive
                | Compatibility::Full
                | Compatibility::FullTransitive
        )
    }
    fn transitive(&self) -> bool {
        matches!(
            self,
            Compatibility::BackwardTransitive
                | Compatibility::ForwardTransitive
                | Compatibility::FullTransitive
        )
    }
}

impl fmt::Display for Compatibility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who could not read whom.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// The new schema (reader) cannot read data of an earlier version (writer).
    NewReadsOld,
    /// An earlier version (reader) cannot read data of the new schema (writer).
    OldReadsNew,
}

/// One reason a new schema breaks a mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incompatibility {
    /// Dotted field path (`amount`, `address.city`, `items[]`), empty for the schema's root.
    pub path: String,
    /// Short rule name, stable for tooling (`TYPE_CHANGED`, `REQUIRED_FIELD_ADDED`, ...).
    pub rule: &'static str,
    /// What changed, for example `type number -> string`.
    pub detail: String,
    pub mode: Compatibility,
    pub direction: Direction,
    /// The earlier version the new schema was compared with.
    pub version: u32,
}

impl fmt::Display for Incompatibility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "schema root: ")?;
        } else {
            write!(f, "field '{}': ", self.path)?;
        }
        write!(f, "{} breaks {} ", self.detail, self.mode)?;
        match self.direction {
            Direction::NewReadsOld => write!(
                f,
                "(the new schema cannot read data written with version {})",
                self.version
            ),
            Direction::OldReadsNew => write!(
                f,
                "(readers of version {} cannot read data written with the new schema)",
                self.version
            ),
        }
    }
}

/// A problem found by a reader/writer check, before it is tied to a mode and version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    pub path: String,
    pub rule: &'static str,
    pub detail: String,
}

fn reader_problems(reader: &Contract, writer: &Contract) -> Vec<Problem> {
    match (reader.format(), writer.format()) {
        (Format::Avro, Format::Avro) => match (reader.avro(), writer.avro()) {
            (Some(r), Some(w)) => crate::avro::can_read(r, w),
            _ => Vec::new(),
        },
        (Format::JsonSchema, Format::JsonSchema) => {
            crate::json_schema::can_read(reader.json(), writer.json())
        }
        _ => vec![Problem {
            path: String::new(),
            rule: "FORMAT_CHANGED",
            detail: format!(
                "format {} -> {}",
                writer.format().registry_name(),
                reader.format().registry_name()
            ),
        }],
    }
}

/// Checks `new` against earlier versions (oldest first) under `mode`; empty means compatible.
pub fn check(
    mode: Compatibility,
    new: &Contract,
    previous: &[(u32, &Contract)],
) -> Vec<Incompatibility> {
    let against: &[(u32, &Contract)] = if mode.transitive() {
        previous
    } else {
        previous.last().map(std::slice::from_ref).unwrap_or(&[])
    };
    let mut out = Vec::new();
    for (version, old) in against {
        let tie = |problems: Vec<Problem>, direction| {
            problems.into_iter().map(move |p| Incompatibility {
                path: p.path,
                rule: p.rule,
                detail: p.detail,
                mode,
                direction,
                version: *version,
            })
        };
        if mode.backward() {
            out.extend(tie(reader_problems(new, old), Direction::NewReadsOld));
        }
        if mode.forward() {
            out.extend(tie(reader_problems(old, new), Direction::OldReadsNew));
        }
    }
    out
}

pub(crate) fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_string()
    } else {
        format!("{path}.{field}")
    }
}
