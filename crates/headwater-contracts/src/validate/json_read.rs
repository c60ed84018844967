//! The one-pass JSON reader: checks a record's bytes against a schema compiled by
//! [`super::json_compile`] while reading them once, without building a `serde_json::Value`
//! (parsing into a `Value` cost more than everything else produce-time validation does), and
//! captures the top-level fields the quality rules read.
//!
//! It answers only "valid" or "not sure". Anything it does not read exactly like `serde_json`
//! and `jsonschema` would (invalid JSON, a duplicate key, an integer written as `1.0`, a huge
//! number) is "not sure", and the caller checks that record again the slow way, which also
//! writes the error message. So a record accepted here is one `jsonschema` accepts (a
//! differential test holds it to that), and every refusal still reads the same.

use std::borrow::Cow;

use serde_json::Value;

use super::json_compile::{
    self, Additional, Literal, Node, ARRAY, BOOL, INTEGER, NULL, NUMBER, OBJECT, STRING,
};
use super::{Checked, Field, NotSure};

/// `serde_json`'s nesting limit; deeper input is left to it.
const MAX_DEPTH: usize = 100;

/// A JSON Schema compiled for one-pass checks, and the top-level fields the rules read.
#[derive(Debug)]
pub(crate) struct JsonCheck {
    root: Node,
    variables: Vec<String>,
}

impl JsonCheck {
    /// `None` when the schema uses something only `jsonschema` checks.
    pub(crate) fn compile(schema: &Value, variables: &[String]) -> Option<JsonCheck> {
        Some(JsonCheck {
            root: json_compile::compile(schema)?,
            variables: variables.to_vec(),
        })
    }

    /// Checks a record; on success gives the rules' variables, in the order of `variables`
    /// (`None` where the record has no such field).
    pub(crate) fn check<'a>(&self, json: &'a [u8]) -> Checked<Vec<Option<Field<'a>>>> {
        // One UTF-8 check for the whole record: outside strings JSON is ASCII, so every slice
        // taken between quotes or around a number is then a `str` without another check.
        let text = std::str::from_utf8(json).map_err(|_| NotSure)?;
        let mut fields = vec![None; self.variables.len()];
        let mut r = Reader {
            s: text,
            b: json,
            i: 0,
        };
        let capture = Capture {
            names: &self.variables,
            fields: &mut fields,
        };
        r.value(&self.root, 0, Some(capture))?;
        r.skip_ws();
        if r.i != json.len() {
            return Err(NotSure);
        }
        Ok(fields)
    }
}

/// Where the top-level object's fields that rules read are kept.
struct Capture<'c, 'a> {
    names: &'c [String],
    fields: &'c mut [Option<Field<'a>>],
}

/// A scalar as read, before the schema's checks.
enum Scalar<'a> {
    Null,
    Bool(bool),
    Number(Number<'a>),
    Str(Cow<'a, str>),
}

impl<'a> Scalar<'a> {
    /// The value `serde_json` gives this scalar, for the rules.
    fn field(self) -> Checked<Field<'a>> {
        Ok(match self {
            Scalar::Null => Field::Null,
            Scalar::Bool(b) => Field::Bool(b),
            Scalar::Str(s) => Field::Str(s),
            Scalar::Number(n) => n.field()?,
        })
    }
}

#[derive(Clone, Copy)]
struct Number<'a> {
    text: &'a str,
    /// No fraction and no exponent.
    integer: bool,
}

impl Number<'_> {
    /// The value `serde_json` gives this number.
    fn field(self) -> Checked<Field<'static>> {
        if self.integer {
            if let Some(digits) = self.text.strip_prefix('-') {
                // `-0` parses as the float -0.0 in serde_json.
                let n: u64 = digits.parse().map_err(|_| NotSure)?;
                if n == 0 || n > i64::MAX as u64 {
                    return Err(NotSure);
                }
                return Ok(Field::Int(-(n as i64)));
            }
            return self.text.parse().map(Field::UInt).map_err(|_| NotSure);
        }
        // The same float parser as `serde_json::Value`, so the same rounding.
        serde_json::from_str::<f64>(self.text)
            .map(Field::Float)
            .map_err(|_| NotSure)
    }

    /// The number as an exact `f64`, for bounds, `enum` and `const`.
    fn exact(self) -> Checked<f64> {
        match self.field()? {
            Field::Int(i) if i.unsigned_abs() <= 1 << 53 => Ok(i as f64),
            Field::UInt(u) if u <= 1 << 53 => Ok(u as f64),
            Field::Float(f) if f.is_finite() => Ok(f),
            _ => Err(NotSure),
        }
    }
}

