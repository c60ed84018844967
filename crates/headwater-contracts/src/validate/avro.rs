//! The one-pass Avro reader: an Avro schema compiled to a walk over a record's bytes that checks
//! them without decoding them into `apache_avro` values: that decoding allocated every string
//! and resolved the schema's names again for each record. (The compile step is a plain mapping
//! of an already parsed `apache_avro::Schema`, so unlike JSON Schema it shares this file.)
//!
//! Like [`super::json_read`], it answers only "valid" or "not sure", and a record it is not sure
//! about is decoded by `apache-avro`, which also gives the error. It reads the primitive types,
//! records, enums, arrays, maps, unions, fixed and the integer logical types (dates, times and
//! timestamps); a schema with a named reference, a decimal, a uuid or a duration is not
//! compiled. The top-level fields the rules read are captured as the JSON form of an Avro value
//! would give them (a long is a JSON integer, an enum its symbol).

use super::{Checked, Field, NotSure};

#[derive(Debug)]
enum Node {
    Null,
    Boolean,
    Int,
    Long,
    Float,
    Double,
    Bytes,
    String,
    Fixed(usize),
    Enum(Vec<String>),
    Array(Box<Node>),
    Map(Box<Node>),
    Union(Vec<Node>),
    Record(Vec<(String, Node)>),
}

impl Node {
    fn compile(schema: &apache_avro::Schema) -> Option<Node> {
        use apache_avro::Schema as S;
        Some(match schema {
            S::Null => Node::Null,
            S::Boolean => Node::Boolean,
            S::Int | S::Date | S::TimeMillis => Node::Int,
            S::Long
            | S::TimeMicros
            | S::TimestampMillis
            | S::TimestampMicros
            | S::TimestampNanos
            | S::LocalTimestampMillis
            | S::LocalTimestampMicros
            | S::LocalTimestampNanos => Node::Long,
            S::Float => Node::Float,
            S::Double => Node::Double,
            S::Bytes => Node::Bytes,
            S::String => Node::String,
            S::Fixed(f) => Node::Fixed(f.size),
            S::Enum(e) => Node::Enum(e.symbols.clone()),
            S::Array(a) => Node::Array(Box::new(Node::compile(&a.items)?)),
            S::Map(m) => Node::Map(Box::new(Node::compile(&m.types)?)),
            S::Union(u) => Node::Union(
                u.variants()
                    .iter()
                    .map(Node::compile)
                    .collect::<Option<_>>()?,
            ),
            S::Record(r) => Node::Record(
                r.fields
                    .iter()
                    .map(|f| Some((f.name.clone(), Node::compile(&f.schema)?)))
                    .collect::<Option<_>>()?,
            ),
            _ => return None,
        })
    }
}

/// An Avro schema compiled for one-pass checks, and the top-level fields the rules read.
#[derive(Debug)]
pub(crate) struct AvroCheck {
    root: Node,
    /// For each top-level field, the rule variable it feeds, if any.
    feeds: Vec<Option<usize>>,
    variables: usize,
    /// Rules need the record's JSON form, which has no NaN or infinity: a record holding one
    /// is refused the slow way.
    finite_only: bool,
}

impl AvroCheck {
    /// `None` when the schema has something only `apache-avro` reads.
    pub(crate) fn compile(schema: &apache_avro::Schema, variables: &[String]) -> Option<AvroCheck> {
        let root = Node::compile(schema)?;
        let feeds = match &root {
            Node::Record(fields) => fields
                .iter()
                .map(|(name, _)| variables.iter().position(|v| v == name))
                .collect(),
            _ if variables.is_empty() => Vec::new(),
            _ => return None,
        };
        Some(AvroCheck {
            root,
            feeds,
            variables: variables.len(),
            finite_only: !variables.is_empty(),
        })
    }

