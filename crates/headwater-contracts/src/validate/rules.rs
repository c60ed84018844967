//! A stream's quality rules: CEL expressions, each of which must be `true` for a record, with
//! the record's top-level fields as variables (and `record` for the whole value).
//!
//! Rules are compiled once per validator. Only the variables some rule mentions are bound for a
//! record, which keeps a rule check cheap. They are bound either from a decoded
//! `serde_json::Value` ([`Rules::check_value`]) or from the [`Field`]s a one-pass reader
//! borrowed from the record's bytes ([`Rules::check_fields`]); both bind the same CEL values, so
//! a rule gives the same verdict either way. On the second path, verdicts of rules that read
//! only strings, booleans and nulls are remembered by value.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use cel::common::types::{CelBool, CelDouble, CelInt, CelNull, CelString, CelUInt};
use cel::common::value::{CowVal, Val};
use cel::context::VariableResolver;

use super::{CompileError, Field, Invalid};

/// Remembered verdicts per validator.
const MAX_VERDICTS: usize = 4_096;

/// A stream's rules, compiled.
pub(super) struct Rules {
    /// (rule name, program), in the order the rules are evaluated.
    programs: Vec<(String, cel::Program)>,
    /// The standard CEL functions, registered once: building them per record dominated the
    /// cost of a rule check.
    base: cel::Context<'static, 'static>,
    /// Record fields the rules refer to, sorted; only these become CEL variables.
    variables: Vec<String>,
    /// Per rule, the indexes in `variables` of the fields it reads.
    reads: Vec<Vec<usize>>,
    /// Verdicts of rules whose fields are all strings, booleans or nulls, by rule and field
    /// values. CEL is pure, so a verdict stands for any record with the same values; quality
    /// rules mostly read such low-cardinality fields (a currency, a status, a country), and a
    /// lookup here costs a fraction of an evaluation.
    verdicts: parking_lot::RwLock<HashMap<String, Result<(), Invalid>>>,
    /// Set once `verdicts` holds [`MAX_VERDICTS`]: rules on high-cardinality fields then
    /// skip it.
    verdicts_full: AtomicBool,
}

impl std::fmt::Debug for Rules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.programs.iter().map(|(name, _)| name))
            .finish()
    }
}

