use serde::{Deserialize, Serialize};

/// The schema language of a contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// JSON Schema, draft-07 or 2020-12 (from `$schema`; 2020-12 when absent).
    JsonSchema,
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

/// Why a schema text is not a usable contract.
#[derive(Debug, thiserror::Error)]
pub enum ContractError {
    #[error("schema is not valid JSON at line {line}, column {column}: {message}")]
    NotJson {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("invalid JSON Schema at {pointer}: {message}")]
    InvalidJsonSchema { pointer: String, message: String },
    #[error("invalid Avro schema: {0}")]
    InvalidAvro(String),
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
            Format::Avro => Some(
                apache_avro::Schema::parse_str(text)
                    .map_err(|e| ContractError::InvalidAvro(e.to_string()))?,
            ),
        };
        Ok(Contract {
            format,
            text: text.to_string(),
            json,
            avro,
        })
    }

    pub fn format(&self) -> Format {
        self.format
    }
    pub fn text(&self) -> &str {
        &self.text
    }
    pub fn json(&self) -> &serde_json::Value {
        &self.json
    }
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

    /// Encodes a JSON value in the contract's wire form (without framing): Avro binary for an
    /// Avro contract, compact JSON text for JSON Schema. Plain JSON is how people write events;
    /// union branches are chosen by the value, as Avro's own schema resolution does.
    pub fn encode_json(&self, value: &serde_json::Value) -> Result<Vec<u8>, String> {
        let Some(schema) = &self.avro else {
            return serde_json::to_vec(value).map_err(|e| e.to_string());
        };
        let datum = apache_avro::types::Value::try_from(value.clone())
            .and_then(|v| v.resolve(schema))
            .map_err(|e| match misfit_field(schema, value) {
                Some(field) => format!("does not fit the Avro schema: field '{field}': {e}"),
                None => format!("does not fit the Avro schema: {e}"),
            })?;
        apache_avro::writer::datum::GenericDatumWriter::builder(schema)
            .build()
            .and_then(|w| w.write_value_to_vec(datum))
            .map_err(|e| format!("cannot be written with the Avro schema: {e}"))
    }

    /// Decodes a payload (without framing) to JSON: Avro binary read with this schema (unions
    /// as their plain value), or JSON text. The whole payload must be one value.
    pub fn decode_json(&self, payload: &[u8]) -> Result<serde_json::Value, String> {
        if self.avro.is_none() {
            return serde_json::from_slice(payload).map_err(|e| format!("value is not JSON: {e}"));
        }
        let datum = self.decode_avro(payload)?;
        serde_json::Value::try_from(datum).map_err(|e| format!("Avro value has no JSON form: {e}"))
    }

    /// Reads an Avro payload (without framing) with this contract's schema; the whole payload
    /// must be one value. Checking a record needs no more than this when no rule looks at it.
    pub fn decode_avro(&self, payload: &[u8]) -> Result<apache_avro::types::Value, String> {
        let schema = self
            .avro
            .as_ref()
            .ok_or_else(|| "the contract is not Avro".to_string())?;
        let mut cursor = std::io::Cursor::new(payload);
        let datum = apache_avro::reader::datum::GenericDatumReader::builder(schema)
            .build()
            .and_then(|r| r.read_value(&mut cursor))
            .map_err(|e| format!("value does not decode with the Avro schema: {e}"))?;
        let left = payload.len().saturating_sub(cursor.position() as usize);
        if left != 0 {
            return Err(format!("{left} bytes left after the Avro value"));
        }
        Ok(datum)
    }
}

/// The first top-level field of a record that does not resolve on its own (missing without a
/// default, or of the wrong type), so an error can name it.
fn misfit_field(schema: &apache_avro::Schema, value: &serde_json::Value) -> Option<String> {
    let (apache_avro::Schema::Record(record), serde_json::Value::Object(fields)) = (schema, value)
    else {
        return None;
    };
    record.fields.iter().find_map(|f| {
        let fits = match fields.get(&f.name) {
            None => f.default.is_some(),
            Some(v) => apache_avro::types::Value::try_from(v.clone())
                .and_then(|v| v.resolve(&f.schema))
                .is_ok(),
        };
        (!fits).then(|| f.name.clone())
    })
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

    #[test]
    fn fields_are_listed_with_their_types_for_both_formats() {
        let json = Contract::parse(
            Format::JsonSchema,
            r##"{"$ref":"#/$defs/t","$defs":{"t":{"type":"object","properties":{"id":{"type":"string"},"amount":{"type":["number","null"]},"kind":{"enum":["a","b"]}}}}}"##,
        )
        .expect("json schema");
        assert_eq!(
            json.fields(),
            vec![
                ("amount".to_string(), "number|null".to_string()),
                ("id".to_string(), "string".to_string()),
                ("kind".to_string(), "enum".to_string())
            ]
        );
        let avro = Contract::parse(
            Format::Avro,
            r#"{"type":"record","name":"R","fields":[{"name":"id","type":"string"},{"name":"note","type":["null","string"]},{"name":"tags","type":{"type":"array","items":"string"}}]}"#,
        )
        .expect("avro");
        assert_eq!(
            avro.fields(),
            vec![
                ("id".to_string(), "string".to_string()),
                ("note".to_string(), "null|string".to_string()),
                ("tags".to_string(), "array<string>".to_string())
            ]
        );
    }

    use super::*;

    #[test]
    fn json_round_trips_through_avro() {
        let c = Contract::parse(
            Format::Avro,
            r#"{"type":"record","name":"R","fields":[
                {"name":"id","type":"string"},
                {"name":"cents","type":"long"},
                {"name":"rate","type":"double"},
                {"name":"note","type":["null","string"],"default":null},
                {"name":"kind","type":{"type":"enum","name":"K","symbols":["A","B"]}}]}"#,
        )
        .expect("schema");
        let v = serde_json::json!({"id": "x", "cents": 150, "rate": 2, "note": "hi", "kind": "B"});
        let bytes = c.encode_json(&v).expect("encode");
        let back = c.decode_json(&bytes).expect("decode");
        assert_eq!(back["cents"], 150);
        assert_eq!(back["note"], "hi");
        assert_eq!(back["kind"], "B");
        assert_eq!(back["rate"], 2.0);
        let e = c
            .encode_json(&serde_json::json!({"id": "x"}))
            .expect_err("missing fields");
        assert!(e.contains("field 'cents'"), "{e}");
        assert!(c.decode_json(&[1, 2]).is_err());
    }
}
