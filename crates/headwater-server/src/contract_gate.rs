//! The produce gate for topics with `headwater.validation=reject`: every record's value must be
//! valid under the topic's value subject (`<topic>-value`, TopicNameStrategy).
//!
//! A value is either Confluent-framed (magic byte 0 and a schema id that must be a version of
//! that subject) or, on a JSON Schema subject, plain JSON checked against the latest version.
//! Validators are compiled once per schema id and cached.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::{Buf, Bytes};
use headwater_contracts::registry::{Registry, VersionRef};
use headwater_contracts::validate::{framing, Framing, RecordValidator};
use headwater_contracts::Format;
use headwater_kafka::{GateVerdict, ProduceGate};
use kafka_protocol::records::RecordBatchDecoder;
use parking_lot::Mutex;

use crate::SchemaRegistry;

/// Quality rules of one topic: (name, CEL expression).
type Rules = Vec<(String, String)>;

#[derive(Debug)]
pub struct ContractGate {
    registry: Arc<SchemaRegistry>,
    /// Quality rules per topic, set by the topic's domain.
    rules: parking_lot::RwLock<HashMap<String, Rules>>,
    /// Compiled per (schema id, topic): the topic decides the rules.
    validators: Mutex<HashMap<(u32, String), Arc<RecordValidator>>>,
}

impl ContractGate {
    pub fn new(registry: Arc<SchemaRegistry>) -> Self {
        ContractGate {
            registry,
            rules: parking_lot::RwLock::new(HashMap::new()),
            validators: Mutex::new(HashMap::new()),
        }
    }

    /// Replaces a topic's quality rules; validators compiled with the old ones are dropped.
    pub fn set_rules(&self, topic: &str, rules: Rules) {
        self.rules.write().insert(topic.to_string(), rules);
        self.validators.lock().retain(|(_, t), _| t != topic);
    }

    fn validator(
        &self,
        reg: &Registry,
        id: u32,
        topic: &str,
    ) -> Result<Arc<RecordValidator>, String> {
        let key = (id, topic.to_string());
        if let Some(v) = self.validators.lock().get(&key) {
            return Ok(v.clone());
        }
        let schema = reg.schema(id).map_err(|e| e.to_string())?;
        let rules = self.rules.read().get(topic).cloned().unwrap_or_default();
        let v =
            Arc::new(RecordValidator::new(&schema.contract, &rules).map_err(|e| e.to_string())?);
        self.validators.lock().insert(key, v.clone());
        Ok(v)
    }

    fn check_value(
        &self,
        reg: &Registry,
        topic: &str,
        subject: &str,
        value: Option<&Bytes>,
    ) -> Result<(), String> {
        let value = value.ok_or("the record has no value; the contract requires one")?;
        match framing(value) {
            Framing::Confluent { schema_id } => {
                if reg.schema(schema_id).is_err() {
                    return Err(format!("unknown schema id {schema_id}; register the schema under '{subject}' first"));
                }
                if !reg.usages(schema_id).iter().any(|(s, _)| s == subject) {
                    return Err(format!(
                        "schema id {schema_id} is not a version of subject '{subject}'"
                    ));
                }
                let v = self.validator(reg, schema_id, topic)?;
                v.validate(&value[5..])
                    .map(|_| ())
                    .map_err(|e| format!("schema id {schema_id}: {e}"))
            }
            Framing::PlainJson => {
                let (version, id, schema) = reg
                    .version(subject, VersionRef::Latest)
                    .map_err(|e| e.to_string())?;
                if schema.format != Format::JsonSchema {
                    return Err(format!("the value is not framed (magic byte 0 + schema id) and subject '{subject}' is Avro; use a Confluent serializer"));
                }
                let v = self.validator(reg, id, topic)?;
                v.validate(value)
                    .map(|_| ())
                    .map_err(|e| format!("version {version}: {e}"))
            }
        }
    }
}

impl ProduceGate for ContractGate {
    fn check(&self, topic: &str, _partition: i32, records: &Bytes) -> GateVerdict {
        let subject = format!("{topic}-value");
        let reg = self.registry.read();
        if reg.version(&subject, VersionRef::Latest).is_err() {
            return GateVerdict::Reject {
                record_errors: Vec::new(),
                message: format!("topic '{topic}' validates records (headwater.validation=reject) but subject '{subject}' has no schema; register one or set headwater.validation=none"),
            };
        }
        let mut buf = records.clone();
        let mut index = 0i32;
        let mut errors = Vec::new();
        while buf.has_remaining() {
            let set = match RecordBatchDecoder::decode(&mut buf) {
                Ok(s) => s,
                Err(e) => {
                    return GateVerdict::Reject {
                        record_errors: Vec::new(),
                        message: format!("record batch cannot be decoded for validation: {e}"),
                    }
                }
            };
            for r in &set.records {
                if let Err(e) = self.check_value(&reg, topic, &subject, r.value.as_ref()) {
                    errors.push((index, e));
                }
                index += 1;
            }
        }
        if errors.is_empty() {
            return GateVerdict::Pass;
        }
        let message = format!(
            "{} of {index} records break the contract of '{topic}'; record {}: {}",
            errors.len(),
            errors[0].0,
            errors[0].1
        );
        GateVerdict::Reject {
            record_errors: errors,
            message,
        }
    }
}
