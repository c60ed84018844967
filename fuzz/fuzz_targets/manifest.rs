//! A manifest bundle as a client sends it to a node: whatever the YAML, loading answers with
//! the spec or with errors naming their place, never panics; and what loads passes the checks
//! every applied spec must pass.
#![no_main]

use headwater_domains::{load_bundle, Bundle};
use libfuzzer_sys::fuzz_target;

const SCHEMA: &str = r#"{"type":"object","properties":{"amount":{"type":"number"}}}"#;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let bundle = Bundle {
        files: [
            ("fuzz.yaml".to_string(), text.to_string()),
            ("finance.yaml".to_string(), "domain: finance\n".to_string()),
            ("s.json".to_string(), SCHEMA.to_string()),
        ]
        .into(),
    };
    if let Ok(loaded) = load_bundle(&bundle) {
        for domain in loaded {
            let spec = domain.spec();
            assert!(
                spec.problems().is_empty(),
                "loaded a spec the node would refuse: {:?}",
                spec.problems()
            );
        }
    }
});
