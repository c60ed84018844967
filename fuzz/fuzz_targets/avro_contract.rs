//! A record's bytes against Avro contracts: the one-pass check may never accept what
//! `apache-avro`'s full decode refuses. (Not its JSON form: a float NaN is valid Avro with no
//! JSON form, and records are checked as Avro.)
#![no_main]

use std::sync::OnceLock;

use headwater_contracts::validate::RecordValidator;
use headwater_contracts::{Contract, Format};
use libfuzzer_sys::fuzz_target;

const SCHEMAS: &[&str] = &[
    r#"{"type":"record","name":"Payment","fields":[{"name":"id","type":"string"},{"name":"amount","type":"double"},{"name":"count","type":"long"},{"name":"ok","type":"boolean"},{"name":"note","type":["null","string"],"default":null},{"name":"currency","type":{"type":"enum","name":"Currency","symbols":["EUR","USD"]}}]}"#,
    r#"{"type":"record","name":"Batch","fields":[{"name":"items","type":{"type":"array","items":"int"}},{"name":"attrs","type":{"type":"map","values":"string"}},{"name":"digest","type":{"type":"fixed","name":"Digest","size":4}},{"name":"raw","type":"bytes"},{"name":"ratio","type":"float"}]}"#,
];

fn validators() -> &'static Vec<(Contract, RecordValidator)> {
    static V: OnceLock<Vec<(Contract, RecordValidator)>> = OnceLock::new();
    V.get_or_init(|| {
        SCHEMAS
            .iter()
            .map(|schema| {
                let contract = Contract::parse(Format::Avro, schema).expect("schema");
                let validator = RecordValidator::new(&contract, &[]).expect("validator");
                (contract, validator)
            })
            .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    for (contract, v) in validators() {
        if v.validate(data).is_ok() {
            let full = contract.decode_avro(data);
            assert!(
                full.is_ok(),
                "accepted in one pass, refused in full: {:?} for {:02x?}",
                full,
                data
            );
        }
    }
});
