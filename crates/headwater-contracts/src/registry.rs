//! The schema registry's state: subjects, their versions and schema ids, with Confluent Schema
//! Registry's rules (ids are global and reused for identical schemas, versions count per
//! subject, soft deletes before permanent ones, compatibility and mode per subject).
//!
//! The state changes only through [`RegistryEvent`]s: the node appends each event to an internal
//! topic before applying it and replays them at start, so this type never touches storage.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{check, Compatibility, Contract, ContractError, Format};

/// A change to the registry, as stored in `_headwater.schemas`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum RegistryEvent {
    /// A schema was registered as a new version of a subject.
    Registered {
        /// The subject, e.g. `payments.transaction_settled-value`.
        subject: String,
        /// The subject's new version, counted from 1.
        version: u32,
        /// The schema's global id, shared by every subject with the same schema.
        id: u32,
        /// The schema's language.
        format: Format,
        /// The schema text as registered.
        schema: String,
    },
    /// A version of a subject was deleted.
    VersionDeleted {
        /// The subject.
        subject: String,
        /// The version deleted.
        version: u32,
        /// `false` for a soft delete (the version can still be listed with deleted ones),
        /// `true` for a permanent one, which must follow a soft one.
        permanent: bool,
    },
    /// A subject and all its versions were deleted.
    SubjectDeleted {
        /// The subject.
        subject: String,
        /// As in [`RegistryEvent::VersionDeleted`].
        permanent: bool,
    },
    /// A compatibility level was set or cleared.
    ConfigSet {
        /// `None` is the global setting.
        subject: Option<String>,
        /// `None` clears a subject's own level (the global one applies again) or resets the
        /// global one to BACKWARD.
        compatibility: Option<Compatibility>,
    },
    /// A mode was set or cleared.
    ModeSet {
        /// `None` is the global setting.
        subject: Option<String>,
        /// `None` clears a subject's own mode or resets the global one to READWRITE.
        mode: Option<Mode>,
    },
}

/// What the registry lets clients do with a subject (Confluent's `mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Mode {
    /// Registering and deleting are allowed.
    #[default]
    Readwrite,
    /// Registering is refused.
    Readonly,
    /// Accepted and stored for Confluent clients that migrate schemas; registration behaves
    /// as in READWRITE.
    Import,
}

impl Mode {
    /// The name Confluent's registry uses (`READWRITE`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Mode::Readwrite => "READWRITE",
            Mode::Readonly => "READONLY",
            Mode::Import => "IMPORT",
        }
    }
}

/// One version of a subject.
#[derive(Debug, Clone)]
pub struct SchemaVersion {
    /// The version number within the subject, from 1.
    pub version: u32,
    /// The global id of its schema.
    pub id: u32,
    /// Soft-deleted: listed only when deleted versions are asked for.
    pub deleted: bool,
}

/// A subject: its versions, oldest first, and its own settings.
#[derive(Debug, Clone, Default)]
pub struct Subject {
    /// Every version not permanently deleted, oldest first.
    pub versions: Vec<SchemaVersion>,
    /// Soft-deleted as a whole.
    pub deleted: bool,
    /// The subject's own compatibility level; `None` follows the global one.
    pub compatibility: Option<Compatibility>,
    /// The subject's own mode; `None` follows the global one.
    pub mode: Option<Mode>,
}

/// A registered schema, shared by every subject version that has the same text and format.
#[derive(Debug, Clone)]
pub struct StoredSchema {
    /// The schema's language.
    pub format: Format,
    /// The schema text as first registered.
    pub text: String,
    /// The parsed schema.
    pub contract: Contract,
}

