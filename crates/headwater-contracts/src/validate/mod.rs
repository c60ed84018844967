//! Checking one record against a stream's contract and quality rules, as produce-time
//! validation needs it: read the value's [`framing()`], decode the value, validate it against the
//! schema, then evaluate every CEL rule with the record's top-level fields as variables.
//!
//! A [`RecordValidator`] is compiled once per schema version and stream, and reused for every
//! record. Where the schema allows, it checks a record in one pass over its bytes and binds the
//! rules' variables to values borrowed from those bytes; a record that pass is not sure about
//! goes the full way (`serde_json` + `jsonschema`, or `apache-avro`), which also writes every
//! error message. So the one-pass readers only ever make validation faster, never different.
//!
//! | file | holds |
//! |---|---|
//! | `mod.rs` | [`RecordValidator`], [`Invalid`], [`CompileError`], and what a one-pass reader gives the rules (`Field`s or `NotSure`) |
//! | `framing.rs` | [`Framing`]: Confluent's magic byte and schema id, or plain JSON |
//! | `rules.rs` | the compiled CEL rules, their variables and remembered verdicts |
//! | `json_compile.rs` | a JSON Schema compiled to the checks the one-pass JSON reader makes |
//! | `json_read.rs` | the one-pass JSON reader |
//! | `avro.rs` | the one-pass Avro reader (and its small compile step) |
//!
//! A new contract format needs no one-pass reader to be validated: [`RecordValidator`] decodes
//! it with [`Contract::decode_json`]. A reader, when profiles show the decode matters, is a new
//! file here giving `Checked<Vec<Option<Field>>>` and a new `Fast` variant.

mod avro;
mod framing;
mod json_compile;
mod json_read;
mod rules;

use std::borrow::Cow;

pub use framing::{framing, Framing};

use crate::{Contract, Format};
use avro::AvroCheck;
use json_read::JsonCheck;
use rules::Rules;

/// Why a record was refused: which check and what it said.
///
/// This is a verdict on the producer's data, not a fault of Headwater: it is written to the
/// dead-letter headers (`headwater.rule`, `headwater.error`) and shown to whoever produced the
/// record, so `message` says what in the record is wrong (the field or JSON pointer where known).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{rule}: {message}")]
pub struct Invalid {
    /// `contract` for the schema itself, `framing` for bytes that are not a value at all, or
    /// the name of the quality rule that was not `true`.
    pub rule: String,
    /// What was wrong, for example `rule is false for this record` or
    /// `"1" is not of type "number" (at /amount)`.
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

/// Why a contract version and a stream's rules could not be compiled into a [`RecordValidator`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompileError {
    /// A quality rule is not valid CEL: its owner fixes the expression in the stream's manifest.
    #[error("{rule}: not valid CEL: {reason}")]
    NotCel {
        /// The rule's name.
        rule: String,
        /// The CEL parser's explanation, with the position in the expression.
        reason: String,
    },
    /// `jsonschema` refused to compile a schema that [`Contract::parse`] had compiled: a bug in
    /// Headwater, not a mistake in the schema.
    #[error(
        "internal error: the contract was parsed but does not compile for validation: {reason}"
    )]
    Internal {
        /// `jsonschema`'s explanation.
        reason: String,
    },
}

/// The answer of a one-pass reader for a record it cannot vouch for: check it the slow way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NotSure;

/// What a one-pass reader gives: the record is valid, or [`NotSure`].
type Checked<T> = Result<T, NotSure>;

/// A top-level field's value as a one-pass reader captured it for the rules: the value
/// `serde_json` would have given the record's JSON form, borrowed from the record's bytes where
/// it can be.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Field<'a> {
    Null,
    Bool(bool),
    /// A negative integer (`serde_json`'s `NegInt`).
    Int(i64),
    /// A non-negative integer (`serde_json`'s `PosInt`).
    UInt(u64),
    Float(f64),
    Str(Cow<'a, str>),
    /// An object or array, still as JSON text: rules on nested values are rare, and these are
    /// parsed with `serde_json` when a rule needs them.
    Json(&'a [u8]),
}

/// The one-pass reader of a validator's schema, when it has one.
#[derive(Debug)]
enum Fast {
    Json(Box<JsonCheck>),
    Avro(AvroCheck),
    None,
}

/// A contract version and a stream's rules, compiled.
pub struct RecordValidator {
    format: Format,
    /// The full JSON Schema check, for JSON Schema contracts.
    json: Option<jsonschema::Validator>,
    contract: Contract,
    rules: Rules,
    /// The one-pass check, when the schema has one.
    fast: Fast,
}

impl std::fmt::Debug for RecordValidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordValidator")
            .field("format", &self.format)
            .field("rules", &self.rules)
            .finish()
    }
}

impl RecordValidator {
    /// Compiles the contract and the rules (name, CEL source). A rule that is not CEL is named
    /// in the error.
    pub fn new(contract: &Contract, rules: &[(String, String)]) -> Result<Self, CompileError> {
        let json = match contract.format() {
            Format::JsonSchema => {
                Some(jsonschema::validator_for(contract.json()).map_err(|e| {
                    CompileError::Internal {
                        reason: e.to_string(),
                    }
                })?)
            }
            Format::Avro => None,
        };
        let rules = Rules::compile(rules)?;
        let fast = match contract.format() {
            // The whole record as a CEL value is built from its full decode anyway.
            _ if rules.reads_whole_record() => Fast::None,
            Format::JsonSchema => JsonCheck::compile(contract.json(), rules.variables())
                .map(|c| Fast::Json(Box::new(c)))
                .unwrap_or(Fast::None),
            Format::Avro => contract
                .avro()
                .and_then(|schema| AvroCheck::compile(schema, rules.variables()))
                .map(Fast::Avro)
                .unwrap_or(Fast::None),
        };
        Ok(RecordValidator {
            format: contract.format(),
            json,
            contract: contract.clone(),
            rules,
            fast,
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
                .map_err(|e| Invalid::new("contract", e.to_string())),
        }
    }

    /// Evaluates every rule with the record's top-level fields as CEL variables; the first
    /// rule that is not `true` refuses the record.
    pub fn check_rules(&self, record: &serde_json::Value) -> Result<(), Invalid> {
        self.rules.check_value(record)
    }

    /// Decodes, validates and checks one payload (framing already removed).
    pub fn validate(&self, payload: &[u8]) -> Result<(), Invalid> {
        match self.validate_fast(payload) {
            Some(verdict) => verdict,
            None => self.validate_slow(payload),
        }
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
        Some(self.rules.check_fields(&fields))
    }

    /// Decodes the whole record into values, then validates and checks it.
    fn validate_slow(&self, payload: &[u8]) -> Result<(), Invalid> {
        if self.format == Format::Avro && self.rules.is_empty() {
            // Decoding is the whole check; the JSON form would only feed rules.
            return self
                .contract
                .decode_avro(payload)
                .map(|_| ())
                .map_err(|e| Invalid::new("contract", e.to_string()));
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
    }
}