struct Reader<'a> {
    s: &'a str,
    /// `s` as bytes.
    b: &'a [u8],
    i: usize,
}

impl<'a> Reader<'a> {
    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    fn peek(&mut self) -> Checked<u8> {
        self.skip_ws();
        self.b.get(self.i).copied().ok_or(NotSure)
    }

    fn eat(&mut self, c: u8) -> Checked<()> {
        if self.peek()? == c {
            self.i += 1;
            Ok(())
        } else {
            Err(NotSure)
        }
    }

    /// Whether the container just opened ends here (consuming `close`).
    fn closes(&mut self, close: u8) -> Checked<bool> {
        let empty = self.peek()? == close;
        if empty {
            self.i += 1;
        }
        Ok(empty)
    }

    /// After an element: `,` (another follows: `false`) or `close` (the container ends: `true`).
    fn after_element(&mut self, close: u8) -> Checked<bool> {
        match self.peek()? {
            b',' => {
                self.i += 1;
                Ok(false)
            }
            c if c == close => {
                self.i += 1;
                Ok(true)
            }
            _ => Err(NotSure),
        }
    }

    fn literal(&mut self, word: &[u8]) -> Checked<()> {
        if self.b[self.i..].starts_with(word) {
            self.i += word.len();
            Ok(())
        } else {
            Err(NotSure)
        }
    }

