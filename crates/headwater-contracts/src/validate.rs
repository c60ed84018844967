//! Checking one record against a stream's contract and quality rules, as produce-time
//! validation needs it: decode the value (Confluent framing, or plain JSON on a JSON Schema
//! stream), validate it against the schema, then evaluate every CEL rule with the record's
//! top-level fields as variables.
//!
//! A [`RecordValidator`] is compiled once per schema version and reused for every record.
//! Where the schema allows, it checks a record in one pass over its bytes ([`JsonCheck`],
//! [`AvroCheck`]) and binds the rules' variables to values borrowed from those bytes; a record
//! that pass is not sure about goes the full way (`serde_json` + `jsonschema`, or `apache-avro`),
//! which also writes every error message.

use cel::common::types::{CelBool, CelDouble, CelInt, CelNull, CelString, CelUInt};
use cel::common::value::{CowVal, Val};
use cel::context::VariableResolver;

use crate::avro_check::AvroCheck;
use crate::json_check::{Field, JsonCheck};
use crate::{Contract, Format};

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

/// Why a record was refused: which check and what it said. `rule` is `contract` for the schema
/// itself, `framing` for undecodable bytes, or the quality rule's name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{rule}: {message}")]
pub struct Invalid {
    pub rule: String,
    pub message: String,
}

impl Invalid {
    fn new(rule: &str, message: impl Into<String>) -> Self {
        Invalid {
            rule: rule.to_string(),
            message: message.into(),
        }
    }
}

/// How a record's value is laid out on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Framing {
    /// Magic byte 0 and a 4-byte big-endian schema id, then the encoded value.
    Confluent { schema_id: u32 },
    /// Plain JSON text (JSON Schema streams only), checked against the latest version.
    PlainJson,
}

/// Reads the framing of a record value.
pub fn framing(value: &[u8]) -> Framing {
    match value {
        [0, a, b, c, d, ..] => Framing::Confluent {
            schema_id: u32::from_be_bytes([*a, *b, *c, *d]),
        },
        _ => Framing::PlainJson,
    }
}

