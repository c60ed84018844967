//! Records as Arrow rows of their stream's table schema (see [`crate::arrow_schema`]).
//!
//! Values are first made to fit their column: a field that an older contract version wrote
//! with another type becomes null (or its JSON text in a text column) instead of failing the
//! whole batch.

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::json::ReaderBuilder;
use serde_json::{Map, Value};

use crate::source::StreamRecord;
use crate::PipelineError;

const ROWS_PER_BATCH: usize = 8192;

/// A value made to fit a column of type `ty`.
fn fit(value: &Value, ty: &DataType) -> Value {
    match (ty, value) {
        (_, Value::Null) => Value::Null,
        (DataType::Utf8, Value::String(_)) => value.clone(),
        (DataType::Utf8, other) => Value::String(other.to_string()),
        (DataType::Boolean, Value::Bool(_)) => value.clone(),
        (DataType::Int32 | DataType::Int64, Value::Number(n)) if n.is_i64() || n.is_u64() => {
            value.clone()
        }
        (DataType::Float32 | DataType::Float64, Value::Number(_)) => value.clone(),
        (
            DataType::Int32 | DataType::Int64 | DataType::Float32 | DataType::Float64,
            Value::String(s),
        ) => s
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        (DataType::Timestamp(..) | DataType::Date32, Value::String(_) | Value::Number(_)) => {
            value.clone()
        }
        _ => Value::Null,
    }
}

/// One row: metadata columns, then the record's fields that the schema has.
fn row(record: &StreamRecord, schema: &SchemaRef) -> Value {
    let mut out = Map::new();
    out.insert("_partition".into(), record.partition.into());
    out.insert("_offset".into(), record.offset.into());
    out.insert("_timestamp".into(), record.timestamp.into());
    if let Some(k) = &record.key {
        out.insert("_key".into(), Value::String(k.clone()));
    }
    let fields = record.value.as_object();
    for f in schema.fields().iter().skip(crate::META_COLUMNS.len()) {
        let v = match (fields, f.name().as_str()) {
            (Some(obj), name) => obj.get(name).cloned().unwrap_or(Value::Null),
            // A stream without a contract has one `value` column holding the record.
            (None, "value") => record.value.clone(),
            (None, _) => Value::Null,
        };
        out.insert(f.name().clone(), fit(&v, f.data_type()));
    }
    Value::Object(out)
}

/// An event time in milliseconds from a field's value: epoch milliseconds, RFC 3339 text, or
/// the zone-less text Arrow writes for UTC timestamps; `fallback` for anything else.
pub(crate) fn event_time(value: Option<&Value>, fallback: i64) -> i64 {
    match value {
        Some(Value::Number(n)) => n.as_i64().unwrap_or(fallback),
        Some(Value::String(s)) => chrono::DateTime::parse_from_rfc3339(s)
            .map(|t| t.timestamp_millis())
            .or_else(|_| {
                chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
                    .map(|t| t.and_utc().timestamp_millis())
            })
            .unwrap_or(fallback),
        _ => fallback,
    }
}

/// Converts records into Arrow batches of `schema`.
pub(crate) fn to_batches(
    records: &[StreamRecord],
    schema: &SchemaRef,
) -> Result<Vec<RecordBatch>, PipelineError> {
    let mut out = Vec::new();
    for chunk in records.chunks(ROWS_PER_BATCH) {
        let rows: Vec<Value> = chunk.iter().map(|r| row(r, schema)).collect();
        let mut decoder = ReaderBuilder::new(schema.clone())
            .with_batch_size(ROWS_PER_BATCH)
            .build_decoder()?;
        decoder.serialize(&rows)?;
        if let Some(batch) = decoder.flush()? {
            out.push(batch);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use headwater_contracts::{Contract, Format};

    #[test]
    fn records_become_typed_rows() {
        let c = Contract::parse(
            Format::JsonSchema,
            r#"{"type":"object","properties":{"amount":{"type":"number"},
                "at":{"type":"string","format":"date-time"},"who":{"type":"string"}}}"#,
        )
        .expect("schema");
        let schema = crate::table_schema(Some(&c));
        let rec = |o: i64, v: Value| StreamRecord {
            partition: 0,
            offset: o,
            timestamp: 1_795_598_100_000,
            key: Some(format!("k{o}")),
            value: v,
        };
        let batches = to_batches(
            &[
                rec(
                    0,
                    serde_json::json!({"amount": 1.5, "at": "2026-11-25T08:00:00Z", "who": "a"}),
                ),
                // Written by an older version: amount as text, who as a number.
                rec(1, serde_json::json!({"amount": "2", "who": 7})),
            ],
            &schema,
        )
        .expect("batches");
        assert_eq!(batches[0].num_rows(), 2);
        let text = datafusion::arrow::util::pretty::pretty_format_batches(&batches)
            .expect("pretty")
            .to_string();
        assert!(text.contains("2026-11-25T08:00:00Z"), "{text}");
        assert!(text.contains("| 7  "), "{text}");
    }
}