    /// Reads one value and checks it against `node`; gives the scalar read (`None` for an
    /// object or an array), which a captured field is made from.
    fn value(
        &mut self,
        node: &Node,
        depth: usize,
        capture: Option<Capture<'_, 'a>>,
    ) -> Checked<Option<Scalar<'a>>> {
        if depth > MAX_DEPTH {
            return Err(NotSure);
        }
        let scalar = match self.peek()? {
            b'{' => return self.object(node, depth, capture).map(|_| None),
            b'[' => return self.array(node, depth).map(|_| None),
            b'"' => Scalar::Str(self.string()?),
            b't' => self.literal(b"true").map(|_| Scalar::Bool(true))?,
            b'f' => self.literal(b"false").map(|_| Scalar::Bool(false))?,
            b'n' => self.literal(b"null").map(|_| Scalar::Null)?,
            b'-' | b'0'..=b'9' => Scalar::Number(self.number()?),
            _ => return Err(NotSure),
        };
        check_scalar(node, &scalar)?;
        Ok(Some(scalar))
    }

    fn number(&mut self) -> Checked<Number<'a>> {
        let start = self.i;
        let digits = |r: &mut Self| {
            let from = r.i;
            while r.b.get(r.i).is_some_and(u8::is_ascii_digit) {
                r.i += 1;
            }
            r.i - from
        };
        if self.b[self.i] == b'-' {
            self.i += 1;
        }
        let first = self.i;
        let n = digits(self);
        if n == 0 || (n > 1 && self.b[first] == b'0') {
            return Err(NotSure);
        }
        let mut integer = true;
        if self.b.get(self.i) == Some(&b'.') {
            self.i += 1;
            integer = false;
            if digits(self) == 0 {
                return Err(NotSure);
            }
        }
        let exponent = matches!(self.b.get(self.i), Some(b'e' | b'E'));
        if exponent {
            self.i += 1;
            integer = false;
            if let Some(b'+' | b'-') = self.b.get(self.i) {
                self.i += 1;
            }
            if digits(self) == 0 {
                return Err(NotSure);
            }
        }
        let text = self.s.get(start..self.i).ok_or(NotSure)?;
        let number = Number { text, integer };
        // serde_json refuses a number whose f64 is infinite wherever it stands, even under a
        // property no schema looks at. Only an exponent or more than 300 digits can get there.
        if exponent || text.len() > 300 {
            number.field()?;
        }
        Ok(number)
    }

    /// Reads a string at the opening quote; escapes are decoded (borrowed when it has none).
    fn string(&mut self) -> Checked<Cow<'a, str>> {
        self.i += 1;
        let mut decoded: Option<String> = None;
        loop {
            let run = self.i;
            let n = self.b[run..]
                .iter()
                .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
                .ok_or(NotSure)?;
            self.i = run + n;
            let piece = self.s.get(run..self.i).ok_or(NotSure)?;
            match self.b[self.i] {
                b'"' => {
                    self.i += 1;
                    return Ok(match decoded {
                        None => Cow::Borrowed(piece),
                        Some(mut out) => {
                            out.push_str(piece);
                            Cow::Owned(out)
                        }
                    });
                }
                b'\\' => {
                    self.i += 1;
                    let c = *self.b.get(self.i).ok_or(NotSure)?;
                    self.i += 1;
                    let c = match c {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => self.unicode_escape()?,
                        _ => return Err(NotSure),
                    };
                    let out = decoded.get_or_insert_with(String::new);
                    out.push_str(piece);
                    out.push(c);
                }
                _ => return Err(NotSure),
            }
        }
    }

    /// The character of a `\u` escape (after the `u`), joining surrogate pairs; a lone
    /// surrogate is left to `serde_json`.
    fn unicode_escape(&mut self) -> Checked<char> {
        let hex4 = |r: &mut Self| -> Checked<u32> {
            let s = r.s.get(r.i..r.i + 4).ok_or(NotSure)?;
            if !s.bytes().all(|c| c.is_ascii_hexdigit()) {
                return Err(NotSure);
            }
            r.i += 4;
            u32::from_str_radix(s, 16).map_err(|_| NotSure)
        };
        let hi = hex4(self)?;
        let code = match hi {
            0xD800..=0xDBFF => {
                if self.b.get(self.i..self.i + 2) != Some(b"\\u") {
                    return Err(NotSure);
                }
                self.i += 2;
                let lo = hex4(self)?;
                if !(0xDC00..=0xDFFF).contains(&lo) {
                    return Err(NotSure);
                }
                0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
            }
            0xDC00..=0xDFFF => return Err(NotSure),
            c => c,
        };
        char::from_u32(code).ok_or(NotSure)
    }

    fn object(
        &mut self,
        node: &Node,
        depth: usize,
        mut capture: Option<Capture<'_, 'a>>,
    ) -> Checked<()> {
        require(node.takes(OBJECT))?;
        self.i += 1;
        let props = &node.object.properties;
        let mut seen = 0u64;
        // Producers usually write fields in the schema's order: try the next one first.
        let mut next = 0usize;
        if !self.closes(b'}')? {
            loop {
                if self.peek()? != b'"' {
                    return Err(NotSure);
                }
                let key = self.string()?;
                self.eat(b':')?;
                let found = match props.get(next) {
                    Some((name, _)) if *name == key => Some(next),
                    _ => props.iter().position(|(name, _)| *name == key),
                };
                let start = {
                    self.skip_ws();
                    self.i
                };
                let read = match found {
                    Some(p) => {
                        if seen & (1 << p) != 0 {
                            // A duplicate key: serde_json keeps the last one.
                            return Err(NotSure);
                        }
                        seen |= 1 << p;
                        next = p + 1;
                        self.value(&props[p].1, depth + 1, None)?
                    }
                    None => match &node.object.additional {
                        Additional::Forbidden => return Err(NotSure),
                        Additional::Any => self.value(&Node::any(), depth + 1, None)?,
                        Additional::Schema(s) => self.value(s, depth + 1, None)?,
                    },
                };
                if let Some(c) = capture.as_mut() {
                    if let Some(v) = c.names.iter().position(|n| *n == key) {
                        c.fields[v] = Some(match read {
                            Some(scalar) => scalar.field()?,
                            None => Field::Json(&self.b[start..self.i]),
                        });
                    }
                }
                if self.after_element(b'}')? {
                    break;
                }
            }
        }
        require(node.object.required.iter().all(|r| seen & (1 << r) != 0))
    }

    fn array(&mut self, node: &Node, depth: usize) -> Checked<()> {
        require(node.takes(ARRAY))?;
        self.i += 1;
        let any = Node::any();
        let items = node.items.as_deref().unwrap_or(&any);
        let mut n = 0u64;
        if !self.closes(b']')? {
            loop {
                self.value(items, depth + 1, None)?;
                n += 1;
                if self.after_element(b']')? {
                    break;
                }
            }
        }
        require(node.min_items.is_none_or(|m| n >= m) && node.max_items.is_none_or(|m| n <= m))
    }
}