/// The variables the rules mention: only these are bound for each record, which keeps a rule
/// check cheap. A name is a top-level field of the record, or `record` for the whole value.
fn variables_of(rules: &[(String, cel::Program)]) -> Vec<String> {
    let mut names: Vec<String> = rules
        .iter()
        .flat_map(|(_, p)| {
            p.references()
                .variables()
                .into_iter()
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

/// A contract version and a stream's rules, compiled.
pub struct RecordValidator {
    format: Format,
    json: Option<jsonschema::Validator>,
    contract: Contract,
    rules: Vec<(String, cel::Program)>,
    /// The standard CEL functions, registered once: building them per record dominated the
    /// cost of a rule check.
    base: cel::Context<'static, 'static>,
    /// Record fields the rules refer to; only these become CEL variables.
    variables: Vec<String>,
    /// The one-pass check, when the schema has one.
    fast: Fast,
    /// Per rule, the indexes in `variables` of the fields it reads.
    rule_variables: Vec<Vec<usize>>,
    /// Verdicts of rules whose fields are all strings, booleans or nulls, by rule and field
    /// values. CEL is pure, so a verdict stands for any record with the same values; quality
    /// rules mostly read such low-cardinality fields (a currency, a status, a country), and a
    /// lookup here costs a fraction of an evaluation.
    verdicts: parking_lot::RwLock<HashMap<String, Result<(), Invalid>>>,
    /// Set once `verdicts` holds [`MAX_VERDICTS`]: rules on high-cardinality fields then
    /// skip it.
    verdicts_full: AtomicBool,
}

/// Remembered verdicts per validator.
const MAX_VERDICTS: usize = 4_096;

/// The memo key of a rule's verdict for these field values, if every one is memoizable.
fn verdict_key(rule: usize, reads: &[usize], fields: &[Option<Field<'_>>]) -> Option<String> {
    let mut key = rule.to_string();
    for i in reads {
        match fields.get(*i)? {
            None => key.push_str("|-"),
            Some(Field::Null) => key.push_str("|n"),
            Some(Field::Bool(b)) => key.push_str(if *b { "|t" } else { "|f" }),
            Some(Field::Str(s)) => {
                key.push_str("|s");
                key.push_str(&s.len().to_string());
                key.push(':');
                key.push_str(s);
            }
            Some(_) => return None,
        }
    }
    Some(key)
}

#[derive(Debug)]
enum Fast {
    Json(Box<JsonCheck>),
    Avro(AvroCheck),
    None,
}

/// The rules' variables for one record, borrowed from its bytes where they can be.
struct Bound<'r, 'a> {
    names: &'r [String],
    values: Vec<Option<Box<dyn Val + 'a>>>,
}

impl VariableResolver for Bound<'_, '_> {
    fn resolve<'b>(&'b self, variable: &str) -> Option<CowVal<'b, 'b>> {
        let i = self.names.iter().position(|n| n == variable)?;
        let v: &'b (dyn Val + 'b) = self.values.get(i)?.as_deref()?;
        Some(CowVal::Borrowed(v))
    }
}

/// What one rule's result means for the record.
fn rule_verdict(name: &str, result: cel::ResolveResult) -> Result<(), Invalid> {
    match result {
        Ok(cel::Value::Bool(true)) => Ok(()),
        Ok(cel::Value::Bool(false)) => Err(Invalid::new(name, "rule is false for this record")),
        Ok(other) => Err(Invalid::new(
            name,
            format!("rule gave {other:?}, not a boolean"),
        )),
        Err(e) => Err(Invalid::new(
            name,
            format!("rule could not be evaluated: {e}"),
        )),
    }
}

/// A field as a CEL value: the value `cel::to_value` gives its `serde_json` form.
fn cel_value<'a>(name: &str, field: Field<'a>) -> Result<Box<dyn Val + 'a>, Invalid> {
    Ok(match field {
        Field::Null => Box::new(CelNull),
        Field::Bool(b) => Box::new(CelBool::from(b)),
        Field::Int(i) => Box::new(CelInt::from(i)),
        Field::UInt(u) => Box::new(CelUInt::from(u)),
        Field::Float(f) => Box::new(CelDouble::from(f)),
        Field::Str(s) => Box::new(CelString::from(s)),
        Field::Json(text) => {
            let no_value = |e: String| {
                Invalid::new("contract", format!("field '{name}' has no CEL value: {e}"))
            };
            let json: serde_json::Value =
                serde_json::from_slice(text).map_err(|e| no_value(e.to_string()))?;
            let value = cel::to_value(&json).map_err(|e| no_value(e.to_string()))?;
            Box::<dyn Val>::try_from(value).map_err(|e| no_value(format!("{e:?}")))?
        }
    })
}

