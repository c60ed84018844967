//! A value in a contract's wire form, without framing: Avro binary for an Avro contract,
//! compact JSON text for JSON Schema. People write and read events as plain JSON; these
//! methods turn that JSON into the stream's bytes and back.
//!
//! Encoding is not validation: a JSON value that fits an Avro schema is written whatever the
//! stream's quality rules say, and JSON text is written as given. The contract gate
//! ([`crate::validate`]) checks what is produced.

use crate::Contract;

/// Why a JSON value cannot be written in a contract's wire form.
///
/// The messages complete a sentence about the event (`the event does not fit ...`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// A top-level field of the event is missing (and has no default) or has a type the Avro
    /// schema does not allow there: the producer fixes that field.
    #[error("does not fit the Avro schema: field '{field}': {reason}")]
    FieldDoesNotFit {
        /// The schema's name of the field.
        field: String,
        /// `apache-avro`'s explanation of why the event as a whole does not resolve.
        reason: String,
    },
    /// The event does not fit the Avro schema, and no single top-level field is to blame (it
    /// is not a JSON object, or a nested value is wrong).
    #[error("does not fit the Avro schema: {reason}")]
    DoesNotFit {
        /// `apache-avro`'s explanation.
        reason: String,
    },
    /// `apache-avro` could not write a value it had resolved against the schema: a fault in
    /// Headwater or `apache-avro`, not in the event.
    #[error("cannot be written with the Avro schema: {reason}")]
    Internal {
        /// `apache-avro`'s explanation.
        reason: String,
    },
}

/// Why a payload cannot be read with a contract.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The payload of a JSON Schema stream is not JSON text.
    #[error("value is not JSON: {reason}")]
    NotJson {
        /// `serde_json`'s explanation, with line and column.
        reason: String,
    },
    /// The payload is not a value of the Avro schema: it was written with another schema
    /// (check the schema id in its framing) or is cut short.
    #[error("value does not decode with the Avro schema: {reason}")]
    AvroUndecodable {
        /// `apache-avro`'s explanation.
        reason: String,
    },
    /// The payload holds more than one Avro value: it was written with another schema, whose
    /// values are longer than this one's.
    #[error("{left} bytes left after the Avro value")]
    AvroTrailingBytes {
        /// Bytes after the end of the value.
        left: usize,
    },
    /// The Avro value decodes but has no JSON form (a NaN or infinite float, for example).
    #[error("Avro value has no JSON form: {reason}")]
    NoJsonForm {
        /// `apache-avro`'s explanation.
        reason: String,
    },
    /// [`Contract::decode_avro`] was called on a contract that is not Avro: a bug in the caller.
    #[error("the contract is not Avro")]
    NotAnAvroContract,
}

impl Contract {
    /// Encodes a JSON value in the contract's wire form (without framing): Avro binary for an
    /// Avro contract, compact JSON text for JSON Schema. Plain JSON is how people write events;
    /// union branches are chosen by the value, as Avro's own schema resolution does.
    pub fn encode_json(&self, value: &serde_json::Value) -> Result<Vec<u8>, EncodeError> {
        let Some(schema) = self.avro() else {
            // `Value`'s `Display` is its compact JSON text, and it cannot fail.
            return Ok(value.to_string().into_bytes());
        };
        let datum = apache_avro::types::Value::try_from(value.clone())
            .and_then(|v| v.resolve(schema))
            .map_err(|e| match misfit_field(schema, value) {
                Some(field) => EncodeError::FieldDoesNotFit {
                    field,
                    reason: e.to_string(),
                },
                None => EncodeError::DoesNotFit {
                    reason: e.to_string(),
                },
            })?;
        apache_avro::writer::datum::GenericDatumWriter::builder(schema)
            .build()
            .and_then(|w| w.write_value_to_vec(datum))
            .map_err(|e| EncodeError::Internal {
                reason: e.to_string(),
            })
    }