fn check_scalar(node: &Node, scalar: &Scalar<'_>) -> Checked<()> {
    let literal = match scalar {
        Scalar::Null => {
            require(node.types & NULL != 0)?;
            Literal::Null
        }
        Scalar::Bool(b) => {
            require(node.types & BOOL != 0)?;
            Literal::Bool(*b)
        }
        Scalar::Str(s) => {
            require(node.types & STRING != 0)?;
            if let Some(leaf) = &node.leaf {
                require(leaf.is_valid(&Value::String(s.to_string())))?;
            }
            if node.min_length.is_some() || node.max_length.is_some() {
                let n = if s.is_ascii() {
                    s.len()
                } else {
                    s.chars().count()
                } as u64;
                require(node.min_length.is_none_or(|m| n >= m))?;
                require(node.max_length.is_none_or(|m| n <= m))?;
            }
            let is = |l: &Literal| matches!(l, Literal::Str(x) if x == s);
            require(
                node.literals
                    .as_ref()
                    .is_none_or(|list| list.iter().any(is)),
            )?;
            return require(node.constant.as_ref().is_none_or(is));
        }
        Scalar::Number(n) => {
            // An integer written as `1.0` is an integer to jsonschema: left to it.
            let allowed = if n.integer { INTEGER } else { NUMBER };
            require(node.types & allowed != 0)?;
            if let Some(leaf) = &node.leaf {
                let value: Value = serde_json::from_str(n.text).map_err(|_| NotSure)?;
                require(leaf.is_valid(&value))?;
            }
            let bounded = node.minimum.is_some()
                || node.maximum.is_some()
                || node.exclusive_minimum.is_some()
                || node.exclusive_maximum.is_some();
            if !bounded && node.literals.is_none() && node.constant.is_none() {
                return Ok(());
            }
            let x = n.exact()?;
            require(node.minimum.is_none_or(|m| x >= m))?;
            require(node.maximum.is_none_or(|m| x <= m))?;
            require(node.exclusive_minimum.is_none_or(|m| x > m))?;
            require(node.exclusive_maximum.is_none_or(|m| x < m))?;
            Literal::Number(x)
        }
    };
    if let Some(list) = &node.literals {
        require(list.contains(&literal))?;
    }
    if let Some(c) = &node.constant {
        require(*c == literal)?;
    }
    Ok(())
}