impl std::fmt::Debug for RecordValidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordValidator")
            .field("format", &self.format)
            .field(
                "rules",
                &self.rules.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl RecordValidator {
    /// Compiles the contract and the rules (name, CEL source). Errors name the rule.
    pub fn new(contract: &Contract, rules: &[(String, String)]) -> Result<Self, Invalid> {
        let json = match contract.format() {
            Format::JsonSchema => Some(
                jsonschema::validator_for(contract.json())
                    .map_err(|e| Invalid::new("contract", e.to_string()))?,
            ),
            Format::Avro => None,
        };
        let rules = rules
            .iter()
            .map(|(name, src)| {
                cel::Program::compile(src)
                    .map(|p| (name.clone(), p))
                    .map_err(|e| Invalid::new(name, format!("not valid CEL: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let variables = variables_of(&rules);
        let fast = match contract.format() {
            // The whole record as a CEL value is built from its full decode anyway.
            _ if variables.iter().any(|v| v == "record") => Fast::None,
            Format::JsonSchema => JsonCheck::compile(contract.json(), &variables)
                .map(|c| Fast::Json(Box::new(c)))
                .unwrap_or(Fast::None),
            Format::Avro => contract
                .avro()
                .and_then(|schema| AvroCheck::compile(schema, &variables))
                .map(Fast::Avro)
                .unwrap_or(Fast::None),
        };
        let rule_variables = rules
            .iter()
            .map(|(_, p)| {
                let reads = p.references();
                let reads = reads.variables();
                variables
                    .iter()
                    .enumerate()
                    .filter(|(_, v)| reads.contains(&v.as_str()))
                    .map(|(i, _)| i)
                    .collect()
            })
            .collect();
        Ok(RecordValidator {
            fast,
            rule_variables,
            verdicts: Default::default(),
            verdicts_full: AtomicBool::new(false),
            format: contract.format(),
            json,
            contract: contract.clone(),
            rules,
            base: cel::Context::default(),
            variables,
        })
    }

    /// Decodes the payload (without framing) into JSON, checking it against the schema.
    pub fn decode(&self, payload: &[u8]) -> Result<serde_json::Value, Invalid> {
        match self.format {
            Format::JsonSchema => {
                let value: serde_json::Value = serde_json::from_slice(payload)
                    .map_err(|e| Invalid::new("framing", format!("value is not JSON: {e}")))?;
                if let Some(v) = &self.json {
                    if let Err(e) = v.validate(&value) {
                        let at = e.instance_path().to_string();
                        let at = if at.is_empty() { "/".to_string() } else { at };
                        return Err(Invalid::new("contract", format!("{e} (at {at})")));
                    }
                }
                Ok(value)
            }
            Format::Avro => self
                .contract
                .decode_json(payload)
                .map_err(|e| Invalid::new("contract", e)),
        }
    }

    /// Evaluates every rule with the record's top-level fields as CEL variables; the first
    /// rule that is not `true` refuses the record.
    pub fn check_rules(&self, record: &serde_json::Value) -> Result<(), Invalid> {
        if self.rules.is_empty() {
            return Ok(());
        }
        let mut ctx = self.base.new_inner_scope();
        let fields = record.as_object();
        for name in &self.variables {
            let value = match name.as_str() {
                "record" => record,
                field => match fields.and_then(|o| o.get(field)) {
                    Some(v) => v,
                    None => continue,
                },
            };
            let v = cel::to_value(value).map_err(|e| {
                Invalid::new("contract", format!("field '{name}' has no CEL value: {e}"))
            })?;
            ctx.add_variable_from_value(name.clone(), v);
        }
        self.run_rules(&ctx)
    }

    /// The first rule that is not `true` for the record bound in `ctx` refuses it.
    fn run_rules(&self, ctx: &cel::Context<'_, '_>) -> Result<(), Invalid> {
        for (name, program) in &self.rules {
            rule_verdict(name, program.execute(ctx))?;
        }
        Ok(())
    }

    /// Checks the record in one pass and runs the rules on what it read; `None` when that
    /// pass is not sure, and the record must go the full way.
    fn validate_fast(&self, payload: &[u8]) -> Option<Result<(), Invalid>> {
        let fields = match &self.fast {
            Fast::Json(check) => check.check(payload).ok()?,
            Fast::Avro(check) => check.check(payload).ok()?,
            Fast::None => return None,
        };
        if self.rules.is_empty() {
            return Some(Ok(()));
        }
        Some(self.rules_on_fields(&fields))
    }

    /// Runs every rule on the fields the one-pass check read, remembered verdicts first.
    fn rules_on_fields(&self, fields: &[Option<Field<'_>>]) -> Result<(), Invalid> {
        // Only the fields of rules that are evaluated become CEL values.
        let mut bound = Bound {
            names: &self.variables,
            values: Vec::new(),
        };
        for (i, (name, program)) in self.rules.iter().enumerate() {
            let key = if self.verdicts_full.load(Ordering::Relaxed) {
                None
            } else {
                verdict_key(i, &self.rule_variables[i], fields)
            };
            if let Some(known) = key
                .as_ref()
                .and_then(|k| self.verdicts.read().get(k).cloned())
            {
                known?;
                continue;
            }
            if bound.values.is_empty() {
                bound.values.resize_with(self.variables.len(), || None);
            }
            // A field the record lacks stays unbound, as in the full decode.
            for &v in &self.rule_variables[i] {
                if let (None, Some(Some(f))) = (&bound.values[v], fields.get(v)) {
                    bound.values[v] = Some(cel_value(&self.variables[v], f.clone())?);
                }
            }
            let bound = &bound;
            let base: &cel::Context<'_, '_> = &self.base;
            let mut ctx = base.new_inner_scope();
            ctx.set_variable_resolver(bound);
            let verdict = rule_verdict(name, program.execute(&ctx));
            if let Some(key) = key {
                let mut memo = self.verdicts.write();
                if memo.len() < MAX_VERDICTS {
                    memo.insert(key, verdict.clone());
                } else {
                    self.verdicts_full.store(true, Ordering::Relaxed);
                }
            }
            verdict?;
        }
        Ok(())
    }

    /// Decodes, validates and checks one payload (framing already removed).
    pub fn validate(&self, payload: &[u8]) -> Result<(), Invalid> {
        match self.validate_fast(payload) {
            Some(verdict) => verdict,
            None => self.validate_slow(payload),
        }
    }

    /// Decodes the whole record into values, then validates and checks it.
    fn validate_slow(&self, payload: &[u8]) -> Result<(), Invalid> {
        if self.format == Format::Avro && self.rules.is_empty() {
            // Decoding is the whole check; the JSON form would only feed rules.
            return self
                .contract
                .decode_avro(payload)
                .map(|_| ())
                .map_err(|e| Invalid::new("contract", e));
        }
        let value = self.decode(payload)?;
        self.check_rules(&value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, s)| (n.to_string(), s.to_string()))
            .collect()
    }

    const PAYMENT: &str = r#"{"type":"object","required":["amount","currency"],"properties":{"amount":{"type":"number"},"currency":{"type":"string"}}}"#;

    /// The two rules of the examples and the benchmark.
    fn with_payment_rules(c: &Contract) -> RecordValidator {
        RecordValidator::new(
            c,
            &rules(&[
                ("non_negative_amount", "amount >= 0.0"),
                ("known_currency", "currency in ['USD', 'EUR', 'GBP']"),
            ]),
        )
        .expect("compile")
    }

    #[test]
    fn json_records_are_validated_and_ruled() {
        let c = Contract::parse(Format::JsonSchema, PAYMENT).expect("schema");
        let v = with_payment_rules(&c);
        assert!(v
            .validate(br#"{"amount": 12.5, "currency": "EUR"}"#)
            .is_ok());
        assert!(
            v.validate(br#"{"amount": 12, "currency": "EUR"}"#).is_ok(),
            "an integer amount is a number"
        );
        let e = v
            .validate(br#"{"amount": -1.0, "currency": "EUR"}"#)
            .expect_err("negative");
        assert_eq!(e.rule, "non_negative_amount");
        let e = v
            .validate(br#"{"amount": 1.0, "currency": "JPY"}"#)
            .expect_err("currency");
        assert_eq!(e.rule, "known_currency");
        let e = v
            .validate(br#"{"amount": "1", "currency": "EUR"}"#)
            .expect_err("type");
        assert_eq!(e.rule, "contract");
        assert!(e.message.contains("/amount"), "{e}");
        let e = v.validate(b"not json").expect_err("framing");
        assert_eq!(e.rule, "framing");
    }

    /// The one-pass check binds the same CEL values the full decode does: every rule gives
    /// the same verdict either way.
    #[test]
    fn one_pass_and_full_decode_agree_on_rules() {
        let schema = r#"{"type":"object","properties":{"n":{"type":"number"},"s":{"type":["string","null"]},"o":{"type":"object"},"b":{"type":"boolean"}}}"#;
        let c = Contract::parse(Format::JsonSchema, schema).expect("schema");
        let v = RecordValidator::new(
            &c,
            &rules(&[
                ("n_small", "n < 10"),
                ("n_int", "type(n) == uint || type(n) == int || n > 0.5"),
                ("s_known", "s == null || s.startsWith('a')"),
                ("o_field", "!has(o.k) || o.k == 1"),
                ("b_true", "b"),
            ]),
        )
        .expect("compile");
        assert!(matches!(v.fast, Fast::Json(_)));
        let mut fast_checked = 0;
        for record in [
            r#"{"n": 1, "s": "ab", "o": {}, "b": true}"#,
            r#"{"n": -1, "s": null, "o": {"k": 1}, "b": true}"#,
            r#"{"n": 1.5, "s": "a\u00e9", "o": {"k": 2}, "b": true}"#,
            r#"{"n": 11, "s": "ab", "o": {}, "b": true}"#,
            r#"{"n": 0.25, "s": "ab", "o": {}, "b": true}"#,
            r#"{"n": 1, "s": "b", "o": {}, "b": true}"#,
            r#"{"n": 1, "s": "ab", "o": {}, "b": false}"#,
            r#"{"n": 1, "s": "ab", "o": {}}"#,
            r#"{"n": 1e1, "s": "ab", "o": {}, "b": true}"#,
            r#"{"n": 18446744073709551615, "s": "ab", "o": {}, "b": true}"#,
        ] {
            let fast = v.validate_fast(record.as_bytes());
            let slow = v.validate_slow(record.as_bytes());
            if let Some(fast) = fast {
                fast_checked += 1;
                assert_eq!(
                    fast.as_ref().map_err(|e| &e.rule),
                    slow.as_ref().map_err(|e| &e.rule),
                    "{record}"
                );
            }
        }
        assert_eq!(fast_checked, 10);
    }

    /// Remembered verdicts give what evaluating the rule gives, value by value.
    #[test]
    fn remembered_verdicts_match_evaluation() {
        let c = Contract::parse(Format::JsonSchema, PAYMENT).expect("schema");
        let v = RecordValidator::new(
            &c,
            &rules(&[("known_currency", "currency in ['USD', 'EUR', 'GBP']")]),
        )
        .expect("compile");
        for _ in 0..3 {
            for (currency, ok) in [("EUR", true), ("JPY", false), ("E|UR", false), ("", false)] {
                let record = format!(r#"{{"amount": 1, "currency": "{currency}"}}"#);
                assert_eq!(v.validate(record.as_bytes()).is_ok(), ok, "{currency}");
                assert_eq!(v.validate_slow(record.as_bytes()).is_ok(), ok, "{currency}");
            }
        }
        assert_eq!(v.verdicts.read().len(), 4);
    }

    /// A rule over the whole `record` needs its full decode.
    #[test]
    fn rules_over_the_whole_record_take_the_full_decode() {
        let c = Contract::parse(Format::JsonSchema, PAYMENT).expect("schema");
        let v = RecordValidator::new(&c, &rules(&[("has_amount", "has(record.amount)")]))
            .expect("compile");
        assert!(matches!(v.fast, Fast::None));
        assert!(v.validate(br#"{"amount": 1, "currency": "EUR"}"#).is_ok());
    }

    /// A typical event contract (the benchmark's) takes the one-pass check.
    #[test]
    fn event_contracts_take_the_one_pass_check() {
        let schema = r#"{"type":"object","additionalProperties":false,
 "required":["id","amount","currency","channel","batch"],
 "properties":{"id":{"type":"string"},"amount":{"type":"number"},"currency":{"type":"string"},
 "channel":{"type":"string","enum":["online","store","wallet"]},"batch":{"type":"integer"}}}"#;
        let c = Contract::parse(Format::JsonSchema, schema).expect("schema");
        let v = with_payment_rules(&c);
        let record =
            br#"{"id":"t-00000001","amount":12.25,"currency":"EUR","channel":"online","batch":3}"#;
        assert_eq!(v.validate_fast(record), Some(Ok(())));
    }

    #[test]
    fn avro_records_decode_to_json() {
        let schema = r#"{"type":"record","name":"R","fields":[{"name":"amount_cents","type":"long"},{"name":"who","type":"string"}]}"#;
        let c = Contract::parse(Format::Avro, schema).expect("schema");
        let v =
            RecordValidator::new(&c, &rules(&[("positive", "amount_cents > 0")])).expect("compile");
        // long 150 (zigzag 300 = 0xac 0x02), string "al" (length 2 -> 0x04)
        let ok = [0xac, 0x02, 0x04, b'a', b'l'];
        assert!(v.validate(&ok).is_ok());
        assert_eq!(v.decode(&ok).expect("valid")["who"], "al");
        let neg = [0x01, 0x04, b'a', b'l']; // -1
        assert_eq!(v.validate(&neg).expect_err("rule").rule, "positive");
        assert_eq!(v.validate(&[0x04]).expect_err("short").rule, "contract");
        assert_eq!(
            framing(&[0, 0, 0, 0, 7, 1]),
            Framing::Confluent { schema_id: 7 }
        );
        assert_eq!(framing(b"{}"), Framing::PlainJson);
    }
}
