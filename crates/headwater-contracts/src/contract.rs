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
    pub(crate) fn avro(&self) -> Option<&apache_avro::Schema> {
        self.avro.as_ref()
    }
}
