//! Compatibility modes with Confluent Schema Registry's meaning.
//!
//! - BACKWARD: consumers on the new schema can read data written with the latest version
//!   (the new schema is the reader); *_TRANSITIVE: with every earlier version.
//! - FORWARD: consumers on the latest version can read data written with the new schema
//!   (the new schema is the writer); *_TRANSITIVE: every earlier version can.
//! - FULL: both; NONE: no check.
//!
//! [`check`] ties the problems a format's reader/writer check finds to a mode and a version.
//! Each format judges "can this reader schema read data written with that writer schema" in its
//! own file: `json_schema.rs` (structurally, as Confluent does) and `avro.rs` (the Avro
//! specification's schema resolution). A new format adds a file here with a
//! `can_read(reader, writer) -> Vec<Problem>` and one arm in `reader_problems`.

mod avro;
mod json_schema;

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::contract::{Contract, Format};

/// Which schema changes a subject accepts, by who must be able to read whose data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Compatibility {
    /// Any change is accepted.
    None,
    /// The new schema reads data written with the latest version. Confluent's default.
    #[default]
    Backward,
    /// The new schema reads data written with every earlier version.
    BackwardTransitive,
    /// The latest version reads data written with the new schema.
    Forward,
    /// Every earlier version reads data written with the new schema.
    ForwardTransitive,
    /// Both `Backward` and `Forward`, against the latest version.
    Full,
    /// Both `Backward` and `Forward`, against every earlier version.
    FullTransitive,
}

impl Compatibility {
    /// The name Confluent's registry uses (`BACKWARD_TRANSITIVE`).
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

    /// Parses `BACKWARD`, `backward_transitive`, `full-transitive`, ...; `None` for any other
    /// text.
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
    /// The mode the change breaks.
    pub mode: Compatibility,
    /// Which side could not read the other.
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
struct Problem {
    /// As [`Incompatibility::path`].
    path: String,
    /// As [`Incompatibility::rule`].
    rule: &'static str,
    /// As [`Incompatibility::detail`].
    detail: String,
}

/// What keeps `reader` from reading data written with `writer`.
fn reader_problems(reader: &Contract, writer: &Contract) -> Vec<Problem> {
    match (reader.format(), writer.format()) {
        (Format::Avro, Format::Avro) => match (reader.avro(), writer.avro()) {
            (Some(r), Some(w)) => avro::can_read(r, w),
            _ => Vec::new(),
        },
        (Format::JsonSchema, Format::JsonSchema) => {
            json_schema::can_read(reader.json(), writer.json())
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

/// The path of `field` inside `path`.
fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_string()
    } else {
        format!("{path}.{field}")
    }
}