/// Errors with Confluent's error codes, so existing clients react as they do to the registry.
/// The messages are Confluent's, word for word, for the same reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// No live version of the subject (never registered, or deleted).
    #[error("Subject '{subject}' not found.")]
    SubjectNotFound {
        /// The subject asked for.
        subject: String,
    },
    /// The subject has no such live version.
    #[error("Version {version} not found for subject '{subject}'.")]
    VersionNotFound {
        /// The subject asked for.
        subject: String,
        /// The version as asked for: a number or `latest`.
        version: String,
    },
    /// No schema has this global id.
    #[error("Schema {id} not found")]
    SchemaNotFound {
        /// The id asked for.
        id: u32,
    },
    /// The schema given is not one of the subject's live versions.
    #[error("Schema not found under subject '{subject}'")]
    SchemaNotRegistered {
        /// The subject looked in.
        subject: String,
    },
    /// The schema text is not a usable contract; the problem says where and why.
    #[error("Invalid schema: {problem}")]
    InvalidSchema {
        /// What is wrong with the text.
        problem: ContractError,
    },
    /// A version in a request is neither a number from 1 to 2^31-1 nor `latest`.
    #[error("The specified version '{version}' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\"")]
    InvalidVersion {
        /// The version as given.
        version: String,
    },
    /// The schema breaks the subject's compatibility level; each detail names a field and a
    /// rule.
    #[error("Schema being registered is incompatible with an earlier schema for subject \"{subject}\": {}", .details.join("; "))]
    Incompatible {
        /// The subject registered under.
        subject: String,
        /// One [`crate::Incompatibility`] each, as text.
        details: Vec<String>,
    },
    /// A compatibility level that is not one of Confluent's.
    #[error("Invalid compatibility level. Valid values are none, backward, forward, full, backward_transitive, forward_transitive, and full_transitive")]
    InvalidCompatibility,
    /// A soft delete of a subject that is already soft-deleted.
    #[error("Subject '{subject}' was soft deleted. Set permanent=true to delete permanently")]
    SubjectSoftDeleted {
        /// The subject.
        subject: String,
    },
    /// A permanent delete of a subject that was not soft-deleted first.
    #[error("Subject '{subject}' was not deleted first before being permanently deleted")]
    SubjectNotSoftDeleted {
        /// The subject.
        subject: String,
    },
    /// A permanent delete of a version that was not soft-deleted first.
    #[error("Version {version} of subject '{subject}' was not deleted first before being permanently deleted")]
    VersionNotSoftDeleted {
        /// The subject.
        subject: String,
        /// The version.
        version: u32,
    },
    /// A registration under a subject (or globally) in READONLY mode.
    #[error("Subject {subject} is in read-only mode")]
    ReadOnly {
        /// The subject.
        subject: String,
    },
}

impl RegistryError {
    /// Confluent's `error_code` for the JSON body; the HTTP status is its first three digits.
    pub fn code(&self) -> u32 {
        match self {
            RegistryError::SubjectNotFound { .. } => 40401,
            RegistryError::VersionNotFound { .. } => 40402,
            RegistryError::SchemaNotFound { .. } | RegistryError::SchemaNotRegistered { .. } => {
                40403
            }
            RegistryError::SubjectSoftDeleted { .. } => 40404,
            RegistryError::SubjectNotSoftDeleted { .. } => 40405,
            RegistryError::VersionNotSoftDeleted { .. } => 40407,
            RegistryError::InvalidSchema { .. } => 42201,
            RegistryError::InvalidVersion { .. } => 42202,
            RegistryError::InvalidCompatibility => 42203,
            RegistryError::ReadOnly { .. } => 42205,
            RegistryError::Incompatible { .. } => 409,
        }
    }
    /// The HTTP status of the response: 404, 409 or 422.
    pub fn http_status(&self) -> u16 {
        match self.code() {
            409 => 409,
            c => (c / 100) as u16,
        }
    }
}

/// Which version a request names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionRef {
    /// The newest live version (`latest`, or `-1`).
    Latest,
    /// A version number, from 1.
    Number(u32),
}

impl VersionRef {
    /// Parses a version as a request writes it: `latest`, `-1`, or a number from 1 to 2^31-1.
    pub fn parse(s: &str) -> Result<Self, RegistryError> {
        if s == "latest" || s == "-1" {
            return Ok(VersionRef::Latest);
        }
        match s.parse::<u32>() {
            Ok(n) if n >= 1 && n <= i32::MAX as u32 => Ok(VersionRef::Number(n)),
            _ => Err(RegistryError::InvalidVersion {
                version: s.to_string(),
            }),
        }
    }
}

