//! `headwater plan DIR` and `headwater apply DIR`: check the manifests locally, then ask the
//! node (over its HTTP API) what would change, or change it.

use std::path::Path;
use std::process::ExitCode;

use headwater_domains::load_dir;

use crate::output::Output;

pub(crate) fn run(dir: &Path, url: &str, apply: bool, output: Output) -> anyhow::Result<ExitCode> {
    let domains = match load_dir(dir) {
        Ok(d) => d,
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
    let specs: Vec<_> = domains.iter().map(|d| d.spec()).collect();
    let path = if apply {
        "/v1/domains/apply"
    } else {
        "/v1/domains/plan"
    };
    let outcomes = crate::node_http::post(
        url,
        path,
        "application/json",
        serde_json::to_string(&specs)?,
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
