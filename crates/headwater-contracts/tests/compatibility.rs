//! The allowed and forbidden changes Confluent documents for each mode and format.

use headwater_contracts::{check, Compatibility, Contract, Format};

fn avro(fields: &str) -> Contract {
    let text = format!(
        r#"{{"type":"record","name":"Payment","namespace":"payments","fields":[{fields}]}}"#
    );
    Contract::parse(Format::Avro, &text).expect("valid avro")
}

fn json(body: &str) -> Contract {
    Contract::parse(Format::JsonSchema, body).expect("valid json schema")
}

fn ok(mode: Compatibility, new: &Contract, old: &[&Contract]) -> bool {
    let prev: Vec<(u32, &Contract)> = old
        .iter()
        .enumerate()
        .map(|(i, c)| (i as u32 + 1, *c))
        .collect();
    let problems = check(mode, new, &prev);
    for p in &problems {
        eprintln!("{p}");
    }
    problems.is_empty()
}

const ID: &str = r#"{"name":"id","type":"string"}"#;
const AMOUNT: &str = r#"{"name":"amount","type":"double"}"#;
const NOTE_DEFAULT: &str = r#"{"name":"note","type":["null","string"],"default":null}"#;
const NOTE_REQUIRED: &str = r#"{"name":"note","type":"string"}"#;

/// Field changes against a v1 of `id` and `amount` (for Forward, v1 also has an optional
/// `note`): which each mode allows, as Confluent's table lists them.
#[test]
fn avro_field_changes_per_mode() {
    use Compatibility::{Backward, Forward, Full};
    let extra_int = r#"{"name":"x","type":"int"}"#;
    let cases: &[(Compatibility, String, bool, &str)] = &[
        (Backward, ID.into(), true, "delete a field"),
        (
            Backward,
            format!("{ID},{AMOUNT},{NOTE_DEFAULT}"),
            true,
            "add an optional field",
        ),
        (
            Backward,
            format!("{ID},{AMOUNT},{NOTE_REQUIRED}"),
            false,
            "add a required field",
        ),
        (
            Forward,
            format!("{ID},{AMOUNT},{NOTE_DEFAULT},{extra_int}"),
            true,
            "add a field",
        ),
        (
            Forward,
            format!("{ID},{AMOUNT}"),
            true,
            "delete an optional field",
        ),
        (
            Forward,
            format!("{ID},{NOTE_DEFAULT}"),
            false,
            "delete required amount",
        ),
        (
            Full,
            format!("{ID},{AMOUNT},{NOTE_DEFAULT}"),
            true,
            "add an optional field",
        ),
        (
            Full,
            format!("{ID},{AMOUNT},{NOTE_REQUIRED}"),
            false,
            "add a required field",
        ),
        (
            Full,
            ID.into(),
            false,
            "delete amount, which has no default",
        ),
    ];
    for (mode, new_fields, allowed, why) in cases {
        let v1 = match mode {
            Forward => avro(&format!("{ID},{AMOUNT},{NOTE_DEFAULT}")),
            _ => avro(&format!("{ID},{AMOUNT}")),
        };
        assert_eq!(
            ok(*mode, &avro(new_fields), &[&v1]),
            *allowed,
            "{mode:?}: {why}"
        );
    }
}

