//! The produce gate for validated topics (`headwater.validation=reject` or `dead-letter`): every
//! record's value must be valid under the topic's value subject (`<topic>-value`,
//! TopicNameStrategy); an invalid one refuses the batch or goes to the dead-letter stream.
//!
//! A value is either Confluent-framed (magic byte 0 and a schema id that must be a version of
//! that subject) or, on a JSON Schema subject, plain JSON checked against the latest version.
//! Validators are compiled once per schema id and cached.

use std::collections::HashMap;
use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use bytes::{Buf, Bytes, BytesMut};
use headwater_contracts::registry::{Registry, VersionRef};
use headwater_contracts::validate::{framing, Framing, RecordValidator};
use headwater_contracts::Format;
use headwater_kafka::{plain_record, GateVerdict, Headers, ProduceGate};
use headwater_log::batch::{self, encode_records, BatchError, HEADER_LEN};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{Compression, Record, RecordBatchDecoder};
use parking_lot::Mutex;
use rayon::prelude::*;

use crate::SchemaRegistry;

/// Quality rules of one topic: (name, CEL expression).
type Rules = Vec<(String, String)>;

/// The produce gate of validated topics: checks every record value against its topic's contract
/// and quality rules, then refuses the batch (`reject`) or splits the invalid records off to the
/// dead-letter stream (`dead-letter`).
#[derive(Debug)]
pub struct ContractGate {
    registry: Arc<SchemaRegistry>,
    /// Quality rules per topic, set by the topic's domain.
    rules: parking_lot::RwLock<HashMap<String, Rules>>,
    /// Compiled per (schema id, topic): the topic decides the rules.
    validators: Mutex<HashMap<(u32, String), Arc<RecordValidator>>>,
    /// Records refused or dead-lettered, per topic and per rule (`contract` for the schema).
    invalid: Family<RuleLabel, Counter>,
    dead_lettered: Family<headwater_kafka::metrics::TopicLabel, Counter>,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RuleLabel {
    topic: String,
    rule: String,
}

impl ContractGate {
    /// A gate checking records against `registry`'s contracts, with no quality rules yet.
    pub fn new(registry: Arc<SchemaRegistry>) -> Self {
        ContractGate {
            registry,
            rules: parking_lot::RwLock::new(HashMap::new()),
            validators: Mutex::new(HashMap::new()),
            invalid: Family::default(),
            dead_lettered: Family::default(),
        }
    }

    /// Adds the gate's counters (invalid records per rule, dead letters per stream) to
    /// `metrics`.
    pub fn register_metrics(&self, metrics: &mut prometheus_client::registry::Registry) {
        metrics.register(
            "headwater_invalid_records",
            "Records refused or dead-lettered at produce, per stream and rule (contract: the schema)",
            self.invalid.clone(),
        );
        metrics.register(
            "headwater_dead_lettered_records",
            "Records written to a stream's dead-letter stream at produce",
            self.dead_lettered.clone(),
        );
    }

    /// Replaces a topic's quality rules; validators compiled with the old ones are dropped.
    pub fn set_rules(&self, topic: &str, rules: Rules) {
        self.rules.write().insert(topic.to_string(), rules);
        self.validators.lock().retain(|(_, t), _| t != topic);
    }

    /// Checks one record value as a produce to `topic` would.
    pub fn check_one(&self, topic: &str, value: Option<&Bytes>) -> Result<(), RecordRefusal> {
        let subject = format!("{topic}-value");
        let reg = self.registry.read();
        self.check_value(&reg, topic, &subject, value.map(|v| &v[..]))
    }

    fn validator(
        &self,
        reg: &Registry,
        id: u32,
        topic: &str,
    ) -> Result<Arc<RecordValidator>, Unchecked> {
        let key = (id, topic.to_string());
        if let Some(v) = self.validators.lock().get(&key) {
            return Ok(v.clone());
        }
        let schema = reg.schema(id)?;
        let rules = self.rules.read().get(topic).cloned().unwrap_or_default();
        let v = Arc::new(RecordValidator::new(&schema.contract, &rules)?);
        self.validators.lock().insert(key, v.clone());
        Ok(v)
    }

