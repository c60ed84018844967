//! JSON Schema compiled for the one-pass reader ([`super::json_read`]): the schema is turned
//! once into a tree of [`Node`]s whose checks the reader makes while it reads a record's bytes.
//!
//! It covers the keywords event contracts use: `type`, `properties`, `required`,
//! `additionalProperties`, `enum` and `const` over scalars, numeric bounds, string lengths,
//! `items` and array lengths, a local `$ref` standing alone (`#/$defs/<name>` or
//! `#/definitions/<name>`), and annotations. `pattern`, `format` and `multipleOf` are kept as a
//! small `jsonschema` validator on the one value they apply to, so their semantics stay that
//! crate's. A schema with any other keyword (`oneOf`, `allOf`, `if`, ...), or with a form of a
//! known one this module does not compare exactly, is not compiled: [`compile`] gives `None`
//! and its records are validated by `jsonschema` as a whole.

use serde_json::Value;

// The JSON types a node allows, as bits of `Node::types`. `number` also allows `integer`:
// every integer is a number to JSON Schema.
pub(super) const NULL: u8 = 1;
pub(super) const BOOL: u8 = 2;
pub(super) const INTEGER: u8 = 4;
pub(super) const NUMBER: u8 = 8;
pub(super) const STRING: u8 = 16;
pub(super) const ARRAY: u8 = 32;
pub(super) const OBJECT: u8 = 64;
const ANY: u8 = 127;

/// Keywords that only annotate: they never make an instance invalid. (`$defs` and
/// `definitions` hold schemas a `$ref` may name; they validate nothing themselves.)
const ANNOTATIONS: &[&str] = &[
    "$schema",
    "$comment",
    "$defs",
    "definitions",
    "title",
    "description",
    "default",
    "examples",
    "readOnly",
    "writeOnly",
    "deprecated",
];

/// A literal of `enum` or `const`.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Literal {
    Null,
    Bool(bool),
    Number(f64),
    Str(String),
}

impl Literal {
    fn of(v: &Value) -> Option<Literal> {
        Some(match v {
            Value::Null => Literal::Null,
            Value::Bool(b) => Literal::Bool(*b),
            Value::Number(n) => Literal::Number(exact_f64(n)?),
            Value::String(s) => Literal::Str(s.clone()),
            Value::Array(_) | Value::Object(_) => return None,
        })
    }
}

/// A number as an `f64`, when that is exact (integers up to 2^53), so comparisons in `f64`
/// give the answer `jsonschema` gives.
fn exact_f64(n: &serde_json::Number) -> Option<f64> {
    const EXACT: u64 = 1 << 53;
    if let Some(u) = n.as_u64() {
        return (u <= EXACT).then_some(u as f64);
    }
    if let Some(i) = n.as_i64() {
        return (i.unsigned_abs() <= EXACT).then_some(i as f64);
    }
    n.as_f64().filter(|f| f.is_finite())
}

/// What an object node says about its members.
#[derive(Debug, Default)]
pub(super) struct Object {
    /// At most 64, so the reader keeps the members it has seen in one `u64`.
    pub(super) properties: Vec<(String, Node)>,
    /// Indexes into `properties`.
    pub(super) required: Vec<usize>,
    pub(super) additional: Additional,
}

/// `additionalProperties`: what a member not in `properties` may be.
#[derive(Debug, Default)]
pub(super) enum Additional {
    #[default]
    Any,
    Forbidden,
    Schema(Box<Node>),
}

/// One (sub)schema, compiled.
#[derive(Debug)]
pub(super) struct Node {
    pub(super) types: u8,
    pub(super) literals: Option<Vec<Literal>>,
    pub(super) constant: Option<Literal>,
    pub(super) minimum: Option<f64>,
    pub(super) maximum: Option<f64>,
    pub(super) exclusive_minimum: Option<f64>,
    pub(super) exclusive_maximum: Option<f64>,
    pub(super) min_length: Option<u64>,
    pub(super) max_length: Option<u64>,
    pub(super) object: Object,
    pub(super) items: Option<Box<Node>>,
    pub(super) min_items: Option<u64>,
    pub(super) max_items: Option<u64>,
    /// The node's [`LEAF_KEYWORDS`], checked by `jsonschema` on the one value.
    pub(super) leaf: Option<Box<jsonschema::Validator>>,
}

/// Keywords whose verdict depends only on the value they apply to (a string's `pattern` or
/// `format`, a number's `multipleOf`). `jsonschema` checks them on that one value, so their
/// exact semantics stay its own: ECMA-262 regexes, and which formats a draft asserts.
const LEAF_KEYWORDS: &[&str] = &["pattern", "format", "multipleOf"];

