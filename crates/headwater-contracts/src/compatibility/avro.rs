//! Avro schema resolution (the Avro specification's rules), reported per field.
//!
//! A reader can read a writer's data when: the types match or the writer's promotes to the
//! reader's (int -> long, float, double; long -> float, double; float -> double; string <->
//! bytes); named types match by unqualified name or alias; every reader record field is in the
//! writer or has a default; every writer enum symbol is in the reader or the reader enum has a
//! default; fixed sizes are equal; and every branch a writer union can write is readable.

use std::collections::HashMap;

use apache_avro::schema::{Name, RecordSchema};
use apache_avro::Schema;

use super::{join, Problem};

/// Named types by full name, to follow `Ref`s.
struct Names<'a> {
    by_name: HashMap<String, &'a Schema>,
}

impl<'a> Names<'a> {
    fn of(root: &'a Schema) -> Self {
        let mut by_name = HashMap::new();
        collect(root, &mut by_name);
        Names { by_name }
    }
    fn resolve(&self, s: &'a Schema) -> &'a Schema {
        match s {
            Schema::Ref { name } => self.by_name.get(&full(name)).copied().unwrap_or(s),
            other => other,
        }
    }
}

fn full(name: &Name) -> String {
    name.fullname(None)
}

fn collect<'a>(s: &'a Schema, out: &mut HashMap<String, &'a Schema>) {
    match s {
        Schema::Record(r) => {
            out.insert(full(&r.name), s);
            for f in &r.fields {
                collect(&f.schema, out);
            }
        }
        Schema::Enum(e) => {
            out.insert(full(&e.name), s);
        }
        Schema::Fixed(f) => {
            out.insert(full(&f.name), s);
        }
        Schema::Array(a) => collect(&a.items, out),
        Schema::Map(m) => collect(&m.types, out),
        Schema::Union(u) => u.variants().iter().for_each(|v| collect(v, out)),
        _ => {}
    }
}

/// The type name used in explanations; logical types by their Avro name.
fn type_name(s: &Schema) -> String {
    match s {
        Schema::Null => "null".into(),
        Schema::Boolean => "boolean".into(),
        Schema::Int => "int".into(),
        Schema::Long => "long".into(),
        Schema::Float => "float".into(),
        Schema::Double => "double".into(),
        Schema::Bytes => "bytes".into(),
        Schema::String => "string".into(),
        Schema::Array(_) => "array".into(),
        Schema::Map(_) => "map".into(),
        Schema::Union(_) => "union".into(),
        Schema::Record(r) => format!("record {}", r.name.name()),
        Schema::Enum(e) => format!("enum {}", e.name.name()),
        Schema::Fixed(f) => format!("fixed {}", f.name.name()),
        Schema::Ref { name } => name.name().to_string(),
        other => format!("{other:?}")
            .split(['(', ' ', '{'])
            .next()
            .unwrap_or("logical")
            .to_lowercase(),
    }
}

/// Logical types are read by their underlying type.
fn base(s: &Schema) -> &Schema {
    match s {
        Schema::Date | Schema::TimeMillis => &Schema::Int,
        Schema::TimeMicros
        | Schema::TimestampMillis
        | Schema::TimestampMicros
        | Schema::TimestampNanos
        | Schema::LocalTimestampMillis
        | Schema::LocalTimestampMicros
        | Schema::LocalTimestampNanos => &Schema::Long,
        Schema::BigDecimal => &Schema::Bytes,
        other => other,
    }
}

fn promotes(writer: &Schema, reader: &Schema) -> bool {
    matches!(
        (writer, reader),
        (Schema::Int, Schema::Long | Schema::Float | Schema::Double)
            | (Schema::Long, Schema::Float | Schema::Double)
            | (Schema::Float, Schema::Double)
            | (Schema::String, Schema::Bytes)
            | (Schema::Bytes, Schema::String)
    )
}

fn names_match(
    reader: &Name,
    aliases: Option<&Vec<apache_avro::schema::Alias>>,
    writer: &Name,
) -> bool {
    reader.name() == writer.name()
        || aliases.is_some_and(|a| a.iter().any(|al| al.name() == writer.name()))
}

fn name_mismatch(path: &str, kind: &str, reader: &Name, writer: &Name) -> Problem {
    Problem {
        path: path.to_string(),
        rule: "NAME_MISMATCH",
        detail: format!(
            "{kind} name {} -> {} (add the old name as an alias)",
            writer.name(),
            reader.name()
        ),
    }
}

/// What keeps `reader` from reading data written with `writer`, by Avro's resolution rules.
pub(super) fn can_read(reader: &Schema, writer: &Schema) -> Vec<Problem> {
    let mut resolver = Resolver {
        rn: Names::of(reader),
        wn: Names::of(writer),
        seen: Vec::new(),
    };
    let mut out = Vec::new();
    resolver.check(reader, writer, "", &mut out);
    out
}

