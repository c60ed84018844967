//! `headwater audit log` and `headwater audit verify`.

use std::io::{BufRead, Write};
use std::process::ExitCode;

use anyhow::Context;
use headwater_domains::audit::{verify, AuditEntry, Stored, Unreadable, Verification};

use crate::node_http;
use crate::output::Output;

/// Prints the trail, oldest first: one line per entry, or the entries as JSON lines (the form
/// `audit verify --file` checks).
pub(crate) fn log(
    domain: Option<&str>,
    action: Option<&str>,
    output: Output,
    url: &str,
) -> anyhow::Result<ExitCode> {
    let mut query = Vec::new();
    if let Some(d) = domain {
        query.push(format!("domain={}", node_http::encode(d)));
    }
    if let Some(a) = action {
        query.push(format!("action={}", node_http::encode(a)));
    }
    let mut out = std::io::stdout().lock();
    let mut after: Option<i64> = None;
    // Page by page, so neither the node nor this command holds a long trail at once.
    loop {
        let mut page = query.clone();
        if let Some(a) = after {
            page.push(format!("after={a}"));
        }
        let path = format!("/v1/audit?{}", page.join("&"));
        let answer = node_http::get_answer(url, &path)?;
        let entries: Vec<AuditEntry> = serde_json::from_value(answer["entries"].clone())
            .context("the node's audit entries are not in the expected form")?;
        for e in &entries {
            let written = if output == Output::Json {
                writeln!(out, "{}", serde_json::to_string(e)?)
            } else {
                writeln!(
                    out,
                    "#{:<5} {}  {:<22} {:<10} {:<44} by {}",
                    e.seq,
                    crate::generate::chrono_like(e.at_ms),
                    e.action,
                    e.domain.as_deref().unwrap_or("-"),
                    e.target,
                    e.principal
                )
            };
            match written {
                // `headwater audit log | head` stops reading: not an error.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                    return Ok(ExitCode::SUCCESS)
                }
                other => other?,
            }
        }
        for b in answer["unreadable"].as_array().into_iter().flatten() {
            eprintln!(
                "offset {}: {}",
                b["offset"],
                b["problem"].as_str().unwrap_or_default()
            );
        }
        match answer["next"].as_i64() {
            Some(next) => after = Some(next),
            None => return Ok(ExitCode::SUCCESS),
        }
    }
}

/// Checks the node's trail, or an exported one (`audit log --json` lines) with `file`; exits 1
/// naming every problem.
pub(crate) fn check(
    file: Option<&std::path::Path>,
    url: &str,
    output: Output,
) -> anyhow::Result<ExitCode> {
    let (v, place) = match file {
        Some(path) => {
            let f = std::fs::File::open(path)
                .with_context(|| format!("cannot open {}", path.display()))?;
            let mut stored = Vec::new();
            for (i, line) in std::io::BufReader::new(f).lines().enumerate() {
                let line = line.with_context(|| format!("reading {}", path.display()))?;
                if line.trim().is_empty() {
                    continue;
                }
                stored.push(Stored {
                    offset: i as i64 + 1,
                    entry: serde_json::from_str(&line).map_err(|e| Unreadable::not_an_entry(&e)),
                });
            }
            (verify(stored), format!("{} line", path.display()))
        }
        None => {
            let answer = node_http::get_answer(url, "/v1/audit/verify")?;
            let v: Verification = serde_json::from_value(answer)
                .context("the node's verification is not in the expected form")?;
            (v, "_headwater.audit offset".to_string())
        }
    };
    if output == Output::Json {
        println!("{}", serde_json::to_string(&v)?);
        return Ok(if v.intact {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        });
    }
    for p in &v.problems {
        println!("{place} {}: {}", p.offset, p.problem);
    }
    if v.intact {
        println!("audit trail intact: {} entries, head {}", v.entries, v.head);
        Ok(ExitCode::SUCCESS)
    } else {
        println!(
            "audit trail NOT intact: {} problem(s) in {} entries",
            v.problems.len(),
            v.entries
        );
        Ok(ExitCode::from(1))
    }
}
