//! A contract: one parsed schema version, in one of the [`Format`]s, and what the catalog reads
//! of it (its top-level fields). Encoding values with it is in `codec.rs`.

use serde::{Deserialize, Serialize};

/// The schema language of a contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// JSON Schema, draft-07 or 2020-12 (from `$schema`; 2020-12 when absent).
    JsonSchema,
    /// Avro, as the Avro 1.11 specification defines its schemas (JSON text).
    Avro,
}

impl Format {
    /// The name Confluent's Schema Registry uses (`schemaType`).
    pub fn registry_name(&self) -> &'static str {
        match self {
            Format::JsonSchema => "JSON",
            Format::Avro => "AVRO",
        }
    }
}

/// Why a schema text is not a usable contract. Each is the author's to fix in the schema text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContractError {
    /// The text is not JSON (both formats write schemas as JSON).
    #[error("schema is not valid JSON at line {line}, column {column}: {message}")]
    NotJson {
        /// 1-based line of the first error.
        line: usize,
        /// 1-based column of the first error.
        column: usize,
        /// `serde_json`'s explanation.
        message: String,
    },
    /// The JSON is not a JSON Schema: its meta-schema refuses it.
    #[error("invalid JSON Schema at {pointer}: {message}")]
    InvalidJsonSchema {
        /// JSON pointer to the offending keyword in the schema (`/` for the root).
        pointer: String,
        /// `jsonschema`'s explanation.
        message: String,
    },
    /// The JSON is not an Avro schema.
    #[error("invalid Avro schema: {reason}")]
    InvalidAvro {
        /// `apache-avro`'s explanation.
        reason: String,
    },
}

/// One parsed schema version.
#[derive(Debug, Clone)]
pub struct Contract {
    format: Format,
    text: String,
    json: serde_json::Value,
    avro: Option<apache_avro::Schema>,
}

impl Contract {
    /// Parses and checks a schema: JSON Schema against its meta-schema, Avro by the Avro spec.
    pub fn parse(format: Format, text: &str) -> Result<Self, ContractError> {
        let json: serde_json::Value =
            serde_json::from_str(text).map_err(|e| ContractError::NotJson {
                line: e.line(),
                column: e.column(),
                message: e.to_string(),
            })?;
        let avro = match format {
            Format::JsonSchema => {
                jsonschema::validator_for(&json).map_err(|e| ContractError::InvalidJsonSchema {
                    pointer: {
                        let p = e.instance_path().to_string();
                        if p.is_empty() {
                            "/".to_string()
                        } else {
                            p
                        }
                    },
                    message: e.to_string(),
                })?;
                None
            }
            Format::Avro => Some(apache_avro::Schema::parse_str(text).map_err(|e| {
                ContractError::InvalidAvro {
                    reason: e.to_string(),
                }
            })?),
        };
        Ok(Contract {
            format,
            text: text.to_string(),
            json,
            avro,
        })
    }

    /// The schema language.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The schema text as registered.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The schema text parsed as JSON (both formats are JSON).
    pub fn json(&self) -> &serde_json::Value {
        &self.json
    }

    /// The parsed Avro schema; `None` for a JSON Schema contract.
    pub fn avro(&self) -> Option<&apache_avro::Schema> {
        self.avro.as_ref()
    }

    /// The record's top-level fields as (name, type) for the catalog: a JSON Schema's
    /// `properties` (following a local `$ref` at the root), an Avro record's fields. Types are
    /// written as the schema writes them (`string`, `number|null`, `long`, `null|string`).
    pub fn fields(&self) -> Vec<(String, String)> {
        match &self.avro {
            Some(apache_avro::Schema::Record(r)) => r
                .fields
                .iter()
                .map(|f| (f.name.clone(), avro_type(&f.schema)))
                .collect(),
            Some(_) => Vec::new(),
            None => {
                let root = resolve_local(&self.json, &self.json);
                root.get("properties")
                    .and_then(|p| p.as_object())
                    .map(|props| {
                        props
                            .iter()
                            .map(|(name, p)| {
                                (name.clone(), json_type(resolve_local(&self.json, p)))
                            })
                            .collect()
                    })
                    .unwrap_or_default()
            }
        }
    }
}