/// One reader/writer comparison: the named types of each side, and the record pairs being
/// compared (a recursive type meets itself again).
struct Resolver<'a> {
    rn: Names<'a>,
    wn: Names<'a>,
    seen: Vec<(String, String)>,
}

impl<'a> Resolver<'a> {
    /// Adds to `out` what keeps `reader` (at `path`) from reading `writer`'s data.
    fn check(
        &mut self,
        reader: &'a Schema,
        writer: &'a Schema,
        path: &str,
        out: &mut Vec<Problem>,
    ) {
        let reader = self.rn.resolve(reader);
        let writer = self.wn.resolve(writer);
        let (r, w) = (base(reader), base(writer));
        match (r, w) {
            // Every branch the writer may write must be readable.
            (_, Schema::Union(wu)) => {
                for branch in wu.variants() {
                    let mut sub = Vec::new();
                    self.check(reader, branch, path, &mut sub);
                    if !sub.is_empty() {
                        out.push(Problem {
                            path: path.to_string(),
                            rule: "UNION_BRANCH_UNREADABLE",
                            detail: format!(
                                "the writer's union branch {} is not readable as {}",
                                type_name(branch),
                                type_name(reader)
                            ),
                        });
                    }
                }
            }
            (Schema::Union(ru), _) => {
                let readable = ru.variants().iter().any(|branch| {
                    let mut sub = Vec::new();
                    self.check(branch, writer, path, &mut sub);
                    sub.is_empty()
                });
                if !readable {
                    out.push(Problem {
                        path: path.to_string(),
                        rule: "MISSING_UNION_BRANCH",
                        detail: format!(
                            "type {} -> a union without a branch that reads it",
                            type_name(writer)
                        ),
                    });
                }
            }
            (Schema::Record(rr), Schema::Record(wr)) => self.record(rr, wr, path, out),
            (Schema::Enum(re), Schema::Enum(we)) => {
                if !names_match(&re.name, re.aliases.as_ref(), &we.name) {
                    out.push(name_mismatch(path, "enum", &re.name, &we.name));
                }
                if re.default.is_none() {
                    for s in we.symbols.iter().filter(|s| !re.symbols.contains(s)) {
                        out.push(Problem {
                            path: path.to_string(),
                            rule: "MISSING_ENUM_SYMBOLS",
                            detail: format!(
                                "enum symbol '{s}' removed (and the reader enum has no default)"
                            ),
                        });
                    }
                }
            }
            (Schema::Fixed(rf), Schema::Fixed(wf)) => {
                if !names_match(&rf.name, rf.aliases.as_ref(), &wf.name) {
                    out.push(name_mismatch(path, "fixed", &rf.name, &wf.name));
                }
                if rf.size != wf.size {
                    out.push(Problem {
                        path: path.to_string(),
                        rule: "FIXED_SIZE_MISMATCH",
                        detail: format!("fixed size {} -> {}", wf.size, rf.size),
                    });
                }
            }
            (Schema::Array(ra), Schema::Array(wa)) => {
                self.check(&ra.items, &wa.items, &format!("{path}[]"), out)
            }
            (Schema::Map(rm), Schema::Map(wm)) => {
                self.check(&rm.types, &wm.types, &format!("{path}{{}}"), out)
            }
            (Schema::Decimal(rd), Schema::Decimal(wd)) => {
                if rd.precision != wd.precision || rd.scale != wd.scale {
                    out.push(Problem {
                        path: path.to_string(),
                        rule: "DECIMAL_CHANGED",
                        detail: format!(
                            "decimal({}, {}) -> decimal({}, {})",
                            wd.precision, wd.scale, rd.precision, rd.scale
                        ),
                    });
                }
            }
            (r, w) if std::mem::discriminant(r) == std::mem::discriminant(w) => {}
            (r, w) if promotes(w, r) => {}
            _ => out.push(Problem {
                path: path.to_string(),
                rule: "TYPE_MISMATCH",
                detail: format!("type {} -> {}", type_name(writer), type_name(reader)),
            }),
        }
    }

