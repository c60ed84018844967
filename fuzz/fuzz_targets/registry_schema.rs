//! A schema as a Schema Registry client registers it (JSON Schema or Avro text, chosen by the
//! first byte): parsing, listing its fields and checking it against earlier versions under
//! every compatibility mode never panic.
#![no_main]

use std::sync::OnceLock;

use headwater_contracts::{check, Compatibility, Contract, Format};
use libfuzzer_sys::fuzz_target;

fn earlier() -> &'static [(Format, Contract)] {
    static E: OnceLock<Vec<(Format, Contract)>> = OnceLock::new();
    E.get_or_init(|| {
        vec![
            (
                Format::JsonSchema,
                Contract::parse(
                    Format::JsonSchema,
                    r#"{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"number"}},"required":["a"]}"#,
                )
                .expect("json"),
            ),
            (
                Format::Avro,
                Contract::parse(
                    Format::Avro,
                    r#"{"type":"record","name":"R","fields":[{"name":"a","type":"string"},{"name":"b","type":["null","long"],"default":null}]}"#,
                )
                .expect("avro"),
            ),
        ]
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let format = if first % 2 == 0 {
        Format::JsonSchema
    } else {
        Format::Avro
    };
    let Ok(contract) = Contract::parse(format, text) else {
        return;
    };
    let _ = contract.fields();
    for (f, old) in earlier() {
        if *f != format {
            continue;
        }
        for mode in [
            Compatibility::Backward,
            Compatibility::Forward,
            Compatibility::Full,
            Compatibility::BackwardTransitive,
            Compatibility::None,
        ] {
            let _ = check(mode, &contract, &[(1, old)]);
        }
    }
});
