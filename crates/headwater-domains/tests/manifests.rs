//! Loading the example domains, and every kind of broken manifest giving its clear error.

use std::path::{Path, PathBuf};

use headwater_domains::{load_dir, ManifestError, OnInvalid};

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/domains")
}

#[test]
fn example_domains_load() {
    let domains = load_dir(&examples()).unwrap_or_else(|e| {
        panic!(
            "{}",
            e.iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        )
    });
    let names: Vec<&str> = domains.iter().map(|d| d.manifest.domain.as_str()).collect();
    assert_eq!(names, ["finance", "marketing", "ml", "payments"]);
    let payments = domains
        .iter()
        .find(|d| d.manifest.domain == "payments")
        .expect("payments");
    let settled = &payments.streams["transaction_settled"];
    assert_eq!(settled.topic, "payments.transaction_settled");
    assert_eq!(settled.spec.partitions, 6);
    assert_eq!(settled.spec.quality.on_invalid, OnInvalid::DeadLetter);
    assert_eq!(
        settled.spec.retention.map(|r| r.millis),
        Some(30 * 86_400_000)
    );
}

/// Writes a one-domain directory (plus a `finance` domain to read from) and loads it.
fn load_one(manifest: &str, files: &[(&str, &str)]) -> Vec<ManifestError> {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("payments.yaml"), manifest).expect("write");
    std::fs::write(dir.path().join("finance.yaml"), "domain: finance\n").expect("write");
    for (name, text) in files {
        let p = dir.path().join(name);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    }
    match load_dir(dir.path()) {
        Ok(_) => Vec::new(),
        Err(e) => e,
    }
}

const SCHEMA: &str = r#"{"type":"object","properties":{"amount":{"type":"number"}}}"#;

fn manifest(stream_extra: &str, readers: &str, check: &str) -> String {
    format!(
        "domain: payments\nstreams:\n  settled:\n    contract:\n      format: json-schema\n      schema: s.json\n{stream_extra}    quality:\n      rules:\n        - {{ name: non_negative, check: \"{check}\" }}\n    readers: [{readers}]\n"
    )
}

fn one_error(errors: &[ManifestError]) -> String {
    assert_eq!(errors.len(), 1, "{errors:?}");
    errors[0].to_string()
}

#[test]
fn a_good_manifest_loads() {
    assert!(load_one(
        &manifest("", "finance", "amount >= 0.0"),
        &[("s.json", SCHEMA)]
    )
    .is_empty());
}

/// Files beside a manifest: (path, text).
type Files<'a> = &'a [(&'a str, &'a str)];

/// Each mistake in a stream's declaration is one error that names its place and the fix.
#[test]
fn stream_mistakes_are_named_with_their_place_and_fix() {
    let good = manifest("", "finance", "amount >= 0.0");
    let schema = [("s.json", SCHEMA)];
    let cases: Vec<(&str, String, Files<'_>, &[&str])> = vec![
        (
            "a misspelt key",
            manifest("    retension: 30d\n", "finance", "amount >= 0.0"),
            &schema,
            &[
                "payments.yaml:7:",
                "unknown key 'retension'",
                "did you mean 'retention'?",
            ],
        ),
        (
            "a missing schema file",
            good.clone(),
            &[],
            &["payments.yaml:6:7", "s.json cannot be read"],
        ),
        (
            "an invalid schema",
            good.clone(),
            &[("s.json", r#"{"type": 7}"#)],
            &["is invalid: invalid JSON Schema"],
        ),
        (
            "a CEL syntax error",
            manifest("", "finance", "amount >= "),
            &schema,
            &[
                "payments.yaml:9:9",
                "quality rule 'non_negative' is not valid CEL",
            ],
        ),
        (
            "an unknown reader domain",
            manifest("", "fnance", "amount >= 0.0"),
            &schema,
            &["reader domain 'fnance' does not exist", "finance, payments"],
        ),
        (
            "an invalid stream name",
            good.replace("settled:", "settled now:"),
            &schema,
            &["stream name 'settled now' is not a valid topic name"],
        ),
        (
            "a duration without a unit we know",
            manifest("    freshness: 5 minutes\n", "finance", "amount >= 0.0"),
            &schema,
            &["use ms, s, m, h or d"],
        ),
        (
            "an unknown compatibility",
            good.replace(
                "schema: s.json",
                "schema: s.json\n      compatibility: sideways",
            ),
            &schema,
            &["compatibility 'sideways' is unknown"],
        ),
    ];
    for (mistake, text, files, expected) in cases {
        let e = one_error(&load_one(&text, files));
        for part in expected {
            assert!(e.contains(part), "{mistake}: {e}");
        }
    }
}

#[test]
fn pipeline_mistakes_are_named_with_their_place() {
    let with_pipeline = |readers: &str, pipeline: &str| {
        let mut m = manifest("", readers, "amount >= 0.0");
        m.push_str(pipeline);
        load_one(&m, &[("s.json", SCHEMA)])
    };
    // finance reads a payments stream that does not admit it.
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("payments.yaml"),
        manifest("", "ml", "amount >= 0.0"),
    )
    .expect("write");
    std::fs::write(dir.path().join("s.json"), SCHEMA).expect("write");
    std::fs::write(dir.path().join("ml.yaml"), "domain: ml\n").expect("write");
    std::fs::write(
        dir.path().join("finance.yaml"),
        "domain: finance\npipelines:\n  totals:\n    mode: batch\n    inputs: [payments.settled]\n    sql: SELECT 1\n    output: { table: totals }\n",
    )
    .expect("write");
    let errors = load_dir(dir.path()).expect_err("unreadable input");
    let e = errors[0].to_string();
    assert!(
        e.contains("finance.yaml:5:5")
            && e.contains("domain 'finance' may not read 'payments.settled': its readers are [ml]"),
        "{e}"
    );

    let errors = with_pipeline(
        "finance",
        "pipelines:\n  nightly:\n    mode: batch\n    schedule: \"0 25 * * *\"\n    inputs: [payments.settled]\n    sql: SELECT 1\n    output: { table: t, view: v }\n",
    );
    let all: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    assert!(
        all.iter().any(|e| e.contains("payments.yaml:14:5")
            && e.contains("schedule '0 25 * * *' is not a cron expression")),
        "{all:?}"
    );
    assert!(
        all.iter().any(|e| e.contains("more than one target")),
        "{all:?}"
    );

    let errors = with_pipeline(
        "finance",
        "pipelines:\n  spend:\n    mode: streaming\n    inputs: [payments.settled]\n    output: { view: spend, key: customer, features: { total: { agg: sum } } }\n",
    );
    assert!(
        errors[0]
            .to_string()
            .contains("feature 'total' aggregates nothing"),
        "{}",
        errors[0]
    );
    let errors = with_pipeline(
        "finance",
        "pipelines:\n  spend:\n    mode: streaming\n    inputs: [payments.settled]\n    output: { stream: elsewhere }\n    windw: 5m\n",
    );
    assert!(
        errors[0].to_string().contains("unknown key 'windw'"),
        "{}",
        errors[0]
    );
}