fn require(ok: bool) -> Checked<()> {
    if ok {
        Ok(())
    } else {
        Err(NotSure)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(schema: &Value, vars: &[&str], record: &str) -> Checked<Vec<Option<Field<'static>>>> {
        let vars: Vec<String> = vars.iter().map(|s| s.to_string()).collect();
        let c = JsonCheck::compile(schema, &vars).expect("compiles");
        let leaked: &'static [u8] = Box::leak(record.as_bytes().to_vec().into_boxed_slice());
        c.check(leaked)
    }

    fn payment() -> Value {
        json!({"type":"object","additionalProperties":false,"required":["amount","currency"],
            "properties":{"amount":{"type":"number","minimum":0},"currency":{"enum":["EUR","USD"]},
            "n":{"type":"integer"},"tags":{"type":"array","items":{"type":"string"},"maxItems":2},
            "note":{"type":["string","null"],"maxLength":3}}})
    }

    #[test]
    fn valid_records_give_the_fields_rules_read() {
        let f = check(
            &payment(),
            &["amount", "currency", "n", "tags", "missing"],
            r#" {"amount": 12.5, "currency":"E\u0055R", "n": -3, "tags": ["a"]} "#,
        )
        .expect("valid");
        assert_eq!(f[0], Some(Field::Float(12.5)));
        assert_eq!(f[1], Some(Field::Str("EUR".into())));
        assert_eq!(f[2], Some(Field::Int(-3)));
        assert_eq!(f[3], Some(Field::Json(br#"["a"]"#)));
        assert_eq!(f[4], None);
        let f = check(&payment(), &["amount"], r#"{"currency":"USD","amount":7}"#).expect("ok");
        assert_eq!(f[0], Some(Field::UInt(7)));
    }

    #[test]
    fn anything_doubtful_is_left_to_jsonschema() {
        for bad in [
            r#"{"amount": -1, "currency": "EUR"}"#,
            r#"{"amount": 1, "currency": "GBP"}"#,
            r#"{"amount": 1}"#,
            r#"{"amount": 1, "currency": "EUR", "x": 1}"#,
            r#"{"amount": 1, "currency": "EUR", "amount": 2}"#,
            r#"{"amount": 1, "currency": "EUR", "n": 1.0}"#,
            r#"{"amount": 1, "currency": "EUR", "tags": ["a", "b", "c"]}"#,
            r#"{"amount": 1, "currency": "EUR", "tags": [1]}"#,
            r#"{"amount": 1, "currency": "EUR", "note": "long"}"#,
            r#"{"amount": 01, "currency": "EUR"}"#,
            r#"{"amount": 1, "currency": "EUR",}"#,
            r#"{"amount": 1, "currency": "EUR"} x"#,
            r#"{"amount": 1, "currency": "\ud800"}"#,
            r#"{"amount": -0, "currency": "EUR"}"#,
            "[1]",
            "",
        ] {
            assert_eq!(check(&payment(), &[], bad), Err(NotSure), "{bad}");
        }
        assert!(check(
            &payment(),
            &[],
            r#"{"amount":1,"currency":"EUR","note":null}"#
        )
        .is_ok());
    }

    /// Local `$ref`s are followed; `pattern`, `format` and `multipleOf` are jsonschema's own.
    #[test]
    fn refs_patterns_and_formats() {
        let schema = json!({"$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object", "properties": {
                "amount": {"$ref": "#/$defs/money"},
                "card": {"type": "string", "pattern": "^[0-9]{4}$"},
                "at": {"type": "string", "format": "date-time"},
                "step": {"type": "number", "multipleOf": 0.5}},
            "$defs": {"money": {"type": "number", "minimum": 0}}});
        let slow = jsonschema::validator_for(&schema).expect("schema");
        for record in [
            r#"{"amount": 1.5, "card": "4242", "at": "2026-11-30T08:00:00Z", "step": 1.5}"#,
            r#"{"amount": -1}"#,
            r#"{"amount": "1"}"#,
            r#"{"card": "42a2"}"#,
            r#"{"card": "\u0034242"}"#,
            r#"{"at": "yesterday"}"#,
            r#"{"step": 0.3}"#,
            r#"{"step": 2}"#,
        ] {
            let fast = check(&schema, &[], record).is_ok();
            let v: Value = serde_json::from_str(record).expect("json");
            assert!(!fast || slow.is_valid(&v), "accepted {record}");
            assert_eq!(fast, slow.is_valid(&v), "{record}");
        }
    }

    /// Whatever the one-pass check accepts, jsonschema accepts: records made by mutating valid
    /// ones byte by byte.
    #[test]
    fn never_accepts_what_jsonschema_refuses() {
        let schema = payment();
        let slow = jsonschema::validator_for(&schema).expect("schema");
        let fast = JsonCheck::compile(&schema, &[]).expect("compiles");
        let seeds = [
            r#"{"amount": 12.5, "currency": "EUR", "n": 3, "tags": ["a", "b"], "note": "x"}"#,
            r#"{"currency":"USD","amount":0,"note":null,"tags":[]}"#,
        ];
        let alphabet = b"{}[]\":,.-+eE0123456789 \\untrfalsEURSD";
        let (mut accepted, mut tried) = (0, 0);
        for seed in seeds {
            let seed = seed.as_bytes();
            for at in 0..seed.len() {
                for c in alphabet {
                    for mode in 0..3 {
                        let mut m = seed.to_vec();
                        match mode {
                            0 => m[at] = *c,
                            1 => m.insert(at, *c),
                            _ => {
                                m.remove(at);
                            }
                        }
                        tried += 1;
                        if fast.check(&m).is_ok() {
                            accepted += 1;
                            let v: Value = serde_json::from_slice(&m).unwrap_or_else(|e| {
                                panic!("accepted invalid JSON {}: {e}", String::from_utf8_lossy(&m))
                            });
                            assert!(
                                slow.is_valid(&v),
                                "accepted {}",
                                String::from_utf8_lossy(&m)
                            );
                        }
                    }
                }
            }
        }
        assert!(accepted > 100 && accepted < tried, "{accepted} of {tried}");
    }
}
