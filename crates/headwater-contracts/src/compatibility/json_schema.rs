//! JSON Schema compatibility: can every document valid under the writer's schema be read by
//! the reader's, judged structurally as Confluent's registry does.
//!
//! Compared keywords: `type` (integer is a number), `properties`, `required`,
//! `additionalProperties` (the content model: absent or `true` is open, `false` is closed),
//! `items`, `enum`, `const`, numeric bounds, string lengths, `pattern`, and `$ref` to
//! `#/definitions/...` or `#/$defs/...` inside the same file. Notably, adding a property to an
//! open content model breaks BACKWARD (older data may already hold that name with another type)
//! and removing one from a closed model does too (older data may hold it and the closed reader
//! refuses it). Other keywords are not compared.

use serde_json::{Map, Value};

use super::{join, Problem};

struct Doc<'a> {
    root: &'a Value,
}

impl<'a> Doc<'a> {
    /// Follows a local `$ref` (JSON pointer into the same document).
    fn resolve(&self, mut v: &'a Value) -> &'a Value {
        for _ in 0..32 {
            let Some(r) = v.get("$ref").and_then(Value::as_str) else {
                return v;
            };
            let Some(pointer) = r.strip_prefix('#') else {
                return v;
            };
            match self.root.pointer(pointer) {
                Some(target) => v = target,
                None => return v,
            }
        }
        v
    }
}

fn types(v: &Value) -> Option<Vec<String>> {
    match v.get("type") {
        Some(Value::String(s)) => Some(vec![s.clone()]),
        Some(Value::Array(a)) => Some(
            a.iter()
                .filter_map(|t| t.as_str().map(String::from))
                .collect(),
        ),
        _ => None,
    }
}

fn covers(reader: &[String], writer_type: &str) -> bool {
    reader
        .iter()
        .any(|r| r == writer_type || (r == "number" && writer_type == "integer"))
}

fn is_open(v: &Value) -> bool {
    !matches!(v.get("additionalProperties"), Some(Value::Bool(false)))
}

fn props(v: &Value) -> Option<&Map<String, Value>> {
    v.get("properties").and_then(Value::as_object)
}

fn required(v: &Value) -> Vec<&str> {
    v.get("required")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// Is the reader schema `true` / `{}` (accepts anything)?
fn accepts_anything(v: &Value) -> bool {
    matches!(v, Value::Bool(true)) || v.as_object().is_some_and(|o| o.is_empty())
}

pub(super) fn can_read(reader: &Value, writer: &Value) -> Vec<Problem> {
    let (rd, wd) = (Doc { root: reader }, Doc { root: writer });
    let mut out = Vec::new();
    check(&rd, &wd, reader, writer, "", &mut out, 0);
    out
}

fn problem(out: &mut Vec<Problem>, path: &str, rule: &'static str, detail: String) {
    out.push(Problem {
        path: path.to_string(),
        rule,
        detail,
    });
}

fn check(
    rd: &Doc<'_>,
    wd: &Doc<'_>,
    reader: &Value,
    writer: &Value,
    path: &str,
    out: &mut Vec<Problem>,
    depth: usize,
) {
    if depth > 64 {
        return;
    }
    let reader = rd.resolve(reader);
    let writer = wd.resolve(writer);
    if accepts_anything(reader) {
        return;
    }
    // Types.
    if let Some(rt) = types(reader) {
        match types(writer) {
            Some(wt) => {
                let lost: Vec<&String> = wt.iter().filter(|t| !covers(&rt, t)).collect();
                if !lost.is_empty() {
                    let rule = if lost.iter().all(|t| *t == "number")
                        && rt.iter().any(|t| t == "integer")
                    {
                        "TYPE_NARROWED"
                    } else {
                        "TYPE_CHANGED"
                    };
                    problem(
                        out,
                        path,
                        rule,
                        format!("type {} -> {}", wt.join("|"), rt.join("|")),
                    );
                    return;
                }
            }
            None => {
                problem(
                    out,
                    path,
                    "TYPE_NARROWED",
                    format!("type any -> {}", rt.join("|")),
                );
                return;
            }
        }
    }
    // Enumerations and constants.
    if let Some(re) = reader.get("enum").and_then(Value::as_array) {
        match writer.get("enum").and_then(Value::as_array) {
            Some(we) => {
                for v in we.iter().filter(|v| !re.contains(v)) {
                    problem(
                        out,
                        path,
                        "ENUM_ARRAY_NARROWED",
                        format!("enum value {v} removed"),
                    );
                }
            }
            None => problem(
                out,
                path,
                "ENUM_ARRAY_NARROWED",
                "enum added to an unrestricted value".into(),
            ),
        }
    }
    if let Some(rc) = reader.get("const") {
        if writer.get("const") != Some(rc) {
            problem(out, path, "CONST_CHANGED", format!("const {} required", rc));
        }
    }
    bounds(reader, writer, path, out);
    // Objects.
    let (r_props, w_props) = (props(reader), props(writer));
    if r_props.is_some() || w_props.is_some() || reader.get("additionalProperties").is_some() {
        let empty = Map::new();
        let (rp, wp) = (r_props.unwrap_or(&empty), w_props.unwrap_or(&empty));
        let w_required = required(writer);
        for name in required(reader) {
            if !w_required.contains(&name) {
                problem(
                    out,
                    &join(path, name),
                    "REQUIRED_PROPERTY_ADDED",
                    "required property added (older data may lack it)".into(),
                );
            }
        }
        for (name, rs) in rp {
            let p = join(path, name);
            match wp.get(name) {
                Some(ws) => check(rd, wd, rs, ws, &p, out, depth + 1),
                None if is_open(writer) && !accepts_anything(rd.resolve(rs)) => problem(
                    out,
                    &p,
                    "PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL",
                    "property added to an open content model (older data may hold this name with another type); close the model with \"additionalProperties\": false first".into(),
                ),
                None => {}
            }
        }
        if !is_open(reader) {
            if is_open(writer) {
                problem(out, path, "ADDITIONAL_PROPERTIES_REMOVED", "content model closed (\"additionalProperties\": false) where older data may hold other properties".into());
            }
            for name in wp.keys().filter(|n| !rp.contains_key(*n)) {
                problem(
                    out,
                    &join(path, name),
                    "PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL",
                    "property removed from a closed content model (older data may hold it)".into(),
                );
            }
        } else if let (Some(ra), Some(wa)) = (
            reader.get("additionalProperties"),
            writer.get("additionalProperties"),
        ) {
            if ra.is_object() && wa.is_object() {
                check(rd, wd, ra, wa, &format!("{path}{{}}"), out, depth + 1);
            }
        }
    }
    // Arrays.
    if let (Some(ri), Some(wi)) = (reader.get("items"), writer.get("items")) {
        check(rd, wd, ri, wi, &format!("{path}[]"), out, depth + 1);
    } else if let (Some(ri), None) = (reader.get("items"), writer.get("items")) {
        if !accepts_anything(ri) && types(writer).is_some_and(|t| t.iter().any(|t| t == "array")) {
            problem(
                out,
                &format!("{path}[]"),
                "ITEMS_NARROWED",
                "array items restricted".into(),
            );
        }
    }
}

/// Minimums may only fall and maximums only rise for a reader.
fn bounds(reader: &Value, writer: &Value, path: &str, out: &mut Vec<Problem>) {
    let num = |v: &Value, k: &str| v.get(k).and_then(Value::as_f64);
    let limits = [
        ("minimum", true),
        ("exclusiveMinimum", true),
        ("minLength", true),
        ("minItems", true),
        ("minProperties", true),
        ("maximum", false),
        ("exclusiveMaximum", false),
        ("maxLength", false),
        ("maxItems", false),
        ("maxProperties", false),
    ];
    for (key, is_min) in limits {
        let Some(r) = num(reader, key) else { continue };
        let w = num(writer, key);
        let fine = w.is_some_and(|w| if is_min { w >= r } else { w <= r });
        if !fine {
            let was = w.map(|w| w.to_string()).unwrap_or_else(|| "none".into());
            let rule = if is_min { "MIN_RAISED" } else { "MAX_LOWERED" };
            problem(out, path, rule, format!("{key} {was} -> {r}"));
        }
    }
    if let Some(rp) = reader.get("pattern") {
        if writer.get("pattern") != Some(rp) {
            problem(
                out,
                path,
                "PATTERN_CHANGED",
                format!("pattern {} added or changed", rp),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// (path, rule) of each problem the reader has with the writer's data.
    fn problems(reader: Value, writer: Value) -> Vec<(String, &'static str)> {
        can_read(&reader, &writer)
            .into_iter()
            .map(|p| (p.path, p.rule))
            .collect()
    }

    fn one(path: &str, rule: &'static str) -> Vec<(String, &'static str)> {
        vec![(path.to_string(), rule)]
    }

    #[test]
    fn integers_widen_to_numbers_not_back() {
        let (int, num) = (json!({"type": "integer"}), json!({"type": "number"}));
        assert!(problems(num.clone(), int.clone()).is_empty());
        assert_eq!(problems(int.clone(), num), one("", "TYPE_NARROWED"));
        assert_eq!(problems(int, json!({})), one("", "TYPE_NARROWED"));
        assert!(problems(json!(true), json!({"type": "string"})).is_empty());
    }

    #[test]
    fn open_and_closed_content_models() {
        let open = |props: Value| json!({"type": "object", "properties": props});
        let closed = |props: Value| json!({"type": "object", "properties": props, "additionalProperties": false});
        let a = json!({"a": {"type": "string"}});
        let ab = json!({"a": {"type": "string"}, "b": {"type": "string"}});
        assert_eq!(
            problems(open(ab.clone()), open(a.clone())),
            one("b", "PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL")
        );
        assert!(problems(closed(ab.clone()), closed(a.clone())).is_empty());
        assert_eq!(
            problems(closed(a.clone()), closed(ab)),
            one("b", "PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL")
        );
        assert_eq!(
            problems(closed(a.clone()), open(a)),
            one("", "ADDITIONAL_PROPERTIES_REMOVED")
        );
    }

    #[test]
    fn nested_paths_name_the_field() {
        let writer = json!({"properties": {"items": {"type": "array", "items": {"properties": {"n": {"type": "number"}}}}}});
        let reader = json!({"properties": {"items": {"type": "array", "items": {"properties": {"n": {"type": "integer"}}},
            "minItems": 1}}, "required": ["items"]});
        assert_eq!(
            problems(reader, writer),
            vec![
                ("items".to_string(), "REQUIRED_PROPERTY_ADDED"),
                ("items".to_string(), "MIN_RAISED"),
                ("items[].n".to_string(), "TYPE_NARROWED"),
            ]
        );
    }

    #[test]
    fn refs_are_followed_on_both_sides() {
        let writer = json!({"$ref": "#/$defs/t", "$defs": {"t": {"enum": ["a", "b"]}}});
        let reader = json!({"$ref": "#/definitions/u", "definitions": {"u": {"enum": ["a"]}}});
        let p = can_read(&reader, &writer);
        assert_eq!(p.len(), 1);
        assert_eq!(
            (p[0].rule, p[0].detail.as_str()),
            ("ENUM_ARRAY_NARROWED", r#"enum value "b" removed"#)
        );
        let cycle = json!({"$ref": "#/$defs/a", "$defs": {"a": {"$ref": "#/$defs/a"}}});
        assert!(problems(cycle.clone(), cycle).is_empty(), "a cycle ends");
    }

    #[test]
    fn bounds_may_only_loosen() {
        let p = can_read(
            &json!({"maximum": 10, "pattern": "^a"}),
            &json!({"maximum": 20}),
        );
        let details: Vec<&str> = p.iter().map(|p| p.detail.as_str()).collect();
        assert_eq!(
            details,
            ["maximum 20 -> 10", r#"pattern "^a" added or changed"#]
        );
        assert!(problems(json!({"maxLength": 9}), json!({"maxLength": 3})).is_empty());
    }
}