/// Deeper than this (through `$ref`s or nesting), a schema is left to `jsonschema`; this is
/// also what stops a recursive `$ref`.
const MAX_SCHEMA_DEPTH: usize = 32;

/// Compiles a root schema, or `None` when it uses a keyword (or a form of one) this module does
/// not check.
pub(super) fn compile(schema: &Value) -> Option<Node> {
    Compiler { root: schema }.compile(schema, 0)
}

/// Compiles subschemas of one root schema, which `$ref`s point into.
struct Compiler<'r> {
    root: &'r Value,
}

impl Node {
    /// Whether an object or array (`kind`) may stand here: its type is allowed, and no
    /// `enum` or `const` (which this module compares only with scalars) applies.
    pub(super) fn takes(&self, kind: u8) -> bool {
        self.types & kind != 0 && self.literals.is_none() && self.constant.is_none()
    }

    /// The schema `true`: anything is valid.
    pub(super) fn any() -> Node {
        Node {
            types: ANY,
            literals: None,
            constant: None,
            minimum: None,
            maximum: None,
            exclusive_minimum: None,
            exclusive_maximum: None,
            min_length: None,
            max_length: None,
            object: Object::default(),
            items: None,
            min_items: None,
            max_items: None,
            leaf: None,
        }
    }
}

impl Compiler<'_> {
    /// Compiles a schema, or `None` when it uses a keyword (or a form of one) this module
    /// does not check.
    fn compile(&self, schema: &Value, depth: usize) -> Option<Node> {
        if depth > MAX_SCHEMA_DEPTH {
            return None;
        }
        let map = match schema {
            Value::Bool(true) => return Some(Node::any()),
            Value::Object(map) => map,
            _ => return None,
        };
        if let Some(target) = map.get("$ref") {
            // Only a `$ref` alone: beside other keywords, drafts disagree on what it means.
            if map
                .keys()
                .any(|k| k != "$ref" && !ANNOTATIONS.contains(&k.as_str()))
            {
                return None;
            }
            return self.compile(self.definition(target.as_str()?)?, depth + 1);
        }
        let mut node = Node::any();
        let mut leaf = serde_json::Map::new();
        for (key, v) in map {
            match key.as_str() {
                // A base URI for the root's own `$ref`s; below the root it would change them.
                "$id" if depth == 0 => {}
                "type" => node.types = types(v)?,
                "enum" => {
                    let list = v.as_array()?;
                    node.literals = Some(list.iter().map(Literal::of).collect::<Option<_>>()?);
                }
                "const" => node.constant = Some(Literal::of(v)?),
                "minimum" => node.minimum = Some(exact_f64(v.as_number()?)?),
                "maximum" => node.maximum = Some(exact_f64(v.as_number()?)?),
                "exclusiveMinimum" => node.exclusive_minimum = Some(exact_f64(v.as_number()?)?),
                "exclusiveMaximum" => node.exclusive_maximum = Some(exact_f64(v.as_number()?)?),
                "minLength" => node.min_length = Some(v.as_u64()?),
                "maxLength" => node.max_length = Some(v.as_u64()?),
                "minItems" => node.min_items = Some(v.as_u64()?),
                "maxItems" => node.max_items = Some(v.as_u64()?),
                "items" => node.items = Some(Box::new(self.compile(v, depth + 1)?)),
                "properties" => {
                    for (name, sub) in v.as_object()? {
                        node.object
                            .properties
                            .push((name.clone(), self.compile(sub, depth + 1)?));
                    }
                }
                "additionalProperties" => {
                    node.object.additional = match v {
                        Value::Bool(true) => Additional::Any,
                        Value::Bool(false) => Additional::Forbidden,
                        other => Additional::Schema(Box::new(self.compile(other, depth + 1)?)),
                    }
                }
                "required" => {} // after `properties`, below
                k if LEAF_KEYWORDS.contains(&k) => {
                    leaf.insert(key.clone(), v.clone());
                }
                k if ANNOTATIONS.contains(&k) => {}
                _ => return None,
            }
        }
        if !leaf.is_empty() {
            // The root's draft decides, e.g., whether `format` is asserted.
            if let Some(draft) = self.root.get("$schema") {
                leaf.insert("$schema".into(), draft.clone());
            }
            node.leaf = Some(Box::new(
                jsonschema::validator_for(&Value::Object(leaf)).ok()?,
            ));
        }
        if let Some(required) = map.get("required") {
            for name in required.as_array()? {
                let name = name.as_str()?;
                let i = node.object.properties.iter().position(|(p, _)| p == name)?;
                node.object.required.push(i);
            }
        }
        // A seen-set of one u64 per object keeps the check allocation-free.
        (node.object.properties.len() <= 64).then_some(node)
    }

    /// The schema a local `$ref` names: `#/$defs/<name>` or `#/definitions/<name>`.
    fn definition(&self, target: &str) -> Option<&Value> {
        let (container, name) = target
            .strip_prefix("#/$defs/")
            .map(|n| ("$defs", n))
            .or_else(|| {
                target
                    .strip_prefix("#/definitions/")
                    .map(|n| ("definitions", n))
            })?;
        // Escaped or nested pointers are left to jsonschema.
        if name.contains(['~', '%', '/']) {
            return None;
        }
        self.root.get(container)?.get(name)
    }
}