    /// Checks a record (framing removed); on success gives the rules' variables.
    pub(crate) fn check<'a>(&'a self, avro: &'a [u8]) -> Checked<Vec<Option<Field<'a>>>> {
        let mut r = Reader {
            b: avro,
            i: 0,
            finite_only: self.finite_only,
        };
        let mut fields = vec![None; self.variables];
        match &self.root {
            Node::Record(list) => {
                for ((_, node), feed) in list.iter().zip(&self.feeds) {
                    let v = r.value(node)?;
                    if let Some(slot) = feed {
                        fields[*slot] = Some(v.ok_or(NotSure)?);
                    }
                }
            }
            other => {
                r.value(other)?;
            }
        }
        if r.i != avro.len() {
            return Err(NotSure);
        }
        Ok(fields)
    }
}

struct Reader<'a> {
    b: &'a [u8],
    i: usize,
    finite_only: bool,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Checked<&'a [u8]> {
        let end = self.i.checked_add(n).ok_or(NotSure)?;
        let s = self.b.get(self.i..end).ok_or(NotSure)?;
        self.i = end;
        Ok(s)
    }

    /// A zigzag varint of at most ten bytes, read as `apache-avro` reads it.
    fn long(&mut self) -> Checked<i64> {
        let mut z = 0u64;
        for j in 0..10 {
            let b = *self.b.get(self.i).ok_or(NotSure)?;
            self.i += 1;
            z |= u64::from(b & 0x7F) << (j * 7);
            if b >> 7 == 0 {
                return Ok(if z & 1 == 0 {
                    (z >> 1) as i64
                } else {
                    !(z >> 1) as i64
                });
            }
        }
        Err(NotSure)
    }

    /// A length or block count: never negative here, and never more than the bytes left, which
    /// also bounds the work a forged count can ask for.
    fn count(&mut self) -> Checked<usize> {
        let n = usize::try_from(self.long()?).map_err(|_| NotSure)?;
        if n > self.b.len() - self.i {
            return Err(NotSure);
        }
        Ok(n)
    }

    fn string(&mut self) -> Checked<&'a str> {
        let n = self.count()?;
        std::str::from_utf8(self.take(n)?).map_err(|_| NotSure)
    }

    fn finite(&self, f: f64) -> Checked<f64> {
        if self.finite_only && !f.is_finite() {
            Err(NotSure)
        } else {
            Ok(f)
        }
    }

    /// Reads one value; scalars come back as their JSON form for the rules.
    fn value(&mut self, node: &'a Node) -> Checked<Option<Field<'a>>> {
        let integer = |n: i64| {
            if n < 0 {
                Field::Int(n)
            } else {
                Field::UInt(n as u64)
            }
        };
        Ok(Some(match node {
            Node::Null => Field::Null,
            Node::Boolean => match self.take(1)? {
                [0] => Field::Bool(false),
                [1] => Field::Bool(true),
                _ => return Err(NotSure),
            },
            Node::Int => {
                let n = self.long()?;
                i32::try_from(n).map_err(|_| NotSure)?;
                integer(n)
            }
            Node::Long => integer(self.long()?),
            Node::Float => {
                let b = self.take(4)?;
                let f = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                Field::Float(self.finite(f64::from(f))?)
            }
            Node::Double => {
                let b = self.take(8)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                Field::Float(self.finite(f64::from_le_bytes(a))?)
            }
            Node::String => Field::Str(self.string()?.into()),
            Node::Enum(symbols) => {
                let i = usize::try_from(self.long()?).map_err(|_| NotSure)?;
                Field::Str(symbols.get(i).ok_or(NotSure)?.as_str().into())
            }
            Node::Union(variants) => {
                let i = usize::try_from(self.long()?).map_err(|_| NotSure)?;
                return self.value(variants.get(i).ok_or(NotSure)?);
            }
            Node::Bytes => {
                let n = self.count()?;
                self.take(n)?;
                return Ok(None);
            }
            Node::Fixed(size) => {
                self.take(*size)?;
                return Ok(None);
            }
            Node::Array(items) => {
                self.blocks(|r| r.value(items).map(drop))?;
                return Ok(None);
            }
            Node::Map(values) => {
                self.blocks(|r| {
                    r.string()?;
                    r.value(values).map(drop)
                })?;
                return Ok(None);
            }
            Node::Record(fields) => {
                for (_, f) in fields {
                    self.value(f)?;
                }
                return Ok(None);
            }
        }))
    }

    /// The blocks of an array or a map, up to the empty block that ends them. A negative count
    /// (a block with its byte size) is left to `apache-avro`.
    fn blocks(&mut self, mut item: impl FnMut(&mut Self) -> Checked<()>) -> Checked<()> {
        loop {
            let n = self.count()?;
            if n == 0 {
                return Ok(());
            }
            for _ in 0..n {
                item(self)?;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Contract, Format};

    const SCHEMA: &str = r#"{"type":"record","name":"R","fields":[
        {"name":"id","type":"string"},{"name":"n","type":"int"},{"name":"amount","type":"double"},
        {"name":"ok","type":"boolean"},{"name":"kind","type":{"type":"enum","name":"K","symbols":["A","B"]}},
        {"name":"note","type":["null","string"]},{"name":"tags","type":{"type":"array","items":"long"}},
        {"name":"attrs","type":{"type":"map","values":"string"}},{"name":"at","type":{"type":"long","logicalType":"timestamp-millis"}}]}"#;

    fn record() -> Vec<u8> {
        let mut b = vec![0x04, b'i', b'd']; // "id"
        b.push(0x03); // int -2
        b.extend(2.5f64.to_le_bytes());
        b.push(1); // true
        b.push(0x02); // enum 1 = "B"
        b.extend([0x02, 0x02, b'x']); // union branch 1, "x"
        b.extend([0x04, 0x02, 0x04, 0x00]); // array of 2 longs [1, 2]
        b.extend([0x02, 0x02, b'k', 0x02, b'v', 0x00]); // map {"k": "v"}
        b.extend([0x80, 0x01]); // 64
        b
    }

    #[test]
    fn valid_records_give_the_fields_rules_read() {
        let c = Contract::parse(Format::Avro, SCHEMA).expect("schema");
        let vars: Vec<String> = ["kind", "n", "at", "note", "nothing"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let check = AvroCheck::compile(c.avro().expect("avro"), &vars).expect("compiles");
        let b = record();
        let f = check.check(&b).expect("valid");
        assert_eq!(f[0], Some(Field::Str("B".into())));
        assert_eq!(f[1], Some(Field::Int(-2)));
        assert_eq!(f[2], Some(Field::UInt(64)));
        assert_eq!(f[3], Some(Field::Str("x".into())));
        assert_eq!(f[4], None);
        let json = c.decode_json(&b).expect("decodes");
        assert_eq!(json["kind"], "B");
        assert_eq!(json["n"], -2);
    }

    /// Whatever the walk accepts, apache-avro decodes: every one-byte change of a valid record.
    #[test]
    fn never_accepts_what_apache_avro_refuses() {
        let c = Contract::parse(Format::Avro, SCHEMA).expect("schema");
        let check = AvroCheck::compile(c.avro().expect("avro"), &[]).expect("compiles");
        let seed = record();
        let (mut accepted, mut tried) = (0, 0);
        for at in 0..=seed.len() {
            for byte in 0..=255u8 {
                for mode in 0..3 {
                    let mut m = seed.clone();
                    match mode {
                        0 if at < m.len() => m[at] = byte,
                        1 => m.insert(at, byte),
                        2 if at < m.len() && byte == 0 => {
                            m.remove(at);
                        }
                        _ => continue,
                    }
                    tried += 1;
                    if check.check(&m).is_ok() {
                        accepted += 1;
                        assert!(c.decode_avro(&m).is_ok(), "accepted {m:?}");
                    }
                }
            }
        }
        assert!(accepted > 100 && accepted < tried, "{accepted} of {tried}");
    }

    #[test]
    fn schemas_with_references_or_decimals_are_not_compiled() {
        for s in [
            r#"{"type":"record","name":"N","fields":[{"name":"next","type":["null","N"]}]}"#,
            r#"{"type":"bytes","logicalType":"decimal","precision":4,"scale":2}"#,
            r#"{"type":"string","logicalType":"uuid"}"#,
        ] {
            let c = Contract::parse(Format::Avro, s).expect("schema");
            assert!(
                AvroCheck::compile(c.avro().expect("avro"), &[]).is_none(),
                "{s}"
            );
        }
    }
}
