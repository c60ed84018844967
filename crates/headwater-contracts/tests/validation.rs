//! Inputs the fuzz targets found (fuzz/regressions/), kept as tests of the public API.

use headwater_contracts::validate::RecordValidator;
use headwater_contracts::{Contract, Format};

/// fuzz/regressions/avro_contract/nan-float: a float NaN is a valid Avro value (with no JSON
/// form). The one-pass check accepts it, and so does apache-avro's full decode: they agree.
#[test]
fn a_float_nan_is_valid_avro_in_one_pass_and_in_full() {
    let schema = r#"{"type":"record","name":"R","fields":[{"name":"x","type":"float"}]}"#;
    let contract = Contract::parse(Format::Avro, schema).expect("schema");
    let validator = RecordValidator::new(&contract, &[]).expect("validator");
    let nan = f32::NAN.to_le_bytes();
    assert!(validator.validate(&nan).is_ok());
    assert!(contract.decode_avro(&nan).is_ok());
}
