//! `headwater plan DIR` and `headwater apply DIR`: check the manifests locally, then send them
//! (the manifests and the schema files they name) to the node, which checks them again and
//! says what would change, or changes it.

use std::path::Path;
use std::process::ExitCode;

use headwater_domains::Bundle;

use crate::output::Output;

pub(crate) fn run(dir: &Path, url: &str, apply: bool, output: Output) -> anyhow::Result<ExitCode> {
    // Checked here first, so mistakes are told without a round trip; the node parses and
    // checks the same files again itself.
    let bundle = match Bundle::from_dir(dir) {
        Ok(b) => b,
        Err(errors) => {
            for e in &errors {
                eprintln!("error: {e}");
            }
            eprintln!(
                "{} problem(s) in the manifests; nothing was sent to the node",
                errors.len()
            );
            return Ok(ExitCode::from(1));
        }
    };
    let path = if apply {
        "/v1/domains/apply"
    } else {
        "/v1/domains/plan"
    };
    let outcomes = crate::node_http::post(
        url,
        path,
        "application/json",
        serde_json::to_string(&bundle)?,
    )?;
    let failed = outcomes
        .as_array()
        .into_iter()
        .flatten()
        .any(|o| o["errors"].as_array().is_some_and(|e| !e.is_empty()));
    let code = if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    };
    if output == Output::Json {
        println!("{outcomes}");
        return Ok(code);
    }
    for o in outcomes.as_array().into_iter().flatten() {
        let name = o["domain"].as_str().unwrap_or("?");
        let list = |k: &str| -> Vec<String> {
            o[k].as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        };
        let (changes, notes, errors) = (list("changes"), list("notes"), list("errors"));
        let impact = list("impact");
        if o["unchanged"].as_bool() == Some(true) {
            println!("{name}: unchanged");
            continue;
        }
        let verb = if !errors.is_empty() {
            "refused, nothing changed"
        } else if apply {
            "applied"
        } else {
            "would change"
        };
        println!("{name}: {verb}");
        for c in &changes {
            println!("  {c}");
        }
        for n in &notes {
            println!("  note: {n}");
        }
        for line in &impact {
            // A stream's change heads the readers listed after it.
            if line.contains(" -> next: ") {
                println!("  impact of {line}");
            } else {
                println!("    {line}");
            }
        }
        for e in &errors {
            println!("  error: {e}");
        }
    }
    Ok(code)
}
