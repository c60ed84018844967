//! A stream's contract as an Arrow schema, so its records become a table.
//!
//! Each top-level field of the record is a column. Scalars map to their Arrow type (JSON Schema
//! `string` with `format: date-time` and Avro `timestamp-*` become UTC timestamps); nested
//! objects, arrays and maps become their JSON text. Every column is nullable: older contract
//! versions may lack a field. Four columns describe the record itself: `_partition`, `_offset`,
//! `_timestamp` (the Kafka timestamp) and `_key`.

use std::sync::Arc;

use apache_avro::Schema as Avro;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use headwater_contracts::{Contract, Format};
use serde_json::Value;

/// The columns every stream table has besides its record's fields.
pub const META_COLUMNS: [&str; 4] = ["_partition", "_offset", "_timestamp", "_key"];

fn utc(unit: TimeUnit) -> DataType {
    DataType::Timestamp(unit, Some("UTC".into()))
}

fn meta_fields() -> Vec<Field> {
    vec![
        Field::new("_partition", DataType::Int32, false),
        Field::new("_offset", DataType::Int64, false),
        Field::new("_timestamp", utc(TimeUnit::Millisecond), false),
        Field::new("_key", DataType::Utf8, true),
    ]
}

/// The table schema of a stream with this contract (or only the metadata columns and a JSON
/// `value` column for a stream without one).
pub fn table_schema(contract: Option<&Contract>) -> SchemaRef {
    let mut fields = match contract {
        Some(c) => match c.format() {
            Format::JsonSchema => json_fields(c.json()),
            Format::Avro => c.avro().map(avro_fields).unwrap_or_default(),
        },
        None => vec![Field::new("value", DataType::Utf8, true)],
    };
    fields.retain(|f| !META_COLUMNS.contains(&f.name().as_str()));
    let mut all = meta_fields();
    all.extend(fields);
    Arc::new(Schema::new(all))
}

/// The table a windowed pipeline's SQL reads: the stream's, plus the `window_start` and
/// `window_end` of the window being emitted.
pub(crate) fn window_table_schema(contract: Option<&Contract>) -> SchemaRef {
    let base = table_schema(contract);
    let mut fields: Vec<Field> = base.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new(
        "window_start",
        utc(TimeUnit::Millisecond),
        false,
    ));
    fields.push(Field::new("window_end", utc(TimeUnit::Millisecond), false));
    Arc::new(Schema::new(fields))
}

/// Follows a local `$ref` (`#/$defs/x`, `#/definitions/x`) within the schema document.
fn resolve<'a>(root: &'a Value, node: &'a Value) -> &'a Value {
    let mut node = node;
    for _ in 0..16 {
        let Some(r) = node.get("$ref").and_then(Value::as_str) else {
            return node;
        };
        match r.strip_prefix('#').and_then(|p| root.pointer(p)) {
            Some(target) => node = target,
            None => return node,
        }
    }
    node
}

fn json_type(root: &Value, node: &Value) -> DataType {
    let node = resolve(root, node);
    let types: Vec<&str> = match node.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let non_null: Vec<&str> = types.into_iter().filter(|t| *t != "null").collect();
    match non_null.as_slice() {
        ["string"] => match node.get("format").and_then(Value::as_str) {
            Some("date-time") => utc(TimeUnit::Microsecond),
            Some("date") => DataType::Date32,
            _ => DataType::Utf8,
        },
        ["integer"] => DataType::Int64,
        ["number"] | ["integer", "number"] | ["number", "integer"] => DataType::Float64,
        ["boolean"] => DataType::Boolean,
        _ => DataType::Utf8,
    }
}

fn json_fields(schema: &Value) -> Vec<Field> {
    let root = resolve(schema, schema);
    let Some(props) = root.get("properties").and_then(Value::as_object) else {
        return vec![Field::new("value", DataType::Utf8, true)];
    };
    props
        .iter()
        .map(|(name, p)| Field::new(name, json_type(schema, p), true))
        .collect()
}

fn avro_type(s: &Avro) -> DataType {
    match s {
        Avro::Boolean => DataType::Boolean,
        Avro::Int => DataType::Int32,
        Avro::Long => DataType::Int64,
        Avro::Float => DataType::Float32,
        Avro::Double => DataType::Float64,
        Avro::Date => DataType::Date32,
        Avro::TimestampMillis => utc(TimeUnit::Millisecond),
        Avro::TimestampMicros => utc(TimeUnit::Microsecond),
        Avro::Union(u) => {
            let non_null: Vec<&Avro> = u
                .variants()
                .iter()
                .filter(|v| !matches!(v, Avro::Null))
                .collect();
            match non_null.as_slice() {
                [one] => avro_type(one),
                _ => DataType::Utf8,
            }
        }
        _ => DataType::Utf8,
    }
}

fn avro_fields(schema: &Avro) -> Vec<Field> {
    match schema {
        Avro::Record(r) => r
            .fields
            .iter()
            .map(|f| Field::new(&f.name, avro_type(&f.schema), true))
            .collect(),
        other => vec![Field::new("value", avro_type(other), true)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The type of each named column of `format` contract `text`'s table.
    fn column_types(format: Format, text: &str, columns: &[&str]) -> Vec<DataType> {
        let contract = Contract::parse(format, text).expect("a contract");
        let schema = table_schema(Some(&contract));
        columns
            .iter()
            .map(|c| schema.field_with_name(c).expect(c).data_type().clone())
            .collect()
    }

    #[test]
    fn json_schema_and_avro_become_columns() {
        let json = r##"{"type":"object","$defs":{"money":{"type":"number"}},"properties":{
            "amount":{"$ref":"#/$defs/money"},"id":{"type":"string"},
            "at":{"type":"string","format":"date-time"},"n":{"type":["integer","null"]},
            "tags":{"type":"array"}}}"##;
        assert_eq!(
            column_types(
                Format::JsonSchema,
                json,
                &["amount", "at", "n", "tags", "_offset"]
            ),
            [
                DataType::Float64,
                utc(TimeUnit::Microsecond),
                DataType::Int64,
                DataType::Utf8,
                DataType::Int64
            ]
        );
        let avro = r#"{"type":"record","name":"R","fields":[{"name":"cents","type":"long"},
            {"name":"at","type":{"type":"long","logicalType":"timestamp-millis"}},
            {"name":"why","type":["null","string"]}]}"#;
        assert_eq!(
            column_types(Format::Avro, avro, &["cents", "at", "why"]),
            [DataType::Int64, utc(TimeUnit::Millisecond), DataType::Utf8]
        );
    }
}