    /// What a record framed with `framing` is checked against: (label naming the contract
    /// version, validator), or why it cannot be checked.
    fn resolve(&self, reg: &Registry, topic: &str, subject: &str, framing: Framing) -> Resolved {
        let framing_error = |message: String| RecordRefusal {
            rule: "framing".into(),
            message,
            contract: subject.to_string(),
        };
        match framing {
            Framing::Confluent { schema_id } => {
                if reg.schema(schema_id).is_err() {
                    return Err(framing_error(format!(
                        "unknown schema id {schema_id}; register the schema under '{subject}' first"
                    )));
                }
                let Some(version) = reg
                    .usages(schema_id)
                    .into_iter()
                    .find(|(s, _)| s == subject)
                    .map(|(_, v)| v)
                else {
                    return Err(framing_error(format!(
                        "schema id {schema_id} is not a version of subject '{subject}'"
                    )));
                };
                let v = self
                    .validator(reg, schema_id, topic)
                    .map_err(|e| framing_error(e.to_string()))?;
                Ok((
                    format!("{subject} version {version}, schema id {schema_id}"),
                    v,
                ))
            }
            Framing::PlainJson => {
                let (version, id, schema) = reg
                    .version(subject, VersionRef::Latest)
                    .map_err(|e| framing_error(e.to_string()))?;
                if schema.format != Format::JsonSchema {
                    return Err(framing_error(format!("the value is not framed (magic byte 0 + schema id) and subject '{subject}' is Avro; use a Confluent serializer")));
                }
                let v = self
                    .validator(reg, id, topic)
                    .map_err(|e| framing_error(e.to_string()))?;
                Ok((format!("{subject} version {version}"), v))
            }
        }
    }

    fn check_value(
        &self,
        reg: &Registry,
        topic: &str,
        subject: &str,
        value: Option<&[u8]>,
    ) -> Result<(), RecordRefusal> {
        Checker::new(self, reg, topic, subject).check(value)
    }

    /// Checks every record value, in order; large batches are split over the CPU pool, since
    /// records are independent and decoding them is the whole cost. Between slices the pool
    /// runs other queued checks, so one producer's large batches do not hold back another
    /// producer's small one for their whole duration.
    fn check_all(
        &self,
        reg: &Registry,
        topic: &str,
        subject: &str,
        values: &[Option<&[u8]>],
    ) -> Vec<Result<(), RecordRefusal>> {
        if values.len() < PARALLEL_FROM {
            let mut c = Checker::new(self, reg, topic, subject);
            return values.iter().map(|v| c.check(*v)).collect();
        }
        values
            .par_chunks(SLICE)
            .flat_map_iter(|part| {
                let mut c = Checker::new(self, reg, topic, subject);
                let verdicts = part.iter().map(|v| c.check(*v)).collect::<Vec<_>>();
                rayon::yield_now();
                verdicts
            })
            .collect()
    }

    /// Whether every record of every batch is valid, reading values in place. Compressed or
    /// unreadable batches, and any invalid record, answer `false`: the full decode then finds
    /// and reports what is wrong. Refusals are rare, so checking those records twice costs
    /// less than decoding every valid batch.
    fn all_valid_in_place(
        &self,
        reg: &Registry,
        topic: &str,
        subject: &str,
        records: &[u8],
    ) -> bool {
        let mut pos = 0;
        for (at, header) in headwater_log::batch::BatchIter::new(records) {
            let Ok(header) = header else { return false };
            let Some(values) =
                headwater_log::records::record_values(&records[at..at + header.total_len])
            else {
                return false;
            };
            if self
                .check_all(reg, topic, subject, &values)
                .iter()
                .any(|v| v.is_err())
            {
                return false;
            }
            pos = at + header.total_len;
        }
        pos == records.len()
    }
}

/// Why a record's contract could not be turned into a validator: the record is refused with
/// this as its reason.
#[derive(Debug, thiserror::Error)]
enum Unchecked {
    /// The schema id is not in the registry.
    #[error(transparent)]
    Schema(#[from] headwater_contracts::registry::RegistryError),
    /// The stream's quality rules do not compile against it.
    #[error(transparent)]
    Rules(#[from] headwater_contracts::validate::CompileError),
}

/// Batches with at least this many records are validated in parallel; below it the hand-off
/// costs more than it saves.
const PARALLEL_FROM: usize = 64;

/// Records checked between two chances for other checks to run: about 0.3 ms of work.
const SLICE: usize = 256;

/// Checks records of one topic, resolving each schema id's contract once instead of per record.
struct Checker<'a> {
    gate: &'a ContractGate,
    reg: &'a Registry,
    topic: &'a str,
    subject: &'a str,
    /// Usually one entry: the framing every record of a producer carries.
    resolved: Vec<(Framing, Resolved)>,
}

/// The contract a framing resolves to: its label (subject, version, id) and validator.
type Resolved = Result<(String, Arc<RecordValidator>), RecordRefusal>;

impl<'a> Checker<'a> {
    fn new(gate: &'a ContractGate, reg: &'a Registry, topic: &'a str, subject: &'a str) -> Self {
        Checker {
            gate,
            reg,
            topic,
            subject,
            resolved: Vec::new(),
        }
    }

