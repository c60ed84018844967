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

/// fuzz/regressions/json_contract/number-out-of-range: a number too large for an f64, under a
/// property no schema constrains. serde_json refuses the whole record ("number out of range"),
/// so the one-pass check must not accept it either: downstream readers decode with serde_json.
#[test]
fn a_number_beyond_f64_is_refused_in_one_pass_as_in_full() {
    let schema = r#"{"type":"object","properties":{"items":{"type":"array"}}}"#;
    let contract = Contract::parse(Format::JsonSchema, schema).expect("schema");
    let validator = RecordValidator::new(&contract, &[]).expect("validator");
    for record in [
        &br#"{"amount":5.00000000000018433012500000000184330120E3432}"#[..],
        br#"{"amount":-1e309}"#,
        format!(r#"{{"amount":{}}}"#, "9".repeat(400)).as_bytes(),
    ] {
        assert!(validator.decode(record).is_err(), "serde_json refuses it");
        assert!(
            validator.validate(record).is_err(),
            "one pass accepted {}",
            String::from_utf8_lossy(record)
        );
    }
    // Large but finite numbers and tiny ones (which round to 0) stay valid.
    for record in [&br#"{"amount":1.7e308}"#[..], br#"{"amount":1e-400}"#] {
        assert!(validator.validate(record).is_ok());
        assert!(validator.decode(record).is_ok());
    }
}