/// The registry's state: subjects, versions, schemas by id, and the global settings.
///
/// Reads answer from memory. Changes are planned (`plan_*`, which check them and give the
/// event to store) and then [`Registry::apply`]-ed, so a change is stored before it is seen.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    subjects: BTreeMap<String, Subject>,
    schemas: BTreeMap<u32, StoredSchema>,
    next_id: u32,
    compatibility: Compatibility,
    mode: Mode,
}

impl Registry {
    /// An empty registry whose first schema id is 1.
    pub fn new() -> Self {
        Registry {
            next_id: 1,
            ..Default::default()
        }
    }

    /// Applies a stored event. Events were checked before they were stored, so this cannot fail;
    /// an event that no longer parses (a schema the current parser refuses) is skipped.
    pub fn apply(&mut self, event: &RegistryEvent) {
        match event {
            RegistryEvent::Registered {
                subject,
                version,
                id,
                format,
                schema,
            } => {
                if let std::collections::btree_map::Entry::Vacant(e) = self.schemas.entry(*id) {
                    match Contract::parse(*format, schema) {
                        Ok(contract) => {
                            e.insert(StoredSchema {
                                format: *format,
                                text: schema.clone(),
                                contract,
                            });
                        }
                        Err(_) => return,
                    }
                }
                self.next_id = self.next_id.max(id + 1);
                let s = self.subjects.entry(subject.clone()).or_default();
                s.deleted = false;
                s.versions.push(SchemaVersion {
                    version: *version,
                    id: *id,
                    deleted: false,
                });
            }
            RegistryEvent::VersionDeleted {
                subject,
                version,
                permanent,
            } => {
                if let Some(s) = self.subjects.get_mut(subject) {
                    if *permanent {
                        s.versions.retain(|v| v.version != *version);
                    } else if let Some(v) = s.versions.iter_mut().find(|v| v.version == *version) {
                        v.deleted = true;
                    }
                }
            }
            RegistryEvent::SubjectDeleted { subject, permanent } => {
                if *permanent {
                    self.subjects.remove(subject);
                } else if let Some(s) = self.subjects.get_mut(subject) {
                    s.deleted = true;
                    s.versions.iter_mut().for_each(|v| v.deleted = true);
                }
            }
            RegistryEvent::ConfigSet {
                subject,
                compatibility,
            } => match subject {
                None => self.compatibility = compatibility.unwrap_or_default(),
                Some(s) => {
                    self.subjects.entry(s.clone()).or_default().compatibility = *compatibility
                }
            },
            RegistryEvent::ModeSet { subject, mode } => match subject {
                None => self.mode = mode.unwrap_or_default(),
                Some(s) => self.subjects.entry(s.clone()).or_default().mode = *mode,
            },
        }
    }

    /// A subject with a version that is not deleted.
    fn live(&self, subject: &str) -> Result<&Subject, RegistryError> {
        self.subjects
            .get(subject)
            .filter(|s| !s.deleted && s.versions.iter().any(|v| !v.deleted))
            .ok_or_else(|| RegistryError::SubjectNotFound {
                subject: subject.to_string(),
            })
    }

    /// A subject with any version, soft-deleted or not.
    fn known(&self, subject: &str) -> Result<&Subject, RegistryError> {
        self.subjects
            .get(subject)
            .filter(|s| !s.versions.is_empty())
            .ok_or_else(|| RegistryError::SubjectNotFound {
                subject: subject.to_string(),
            })
    }