    /// A reader record against a writer record: fields are matched by name, then by the
    /// reader field's aliases.
    fn record(
        &mut self,
        rr: &'a RecordSchema,
        wr: &'a RecordSchema,
        path: &str,
        out: &mut Vec<Problem>,
    ) {
        if !names_match(&rr.name, rr.aliases.as_ref(), &wr.name) {
            out.push(name_mismatch(path, "record", &rr.name, &wr.name));
        }
        // Recursive types: a pair already being compared is assumed compatible.
        let key = (full(&rr.name), full(&wr.name));
        if self.seen.contains(&key) {
            return;
        }
        self.seen.push(key);
        for rf in &rr.fields {
            let field_path = join(path, &rf.name);
            let wf = wr.fields.iter().find(|wf| wf.name == rf.name).or_else(|| {
                rf.aliases
                    .iter()
                    .find_map(|a| wr.fields.iter().find(|wf| &wf.name == a))
            });
            match wf {
                Some(wf) => self.check(&rf.schema, &wf.schema, &field_path, out),
                None if rf.default.is_some() => {}
                None => out.push(Problem {
                    path: field_path,
                    rule: "READER_FIELD_MISSING_DEFAULT_VALUE",
                    detail: format!(
                        "field added without a default (type {})",
                        type_name(&rf.schema)
                    ),
                }),
            }
        }
        self.seen.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (path, rule) of each problem the reader has with the writer's data.
    fn problems(reader: &str, writer: &str) -> Vec<(String, &'static str)> {
        let parse = |text: &str| Schema::parse_str(text).expect("avro schema");
        can_read(&parse(reader), &parse(writer))
            .into_iter()
            .map(|p| (p.path, p.rule))
            .collect()
    }

    fn one(path: &str, rule: &'static str) -> Vec<(String, &'static str)> {
        vec![(path.to_string(), rule)]
    }

    fn record(name: &str, fields: &str) -> String {
        format!(r#"{{"type":"record","name":"{name}","fields":[{fields}]}}"#)
    }

    #[test]
    fn primitives_promote_one_way() {
        assert!(problems(r#""long""#, r#""int""#).is_empty());
        assert!(problems(r#""double""#, r#""float""#).is_empty());
        assert!(problems(r#""bytes""#, r#""string""#).is_empty());
        assert_eq!(problems(r#""int""#, r#""long""#), one("", "TYPE_MISMATCH"));
        assert!(
            problems(
                r#"{"type":"long","logicalType":"timestamp-millis"}"#,
                r#""long""#
            )
            .is_empty(),
            "a logical type reads as its underlying type"
        );
    }

    #[test]
    fn renamed_records_need_an_alias() {
        let old = record("Old", r#"{"name":"id","type":"string"}"#);
        assert_eq!(
            problems(&record("New", r#"{"name":"id","type":"string"}"#), &old),
            one("", "NAME_MISMATCH")
        );
        let aliased = r#"{"type":"record","name":"New","aliases":["Old"],
            "fields":[{"name":"key","aliases":["id"],"type":"string"}]}"#;
        assert!(problems(aliased, &old).is_empty());
    }

    #[test]
    fn new_reader_fields_need_defaults() {
        let writer = record("R", r#"{"name":"id","type":"string"}"#);
        let reader = record(
            "R",
            r#"{"name":"id","type":"string"},{"name":"n","type":"int"},{"name":"m","type":"int","default":0}"#,
        );
        assert_eq!(
            problems(&reader, &writer),
            one("n", "READER_FIELD_MISSING_DEFAULT_VALUE")
        );
    }

    #[test]
    fn enums_unions_and_fixed() {
        let e = |symbols: &str, default: &str| {
            format!(r#"{{"type":"enum","name":"E","symbols":[{symbols}]{default}}}"#)
        };
        assert_eq!(
            problems(&e(r#""A""#, ""), &e(r#""A","B""#, "")),
            one("", "MISSING_ENUM_SYMBOLS")
        );
        assert!(problems(&e(r#""A""#, r#","default":"A""#), &e(r#""A","B""#, "")).is_empty());
        assert!(problems(r#"["null","string"]"#, r#""string""#).is_empty());
        assert_eq!(
            problems(r#""string""#, r#"["null","string"]"#),
            one("", "UNION_BRANCH_UNREADABLE")
        );
        assert_eq!(
            problems(r#"["null","int"]"#, r#""string""#),
            one("", "MISSING_UNION_BRANCH")
        );
        assert_eq!(
            problems(
                r#"{"type":"fixed","name":"F","size":4}"#,
                r#"{"type":"fixed","name":"F","size":8}"#
            ),
            one("", "FIXED_SIZE_MISMATCH")
        );
    }

    #[test]
    fn containers_and_recursive_types() {
        let map = |values: &str| format!(r#"{{"type":"map","values":"{values}"}}"#);
        let array = |items: &str| format!(r#"{{"type":"array","items":"{items}"}}"#);
        let field = |name: &str, t: &str| format!(r#"{{"name":"{name}","type":{t}}}"#);
        let reader = record(
            "R",
            &format!("{},{}", field("m", &map("int")), field("a", &array("int"))),
        );
        let writer = record(
            "R",
            &format!(
                "{},{}",
                field("m", &map("long")),
                field("a", &array("long"))
            ),
        );
        assert_eq!(
            problems(&reader, &writer),
            vec![
                ("m{}".to_string(), "TYPE_MISMATCH"),
                ("a[]".to_string(), "TYPE_MISMATCH"),
            ]
        );
        let list = record("Node", r#"{"name":"next","type":["null","Node"]}"#);
        assert!(problems(&list, &list).is_empty(), "a recursive type ends");
    }
}