impl Rules {
    /// Compiles the rules, given as (name, CEL source).
    pub(super) fn compile(rules: &[(String, String)]) -> Result<Rules, CompileError> {
        let programs = rules
            .iter()
            .map(|(name, src)| {
                cel::Program::compile(src)
                    .map(|p| (name.clone(), p))
                    .map_err(|e| CompileError::NotCel {
                        rule: name.clone(),
                        reason: e.to_string(),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let variables = variables_of(&programs);
        let reads = programs
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
        Ok(Rules {
            programs,
            base: cel::Context::default(),
            variables,
            reads,
            verdicts: Default::default(),
            verdicts_full: AtomicBool::new(false),
        })
    }

    pub(super) fn is_empty(&self) -> bool {
        self.programs.is_empty()
    }

    /// The variables the rules read, sorted: top-level field names, and `record` when a rule
    /// reads the whole value. A one-pass reader captures fields in this order.
    pub(super) fn variables(&self) -> &[String] {
        &self.variables
    }

    /// Whether a rule reads the whole record, which only a full decode gives.
    pub(super) fn reads_whole_record(&self) -> bool {
        self.variables.iter().any(|v| v == "record")
    }

    /// Evaluates every rule on a decoded record; the first rule that is not `true` refuses it.
    pub(super) fn check_value(&self, record: &serde_json::Value) -> Result<(), Invalid> {
        if self.is_empty() {
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
            let v = cel::to_value(value).map_err(|e| no_cel_value(name, e.to_string()))?;
            ctx.add_variable_from_value(name.clone(), v);
        }
        for (name, program) in &self.programs {
            verdict(name, program.execute(&ctx))?;
        }
        Ok(())
    }

    /// Evaluates every rule on the fields a one-pass reader captured (in the order of
    /// [`Rules::variables`]), remembered verdicts first.
    pub(super) fn check_fields(&self, fields: &[Option<Field<'_>>]) -> Result<(), Invalid> {
        // Only the fields of rules that are evaluated become CEL values.
        let mut bound = Bound {
            names: &self.variables,
            values: Vec::new(),
        };
        for (i, (name, program)) in self.programs.iter().enumerate() {
            let key = if self.verdicts_full.load(Ordering::Relaxed) {
                None
            } else {
                verdict_key(i, &self.reads[i], fields)
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
            for &v in &self.reads[i] {
                if let (None, Some(Some(f))) = (&bound.values[v], fields.get(v)) {
                    bound.values[v] = Some(cel_value(&self.variables[v], f.clone())?);
                }
            }
            let bound = &bound;
            let base: &cel::Context<'_, '_> = &self.base;
            let mut ctx = base.new_inner_scope();
            ctx.set_variable_resolver(bound);
            let verdict = verdict(name, program.execute(&ctx));
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
}

/// The variables the rules mention, sorted and without repeats.
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

/// The memo key of a rule's verdict for these field values, if every one is memoizable.
fn verdict_key(rule: usize, reads: &[usize], fields: &[Option<Field<'_>>]) -> Option<String> {
    let mut key = rule.to_string();
    for i in reads {
        match fields.get(*i)? {
            None => key.push_str("|-"),
            Some(Field::Null) => key.push_str("|n"),
            Some(Field::Bool(b)) => key.push_str(if *b { "|t" } else { "|f" }),
            Some(Field::Str(s)) => {
                // Length first, so a value holding `|` cannot pass for two.
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
fn verdict(name: &str, result: cel::ResolveResult) -> Result<(), Invalid> {
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

/// A record field that has no CEL value: the record is refused under `contract`.
fn no_cel_value(name: &str, reason: String) -> Invalid {
    Invalid::new(
        "contract",
        format!("field '{name}' has no CEL value: {reason}"),
    )
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
            let json: serde_json::Value =
                serde_json::from_slice(text).map_err(|e| no_cel_value(name, e.to_string()))?;
            let value = cel::to_value(&json).map_err(|e| no_cel_value(name, e.to_string()))?;
            Box::<dyn Val>::try_from(value).map_err(|e| no_cel_value(name, format!("{e:?}")))?
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::RecordValidator;
    use crate::{Contract, Format};

    fn rules(list: &[(&str, &str)]) -> Rules {
        let list: Vec<(String, String)> = list
            .iter()
            .map(|(n, s)| (n.to_string(), s.to_string()))
            .collect();
        Rules::compile(&list).expect("compile")
    }

    #[test]
    fn variables_are_the_fields_rules_mention_sorted_once() {
        let r = rules(&[("a", "b > 1 && a < 2"), ("b", "b == 3"), ("c", "true")]);
        assert_eq!(r.variables(), ["a", "b"]);
        assert_eq!(r.reads, [vec![0, 1], vec![1], vec![]]);
        assert!(!r.reads_whole_record());
        assert!(rules(&[("w", "has(record.a)")]).reads_whole_record());
    }

    #[test]
    fn a_rule_that_is_not_cel_is_named() {
        let e = Rules::compile(&[("ok".into(), "true".into()), ("bad".into(), "a ==".into())])
            .expect_err("not CEL");
        assert!(matches!(&e, CompileError::NotCel { rule, .. } if rule == "bad"));
        assert!(e.to_string().starts_with("bad: not valid CEL: "), "{e}");
    }

    #[test]
    fn verdicts_on_decoded_records() {
        let r = rules(&[("positive", "n > 0"), ("text", "n")]);
        let e = r
            .check_value(&serde_json::json!({"n": 1}))
            .expect_err("not a boolean");
        assert_eq!(e.rule, "text");
        assert!(e.message.ends_with("not a boolean"), "{e}");
        let e = r
            .check_value(&serde_json::json!({"n": -1}))
            .expect_err("false");
        assert_eq!(e.to_string(), "positive: rule is false for this record");
        let e = r.check_value(&serde_json::json!({})).expect_err("unbound");
        assert_eq!(e.rule, "positive");
        assert!(e.message.starts_with("rule could not be evaluated"), "{e}");
        assert_eq!(rules(&[]).check_value(&serde_json::json!(null)), Ok(()));
    }

    #[test]
    fn verdict_keys_tell_values_apart_and_skip_numbers() {
        let s = |v: &'static str| Some(Field::Str(v.into()));
        let key = |fields: &[Option<Field<'_>>]| verdict_key(0, &[0, 1], fields);
        assert_ne!(key(&[s("a|s1:b"), s("")]), key(&[s("a"), s("b|s0:")]));
        assert_eq!(key(&[None, Some(Field::Null)]), Some("0|-|n".into()));
        assert_eq!(
            key(&[Some(Field::Bool(true)), s("x")]),
            Some("0|t|s1:x".into())
        );
        assert_eq!(key(&[Some(Field::UInt(1)), s("x")]), None);
    }

    /// Remembered verdicts give what evaluating the rule gives, value by value.
    #[test]
    fn remembered_verdicts_match_evaluation() {
        const PAYMENT: &str = r#"{"type":"object","required":["amount","currency"],"properties":{"amount":{"type":"number"},"currency":{"type":"string"}}}"#;
        let c = Contract::parse(Format::JsonSchema, PAYMENT).expect("schema");
        let v = RecordValidator::new(
            &c,
            &[(
                "known_currency".into(),
                "currency in ['USD', 'EUR', 'GBP']".into(),
            )],
        )
        .expect("compile");
        for _ in 0..3 {
            for (currency, ok) in [("EUR", true), ("JPY", false), ("E|UR", false), ("", false)] {
                let record = format!(r#"{{"amount": 1, "currency": "{currency}"}}"#);
                assert_eq!(v.validate(record.as_bytes()).is_ok(), ok, "{currency}");
                assert_eq!(v.validate_slow(record.as_bytes()).is_ok(), ok, "{currency}");
            }
        }
        assert_eq!(v.rules.verdicts.read().len(), 4);
    }
}
