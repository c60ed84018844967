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

    /// Every mode.
    const ALL: [Compatibility; 7] = [
        Compatibility::None,
        Compatibility::Backward,
        Compatibility::BackwardTransitive,
        Compatibility::Forward,
        Compatibility::ForwardTransitive,
        Compatibility::Full,
        Compatibility::FullTransitive,
    ];

    /// Parses `BACKWARD`, `backward_transitive`, `full-transitive`, ...; `None` for any other
    /// text.
    pub fn parse(s: &str) -> Option<Self> {
        let norm = s.trim().to_ascii_uppercase().replace('-', "_");
        Compatibility::ALL.into_iter().find(|c| c.as_str() == norm)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn json(text: &str) -> Contract {
        Contract::parse(Format::JsonSchema, text).expect("json schema")
    }

    const NUMBER: &str = r#"{"type":"number"}"#;
    const STRING: &str = r#"{"type":"string"}"#;

    #[test]
    fn modes_parse_in_any_spelling_and_print_as_confluent_does() {
        for mode in Compatibility::ALL {
            assert_eq!(Compatibility::parse(mode.as_str()), Some(mode));
            assert_eq!(mode.to_string(), mode.as_str());
        }
        assert_eq!(
            Compatibility::parse(" full-transitive "),
            Some(Compatibility::FullTransitive)
        );
        assert_eq!(Compatibility::parse("sideways"), None);
    }

    #[test]
    fn only_transitive_modes_look_past_the_latest_version() {
        let (v1, v2, new) = (json(STRING), json(NUMBER), json(NUMBER));
        let previous = [(1, &v1), (2, &v2)];
        assert!(check(Compatibility::Backward, &new, &previous).is_empty());
        let p = check(Compatibility::BackwardTransitive, &new, &previous);
        assert_eq!(p.len(), 1);
        assert_eq!((p[0].version, p[0].direction), (1, Direction::NewReadsOld));
        assert!(check(Compatibility::None, &json(STRING), &previous[1..]).is_empty());
        assert!(check(Compatibility::FullTransitive, &new, &[]).is_empty());
    }

    #[test]
    fn full_checks_both_directions() {
        let p = check(Compatibility::Full, &json(STRING), &[(3, &json(NUMBER))]);
        let directions: Vec<Direction> = p.iter().map(|i| i.direction).collect();
        assert_eq!(directions, [Direction::NewReadsOld, Direction::OldReadsNew]);
        assert_eq!(
            p[1].to_string(),
            "schema root: type string -> number breaks FULL \
             (readers of version 3 cannot read data written with the new schema)"
        );
    }

    #[test]
    fn a_change_of_format_is_one_problem_at_the_root() {
        let avro = Contract::parse(Format::Avro, r#""string""#).expect("avro");
        let p = check(Compatibility::Backward, &avro, &[(1, &json(STRING))]);
        assert_eq!(p.len(), 1);
        assert_eq!((p[0].rule, p[0].path.as_str()), ("FORMAT_CHANGED", ""));
        assert_eq!(p[0].detail, "format JSON -> AVRO");
    }

    #[test]
    fn paths_join_with_dots() {
        assert_eq!(join("", "a"), "a");
        assert_eq!(join("a.b", "c"), "a.b.c");
    }
}
