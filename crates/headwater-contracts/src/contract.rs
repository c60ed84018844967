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

#[cfg(test)]
mod tests {
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