    /// The subjects with at least one version, soft-deleted ones only when asked for.
    pub fn subjects(&self, include_deleted: bool) -> Vec<String> {
        self.subjects
            .iter()
            .filter(|(_, s)| !s.versions.is_empty())
            .filter(|(_, s)| {
                include_deleted || (!s.deleted && s.versions.iter().any(|v| !v.deleted))
            })
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// A subject's version numbers, oldest first, soft-deleted ones only when asked for.
    pub fn versions(
        &self,
        subject: &str,
        include_deleted: bool,
    ) -> Result<Vec<u32>, RegistryError> {
        let s = if include_deleted {
            self.known(subject)?
        } else {
            self.live(subject)?
        };
        Ok(s.versions
            .iter()
            .filter(|v| include_deleted || !v.deleted)
            .map(|v| v.version)
            .collect())
    }

    /// (version, id, schema) of a subject version.
    pub fn version(
        &self,
        subject: &str,
        which: VersionRef,
    ) -> Result<(u32, u32, &StoredSchema), RegistryError> {
        let s = self.live(subject)?;
        let v = match which {
            VersionRef::Latest => s.versions.iter().rev().find(|v| !v.deleted),
            VersionRef::Number(n) => s.versions.iter().find(|v| v.version == n && !v.deleted),
        }
        .ok_or_else(|| RegistryError::VersionNotFound {
            subject: subject.to_string(),
            version: match which {
                VersionRef::Latest => "latest".into(),
                VersionRef::Number(n) => n.to_string(),
            },
        })?;
        let schema = self
            .schemas
            .get(&v.id)
            .ok_or(RegistryError::SchemaNotFound { id: v.id })?;
        Ok((v.version, v.id, schema))
    }

    /// The schema with this global id; ids stay resolvable after their subjects are deleted.
    pub fn schema(&self, id: u32) -> Result<&StoredSchema, RegistryError> {
        self.schemas
            .get(&id)
            .ok_or(RegistryError::SchemaNotFound { id })
    }

    /// Subject-version pairs that use schema `id`.
    pub fn usages(&self, id: u32) -> Vec<(String, u32)> {
        self.subjects
            .iter()
            .flat_map(|(n, s)| {
                s.versions
                    .iter()
                    .filter(|v| v.id == id && !v.deleted)
                    .map(move |v| (n.clone(), v.version))
            })
            .collect()
    }

    /// The level that applies to a subject (its own, else the global one), or the global one.
    pub fn compatibility(&self, subject: Option<&str>) -> Compatibility {
        subject
            .and_then(|s| self.subjects.get(s))
            .and_then(|s| s.compatibility)
            .unwrap_or(self.compatibility)
    }

    /// The subject's own level, if it has one.
    pub fn subject_compatibility(&self, subject: &str) -> Option<Compatibility> {
        self.subjects.get(subject).and_then(|s| s.compatibility)
    }

    /// The mode that applies to a subject (its own, else the global one), or the global one.
    pub fn mode(&self, subject: Option<&str>) -> Mode {
        subject
            .and_then(|s| self.subjects.get(s))
            .and_then(|s| s.mode)
            .unwrap_or(self.mode)
    }

    /// The version under `subject` whose schema has this exact format and text.
    pub fn lookup(
        &self,
        subject: &str,
        format: Format,
        text: &str,
    ) -> Result<(u32, u32), RegistryError> {
        let s = self.live(subject)?;
        s.versions
            .iter()
            .filter(|v| !v.deleted)
            .find(|v| {
                self.schemas
                    .get(&v.id)
                    .is_some_and(|st| st.format == format && same_schema(&st.text, text))
            })
            .map(|v| (v.version, v.id))
            .ok_or_else(|| RegistryError::SchemaNotRegistered {
                subject: subject.to_string(),
            })
    }

    /// Checks `text` against the subject's versions under its compatibility; the messages
    /// explain each break.
    pub fn test_compatibility(
        &self,
        subject: &str,
        format: Format,
        text: &str,
        against: Option<VersionRef>,
    ) -> Result<Vec<String>, RegistryError> {
        let new = Contract::parse(format, text)
            .map_err(|problem| RegistryError::InvalidSchema { problem })?;
        let mode = self.compatibility(Some(subject));
        let previous: Vec<(u32, &Contract)> = match (self.live(subject), against) {
            (Err(_), _) => Vec::new(),
            (Ok(_), Some(VersionRef::Number(n))) => {
                let (v, _, s) = self.version(subject, VersionRef::Number(n))?;
                vec![(v, &s.contract)]
            }
            (Ok(s), _) => s
                .versions
                .iter()
                .filter(|v| !v.deleted)
                .filter_map(|v| self.schemas.get(&v.id).map(|st| (v.version, &st.contract)))
                .collect(),
        };
        Ok(check(mode, &new, &previous)
            .iter()
            .map(|i| i.to_string())
            .collect())
    }

    /// Plans a registration: `Ok(Err(id))` when the schema is already the subject's (answer
    /// with its id, store nothing), `Ok(Ok(event))` for a new version to store and apply.
    pub fn plan_register(
        &self,
        subject: &str,
        format: Format,
        text: &str,
    ) -> Result<Result<RegistryEvent, u32>, RegistryError> {
        if self.mode(Some(subject)) == Mode::Readonly {
            return Err(RegistryError::ReadOnly {
                subject: subject.to_string(),
            });
        }
        Contract::parse(format, text)
            .map_err(|problem| RegistryError::InvalidSchema { problem })?;
        if let Ok((_, id)) = self.lookup(subject, format, text) {
            return Ok(Err(id));
        }
        let problems = self.test_compatibility(subject, format, text, None)?;
        if !problems.is_empty() {
            return Err(RegistryError::Incompatible {
                subject: subject.to_string(),
                details: problems,
            });
        }
        let id = self
            .schemas
            .iter()
            .find(|(_, s)| s.format == format && same_schema(&s.text, text))
            .map(|(id, _)| *id)
            .unwrap_or(self.next_id);
        let version = self
            .subjects
            .get(subject)
            .and_then(|s| s.versions.iter().map(|v| v.version).max())
            .unwrap_or(0)
            + 1;
        Ok(Ok(RegistryEvent::Registered {
            subject: subject.to_string(),
            version,
            id,
            format,
            schema: text.to_string(),
        }))
    }

    /// Plans deleting a subject; returns the event and the versions it deletes.
    pub fn plan_delete_subject(
        &self,
        subject: &str,
        permanent: bool,
    ) -> Result<(RegistryEvent, Vec<u32>), RegistryError> {
        let s = self.known(subject)?;
        if permanent && !s.deleted && s.versions.iter().any(|v| !v.deleted) {
            return Err(RegistryError::SubjectNotSoftDeleted {
                subject: subject.to_string(),
            });
        }
        if !permanent && (s.deleted || s.versions.iter().all(|v| v.deleted)) {
            return Err(RegistryError::SubjectSoftDeleted {
                subject: subject.to_string(),
            });
        }
        let versions = s.versions.iter().map(|v| v.version).collect();
        Ok((
            RegistryEvent::SubjectDeleted {
                subject: subject.to_string(),
                permanent,
            },
            versions,
        ))
    }

    /// Plans deleting a version; returns the event and the version it deletes.
    pub fn plan_delete_version(
        &self,
        subject: &str,
        which: VersionRef,
        permanent: bool,
    ) -> Result<(RegistryEvent, u32), RegistryError> {
        let s = self.known(subject)?;
        let v = match which {
            VersionRef::Latest => s.versions.iter().rev().find(|v| permanent || !v.deleted),
            VersionRef::Number(n) => s.versions.iter().find(|v| v.version == n),
        }
        .ok_or_else(|| RegistryError::VersionNotFound {
            subject: subject.to_string(),
            version: format!("{which:?}"),
        })?;
        if permanent && !v.deleted {
            return Err(RegistryError::VersionNotSoftDeleted {
                subject: subject.to_string(),
                version: v.version,
            });
        }
        if !permanent && v.deleted {
            return Err(RegistryError::VersionNotFound {
                subject: subject.to_string(),
                version: v.version.to_string(),
            });
        }
        Ok((
            RegistryEvent::VersionDeleted {
                subject: subject.to_string(),
                version: v.version,
                permanent,
            },
            v.version,
        ))
    }
}

/// Schemas are the same when their JSON is equal, whatever the whitespace.
fn same_schema(a: &str, b: &str) -> bool {
    match (
        serde_json::from_str::<serde_json::Value>(a),
        serde_json::from_str::<serde_json::Value>(b),
    ) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1: &str = r#"{"type":"record","name":"P","fields":[{"name":"id","type":"string"}]}"#;
    const V2: &str = r#"{"type":"record","name":"P","fields":[{"name":"id","type":"string"},{"name":"n","type":"int","default":0}]}"#;
    const BAD: &str = r#"{"type":"record","name":"P","fields":[{"name":"id","type":"string"},{"name":"m","type":"int"}]}"#;

    fn register(r: &mut Registry, subject: &str, text: &str) -> Result<u32, RegistryError> {
        match r.plan_register(subject, Format::Avro, text)? {
            Ok(event) => {
                r.apply(&event);
                match event {
                    RegistryEvent::Registered { id, .. } => Ok(id),
                    _ => unreachable!("registration plans a Registered event"),
                }
            }
            Err(id) => Ok(id),
        }
    }

    #[test]
    fn ids_versions_and_compatibility() {
        let mut r = Registry::new();
        assert_eq!(register(&mut r, "a-value", V1), Ok(1));
        assert_eq!(
            register(&mut r, "a-value", V1),
            Ok(1),
            "same schema, same id"
        );
        assert_eq!(register(&mut r, "a-value", V2), Ok(2));
        assert_eq!(
            register(&mut r, "b-value", V2),
            Ok(2),
            "ids are global per schema"
        );
        assert_eq!(r.versions("b-value", false), Ok(vec![1]));
        let err = register(&mut r, "a-value", BAD).expect_err("no default");
        assert_eq!(err.code(), 409);
        assert!(err.to_string().contains("field 'm'"), "{err}");
        r.apply(&RegistryEvent::ConfigSet {
            subject: Some("a-value".into()),
            compatibility: Some(Compatibility::None),
        });
        assert_eq!(register(&mut r, "a-value", BAD), Ok(3));
    }

    #[test]
    fn soft_then_permanent_delete() {
        let mut r = Registry::new();
        register(&mut r, "s", V1).expect("v1");
        assert_eq!(
            r.plan_delete_subject("s", true)
                .expect_err("soft first")
                .code(),
            40405
        );
        let (e, versions) = r.plan_delete_subject("s", false).expect("soft");
        assert_eq!(versions, vec![1]);
        r.apply(&e);
        assert_eq!(r.versions("s", false).expect_err("gone").code(), 40401);
        assert_eq!(r.subjects(true), vec!["s".to_string()]);
        let (e, _) = r.plan_delete_subject("s", true).expect("permanent");
        r.apply(&e);
        assert!(r.subjects(true).is_empty());
        assert!(r.schema(1).is_ok(), "schema ids stay resolvable");
    }

    #[test]
    fn bad_input_gets_confluent_codes_and_says_why() {
        let r = Registry::new();
        let e = r
            .plan_register("s", Format::Avro, "{")
            .expect_err("not json");
        assert!(
            matches!(
                &e,
                RegistryError::InvalidSchema {
                    problem: ContractError::NotJson { line: 1, .. }
                }
            ),
            "{e:?}"
        );
        assert_eq!((e.code(), e.http_status()), (42201, 422));
        assert!(
            e.to_string()
                .starts_with("Invalid schema: schema is not valid JSON at line 1"),
            "{e}"
        );
        assert_eq!(VersionRef::parse("latest"), Ok(VersionRef::Latest));
        assert_eq!(VersionRef::parse("-1"), Ok(VersionRef::Latest));
        assert_eq!(VersionRef::parse("7"), Ok(VersionRef::Number(7)));
        for bad in ["0", "2147483648", "v1"] {
            let e = VersionRef::parse(bad).expect_err(bad);
            assert_eq!((e.code(), e.http_status()), (42202, 422));
        }
        let e = r.schema(9).expect_err("no schema");
        assert_eq!(e.to_string(), "Schema 9 not found");
        assert_eq!(e.http_status(), 404);
    }
}
