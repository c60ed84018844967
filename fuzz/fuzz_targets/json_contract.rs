//! A record's bytes against JSON Schema contracts with rules: the one-pass check may never
//! accept what the full path (serde_json, `jsonschema`, then the CEL rules) refuses.
#![no_main]

use std::sync::OnceLock;

use headwater_contracts::validate::RecordValidator;
use headwater_contracts::{Contract, Format};
use libfuzzer_sys::fuzz_target;

const SCHEMAS: &[(&str, &[(&str, &str)])] = &[
    (
        r#"{"type":"object","properties":{"id":{"type":"string","minLength":1},"amount":{"type":"number","minimum":0},"currency":{"enum":["EUR","USD"]},"tags":{"type":"array","items":{"type":"string"}},"note":{"type":["string","null"]}},"required":["id","amount"],"additionalProperties":false}"#,
        &[("non_negative", "amount >= 0.0"), ("known", "currency in ['EUR', 'USD']")],
    ),
    (
        r##"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","$defs":{"money":{"type":"integer","maximum":1000000}},"properties":{"n":{"$ref":"#/$defs/money"},"at":{"type":"string","format":"date-time"},"flag":{"const":true}},"required":["n"]}"##,
        &[],
    ),
    (
        r#"{"type":"object","properties":{"items":{"type":"array","minItems":1,"maxItems":3,"items":{"type":"object","properties":{"sku":{"type":"string","pattern":"^[A-Z]{3}-[0-9]+$"},"qty":{"type":"integer","multipleOf":2}}}}}}"#,
        &[],
    ),
];

fn validators() -> &'static Vec<RecordValidator> {
    static V: OnceLock<Vec<RecordValidator>> = OnceLock::new();
    V.get_or_init(|| {
        SCHEMAS
            .iter()
            .map(|(schema, rules)| {
                let contract = Contract::parse(Format::JsonSchema, schema).expect("schema");
                let rules: Vec<(String, String)> = rules
                    .iter()
                    .map(|(n, c)| (n.to_string(), c.to_string()))
                    .collect();
                RecordValidator::new(&contract, &rules).expect("validator")
            })
            .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    for v in validators() {
        if v.validate(data).is_ok() {
            let full = v.decode(data).and_then(|value| v.check_rules(&value));
            assert!(
                full.is_ok(),
                "accepted in one pass, refused in full: {:?} for {:?}",
                full,
                String::from_utf8_lossy(data)
            );
        }
    }
});
