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

pub(super) fn can_read(reader: &Schema, writer: &Schema) -> Vec<Problem> {
    let rn = Names::of(reader);
    let wn = Names::of(writer);
    let mut out = Vec::new();
    let mut seen = Vec::new();
    check(&rn, &wn, reader, writer, "", &mut out, &mut seen);
    out
}

#[allow(clippy::too_many_arguments)]
fn check<'a>(
    rn: &Names<'a>,
    wn: &Names<'a>,
    reader: &'a Schema,
    writer: &'a Schema,
    path: &str,
    out: &mut Vec<Problem>,
    seen: &mut Vec<(String, String)>,
) {
    let reader = rn.resolve(reader);
    let writer = wn.resolve(writer);
    let (r, w) = (base(reader), base(writer));
    match (r, w) {
        // Every branch the writer may write must be readable.
        (_, Schema::Union(wu)) => {
            for branch in wu.variants() {
                let mut sub = Vec::new();
                check(rn, wn, reader, branch, path, &mut sub, seen);
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
                check(rn, wn, branch, writer, path, &mut sub, seen);
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
        (Schema::Record(rr), Schema::Record(wr)) => record(rn, wn, rr, wr, path, out, seen),
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
        (Schema::Array(ra), Schema::Array(wa)) => check(
            rn,
            wn,
            &ra.items,
            &wa.items,
            &format!("{path}[]"),
            out,
            seen,
        ),
        (Schema::Map(rm), Schema::Map(wm)) => check(
            rn,
            wn,
            &rm.types,
            &wm.types,
            &format!("{path}{{}}"),
            out,
            seen,
        ),
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

#[allow(clippy::too_many_arguments)]
fn record<'a>(
    rn: &Names<'a>,
    wn: &Names<'a>,
    rr: &'a RecordSchema,
    wr: &'a RecordSchema,
    path: &str,
    out: &mut Vec<Problem>,
    seen: &mut Vec<(String, String)>,
) {
    if !names_match(&rr.name, rr.aliases.as_ref(), &wr.name) {
        out.push(name_mismatch(path, "record", &rr.name, &wr.name));
    }
    // Recursive types: a pair already being compared is assumed compatible.
    let key = (full(&rr.name), full(&wr.name));
    if seen.contains(&key) {
        return;
    }
    seen.push(key);
    for rf in &rr.fields {
        let field_path = join(path, &rf.name);
        let wf = wr.fields.iter().find(|wf| wf.name == rf.name).or_else(|| {
            rf.aliases
                .iter()
                .find_map(|a| wr.fields.iter().find(|wf| &wf.name == a))
        });
        match wf {
            Some(wf) => check(rn, wn, &rf.schema, &wf.schema, &field_path, out, seen),
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
    seen.pop();
}