    /// Decodes a payload (without framing) to JSON: Avro binary read with this schema (unions
    /// as their plain value), or JSON text. The whole payload must be one value.
    pub fn decode_json(&self, payload: &[u8]) -> Result<serde_json::Value, DecodeError> {
        if self.avro().is_none() {
            return serde_json::from_slice(payload).map_err(|e| DecodeError::NotJson {
                reason: e.to_string(),
            });
        }
        let datum = self.decode_avro(payload)?;
        serde_json::Value::try_from(datum).map_err(|e| DecodeError::NoJsonForm {
            reason: e.to_string(),
        })
    }

    /// Reads an Avro payload (without framing) with this contract's schema; the whole payload
    /// must be one value. Checking a record needs no more than this when no rule looks at it.
    pub fn decode_avro(&self, payload: &[u8]) -> Result<apache_avro::types::Value, DecodeError> {
        let schema = self.avro().ok_or(DecodeError::NotAnAvroContract)?;
        let mut cursor = std::io::Cursor::new(payload);
        let datum = apache_avro::reader::datum::GenericDatumReader::builder(schema)
            .build()
            .and_then(|r| r.read_value(&mut cursor))
            .map_err(|e| DecodeError::AvroUndecodable {
                reason: e.to_string(),
            })?;
        let left = payload.len().saturating_sub(cursor.position() as usize);
        if left != 0 {
            return Err(DecodeError::AvroTrailingBytes { left });
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
    use crate::Format;

    fn avro() -> Contract {
        Contract::parse(
            Format::Avro,
            r#"{"type":"record","name":"R","fields":[
                {"name":"id","type":"string"},
                {"name":"cents","type":"long"},
                {"name":"rate","type":"double"},
                {"name":"note","type":["null","string"],"default":null},
                {"name":"kind","type":{"type":"enum","name":"K","symbols":["A","B"]}}]}"#,
        )
        .expect("schema")
    }

    #[test]
    fn json_round_trips_through_avro() {
        let c = avro();
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
        assert!(
            matches!(&e, EncodeError::FieldDoesNotFit { field, .. } if field == "cents"),
            "{e:?}"
        );
        assert!(
            e.to_string()
                .starts_with("does not fit the Avro schema: field 'cents': "),
            "{e}"
        );
        assert!(c.decode_json(&[1, 2]).is_err());
    }

    #[test]
    fn a_value_that_is_not_a_record_names_no_field() {
        let e = avro()
            .encode_json(&serde_json::json!([1]))
            .expect_err("not an object");
        assert!(matches!(e, EncodeError::DoesNotFit { .. }), "{e:?}");
    }

    #[test]
    fn the_whole_payload_must_be_one_value() {
        let c = Contract::parse(Format::Avro, r#""long""#).expect("schema");
        assert_eq!(
            c.decode_avro(&[0x02]),
            Ok(apache_avro::types::Value::Long(1))
        );
        let e = c.decode_avro(&[0x02, 0x02, 0x02]).expect_err("two values");
        assert_eq!(e, DecodeError::AvroTrailingBytes { left: 2 });
        assert_eq!(e.to_string(), "2 bytes left after the Avro value");
        assert!(matches!(
            c.decode_avro(&[0x80]),
            Err(DecodeError::AvroUndecodable { .. })
        ));
    }

    #[test]
    fn json_schema_contracts_carry_json_text() {
        let c = Contract::parse(Format::JsonSchema, r#"{"type":"object"}"#).expect("schema");
        let v = serde_json::json!({"b": [1, 2.5, null], "a": "x"});
        let bytes = c.encode_json(&v).expect("encode");
        assert_eq!(bytes, serde_json::to_vec(&v).expect("json"));
        assert_eq!(c.decode_json(&bytes), Ok(v));
        assert!(matches!(
            c.decode_json(b"{"),
            Err(DecodeError::NotJson { .. })
        ));
        assert_eq!(c.decode_avro(&bytes), Err(DecodeError::NotAnAvroContract));
    }
}