fn types(v: &Value) -> Option<u8> {
    let one = |s: &str| -> Option<u8> {
        Some(match s {
            "null" => NULL,
            "boolean" => BOOL,
            "integer" => INTEGER,
            "number" => NUMBER | INTEGER,
            "string" => STRING,
            "array" => ARRAY,
            "object" => OBJECT,
            _ => return None,
        })
    };
    match v {
        Value::String(s) => one(s),
        Value::Array(list) => list
            .iter()
            .try_fold(0u8, |acc, t| Some(acc | one(t.as_str()?)?)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keywords_become_checks_on_the_node() {
        let node = compile(&json!({"type": "object", "required": ["b"],
            "additionalProperties": false,
            "properties": {"a": {"type": "number", "minimum": 0, "title": "A"},
                           "b": {"enum": ["x", 1, null]},
                           "c": {"type": "string", "pattern": "^[a-z]+$"}}}))
        .expect("compiles");
        assert_eq!(node.types, OBJECT);
        assert!(matches!(node.object.additional, Additional::Forbidden));
        let names: Vec<&str> = node
            .object
            .properties
            .iter()
            .map(|(n, _)| n.as_str())
            .collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert_eq!(node.object.required, [1]);
        let a = &node.object.properties[0].1;
        assert_eq!(a.types, NUMBER | INTEGER, "a number may be an integer");
        assert_eq!(a.minimum, Some(0.0));
        let b = &node.object.properties[1].1;
        assert_eq!(
            b.literals,
            Some(vec![
                Literal::Str("x".into()),
                Literal::Number(1.0),
                Literal::Null
            ])
        );
        assert!(
            node.object.properties[2].1.leaf.is_some(),
            "pattern is jsonschema's"
        );
        assert!(node.leaf.is_none());
    }

    #[test]
    fn a_local_ref_is_compiled_as_its_target() {
        let node = compile(&json!({"$ref": "#/definitions/t", "$comment": "root",
            "definitions": {"t": {"type": "string", "maxLength": 3}}}))
        .expect("compiles");
        assert_eq!(node.types, STRING);
        assert_eq!(node.max_length, Some(3));
    }

    #[test]
    fn numbers_that_f64_cannot_hold_exactly_are_not_compiled() {
        assert!(compile(&json!({"maximum": 9007199254740993u64})).is_none());
        assert!(compile(&json!({"enum": [9007199254740992u64]})).is_some());
        assert!(
            compile(&json!({"enum": [[1]]})).is_none(),
            "enum of an array"
        );
    }

    #[test]
    fn schemas_with_other_keywords_are_not_compiled() {
        for schema in [
            json!({"$ref": "#/$defs/x"}),
            json!({"$defs": {"x": {"$ref": "#/$defs/x"}}, "$ref": "#/$defs/x"}),
            json!({"$defs": {"x": {}}, "$ref": "#/$defs/x", "type": "object"}),
            json!({"properties": {"a": {"$id": "other", "type": "string"}}}),
            json!({"oneOf": [{"type": "string"}]}),
            json!({"required": ["not_a_property"]}),
            json!(false),
        ] {
            assert!(compile(&schema).is_none(), "{schema}");
        }
    }

    /// The example domains' JSON contracts all take the one-pass check.
    #[test]
    fn example_contracts_compile() {
        for text in [
            include_str!("../../../../examples/domains/payments/schemas/transaction_settled.json"),
            include_str!("../../../../examples/domains/marketing/schemas/campaign_click.json"),
            include_str!("../../../../examples/domains/marketing/schemas/high_value_purchase.json"),
            include_str!(
                "../../../../examples/domains/marketing/schemas/campaign_clicks_per_minute.json"
            ),
            include_str!("../../../../examples/domains/ml/schemas/fraud_score.json"),
        ] {
            let schema: Value = serde_json::from_str(text).expect("json");
            assert!(compile(&schema).is_some(), "{text}");
        }
    }
}