#[test]
fn avro_type_promotion_and_enum_symbols_go_one_way() {
    use Compatibility::{Backward, Full};
    let field = |t: &str| avro(&format!(r#"{{"name":"n","type":{t}}}"#));
    let currency = |symbols: &str| {
        field(&format!(
            r#"{{"type":"enum","name":"Currency","symbols":[{symbols}]}}"#
        ))
    };
    let (int, long) = (field(r#""int""#), field(r#""long""#));
    let (two, three) = (currency(r#""USD","EUR""#), currency(r#""USD","EUR","GBP""#));
    for (mode, new, old, allowed, why) in [
        (Backward, &long, &int, true, "long reads int"),
        (Backward, &int, &long, false, "int cannot read long"),
        (Full, &long, &int, false, "int cannot read long"),
        (Backward, &three, &two, true, "the reader gains a symbol"),
        (Backward, &two, &three, false, "the reader loses GBP"),
    ] {
        assert_eq!(ok(mode, new, &[old]), allowed, "{mode:?}: {why}");
    }
}

#[test]
fn transitive_modes_check_every_earlier_version() {
    // v2 adds a field with a default, v3 drops the default: fine against v2, not against v1.
    let v1 = avro(ID);
    let v2 = avro(&format!(
        r#"{ID},{{"name":"note","type":"string","default":""}}"#
    ));
    let v3 = avro(&format!("{ID},{NOTE_REQUIRED}"));
    assert!(ok(Compatibility::Backward, &v3, &[&v1, &v2]));
    assert!(!ok(Compatibility::BackwardTransitive, &v3, &[&v1, &v2]));
}

#[test]
fn explanations_name_field_rule_and_version() {
    let v = |t: &str| {
        json(&format!(
            r#"{{"type":"object","properties":{{"amount":{{"type":"{t}"}}}}}}"#
        ))
    };
    let p = check(Compatibility::Backward, &v("string"), &[(3, &v("number"))]);
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].rule, "TYPE_CHANGED");
    assert_eq!(
        p[0].to_string(),
        "field 'amount': type number -> string breaks BACKWARD (the new schema cannot read data written with version 3)"
    );
    let p = check(Compatibility::Forward, &v("string"), &[(3, &v("number"))]);
    assert_eq!(
        p[0].to_string(),
        "field 'amount': type string -> number breaks FORWARD (readers of version 3 cannot read data written with the new schema)"
    );
    let added = avro(&format!("{ID},{NOTE_REQUIRED}"));
    let p = check(Compatibility::Backward, &added, &[(1, &avro(ID))]);
    assert_eq!(p[0].path, "note");
    assert_eq!(p[0].rule, "READER_FIELD_MISSING_DEFAULT_VALUE");
}

#[test]
fn json_types_widen_backward_not_narrow() {
    let v = |t: &str| {
        json(&format!(
            r#"{{"type":"object","properties":{{"n":{{"type":"{t}"}}}}}}"#
        ))
    };
    assert!(ok(Compatibility::Backward, &v("number"), &[&v("integer")]));
    assert!(!ok(Compatibility::Backward, &v("integer"), &[&v("number")]));
    assert!(!ok(Compatibility::Full, &v("number"), &[&v("integer")]));
    assert!(ok(Compatibility::None, &v("string"), &[&v("integer")]));
}

#[test]
fn json_content_models_decide_property_changes() {
    let open = |props: &str| json(&format!(r#"{{"type":"object","properties":{{{props}}}}}"#));
    let closed = |props: &str| {
        json(&format!(
            r#"{{"type":"object","additionalProperties":false,"properties":{{{props}}}}}"#
        ))
    };
    let a = r#""a":{"type":"string"}"#;
    let ab = r#""a":{"type":"string"},"b":{"type":"number"}"#;
    // Open model: adding is backward-incompatible, removing is backward-compatible.
    assert!(!ok(Compatibility::Backward, &open(ab), &[&open(a)]));
    assert!(ok(Compatibility::Backward, &open(a), &[&open(ab)]));
    // Closed model: the reverse.
    assert!(ok(Compatibility::Backward, &closed(ab), &[&closed(a)]));
    assert!(!ok(Compatibility::Backward, &closed(a), &[&closed(ab)]));
    // Forward mirrors backward.
    assert!(!ok(Compatibility::Forward, &closed(ab), &[&closed(a)]));
    assert!(ok(Compatibility::Forward, &open(ab), &[&open(a)]));
}

#[test]
fn json_required_enum_bounds_and_refs() {
    let base = r#""a":{"type":"string"}"#;
    let v1 = json(&format!(r#"{{"type":"object","properties":{{{base}}}}}"#));
    let v2 = json(&format!(
        r#"{{"type":"object","properties":{{{base}}},"required":["a"]}}"#
    ));
    assert!(!ok(Compatibility::Backward, &v2, &[&v1]), "required added");
    assert!(ok(Compatibility::Backward, &v1, &[&v2]), "required dropped");

    let e = |vals: &str| json(&format!(r#"{{"type":"string","enum":[{vals}]}}"#));
    assert!(ok(
        Compatibility::Backward,
        &e(r#""USD","EUR","GBP""#),
        &[&e(r#""USD","EUR""#)]
    ));
    assert!(!ok(
        Compatibility::Forward,
        &e(r#""USD","EUR","GBP""#),
        &[&e(r#""USD","EUR""#)]
    ));

    let min = |m: u32| json(&format!(r#"{{"type":"number","minimum":{m}}}"#));
    assert!(ok(Compatibility::Backward, &min(0), &[&min(5)]));
    assert!(!ok(Compatibility::Backward, &min(5), &[&min(0)]));

    let with_ref = |t: &str| {
        json(&format!(
            r##"{{"$schema":"http://json-schema.org/draft-07/schema#","definitions":{{"money":{{"type":"{t}"}}}},"type":"object","properties":{{"amount":{{"$ref":"#/definitions/money"}}}}}}"##
        ))
    };
    let p = check(
        Compatibility::Backward,
        &with_ref("string"),
        &[(1, &with_ref("number"))],
    );
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].path, "amount");
}

#[test]
fn invalid_schemas_are_refused_with_a_reason() {
    let err = Contract::parse(Format::JsonSchema, r#"{"type": 12}"#).expect_err("bad type");
    assert!(err.to_string().contains("invalid JSON Schema"), "{err}");
    let err =
        Contract::parse(Format::Avro, r#"{"type":"record","name":"X"}"#).expect_err("no fields");
    assert!(err.to_string().contains("invalid Avro schema"), "{err}");
    let err =
        Contract::parse(Format::JsonSchema, "{\n  \"type\": \"object\",\n}").expect_err("bad json");
    assert!(err.to_string().contains("line 3"), "{err}");
}