    fn check(&mut self, value: Option<&[u8]>) -> Result<(), RecordRefusal> {
        let value = value.ok_or_else(|| RecordRefusal {
            rule: "framing".into(),
            message: "the record has no value; the contract requires one".into(),
            contract: self.subject.to_string(),
        })?;
        let f = framing(value);
        let at = match self.resolved.iter().position(|(k, _)| *k == f) {
            Some(at) => at,
            None => {
                let r = self.gate.resolve(self.reg, self.topic, self.subject, f);
                self.resolved.push((f, r));
                self.resolved.len() - 1
            }
        };
        let (label, validator) = match &self.resolved[at].1 {
            Ok(found) => found,
            Err(refusal) => return Err(refusal.clone()),
        };
        let payload = match f {
            Framing::Confluent { .. } => &value[5..],
            Framing::PlainJson => value,
        };
        validator.validate(payload).map_err(|e| RecordRefusal {
            rule: e.rule,
            message: e.message,
            contract: label.clone(),
        })
    }
}

/// Why one record was refused.
#[derive(Debug, Clone)]
pub struct RecordRefusal {
    /// `contract` for the schema, `framing` for a value missing or not framed for the topic's
    /// subject, else the name of the quality rule that was not true.
    pub rule: String,
    /// What is wrong with the record (the field or JSON pointer where known).
    pub message: String,
    /// The contract version checked, e.g. `payments.x-value version 3`.
    pub contract: String,
}

impl std::fmt::Display for RecordRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} ({})", self.rule, self.message, self.contract)
    }
}

/// Sets the headers of a dead letter that say why it was refused.
pub(crate) fn put_refusal(headers: &mut Headers, why: &RecordRefusal) {
    let mut put = |k: &'static str, v: String| {
        headers.insert(StrBytes::from_static_str(k), Some(Bytes::from(v)));
    };
    put("headwater.rule", why.rule.clone());
    put("headwater.error", why.message.clone());
    put("headwater.contract", why.contract.clone());
}

/// The dead-letter copy of a refused record: original key, value and headers, plus headers
/// naming the rule, the error, the contract version and where it came from.
fn dead_letter(r: &Record, why: &RecordRefusal, source: &str) -> Record {
    let mut headers = r.headers.clone();
    put_refusal(&mut headers, why);
    let mut put = |k: &'static str, v: String| {
        headers.insert(StrBytes::from_static_str(k), Some(Bytes::from(v)));
    };
    put("headwater.source", format!("{source}@{}", r.offset));
    put(
        "headwater.producer",
        format!("{}/{}", r.producer_id, r.producer_epoch),
    );
    plain_record(0, r.timestamp, r.key.clone(), r.value.clone(), headers)
}

/// Appends to `kept` what stands for one batch once its invalid records left: a record-less
/// batch with the batch's producer for those at its start (so the producer's next sequence
/// number is still the expected one), then the valid records re-encoded, `first` being the
/// offset delta of the first valid one. Their span still ends where the original batch ended.
fn keep_valid(
    kept: &mut BytesMut,
    header: &[u8],
    records: &[Record],
    compression: Compression,
    first: i32,
    last_delta: i32,
) -> Result<(), BatchError> {
    if first > 0 {
        kept.extend_from_slice(&batch::record_less_batch(header, first)?);
    }
    if records.is_empty() {
        return Ok(());
    }
    let encoded = encode_records(records, compression)?;
    let at = kept.len();
    kept.extend_from_slice(&encoded);
    batch::set_last_offset_delta(&mut kept[at..], last_delta - first)
}

/// Dead letters are larger than the records they carry (five headers each), so they are cut
/// into batches of at most this many bytes, well under any topic's `max.message.bytes`.
const DEAD_LETTER_BATCH_BYTES: usize = 256 * 1024;