/// `node`, or what its local `$ref` (`#/...`) points to in `root`.
fn resolve_local<'a>(
    root: &'a serde_json::Value,
    node: &'a serde_json::Value,
) -> &'a serde_json::Value {
    node.get("$ref")
        .and_then(|r| r.as_str())
        .and_then(|r| r.strip_prefix('#'))
        .and_then(|pointer| root.pointer(pointer))
        .unwrap_or(node)
}

fn json_type(p: &serde_json::Value) -> String {
    match p.get("type") {
        Some(serde_json::Value::String(t)) => t.clone(),
        Some(serde_json::Value::Array(ts)) => ts
            .iter()
            .filter_map(|t| t.as_str())
            .collect::<Vec<_>>()
            .join("|"),
        _ if p.get("enum").is_some() => "enum".into(),
        _ => "any".into(),
    }
}

fn avro_type(s: &apache_avro::Schema) -> String {
    use apache_avro::Schema;
    match s {
        Schema::Union(u) => u
            .variants()
            .iter()
            .map(avro_type)
            .collect::<Vec<_>>()
            .join("|"),
        Schema::Record(r) => r.name.name().to_string(),
        Schema::Enum(e) => e.name.name().to_string(),
        Schema::Fixed(f) => f.name.name().to_string(),
        Schema::Ref { name } => name.name().to_string(),
        Schema::Array(a) => format!("array<{}>", avro_type(&a.items)),
        Schema::Map(m) => format!("map<{}>", avro_type(&m.types)),
        other => format!("{:?}", apache_avro::schema::SchemaKind::from(other)).to_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The (name, type) pairs `fields` lists for a schema.
    fn fields(format: Format, text: &str) -> Vec<(String, String)> {
        Contract::parse(format, text).expect("schema").fields()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, t)| (n.to_string(), t.to_string()))
            .collect()
    }

    #[test]
    fn fields_are_listed_with_their_types_for_both_formats() {
        assert_eq!(
            fields(
                Format::JsonSchema,
                r##"{"$ref":"#/$defs/t","$defs":{"t":{"type":"object","properties":{"id":{"type":"string"},"amount":{"type":["number","null"]},"kind":{"enum":["a","b"]}}}}}"##,
            ),
            pairs(&[
                ("amount", "number|null"),
                ("id", "string"),
                ("kind", "enum")
            ])
        );
        assert_eq!(
            fields(
                Format::Avro,
                r#"{"type":"record","name":"R","fields":[{"name":"id","type":"string"},{"name":"note","type":["null","string"]},{"name":"tags","type":{"type":"array","items":"string"}}]}"#,
            ),
            pairs(&[
                ("id", "string"),
                ("note", "null|string"),
                ("tags", "array<string>")
            ])
        );
        assert!(
            fields(Format::Avro, r#""string""#).is_empty(),
            "not a record"
        );
    }

    #[test]
    fn schema_errors_say_where() {
        let e = Contract::parse(Format::JsonSchema, r#"{"type": 12}"#).expect_err("bad type");
        assert!(
            matches!(&e, ContractError::InvalidJsonSchema { pointer, .. } if pointer == "/type"),
            "{e:?}"
        );
        let e = Contract::parse(Format::Avro, "{\n}").expect_err("no type");
        assert!(matches!(e, ContractError::InvalidAvro { .. }), "{e:?}");
        let e = Contract::parse(Format::Avro, "[\n1,").expect_err("not json");
        assert!(matches!(e, ContractError::NotJson { line: 2, .. }), "{e:?}");
    }
}