/// Plain batches of dead letters (consecutive offsets, no producer), each under
/// [`DEAD_LETTER_BATCH_BYTES`] unless one record alone is larger.
fn dead_letter_batches(dead: Vec<Record>) -> Result<Bytes, BatchError> {
    let size = |r: &Record| {
        r.key.as_ref().map_or(0, |k| k.len())
            + r.value.as_ref().map_or(0, |v| v.len())
            + r.headers
                .iter()
                .map(|(k, v)| k.len() + v.as_ref().map_or(0, |v| v.len()) + 8)
                .sum::<usize>()
            + 24
    };
    let mut out = BytesMut::new();
    let mut chunk: Vec<Record> = Vec::new();
    let mut bytes = 0;
    let mut flush = |chunk: &mut Vec<Record>| -> Result<(), BatchError> {
        for (i, r) in chunk.iter_mut().enumerate() {
            r.offset = i as i64;
            r.sequence = i as i32 - 1;
        }
        if !chunk.is_empty() {
            out.extend_from_slice(&encode_records(chunk, Compression::None)?);
        }
        chunk.clear();
        Ok(())
    };
    for r in dead {
        let n = size(&r);
        if !chunk.is_empty() && bytes + n > DEAD_LETTER_BATCH_BYTES {
            flush(&mut chunk)?;
            bytes = 0;
        }
        bytes += n;
        chunk.push(r);
    }
    flush(&mut chunk)?;
    Ok(out.freeze())
}

impl ProduceGate for ContractGate {
    fn check(
        &self,
        topic: &str,
        partition: i32,
        records: &Bytes,
        dead_letter_mode: bool,
    ) -> GateVerdict {
        let subject = format!("{topic}-value");
        let reg = self.registry.read();
        if reg.version(&subject, VersionRef::Latest).is_err() {
            return GateVerdict::Reject {
                record_errors: Vec::new(),
                message: format!("topic '{topic}' validates records (headwater.validation) but subject '{subject}' has no schema; register one or set headwater.validation=none"),
            };
        }
        if self.all_valid_in_place(&reg, topic, &subject, records) {
            return GateVerdict::Pass;
        }
        let mut buf = records.clone();
        let mut index = 0i32;
        let mut errors = Vec::new();
        let mut valid_batches = Vec::new();
        let mut dead = Vec::new();
        let source = format!("{topic}-{partition}");
        while buf.has_remaining() {
            let (base, last_delta) = headwater_log::batch::BatchHeader::parse(&buf)
                .map(|h| (h.base_offset, h.last_offset_delta))
                .unwrap_or((0, 0));
            let mut header = [0u8; HEADER_LEN];
            if let Some(h) = buf.get(..HEADER_LEN) {
                header.copy_from_slice(h);
            }
            let set = match RecordBatchDecoder::decode(&mut buf) {
                Ok(s) => s,
                Err(e) => {
                    return GateVerdict::Reject {
                        record_errors: Vec::new(),
                        message: format!("record batch cannot be decoded for validation: {e}"),
                    }
                }
            };
            let verdicts = {
                let values: Vec<Option<&[u8]>> =
                    set.records.iter().map(|r| r.value.as_deref()).collect();
                self.check_all(&reg, topic, &subject, &values)
            };
            let mut valid = Vec::new();
            for (r, verdict) in set.records.into_iter().zip(verdicts) {
                match verdict {
                    Ok(()) => valid.push(r),
                    Err(why) => {
                        self.invalid
                            .get_or_create(&RuleLabel {
                                topic: topic.to_string(),
                                rule: why.rule.clone(),
                            })
                            .inc();
                        dead.push(dead_letter(&r, &why, &source));
                        errors.push((index, why.to_string()));
                    }
                }
                index += 1;
            }
            valid_batches.push((valid, set.compression, base, last_delta, header));
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
        if !dead_letter_mode {
            return GateVerdict::Reject {
                record_errors: errors,
                message,
            };
        }
        // Valid records keep their offsets and sequences, so an idempotent producer's
        // numbering stays whole; the gap they leave is like a compacted batch's.
        let mut kept = BytesMut::new();
        for (records, compression, base, last_delta, header) in valid_batches {
            // Offsets of the batch's records relative to its base: the first valid one, or one
            // past the end when none is valid.
            let first = records
                .first()
                .map(|r| (r.offset - base) as i32)
                .unwrap_or(last_delta + 1);
            if let Err(e) = keep_valid(&mut kept, &header, &records, compression, first, last_delta)
            {
                return GateVerdict::Reject {
                    record_errors: Vec::new(),
                    message: format!("valid records could not be re-encoded: {e}"),
                };
            }
        }
        let valid = kept.freeze();
        let dead_count = dead.len() as u64;
        match dead_letter_batches(dead) {
            Ok(dead) => {
                self.dead_lettered
                    .get_or_create(&headwater_kafka::metrics::TopicLabel {
                        topic: topic.to_string(),
                    })
                    .inc_by(dead_count);
                GateVerdict::Split {
                    valid,
                    dead,
                    dead_letter_topic: format!("{topic}.dlq"),
                    message,
                }
            }
            Err(e) => GateVerdict::Reject {
                record_errors: Vec::new(),
                message: format!(
                    "invalid records could not be encoded for the dead-letter topic: {e}"
                ),
            },
        }
    }
}
